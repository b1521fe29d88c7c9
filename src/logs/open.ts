/**
 * Opening the files services write their stdout/stderr to, safely for a root daemon whose
 * services' users own the log folders (issue 11; safe-dir.ts says how).
 *
 * A log path that is an attack (a symlink, a FIFO, a hard link, a file of another user, a
 * folder on the way swapped for a symlink) is refused: openLogFd throws a PmError("LOGS") that
 * names the file and the reason, the start fails with it (the daemon logs it, the restart
 * policy applies), and nothing is written anywhere. Falling back to /dev/null would run the
 * service with its output silently gone; failing the start is what the operator notices.
 */
import fs from "node:fs";
import path from "node:path";
import { clearNonBlocking, closeFd, ERRNO } from "../linux/ffi.ts";
import { PmError, errorMessage } from "../util/errors.ts";
import { errnoOf } from "./fsutil.ts";
import { allowedOwners, checkFile, LogDir, O_NONBLOCK } from "./safe-dir.ts";

/** The user and group a service runs as (undefined: root / the daemon's own). */
export interface LogOwner { uid?: number; gid?: number }

/** Mode of a log file the daemon creates: the service's group may read it, no one else. */
export const NEW_LOG_MODE = 0o640;

const C = fs.constants;

/**
 * The file each log path named when the daemon last opened it for a service (dev and inode).
 * The rotator rotates a live file only if it is still that file: one swapped in at the path
 * since is not what the service writes to, and may be a file its user could not touch.
 */
const opened = new Map<string, { dev: number; ino: number }>();

/** The identity recorded when the daemon last opened `file` for a service, if it did. */
export function openedIdentity(file: string): { dev: number; ino: number } | undefined {
  return opened.get(file);
}

/** `name` in `dir` opened with `flags` (no O_CREAT), or null when there is none. */
function openIfThere(dir: LogDir, name: string, flags: number): number | null {
  try { return dir.open(name, flags); } catch (e) {
    if (errnoOf(e) === ERRNO.ENOENT) return null;
    throw e;
  }
}

/**
 * Opens `file` for appending and returns the fd to pass as a service's stdout/stderr. Missing
 * folders are created (0755, root). A new file is created mode 0640, owned by root and the
 * service's group. An existing one must be a regular file with one link, owned by root or the
 * service's user (or a character device such as /dev/null in a folder only root can change).
 * O_APPEND matters: after a truncate or a collapse the writer keeps writing at
 * the new end (no hole of NULs). The caller closes the fd once the child has it.
 */
export function openLogFd(file: string, owner: LogOwner = {}): number {
  return openLogFds([file], owner)[0]!;
}

/**
 * Verified log folders kept open while withSharedLogFolders runs (the daemon's boot: thousands
 * of services, often in a few folders). The fd pins the folder that was verified: a folder
 * swapped or renamed behind it redirects nothing (opens stay in that folder, as they would
 * right after a fresh walk); every file is still opened O_NOFOLLOW and checked with fstat.
 */
let shared: Map<string, LogDir> | null = null;
/**
 * The names in each shared folder when it was first opened: a file not among them is created
 * straight away (O_EXCL) instead of first failing to open (a thrown error per file at a first
 * boot). Only a hint: O_EXCL still refuses a file made meanwhile, which is then opened as it is.
 */
const sharedNames = new WeakMap<LogDir, Set<string>>();

/** Runs `work` with each log folder walked to once (see `shared`); closes them after. */
export function withSharedLogFolders<T>(work: () => T): T {
  if (shared) return work();
  shared = new Map();
  try { return work(); } finally {
    for (const dir of shared.values()) dir.close();
    shared = null;
  }
}

/**
 * openLogFd for each of `files` (in order); files in one folder share one walk to it (a service's
 * stdout and stderr, at every start: issue 15). On an error nothing stays open.
 */
export function openLogFds(files: readonly string[], owner: LogOwner = {}): number[] {
  if (shared) {
    try { return openAll(files, owner, shared, false); } catch (e) {
      // Only a folder removed since it was walked to (ENOENT, or ESTALE on NFS) is worth a fresh
      // walk; a file refused by its checks would be refused again, with the folder walked twice.
      const errno = errnoOf(e) ?? errnoOf((e as { cause?: unknown }).cause);
      if (errno !== ERRNO.ENOENT && errno !== 116 /* ESTALE */) throw e;
      for (const file of files) { shared.get(path.dirname(file))?.close(); shared.delete(path.dirname(file)); }
    }
  }
  return openAll(files, owner, new Map(), true);
}

function openAll(files: readonly string[], owner: LogOwner, dirs: Map<string, LogDir>, closeDirs: boolean): number[] {
  const fds: number[] = [];
  try {
    for (const file of files) {
      let dir = dirs.get(path.dirname(file));
      if (!dir) dirs.set(path.dirname(file), (dir = openLogFolder(file)));
      fds.push(openLogIn(dir, file, owner, closeDirs ? undefined : namesIn(dir)));
    }
    return fds;
  } catch (e) {
    for (const fd of fds) closeFd(fd);
    throw e;
  } finally {
    if (closeDirs) for (const dir of dirs.values()) dir.close();
  }
}

function namesIn(dir: LogDir): Set<string> | undefined {
  let names = sharedNames.get(dir);
  if (!names) {
    try { names = new Set(dir.list()); } catch { return undefined; }
    sharedNames.set(dir, names);
  }
  return names;
}

/** The verified folder fd of a log file's folder (made if missing). */
function openLogFolder(file: string): LogDir {
  try {
    return LogDir.open(path.dirname(file), true);
  } catch (e) {
    throw new PmError("LOGS", `cannot open log file ${file}: ${errorMessage(e)}`, { errno: errnoOf(e), cause: e });
  }
}

/** openLogFd's work once the folder is open; the caller closes `dir`. */
function openLogIn(dir: LogDir, file: string, owner: LogOwner, names?: Set<string>): number {
  const name = path.basename(file);
  let fd: number | null = null;
  try {
    const flags = C.O_WRONLY | C.O_APPEND | C.O_NOCTTY;
    // The file is there at every start but the first: open it first, as it is (checked below).
    // A create refused with EEXIST first cost every restart a thrown error per file (issue 15).
    if (names === undefined || names.has(name)) fd = openIfThere(dir, name, flags);
    if (fd === null) {
      try {
        fd = dir.open(name, flags | C.O_CREAT | C.O_EXCL, NEW_LOG_MODE);
        // O_EXCL: this call made the file, so it is ours to give its owner and mode.
        if (process.getuid?.() === 0) fs.fchownSync(fd, 0, owner.gid ?? process.getgid?.() ?? 0);
        fs.fchmodSync(fd, NEW_LOG_MODE);
      } catch (e) {
        if (fd !== null || errnoOf(e) !== ERRNO.EEXIST) throw e;
        fd = dir.open(name, flags); // made meanwhile by someone else: checked like any existing one
      }
    }
    // A device such as /dev/null, in a folder only root can change, is root's own choice.
    if (fs.fstatSync(fd).isCharacterDevice() && dir.rootOnly()) { clearNonBlocking(fd, O_NONBLOCK); return fd; }
    const st = checkFile(fd, file, allowedOwners(owner.uid));
    clearNonBlocking(fd, O_NONBLOCK); // the service gets an ordinary blocking stdout
    opened.set(file, { dev: st.dev, ino: st.ino });
    return fd;
  } catch (e) {
    if (fd !== null) closeFd(fd);
    if (e instanceof PmError && e.code === "LOGS") throw e;
    throw new PmError("LOGS", `cannot open log file ${file}: ${errorMessage(e)}`, { errno: errnoOf(e), cause: e });
  }
}
