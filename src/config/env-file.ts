/**
 * Environment files (`process.environment_file`), as systemd's EnvironmentFile= reads them:
 * `KEY=value` lines, blank lines and comments (`#` or `;` first), a value optionally in single
 * quotes (taken literally) or double quotes (`\"` and `\\` escaped). Nothing is expanded: `$HOME`
 * stays `$HOME`. The daemon reads them at each start (as root), so a user must not make it read
 * a file only root can read into their service's environment: the file must be a regular file
 * owned by root or the service's user, and a root-owned file is taken only from a folder only
 * root can change or when the service's user could read it anyway. The daemon opens it through
 * a verified folder fd (supervisor/env-file-open.ts: no symlink a non-root user made on the way);
 * this module only checks and parses what it is given, so config/ needs nothing of logs/.
 * Errors never quote the file's content: they give the line number and what was expected.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PmError, errorMessage } from "../util/errors.ts";
import type { ProcessConfig } from "./types.ts";

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
      problems.push({ line: i + 1, message: eq < 0 ? "expected KEY=value" : "invalid variable name (expected letters, digits and _, not starting with a digit)" });
      return;
    }
    const value = unquote(line.slice(eq + 1).trim());
    if (value === null) { problems.push({ line: i + 1, message: "unterminated quote in the value" }); return; }
    if (value.includes("\0")) { problems.push({ line: i + 1, message: "the value contains a NUL character" }); return; }
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

/** An environment file opened for reading, and whether only root can change its folder. */
export interface OpenedEnvFile { fd: number; folderRootOnly: boolean }

/** Who the service runs as: its uid (root when unset) and the groups its process has. */
export interface EnvFileReader { uid?: number; gids?: number[] }

/** The service's identity as the readers below take it: its uid, its primary gid (root's when unset) and supplementary groups. */
export function envFileReader(p: Pick<ProcessConfig, "uid" | "gid" | "supplementaryGroups">): EnvFileReader {
  return { uid: p.uid, gids: [p.gid ?? 0, ...p.supplementaryGroups] };
}

/**
 * The plain opener `pmctl check` uses (it runs with the invoking user's own rights): no symlink
 * at the name, no FIFO blocking. The daemon passes openEnvironmentFileSafely instead. Null when missing.
 */
export function openEnvironmentFilePlain(file: string): OpenedEnvFile | null {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    throw new PmError("SPAWN", `environment_file ${file} ${code === "ELOOP" ? "is a symbolic link (refused)" : errorMessage(e)}`, { cause: e });
  }
  let folderRootOnly = false;
  try { const d = fs.statSync(path.dirname(file)); folderRootOnly = d.uid === 0 && (d.mode & 0o022) === 0; } catch { /* not root-only */ }
  return { fd, folderRootOnly };
}

/** Pure: whether the service (uid, gids) could read a file of this owner, group and mode itself. */
export function readableBy(st: { uid: number; gid: number; mode: number }, who: EnvFileReader): boolean {
  const uid = who.uid ?? 0;
  if (uid === 0) return true;
  if (st.uid === uid) return (st.mode & 0o400) !== 0;
  if ((who.gids ?? []).includes(st.gid)) return (st.mode & 0o040) !== 0;
  return (st.mode & 0o004) !== 0;
}

/**
 * Reads one environment file: null when it is missing and `optional`; throws PmError("SPAWN")
 * naming the file (and line) otherwise. `who`: the service's identity (root is always trusted).
 */
export function readEnvironmentFile(file: string, opts: { optional: boolean; who?: EnvFileReader; open?: (file: string) => OpenedEnvFile | null }): Record<string, string> | null {
  const opened = (opts.open ?? openEnvironmentFilePlain)(file);
  if (!opened) {
    if (opts.optional) return null;
    throw new PmError("SPAWN", `environment_file ${file} does not exist (prefix the name with '-' to make it optional)`);
  }
  const { fd } = opened;
  const uid = opts.who?.uid ?? 0;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new PmError("SPAWN", `environment_file ${file} is not a regular file`);
    if (st.uid !== 0 && st.uid !== uid) {
      throw new PmError("SPAWN", `environment_file ${file} is owned by uid ${st.uid}; it must belong to root${uid ? ` or the service's user (uid ${uid})` : ""}`);
    }
    // A root file in a folder others can change may have been put in the service's way (a
    // swapped folder, a hard link): take it only if the service's user could read it anyway.
    if (st.uid === 0 && !opened.folderRootOnly && !readableBy(st, opts.who ?? {})) {
      throw new PmError("SPAWN", `environment_file ${file} belongs to root, is not readable by the service's user (uid ${uid}) and its folder is not root-only; refusing it`);
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
export function readEnvironmentFiles(files: { path: string; optional: boolean }[], who?: EnvFileReader, open?: (file: string) => OpenedEnvFile | null): Record<string, string> {
  const env: Record<string, string> = {};
  for (const f of files) Object.assign(env, readEnvironmentFile(f.path, { optional: f.optional, who, ...(open ? { open } : {}) }));
  return env;
}
