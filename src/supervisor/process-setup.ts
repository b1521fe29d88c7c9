/**
 * What a service's process gets besides its command, identity, cgroup and rlimits (rlimits.ts):
 * `umask`, variables from `environment_file`, and the `runtime_directory` folders made before
 * each start and removed after each run.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Subprocess } from "bun";
import type { ServiceConfig } from "../config/types.ts";
import { envFileReader, readEnvironmentFiles } from "../config/env-file.ts";
import { openEnvironmentFileSafely } from "./env-file-open.ts";
import { RUNTIME_BASE } from "../config/process-extras.ts";
import { PmError, errorMessage } from "../util/errors.ts";
import { printable, type Logger } from "../util/log.ts";
import { spawnService } from "./spawn.ts";

/**
 * Starts the service's process: the environment files read afresh, runtime folders made, then
 * the spawn (under the service's umask: spawn.ts).
 */
export function startServiceProcess(svc: ServiceConfig, cgroupPath: string, log: Logger): Subprocess {
  const p = svc.process;
  const fromFiles = readEnvironmentFiles(p.environmentFiles, envFileReader(p), openEnvironmentFileSafely);
  // As systemd: variables from environment files override `environment`.
  const withFiles: ServiceConfig = Object.keys(fromFiles).length === 0 ? svc : { ...svc, process: { ...p, environment: { ...p.environment, ...fromFiles } } };
  for (const dir of p.runtimeDirectories) ensureRuntimeDirectory(dir, p.uid ?? 0, p.gid ?? 0, p.runtimeDirectoryMode);
  try {
    return spawnService(withFiles, cgroupPath);
  } catch (e) {
    // No run follows to remove them. Not awaited: the folder was just made and is empty.
    for (const dir of p.runtimeDirectories) void removeRuntimeDirectory(dir, log);
    throw e;
  }
}

function refuse(dir: string, why: string): never {
  throw new PmError("SPAWN", `cannot make runtime_directory ${dir}: ${why}`);
}

/** A folder on the way that only root can change: real folder (no symlink), root's, not writable by others. */
function checkRootFolder(dir: string) {
  const st = fs.lstatSync(dir);
  if (st.isSymbolicLink()) refuse(dir, "it is a symbolic link");
  if (!st.isDirectory()) refuse(dir, "it is not a folder");
  if (st.uid !== 0) refuse(dir, `it is owned by uid ${st.uid}, not root`);
  if (st.mode & 0o022) refuse(dir, `it is writable by others (mode ${(st.mode & 0o7777).toString(8)})`);
}

/**
 * Creates `dir` (under /run) owned by uid:gid with `mode`, without following a symlink: every
 * folder above it is checked to be root's and writable only by root, so nobody else can swap a
 * name on the way, and the folder itself is opened with O_NOFOLLOW and changed through its fd.
 */
export function ensureRuntimeDirectory(dir: string, uid: number, gid: number, mode: number): void {
  const rel = path.relative(RUNTIME_BASE, dir);
  if (rel === "" || rel.startsWith("..") || path.isAbsolute(rel)) refuse(dir, `not inside ${RUNTIME_BASE}`);
  try {
    checkRootFolder(RUNTIME_BASE);
    let at = RUNTIME_BASE;
    const parts = rel.split("/");
    for (const [i, part] of parts.entries()) {
      at = path.join(at, part);
      try { fs.mkdirSync(at, { mode: i === parts.length - 1 ? 0o700 : 0o755 }); } catch (e) { if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e; }
      if (i < parts.length - 1) checkRootFolder(at);
    }
    const last = fs.lstatSync(dir);
    if (last.isSymbolicLink()) refuse(dir, "it is a symbolic link");
    if (!last.isDirectory()) refuse(dir, "it is not a folder");
    // Only root can swap a name in the root-only folder above; O_NOFOLLOW all the same.
    const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    try {
      fs.fchownSync(fd, uid, gid);
      fs.fchmodSync(fd, mode);
    } finally { fs.closeSync(fd); }
  } catch (e) {
    if (e instanceof PmError) throw e;
    refuse(dir, (e as NodeJS.ErrnoException).code === "ELOOP" ? "it is a symbolic link" : errorMessage(e));
  }
}

/** How long the service's user may take to empty its runtime folder before the `find` is killed. */
export const RUNTIME_CLEANUP_TIMEOUT_MS = 20_000;

/**
 * Removes a runtime folder after the run. Its contents belong to the service: they are deleted
 * by `find -xdev -delete` (never follows symlinks, never leaves the folder's file system)
 * running as the folder's owner, so a planted symlink or a swapped subfolder can make it delete
 * nothing its owner could not; root then removes the empty folder from root's /run. A root-owned
 * folder only root can write is removed directly. The `find` runs asynchronously and is killed
 * after RUNTIME_CLEANUP_TIMEOUT_MS: its owner can stop it (SIGSTOP) or feed it a huge folder,
 * and the daemon's only thread must keep serving meanwhile.
 */
export async function removeRuntimeDirectory(dir: string, log: Logger, timeoutMs = RUNTIME_CLEANUP_TIMEOUT_MS): Promise<void> {
  let st: fs.Stats;
  try { st = fs.lstatSync(dir); } catch { return; }
  try {
    if (!st.isDirectory()) { fs.unlinkSync(dir); return; }
    if (st.uid === 0 && (st.mode & 0o022) === 0) { fs.rmSync(dir, { recursive: true, force: true }); return; }
    const find = Bun.spawn({ cmd: ["/usr/bin/find", dir, "-xdev", "-mindepth", "1", "-delete"], uid: st.uid, gid: st.gid, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; find.kill("SIGKILL"); }, timeoutMs);
    const [stderr, code] = await Promise.all([new Response(find.stderr).text().catch(() => ""), find.exited]);
    clearTimeout(timer);
    if (timedOut) log.warn(`runtime_directory ${dir}: removing its contents as uid ${st.uid} took over ${timeoutMs} ms; killed it`);
    else if (code !== 0) log.warn(`runtime_directory ${dir}: removing its contents as uid ${st.uid} failed: ${printable(stderr.trim(), 500)}`);
    fs.rmdirSync(dir);
  } catch (e) {
    log.warn(`runtime_directory ${dir} could not be removed: ${printable(errorMessage(e), 500)}`);
  }
}
