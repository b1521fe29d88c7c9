/**
 * The only module that uses bun:ffi. Thin typed wrappers over libc calls that Bun does not
 * expose: pidfd_open, poll, waitid, eventfd, fallocate, copy_file_range, getsockopt(SO_PEERCRED,
 * SO_PEERGROUPS), flock, execve, the *at calls (openat, mkdirat, renameat, unlinkat, readlinkat) and
 * fcntl that let the log code work relative to a verified folder fd, and unix datagram sockets
 * with SCM_CREDENTIALS (sd_notify).
 * Each wrapper turns a -1 return into a PmError("SYSCALL") carrying the errno.
 */
import { dlopen, FFIType, ptr, read } from "bun:ffi";
import { PmError } from "../util/errors.ts";

const { i32, i64, u32, u64, ptr: P } = FFIType;

const libc = dlopen("libc.so.6", {
  pidfd_open: { args: [i32, u64], returns: i32 },
  poll: { args: [P, u64, i32], returns: i32 },
  waitid: { args: [i32, u64, P, i32], returns: i32 },
  eventfd: { args: [u64, i32], returns: i32 },
  read: { args: [i32, P, u64], returns: i64 },
  write: { args: [i32, P, u64], returns: i64 },
  close: { args: [i32], returns: i32 },
  fallocate: { args: [i32, i32, i64, i64], returns: i32 },
  copy_file_range: { args: [i32, P, i32, P, u64, u32], returns: i64 },
  lseek: { args: [i32, i64, i32], returns: i64 },
  getsockopt: { args: [i32, i32, i32, P, P], returns: i32 },
  flock: { args: [i32, i32], returns: i32 },
  execve: { args: [P, P, P], returns: i32 },
  socket: { args: [i32, i32, i32], returns: i32 },
  bind: { args: [i32, P, u32], returns: i32 },
  setsockopt: { args: [i32, i32, i32, P, u32], returns: i32 },
  recvmsg: { args: [i32, P, i32], returns: i64 },
  sendto: { args: [i32, P, u64, i32, P, u32], returns: i64 },
  openat: { args: [i32, P, i32, u32], returns: i32 },
  mkdirat: { args: [i32, P, u32], returns: i32 },
  renameat: { args: [i32, P, i32, P], returns: i32 },
  unlinkat: { args: [i32, P, i32], returns: i32 },
  readlinkat: { args: [i32, P, P, u64], returns: i64 },
  fcntl: { args: [i32, i32, i64], returns: i32 },
  __errno_location: { args: [], returns: P },
});
const sym = libc.symbols;

export const ERRNO = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EINTR: 4, EAGAIN: 11, ECHILD: 10, EBADF: 9,
  EINVAL: 22, ENOSPC: 28, EOPNOTSUPP: 95, EBUSY: 16, EEXIST: 17, ENOTDIR: 20, EISDIR: 21,
  ELOOP: 40, ENXIO: 6, EACCES: 13,
} as const;

function errno(): number {
  const p = sym.__errno_location();
  return p === null ? 0 : read.i32(p, 0);
}

function fail(call: string, detail = ""): never {
  const e = errno();
  throw new PmError("SYSCALL", `${call}${detail ? ` ${detail}` : ""} failed: errno ${e}`, { errno: e });
}

/** A pidfd for `pid`; throws with errno ESRCH when the process is already gone. */
export function pidfdOpen(pid: number): number {
  const fd = sym.pidfd_open(pid, 0);
  if (fd < 0) fail("pidfd_open", `(pid ${pid})`);
  return fd;
}

export function closeFd(fd: number): void {
  sym.close(fd);
}

export const POLLIN = 0x1;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;

/**
 * Blocking poll over `fds` for readability; returns the fds that are ready (or in error).
 * Blocks the calling thread: use it only inside a Worker.
 */
export function pollReadable(fds: number[], timeoutMs: number): number[] {
  const buf = new Uint8Array(8 * Math.max(1, fds.length));
  const view = new DataView(buf.buffer);
  fds.forEach((fd, i) => { view.setInt32(i * 8, fd, true); view.setInt16(i * 8 + 4, POLLIN, true); });
  let n: number;
  for (;;) {
    n = sym.poll(ptr(buf), fds.length, timeoutMs);
    if (n >= 0) break;
    if (errno() !== ERRNO.EINTR) fail("poll");
  }
  const ready: number[] = [];
  if (n === 0) return ready;
  for (let i = 0; i < fds.length; i++) if (view.getInt16(i * 8 + 6, true) !== 0) ready.push(fds[i]!);
  return ready;
}

const P_PID = 1;
const P_PIDFD = 3;
export const WEXITED = 4;
export const WNOHANG = 1;
export const WNOWAIT = 0x01000000;
const CLD_EXITED = 1;

export interface WaitResult { pid: number; code: number | null; signal: number | null }

function waitidRaw(idtype: number, id: number, options: number): WaitResult | null {
  const info = new Uint8Array(128);
  const rc = sym.waitid(idtype, id, ptr(info), options);
  if (rc < 0) fail("waitid");
  const view = new DataView(info.buffer);
  const pid = view.getInt32(16, true);
  if (pid === 0) return null; // WNOHANG and nothing to report
  const sigCode = view.getInt32(8, true);
  const status = view.getInt32(24, true);
  return sigCode === CLD_EXITED ? { pid, code: status, signal: null } : { pid, code: null, signal: status };
}

/**
 * Reap (or with WNOWAIT, peek at) the process behind a pidfd. Only for processes that became
 * our children without Bun (orphans reparented to us): Bun reaps its own, and racing it breaks
 * `proc.exited`. Returns null when it has not exited; throws ECHILD when it is not our child.
 */
export function waitPidfd(pidfd: number, options = WEXITED | WNOHANG): WaitResult | null {
  return waitidRaw(P_PIDFD, pidfd, options);
}

/** Reap one specific child by PID (never P_ALL: that would steal Bun's children). */
export function waitPid(pid: number, options = WEXITED | WNOHANG): WaitResult | null {
  return waitidRaw(P_PID, pid, options);
}

const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;

export function eventfdCreate(): number {
  const fd = sym.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) fail("eventfd");
  return fd;
}

export function eventfdSignal(fd: number): void {
  const one = new BigUint64Array([1n]);
  if (Number(sym.write(fd, ptr(one), 8)) < 0 && errno() !== ERRNO.EAGAIN) fail("eventfd write");
}

/** Drains the counter; a no-op when it is zero (the fd is non-blocking). */
export function eventfdDrain(fd: number): void {
  const buf = new BigUint64Array(1);
  if (Number(sym.read(fd, ptr(buf), 8)) < 0 && errno() !== ERRNO.EAGAIN) fail("eventfd read");
}

const FALLOC_FL_COLLAPSE_RANGE = 0x08;

/** Removes bytes [offset, offset+length) from the file; both must be block-aligned. */
export function fallocateCollapse(fd: number, offset: number, length: number): void {
  if (sym.fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, offset, length) < 0) fail("fallocate(COLLAPSE_RANGE)");
}

/**
 * Copies up to `length` bytes from `fdIn` at `offIn` to `fdOut` at `offOut` inside the kernel
 * (no trip through user space; on XFS/btrfs a reflink). Neither fd's file offset moves, and
 * `fdOut` must not be O_APPEND (EBADF). Returns the bytes copied, 0 at the end of `fdIn`.
 * Throws with EXDEV/ENOSYS/EOPNOTSUPP/EINVAL where the kernel or file system cannot do it:
 * callers fall back to read/write then.
 */
export function copyFileRange(fdIn: number, offIn: number, fdOut: number, offOut: number, length: number): number {
  const inOff = new BigInt64Array([BigInt(offIn)]);
  const outOff = new BigInt64Array([BigInt(offOut)]);
  for (;;) {
    const n = Number(sym.copy_file_range(fdIn, ptr(inOff), fdOut, ptr(outOff), length, 0));
    if (n >= 0) return n;
    if (errno() !== ERRNO.EINTR) fail("copy_file_range");
  }
}

const SEEK_DATA = 3;
const SEEK_HOLE = 4;

/**
 * The start of the first data at or after `offset` (lseek SEEK_DATA), or null when there is
 * none up to the end of the file (ENXIO). Moves the fd's file offset: use it on fds read only
 * with positional reads. File systems that do not track holes answer `offset` itself.
 */
export function seekData(fd: number, offset: number): number | null {
  const n = Number(sym.lseek(fd, offset, SEEK_DATA));
  if (n >= 0) return n;
  if (errno() === ERRNO.ENXIO) return null;
  fail("lseek(SEEK_DATA)");
}

/** The start of the first hole at or after `offset` (lseek SEEK_HOLE); the end of the file counts as one. */
export function seekHole(fd: number, offset: number): number {
  const n = Number(sym.lseek(fd, offset, SEEK_HOLE));
  if (n < 0) fail("lseek(SEEK_HOLE)");
  return n;
}

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
  /** Supplementary groups at connect time (SO_PEERGROUPS); absent when the kernel could not tell. */
  groups?: number[];
}

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const SO_PEERGROUPS = 59;
const ERANGE = 34;

/** Who is on the other end of a connected unix socket. */
export function getPeerCred(sockFd: number): PeerCred {
  const cred = new Int32Array(3);
  const len = new Uint32Array([12]);
  if (sym.getsockopt(sockFd, SOL_SOCKET, SO_PEERCRED, ptr(cred), ptr(len)) < 0) fail("getsockopt(SO_PEERCRED)");
  return { pid: cred[0]!, uid: cred[1]!, gid: cred[2]! };
}

/**
 * The peer's supplementary groups as they were when it connected (Linux ≥ 4.13). Unlike
 * /proc/PID/status this cannot be fooled by the client exiting and its PID being reused.
 */
export function getPeerGroups(sockFd: number): number[] {
  let gids = new Uint32Array(64);
  const len = new Uint32Array([gids.byteLength]);
  for (;;) {
    if (sym.getsockopt(sockFd, SOL_SOCKET, SO_PEERGROUPS, ptr(gids), ptr(len)) >= 0) return [...gids.subarray(0, len[0]! / 4)];
    if (errno() !== ERANGE || len[0]! <= gids.byteLength) fail("getsockopt(SO_PEERGROUPS)");
    gids = new Uint32Array(len[0]! / 4); // the kernel said how much room it needs
  }
}

const LOCK_EX = 2;
const LOCK_NB = 4;

/**
 * Takes an exclusive flock on `fd` without waiting; false when another process holds it. The
 * kernel drops the lock when the holder dies, however it dies: no stale lock to clean up.
 */
export function tryLockExclusive(fd: number): boolean {
  if (sym.flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
  if (errno() === ERRNO.EAGAIN) return false; // EWOULDBLOCK
  fail("flock");
}

/**
 * Replaces this process image (same PID, same open fds) with `path` run as `argv` in `env`.
 * Returns only by throwing, when the kernel refused.
 */
export function execve(path: string, argv: string[], env: Record<string, string>): never {
  const keep: Buffer[] = [];
  const cString = (text: string) => { const b = Buffer.from(`${text}\0`); keep.push(b); return BigInt(ptr(b)); };
  const list = (items: string[]) => { const a = new BigUint64Array(items.length + 1); items.forEach((t, i) => (a[i] = cString(t))); return a; };
  const argvList = list(argv);
  const envList = list(Object.entries(env).map(([k, v]) => `${k}=${v}`));
  sym.execve(ptr(Buffer.from(`${path}\0`)), ptr(argvList), ptr(envList));
  fail("execve", `(${path})`);
}

/**
 * The directory fd that *at calls resolve relative paths against as the process's cwd. Only
 * for the first step of a walk from "/" (an absolute name ignores it anyway).
 */
export const AT_FDCWD = -100;
const AT_REMOVEDIR = 0x200;
const F_GETFL = 3;
const F_SETFL = 4;

const cPath = (name: string) => Buffer.from(`${name}\0`);

function fileCall(call: string, name: string): never {
  const e = errno();
  throw new PmError("SYSCALL", `${call}(${name}) failed: errno ${e}`, { errno: e });
}

/**
 * openat(2): `name` is resolved relative to the folder fd `dirFd`. Flags are the kernel's
 * (node's fs.constants where it has them; O_PATH and O_CLOEXEC below). Throws with the errno.
 */
export function openAt(dirFd: number, name: string, flags: number, mode = 0): number {
  for (;;) {
    const fd = sym.openat(dirFd, ptr(cPath(name)), flags, mode);
    if (fd >= 0) return fd;
    if (errno() !== ERRNO.EINTR) fileCall("openat", name);
  }
}

/** O_PATH (same value on x86_64 and aarch64): an fd that names a file without opening it for I/O. */
export const O_PATH = 0o10000000;
export const O_CLOEXEC = 0o2000000;

export function mkdirAt(dirFd: number, name: string, mode: number): void {
  if (sym.mkdirat(dirFd, ptr(cPath(name)), mode) < 0) fileCall("mkdirat", name);
}

/** renameat(2) inside one folder fd or between two; never follows a symlink at either name. */
export function renameAt(fromDir: number, from: string, toDir: number, to: string): void {
  if (sym.renameat(fromDir, ptr(cPath(from)), toDir, ptr(cPath(to))) < 0) fileCall("renameat", `${from} -> ${to}`);
}

/** unlinkat(2) of a non-folder entry (a symlink itself, never what it points to). */
export function unlinkAt(dirFd: number, name: string): void {
  if (sym.unlinkat(dirFd, ptr(cPath(name)), 0) < 0) fileCall("unlinkat", name);
}

/** unlinkat(2) with AT_REMOVEDIR: removes an empty folder. */
export function rmdirAt(dirFd: number, name: string): void {
  if (sym.unlinkat(dirFd, ptr(cPath(name)), AT_REMOVEDIR) < 0) fileCall("unlinkat(AT_REMOVEDIR)", name);
}

/** The target of the symlink `name` in `dirFd`. */
export function readlinkAt(dirFd: number, name: string): string {
  const buf = Buffer.alloc(4097);
  const n = Number(sym.readlinkat(dirFd, ptr(cPath(name)), ptr(buf), buf.length));
  if (n < 0) fileCall("readlinkat", name);
  return buf.subarray(0, n).toString("utf8");
}

/** Clears O_NONBLOCK on `fd` (a log file opened non-blocking so a FIFO could not hang the open). */
export function clearNonBlocking(fd: number, nonBlockFlag: number): void {
  const flags = sym.fcntl(fd, F_GETFL, 0);
  if (flags < 0) fail("fcntl(F_GETFL)");
  if (sym.fcntl(fd, F_SETFL, flags & ~nonBlockFlag) < 0) fail("fcntl(F_SETFL)");
}

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SO_PASSCRED = 16;
const SCM_RIGHTS = 1;
const SCM_CREDENTIALS = 2;
const MSG_DONTWAIT = 0x40;
const MSG_CTRUNC = 0x8;
const MSG_CMSG_CLOEXEC = 0x40000000;
/** SCM_MAX_FD: the most fds one SCM_RIGHTS message may carry. */
const MAX_PASSED_FDS = 253;
const cmsgSpace = (dataLen: number) => 16 + ((dataLen + 7) & ~7);

/**
 * sockaddr_un for a unix socket address as NOTIFY_SOCKET writes it: `@name` for the abstract
 * namespace, else a file path; and its length.
 */
function unixAddress(address: string): { addr: Buffer; len: number } {
  const abstract = address.startsWith("@");
  const path = Buffer.from(abstract ? address.slice(1) : address);
  if (path.length + 1 > 107) throw new PmError("SYSCALL", `unix socket address too long (${path.length} bytes, at most 106): ${address}`);
  const addr = Buffer.alloc(110);
  addr.writeUInt16LE(AF_UNIX, 0);
  if (abstract) { path.copy(addr, 3); return { addr, len: 3 + path.length }; } // byte 2 is the NUL that makes it abstract
  path.copy(addr, 2);
  return { addr, len: 2 + path.length + 1 };
}

/**
 * A non-blocking unix datagram socket bound to `address` (`@name` or a path; a path must not
 * exist yet), with SO_PASSCRED so that every message carries its sender's pid, uid and gid as
 * the kernel knows them.
 */
export function openCredentialedDatagramSocket(address: string): number {
  const fd = sym.socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket(AF_UNIX, SOCK_DGRAM)");
  const one = new Int32Array([1]);
  try {
    const { addr, len } = unixAddress(address);
    if (sym.bind(fd, ptr(addr), len) < 0 || sym.setsockopt(fd, SOL_SOCKET, SO_PASSCRED, ptr(one), 4) < 0) {
      const e = errno();
      throw new PmError("SYSCALL", `bind/setsockopt of ${address} failed: errno ${e}`, { errno: e });
    }
  } catch (e) {
    sym.close(fd);
    throw e;
  }
  return fd;
}

export interface CredentialedMessage {
  data: Buffer; pid: number; uid: number; gid: number;
  /** File descriptors the sender passed (SCM_RIGHTS): already closed, only counted. */
  passedFds: number;
  /** The control data did not fit (MSG_CTRUNC): the message should be dropped. */
  truncated: boolean;
}

/**
 * The next datagram waiting on `fd` with its sender's credentials; null when none is waiting.
 * Anyone who can send to the socket can pass file descriptors with it (SCM_RIGHTS): every one
 * that arrives is closed at once (and is close-on-exec meanwhile), so a sender cannot fill the
 * daemon's fd table. The control buffer holds the credentials and a full SCM_RIGHTS array, so
 * truncation (whose fds the kernel closes itself) needs a sender that is doing something odd.
 */
export function receiveWithCredentials(fd: number): CredentialedMessage | null {
  const data = Buffer.alloc(4096);
  const control = new BigUint64Array((cmsgSpace(12) + cmsgSpace(4 * MAX_PASSED_FDS)) / 8);
  const iov = new BigUint64Array([BigInt(ptr(data)), BigInt(data.length)]);
  // struct msghdr on 64-bit Linux: name, namelen(+pad), iov, iovlen, control, controllen, flags(+pad).
  const msg = new BigUint64Array([0n, 0n, BigInt(ptr(iov)), 1n, BigInt(ptr(control)), BigInt(control.byteLength), 0n]);
  const n = Number(sym.recvmsg(fd, ptr(msg), MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
  if (n < 0) {
    if (errno() === ERRNO.EAGAIN) return null;
    fail("recvmsg");
  }
  const cmsg = Buffer.from(control.buffer);
  const controllen = Math.min(Number(msg[5]), cmsg.length);
  const truncated = (Number(msg[6] & 0xffffffffn) & MSG_CTRUNC) !== 0;
  let cred = { pid: 0, uid: -1, gid: -1 };
  let passedFds = 0;
  // Every cmsghdr (cmsg_len u64, level i32, type i32, data), each 8-byte aligned.
  for (let off = 0; off + 16 <= controllen;) {
    const len = Number(cmsg.readBigUInt64LE(off));
    if (len < 16) break;
    const level = cmsg.readInt32LE(off + 8);
    const type = cmsg.readInt32LE(off + 12);
    const end = Math.min(off + len, controllen);
    if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      for (let p = off + 16; p + 4 <= end; p += 4) { sym.close(cmsg.readInt32LE(p)); passedFds++; }
    } else if (level === SOL_SOCKET && type === SCM_CREDENTIALS && end - off >= 28) {
      cred = { pid: cmsg.readInt32LE(off + 16), uid: cmsg.readUInt32LE(off + 20), gid: cmsg.readUInt32LE(off + 24) };
    }
    off += (len + 7) & ~7;
  }
  return { data: data.subarray(0, n), ...cred, passedFds, truncated };
}

/** Sends one datagram to the unix socket `address` (`@name` or a path; what sd_notify does; for tests and tools). */
export function sendDatagram(address: string, payload: string): void {
  const fd = sym.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket(AF_UNIX, SOCK_DGRAM)");
  try {
    const { addr, len } = unixAddress(address);
    const buf = Buffer.from(payload);
    if (Number(sym.sendto(fd, ptr(buf), buf.length, 0, ptr(addr), len)) < 0) fail("sendto", `(${address})`);
  } finally {
    sym.close(fd);
  }
}
