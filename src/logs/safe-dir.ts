/**
 * A log folder opened as a verified fd, and every file operation the log code does relative to
 * it (issue 11). The daemon is root; a service's user owns its working and log folders and can
 * swap any entry in them at any moment. So no log code hands a path to the kernel that a
 * non-root user could redirect:
 *
 * - The folder is reached from "/" one component at a time with openat(O_PATH | O_DIRECTORY |
 *   O_NOFOLLOW). A symlink on the way is followed only where root (or the daemon's own user)
 *   is the only one who could have put it there: its folder is owned by root and writable by no
 *   one else, or it is a sticky folder (/tmp) and root owns the link itself. Otherwise the walk
 *   stops with an error that names the link. A folder swapped for a symlink while we walk is
 *   refused the same way; a folder renamed away under us leaves us on a real folder, never on
 *   a link's target.
 * - Files in it are opened with openat(O_NOFOLLOW | O_NONBLOCK): a symlink at the name fails
 *   (ELOOP) instead of being followed, and a FIFO can never block the open. The result is
 *   checked with fstat (checkFile): a regular file, one link (no hard link to a file elsewhere),
 *   owned by someone the caller expects.
 * - Renames and deletes are renameat/unlinkat relative to the folder fd: they act on the entry
 *   itself (a symlink is renamed or removed, never what it points to).
 */
import fs from "node:fs";
import path from "node:path";
import {
  AT_FDCWD, ERRNO, O_CLOEXEC, O_PATH, closeFd, mkdirAt, openAt, readlinkAt, renameAt, unlinkAt,
} from "../linux/ffi.ts";
import { PmError, errorMessage } from "../util/errors.ts";
import { MAX_SYMLINK_HOPS } from "../util/path-walk.ts";
import { errnoOf } from "./fsutil.ts";

const C = fs.constants;
export const O_NOFOLLOW = C.O_NOFOLLOW;
export const O_NONBLOCK = C.O_NONBLOCK;
const DIR_FLAGS = O_PATH | C.O_DIRECTORY | C.O_NOFOLLOW | O_CLOEXEC;

const daemonUid = () => process.getuid?.() ?? 0;

function fail(msg: string, errno?: number, cause?: unknown): never {
  throw new PmError("LOGS", msg, { ...(errno !== undefined ? { errno } : {}), ...(cause !== undefined ? { cause } : {}) });
}

/** What the file at an fd is, in words, for errors. */
export function kindOf(st: fs.Stats): string {
  if (st.isFile()) return "a regular file";
  if (st.isSymbolicLink()) return "a symbolic link";
  if (st.isFIFO()) return "a FIFO";
  if (st.isSocket()) return "a socket";
  if (st.isDirectory()) return "a folder";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  return "not a regular file";
}

/**
 * Why a symlink named in folder `dirFd` may not be followed, or null when only root (or the
 * daemon's own user) could have made it: the folder is theirs and writable by no one else, or
 * the folder is sticky and the link itself is theirs (others cannot replace it there).
 */
function untrustedLink(dirFd: number, linkFd: number): string | null {
  const trusted = new Set([0, daemonUid()]);
  const dir = fs.fstatSync(dirFd);
  if (trusted.has(dir.uid) && (dir.mode & 0o022) === 0) return null;
  const link = fs.fstatSync(linkFd);
  if ((dir.mode & 0o1000) !== 0 && trusted.has(link.uid)) return null;
  return `its folder (owner uid ${dir.uid}, mode ${(dir.mode & 0o7777).toString(8)}) lets others replace it`;
}

/**
 * Opens the folder `dirPath` (absolute) as an O_PATH fd without following any symlink that a
 * non-root user could have placed (see the module comment). With `create`, missing folders are
 * made (mode 0755, owned by the daemon) on the way, each with mkdirat in its verified parent.
 * Throws PmError("LOGS") with the errno (ENOENT when a folder is missing and `create` is off).
 */
export function openFolderFd(dirPath: string, create: boolean): number {
  if (!path.isAbsolute(dirPath)) fail(`log folder ${dirPath} is not an absolute path`);
  const stack: number[] = [openAt(AT_FDCWD, "/", DIR_FLAGS)];
  const queue = dirPath.split("/").filter((p) => p !== "" && p !== ".");
  let links = 0;
  let walked = "";
  try {
    while (queue.length > 0) {
      const comp = queue.shift()!;
      if (comp === "..") {
        if (stack.length > 1) closeFd(stack.pop()!);
        walked = path.dirname(walked || "/");
        continue;
      }
      const here = path.join(walked || "/", comp);
      const cur = stack[stack.length - 1]!;
      let fd: number | null = null;
      for (let attempt = 0; fd === null; attempt++) {
        try {
          fd = openAt(cur, comp, DIR_FLAGS);
        } catch (e) {
          const errno = errnoOf(e);
          if (errno === ERRNO.ENOENT && create && attempt === 0) {
            try { mkdirAt(cur, comp, 0o755); } catch (m) { if (errnoOf(m) !== ERRNO.EEXIST) fail(`cannot create log folder ${here}: ${errorMessage(m)}`, errnoOf(m), m); }
            continue;
          }
          if (errno !== ERRNO.ENOTDIR) fail(`cannot open log folder ${here}${errno === ERRNO.ENOENT ? ": it does not exist" : `: ${errorMessage(e)}`}`, errno, e);
          break; // not a folder: a symlink (followed below when trusted) or a file
        }
      }
      if (fd !== null) { stack.push(fd); walked = here; continue; }
      const entry = openAt(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
      try {
        const st = fs.fstatSync(entry);
        if (!st.isSymbolicLink()) fail(`log folder ${here} is ${kindOf(st)}, not a folder`, ERRNO.ENOTDIR);
        const why = untrustedLink(cur, entry);
        if (why) fail(`log folder path ${here} is a symbolic link and ${why}; refusing to follow it`, ERRNO.ELOOP);
      } finally { closeFd(entry); }
      if (++links > MAX_SYMLINK_HOPS) fail(`log folder ${dirPath}: too many symbolic links`, ERRNO.ELOOP);
      const target = readlinkAt(cur, comp);
      if (target.startsWith("/")) {
        while (stack.length > 1) closeFd(stack.pop()!);
        walked = "/";
      }
      queue.unshift(...target.split("/").filter((p) => p !== "" && p !== "."));
    }
    const top = stack.pop()!;
    return top;
  } finally {
    for (const fd of stack) closeFd(fd);
  }
}

/** Who may own a log file: root, the daemon's own user, and the service's user. */
export function allowedOwners(serviceUid?: number): Set<number> {
  const s = new Set([0, daemonUid()]);
  if (serviceUid !== undefined) s.add(serviceUid);
  return s;
}

/**
 * The fstat checks of an opened log file (or archive): a regular file, one link, owned by one
 * of `owners`. Throws PmError("LOGS") that names the file and what is wrong with it.
 */
export function checkFile(fd: number, file: string, owners: Set<number>, whom = "root or the service's user"): fs.Stats {
  const st = fs.fstatSync(fd);
  if (!st.isFile()) fail(`${file} is ${kindOf(st)}, not a regular file; refusing it`);
  if (st.nlink !== 1) fail(`${file} has ${st.nlink} hard links; refusing a log file that has other names`);
  if (!owners.has(st.uid)) fail(`${file} is owned by uid ${st.uid}, not by ${whom}; refusing it`);
  return st;
}

/** Clear words for the errno of a failed openat(O_NOFOLLOW | O_NONBLOCK) of a log file. */
export function openFailure(file: string, e: unknown): never {
  const errno = errnoOf(e);
  if (errno === ERRNO.ELOOP) fail(`${file} is a symbolic link; refusing to follow it`, errno, e);
  if (errno === ERRNO.ENXIO) fail(`${file} is a FIFO or socket with no reader; refusing it`, errno, e);
  if (errno === ERRNO.EISDIR) fail(`${file} is a folder, not a log file`, errno, e);
  fail(`cannot open ${file}: ${errno === ERRNO.ENOENT ? "it does not exist" : errorMessage(e)}`, errno, e);
}

/** A log folder opened by openFolderFd, and the operations on the names in it. */
export class LogDir {
  private names: string[] | null = null;

  private constructor(readonly path: string, readonly fd: number) {}

  /** See openFolderFd. */
  static open(dirPath: string, create = false): LogDir {
    return new LogDir(dirPath, openFolderFd(dirPath, create));
  }

  /** `dirPath` opened, or null when it (or a folder on the way) does not exist. */
  static openIfExists(dirPath: string): LogDir | null {
    try {
      return LogDir.open(dirPath, false);
    } catch (e) {
      if (errnoOf(e) === ERRNO.ENOENT) return null;
      throw e;
    }
  }

  /** True when only root (or the daemon's user) can change what is in this folder. */
  rootOnly(): boolean {
    const st = fs.fstatSync(this.fd);
    return new Set([0, daemonUid()]).has(st.uid) && (st.mode & 0o022) === 0;
  }

  /** The full path of `name` in this folder, for messages. */
  at(name: string): string { return path.join(this.path, name); }

  /** openat relative to this folder, always with O_NOFOLLOW, O_NONBLOCK and O_CLOEXEC. */
  open(name: string, flags: number, mode = 0): number {
    try {
      return openAt(this.fd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
    } catch (e) {
      if (errnoOf(e) === ERRNO.EEXIST) throw e; // the caller's O_EXCL: it opens the existing one next
      openFailure(this.at(name), e);
    }
  }

  /** lstat of `name` (a symlink is reported as one, not followed); null when there is none. */
  entry(name: string): fs.Stats | null {
    let fd: number;
    try {
      fd = openAt(this.fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    } catch (e) {
      if (errnoOf(e) === ERRNO.ENOENT) return null;
      throw e;
    }
    try { return fs.fstatSync(fd); } finally { closeFd(fd); }
  }

  /** The names in the folder, read once per LogDir (a rotation run lists each folder once). */
  list(): string[] {
    if (this.names) return this.names;
    try {
      this.names = fs.readdirSync(`/proc/self/fd/${this.fd}`);
    } catch (e) {
      fail(`cannot list log folder ${this.path}: ${errorMessage(e)}`, errnoOf(e), e);
    }
    return this.names;
  }

  rename(from: string, to: string): void {
    renameAt(this.fd, from, this.fd, to);
    this.names = null;
  }

  unlink(name: string): void {
    unlinkAt(this.fd, name);
    this.names = null;
  }

  close(): void { closeFd(this.fd); }
}

/** Runs `use` with the folder of `file` open; closes it after. */
export function withDirOf<T>(file: string, create: boolean, use: (dir: LogDir, name: string) => T): T {
  const dir = LogDir.open(path.dirname(file), create);
  try { return use(dir, path.basename(file)); } finally { dir.close(); }
}

/** The size of the log file `file` (not of what a symlink there points to); null when there is none or it cannot be reached safely. */
export function logFileSize(file: string): number | null {
  try {
    const dir = LogDir.openIfExists(path.dirname(file));
    if (!dir) return null;
    try {
      const st = dir.entry(path.basename(file));
      return st?.isFile() ? st.size : null;
    } finally { dir.close(); }
  } catch {
    return null;
  }
}
