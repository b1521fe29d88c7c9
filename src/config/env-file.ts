/**
 * Environment files (`process.environment_file`), as systemd's EnvironmentFile= reads them:
 * `KEY=value` lines, blank lines and comments (`#` or `;` first), a value optionally in single
 * quotes (taken literally) or double quotes (`\"` and `\\` escaped). Nothing is expanded: `$HOME`
 * stays `$HOME`. The daemon reads them at each start (as root), so the file is opened without
 * following a symlink and must be a regular file owned by root or the service's user: a user
 * must not make the daemon read a file only root can read into their service's environment.
 */
import * as fs from "node:fs";
import { PmError, errorMessage } from "../util/errors.ts";

export interface EnvFileLineProblem { line: number; message: string }

/** Larger files are refused: an environment is small, and the daemon reads the file at each start. */
export const MAX_ENV_FILE_BYTES = 1024 * 1024;

/** Pure: the variables of an environment file's text, and what is wrong with which line. */
export function parseEnvironmentText(text: string): { env: Record<string, string>; problems: EnvFileLineProblem[] } {
  const env: Record<string, string> = {};
  const problems: EnvFileLineProblem[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "").trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) return;
    const eq = line.indexOf("=");
    const key = eq < 0 ? line : line.slice(0, eq).trim();
    if (eq < 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      problems.push({ line: i + 1, message: eq < 0 ? `expected KEY=value, found '${clip(line)}'` : `invalid variable name '${clip(key)}' (letters, digits and _; not starting with a digit)` });
      return;
    }
    const value = unquote(line.slice(eq + 1).trim());
    if (value === null) { problems.push({ line: i + 1, message: `unterminated quote in the value of ${key}` }); return; }
    if (value.includes("\0")) { problems.push({ line: i + 1, message: `the value of ${key} contains a NUL character` }); return; }
    env[key] = value;
  });
  return { env, problems };
}

function unquote(v: string): string | null {
  const q = v[0];
  if (q !== "'" && q !== '"') return v;
  if (v.length < 2 || v[v.length - 1] !== q) return null;
  const inner = v.slice(1, -1);
  if (q === "'") return inner.includes("'") ? null : inner;
  let out = "";
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i]!;
    if (c === "\\" && (inner[i + 1] === '"' || inner[i + 1] === "\\")) { out += inner[++i]; continue; }
    if (c === '"') return null;
    out += c;
  }
  return out;
}

/**
 * Reads one environment file: null when it is missing and `optional`; throws PmError("SPAWN")
 * naming the file (and line) otherwise. `ownerUid`: the service's uid (root is always trusted).
 */
export function readEnvironmentFile(file: string, opts: { optional: boolean; ownerUid?: number }): Record<string, string> | null {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && opts.optional) return null;
    const why = code === "ENOENT" ? "does not exist (prefix the name with '-' to make it optional)" : code === "ELOOP" ? "is a symbolic link (refused)" : errorMessage(e);
    throw new PmError("SPAWN", `environment_file ${file} ${why}`, { cause: e });
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new PmError("SPAWN", `environment_file ${file} is not a regular file`);
    if (st.uid !== 0 && st.uid !== (opts.ownerUid ?? 0)) {
      throw new PmError("SPAWN", `environment_file ${file} is owned by uid ${st.uid}; it must belong to root${opts.ownerUid ? ` or the service's user (uid ${opts.ownerUid})` : ""}`);
    }
    if (st.size > MAX_ENV_FILE_BYTES) throw new PmError("SPAWN", `environment_file ${file} is larger than ${MAX_ENV_FILE_BYTES} bytes`);
    const { env, problems } = parseEnvironmentText(fs.readFileSync(fd, "utf8"));
    if (problems.length > 0) throw new PmError("SPAWN", `environment_file ${file}:${problems[0]!.line}: ${problems[0]!.message}`);
    return env;
  } finally {
    fs.closeSync(fd);
  }
}

/** Every file in order, later files overriding earlier ones. Throws PmError("SPAWN"). */
export function readEnvironmentFiles(files: { path: string; optional: boolean }[], ownerUid?: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const f of files) Object.assign(env, readEnvironmentFile(f.path, { optional: f.optional, ownerUid }));
  return env;
}

function clip(s: string, max = 40): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
