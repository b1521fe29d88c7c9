/**
 * The byte-moving half of a rotation, over fds only: it opens, renames and deletes nothing, so
 * it can run on the daemon's thread for small files or in a Worker for big ones
 * (rotate-worker.ts) while every path decision stays with rotate.ts on the main thread.
 *
 * Lossless rotation (DESIGN.md, "Lossless rotation"): copy the block-aligned prefix [0, n)
 * of the live file to the archive, fsync the archive, then remove exactly those n bytes from
 * the front of the live file with fallocate(FALLOC_FL_COLLAPSE_RANGE). The service writes
 * through an O_APPEND fd, so whatever it appends meanwhile lands after the prefix and stays.
 * The copy is done in the kernel by copy_file_range (read/write where that is refused), and
 * the collapse in pieces of 32 MiB, so the service's writes wait at most one piece's
 * collapse (about 0.1 s) instead of the whole one (1.5 s for 1 GiB).
 *
 * Where the file system refuses the collapse, the whole file is copied and then truncated to
 * 0 ("copy-truncate"): what the service writes between the copy and the truncate is lost.
 */
import fs from "node:fs";
import { copyFileRange, fallocateCollapse } from "../linux/ffi.ts";
import { errorMessage } from "../util/errors.ts";
import { errnoOf } from "./fsutil.ts";

export type RotationKind = "collapse" | "copy-truncate";

export interface RotationResult {
  /** How the live file was emptied: losslessly by collapse, or by copy+truncate. */
  mode: RotationKind;
  /** Bytes that left the live file (and, unless discarded, went into the archive). */
  bytesMoved: number;
  /** Why less than everything moved, or why copy+truncate was used. */
  note?: string;
}

/** One rotation's work, as plain data (it crosses to a Worker). */
export interface MoveJob {
  liveFd: number;
  /** For messages only. */
  livePath: string;
  archivePath: string | null;
  /** Opened without O_APPEND (copy_file_range refuses an O_APPEND target); null: discard. */
  archiveFd: number | null;
  /** The archive's length before this rotation: bytes go after it. */
  archiveOldLength: number;
  /** collapse: move [0, n); copy-truncate: copy everything, then truncate. */
  mode: RotationKind;
  n: number;
  blksize: number;
  kernelCopy: boolean;
}

/** The outcome: a result, or an error after which the archive was cut back to `archiveKept` bytes. */
export type MoveOutcome =
  | { ok: true; result: RotationResult }
  | { ok: false; message: string; errno?: number; archiveKept: number };

const EINVAL = 22;
const ENOSPC = 28;
const ENOSYS = 38;
const EOPNOTSUPP = 95;

/** An offset far beyond any real log file (1 TiB) and aligned for any block size. */
const PROBE_OFFSET = 2 ** 40;
const COPY_CHUNK = 1 << 20;
/** Bytes per copy_file_range call: about 50 to 90 ms each on ext4 here. */
const KERNEL_COPY_CHUNK = 64 << 20;
/** Bytes per collapse (a multiple of any power-of-two block size up to 32 MiB). */
const COLLAPSE_PIECE = 32 << 20;
/** Errnos that mean "no in-kernel copy here": fall back to read/write. */
const KERNEL_COPY_UNSUPPORTED = new Set([EINVAL, ENOSYS, EOPNOTSUPP, 18 /* EXDEV */]);

/**
 * Asks the file system whether it supports FALLOC_FL_COLLAPSE_RANGE on `fd` without touching
 * the file: a collapse of one block past the end of the file is refused with EINVAL where
 * collapse is supported, and with EOPNOTSUPP where it is not. (The offset is past the file's
 * size, so even a file of more than 1 TiB is never cut by the probe.)
 */
export function probeCollapse(fd: number, blksize: number, size = 0): boolean {
  const offset = Math.max(PROBE_OFFSET, Math.ceil((size + 1) / blksize) * blksize + blksize);
  try {
    fallocateCollapse(fd, offset, blksize);
    return true; // cannot happen past the end; if it did, collapse works
  } catch (e) {
    const errno = errnoOf(e);
    return !(errno === EOPNOTSUPP || errno === ENOSYS);
  }
}

class Sink {
  pos: number;
  constructor(readonly fd: number, start: number) { this.pos = start; }
  write(buf: Uint8Array, len: number): void {
    let off = 0;
    while (off < len) {
      const n = fs.writeSync(this.fd, buf, off, len - off, this.pos);
      off += n;
      this.pos += n;
    }
  }
}

class Shrank extends Error {}

/** Copies bytes of `fd` from `from` up to `to` (to the end of file when undefined) into `sink`. */
function copyRange(fd: number, sink: Sink, from: number, to: number | undefined, useKernel: boolean): number {
  let pos = from;
  while (useKernel) {
    const want = to === undefined ? KERNEL_COPY_CHUNK : Math.min(KERNEL_COPY_CHUNK, to - pos);
    if (want <= 0) return pos - from;
    let got: number;
    try {
      got = copyFileRange(fd, pos, sink.fd, sink.pos, want);
    } catch (e) {
      if (!KERNEL_COPY_UNSUPPORTED.has(errnoOf(e) ?? 0)) throw e;
      break; // the rest by read/write
    }
    if (got === 0) {
      if (to !== undefined) throw new Shrank(`the file shrank while it was being copied (at byte ${pos})`);
      return pos - from;
    }
    sink.pos += got;
    pos += got;
  }
  const buf = Buffer.allocUnsafe(COPY_CHUNK);
  for (;;) {
    const want = to === undefined ? COPY_CHUNK : Math.min(COPY_CHUNK, to - pos);
    if (want <= 0) break;
    const got = fs.readSync(fd, buf, 0, want, pos);
    if (got === 0) {
      if (to !== undefined) throw new Shrank(`the file shrank while it was being copied (at byte ${pos})`);
      break;
    }
    sink.write(buf, got);
    pos += got;
  }
  return pos - from;
}

/**
 * Does `job`; never throws. On failure the live file is as it was (less what a partial
 * collapse already moved, which the archive keeps) and the archive is cut back to its old
 * length plus those bytes.
 */
export function moveLogBytes(job: MoveJob): MoveOutcome {
  const { liveFd: fd, n } = job;
  const sink = job.archiveFd === null ? null : new Sink(job.archiveFd, job.archiveOldLength);
  let keep = job.archiveOldLength;
  const syncArchive = () => { if (sink) fs.fsyncSync(sink.fd); };
  try {
    if (job.mode === "collapse") {
      if (sink) { copyRange(fd, sink, 0, n, job.kernelCopy); syncArchive(); }
      // In pieces, from the front: the kernel holds the file's lock for the whole of one
      // collapse, so the service's writes wait for it.
      const piece = Math.max(job.blksize, Math.floor(COLLAPSE_PIECE / job.blksize) * job.blksize);
      let collapsed = 0;
      try {
        while (collapsed < n) {
          const len = Math.min(piece, n - collapsed);
          fallocateCollapse(fd, 0, len);
          collapsed += len;
        }
        return { ok: true, result: { mode: "collapse", bytesMoved: n } };
      } catch (e) {
        const errno = errnoOf(e);
        keep = job.archiveOldLength + collapsed; // those bytes left the live file: the archive keeps them
        if (errno !== EOPNOTSUPP && errno !== EINVAL) {
          const done = collapsed > 0 ? ` after ${collapsed} of ${n} bytes had moved${job.archivePath ? ` to ${job.archivePath}` : ""}` : "";
          throw Object.assign(new Error(`collapse of ${job.livePath} failed${done}: ${errorMessage(e)}`), { errno, worded: true });
        }
        // Refused after all: finish as copy+truncate. The archive already holds what the live
        // file still has up to n - collapsed.
        const rest = sink ? copyRange(fd, sink, n - collapsed, undefined, job.kernelCopy) : fs.fstatSync(fd).size - (n - collapsed);
        syncArchive();
        fs.ftruncateSync(fd, 0);
        return { ok: true, result: { mode: "copy-truncate", bytesMoved: n + rest, note: `collapse refused (errno ${errno}): copied and truncated` } };
      }
    }
    const moved = sink ? copyRange(fd, sink, 0, undefined, job.kernelCopy) : fs.fstatSync(fd).size;
    syncArchive();
    if (moved > 0) fs.ftruncateSync(fd, 0);
    return { ok: true, result: { mode: "copy-truncate", bytesMoved: moved } };
  } catch (e) {
    if (sink) { try { fs.ftruncateSync(sink.fd, keep); } catch { /* best effort: the live file is what matters */ } }
    const errno = errnoOf(e);
    const worded = e instanceof Shrank || (e as { worded?: boolean }).worded;
    const message = worded ? errorMessage(e)
      : errno === ENOSPC
        ? `no space left on device while archiving ${job.livePath} to ${job.archivePath}; the live file is unchanged`
        : `rotation of ${job.livePath}${job.archivePath ? ` to ${job.archivePath}` : ""} failed: ${errorMessage(e)}`;
    return { ok: false, message, ...(errno !== undefined ? { errno } : {}), archiveKept: keep };
  }
}
