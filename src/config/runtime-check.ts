/**
 * `check`'s look past the syntax: what would fail only when a service runs. Is the command's
 * program there, and may the service's user execute it (found on the service's PATH as execvp
 * finds it)? May that user enter its working directory? Can its log folders be created? Plus
 * warnings for settings that work but are likely mistakes; warnings do not fail `check`.
 *
 * The identity is the service's `user`/`group`, or (without one) the user running `check`,
 * taken to be the daemon's. The PATH is the one the service will run with (service-path.ts):
 * from its environment files or `environment.PATH`, else the daemon's fixed SAFE_PATH; only
 * with `inherit_environment: true` the PATH of the `check` process, taken to be the daemon's.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Config, ConfigProblem, ServiceConfig } from "./types.ts";
import { resolveUser, userGroups } from "./users.ts";
import { kernelPath } from "../util/path-walk.ts";
import { envFileReader, readEnvironmentFiles } from "./env-file.ts";
import { servicePath } from "./service-path.ts";

export interface Identity { uid: number; gids: number[]; label: string }

export interface RuntimeFindings { errors: ConfigProblem[]; warnings: ConfigProblem[] }

export function serviceIdentity(svc: ServiceConfig): Identity {
  const { uid, gid, user } = svc.process;
  if (uid === undefined) {
    const me = process.getuid?.() ?? 0;
    return { uid: me, gids: process.getgroups?.() ?? [process.getgid?.() ?? 0], label: me === 0 ? "root" : `uid ${me}` };
  }
  const name = resolveUser(uid)?.name ?? user ?? String(uid);
  return { uid, gids: userGroups(name, gid ?? uid), label: `user ${name}` };
}

/** May `who` use `st` for `want` (r, w or x), by the owner/group/other bits (root: x needs any x bit on a file). */
function permits(st: fs.Stats, who: Identity, want: "r" | "w" | "x"): boolean {
  const bit = want === "r" ? 4 : want === "w" ? 2 : 1;
  if (who.uid === 0) return want !== "x" || st.isDirectory() || (st.mode & 0o111) !== 0;
  const shift = st.uid === who.uid ? 6 : who.gids.includes(st.gid) ? 3 : 0;
  return ((st.mode >> shift) & bit) !== 0;
}

/** Why `who` cannot reach `target` through its folders (search permission on each), or null. */
function unreachable(target: string, who: Identity): string | null {
  let real: string;
  try { real = fs.realpathSync(target); } catch { return null; } // a missing path is reported by the caller
  const parts = real.split("/").filter(Boolean);
  for (let i = 0; i < parts.length; i++) {
    const dir = "/" + parts.slice(0, i).join("/");
    try { if (!permits(fs.statSync(dir), who, "x")) return `${who.label} may not enter ${dir}`; } catch { return null; }
  }
  return null;
}

/** The file execvp would run for `word` (a path with `/`, else the first hit on PATH), or why none. */
export function findProgram(word: string, cwd: string, PATH: string, who: Identity): { file: string } | { problem: string } {
  // kernelPath, as the daemon's resolveCommand: a `..` after a symlinked folder is where the kernel goes.
  const candidates = word.includes("/") ? [kernelPath(cwd, word)] : PATH.split(":").map((d) => kernelPath(cwd, `${d || "."}/${word}`));
  let denied: string | null = null;
  for (const file of candidates) {
    let st: fs.Stats;
    try { st = fs.statSync(file); } catch { continue; }
    if (!st.isFile()) { denied ??= `${file} is not a regular file`; continue; }
    const blocked = unreachable(file, who);
    if (blocked) { denied ??= `${file}: ${blocked}`; continue; }
    if (!permits(st, who, "x")) { denied ??= `${file} is not executable by ${who.label} (mode ${(st.mode & 0o7777).toString(8).padStart(4, "0")})`; continue; }
    return { file };
  }
  if (denied) return { problem: denied };
  return { problem: word.includes("/") ? `${candidates[0]} does not exist` : `'${word}' is not found on PATH (${PATH})` };
}

/** The nearest folder that exists at or above `dir`. */
function nearestExisting(dir: string): string {
  let d = dir;
  while (!fs.existsSync(d) && d !== path.dirname(d)) d = path.dirname(d);
  return d;
}

/** Why the daemon (this process's user) could not create or append to `file`, or null. */
function logFileProblem(file: string): string | null {
  try {
    if (fs.existsSync(file)) { fs.accessSync(file, fs.constants.W_OK); return null; }
    const base = nearestExisting(path.dirname(file));
    if (!fs.statSync(base).isDirectory()) return `${base} is not a folder, so ${path.dirname(file)} cannot be created`;
    fs.accessSync(base, fs.constants.W_OK | fs.constants.X_OK);
    return null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return `cannot be created or written (${code === "EACCES" ? "permission denied" : code === "EROFS" ? "read-only file system" : code ?? "error"})`;
  }
}

/** The variables the service's environment files give it now; a file that cannot be read is reported apart (load.ts). */
function environmentFilesOf(svc: ServiceConfig): Record<string, string> {
  try { return readEnvironmentFiles(svc.process.environmentFiles, envFileReader(svc.process)); }
  catch { return {}; }
}

/**
 * `fromFiles`: each service's variables from its environment files when the caller read them
 * already (checkConfigDeep: load.ts reads each once, for its problems and for this PATH); read here otherwise.
 */
export function runtimeFindings(config: Pick<Config, "services">, env: NodeJS.ProcessEnv = process.env, fromFiles?: ReadonlyMap<string, Record<string, string>>): RuntimeFindings {
  const errors: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  for (const svc of config.services.values()) {
    const who = serviceIdentity(svc);
    const p = svc.process;
    const at = (key: string, message: string) => ({ file: svc.file, key, message });
    const blocked = unreachable(p.workingDirectory, who);
    if (blocked) errors.push(at("process.working_directory", `${p.workingDirectory} cannot be entered: ${blocked}`));
    else {
      try { if (!permits(fs.statSync(p.workingDirectory), who, "x")) errors.push(at("process.working_directory", `${who.label} may not enter ${p.workingDirectory}`)); }
      catch { /* a missing folder is a parse error already */ }
    }
    const PATH = servicePath(p, env, fromFiles?.get(svc.name) ?? environmentFilesOf(svc));
    for (const [key, argv] of [["process.command", p.command], ["process.stop_command", p.stopCommand]] as const) {
      if (!argv) continue;
      const found = findProgram(argv[0]!, p.workingDirectory, PATH, who);
      if ("problem" in found) errors.push(at(key, `cannot run '${argv[0]}' as ${who.label}: ${found.problem}`));
    }
    const logs = svc.logs;
    for (const [key, file] of [["logs.stdout", logs.stdout], ["logs.stderr", logs.stderr], ["logs.stop_command_stdout", logs.stopCommandStdout], ["logs.stop_command_stderr", logs.stopCommandStderr]] as const) {
      if (!file) continue;
      const why = logFileProblem(file);
      if (why) errors.push(at(key, `log file ${file} ${why}`));
    }
    if (p.stopGraceMs < 1000) warnings.push(at("process.stop_grace_ms", `${p.stopGraceMs} ms is shorter than 1 s: most programs cannot shut down cleanly that fast, and are killed`));
    const r = svc.restartPolicy;
    if (r.policy !== "never" && r.restartBackoffMs < 100 && r.restartBackoffMaxMs === undefined) {
      warnings.push(at("restart_policy.restart_backoff_ms", `${r.restartBackoffMs} ms between restarts makes a crash loop spin; set restart_backoff_max_ms for exponential backoff`));
    }
    if (!svc.enabled && p.schedule !== undefined) warnings.push(at("enabled", "a disabled service's schedule never fires"));
  }
  return { errors, warnings };
}
