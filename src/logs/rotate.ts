/**
 * Moving a live log file's content into an archive while its service keeps writing to it.
 *
 * Lossless rotation (DESIGN.md, "Lossless rotation"): copy the block-aligned prefix [0, n)
 * of the live file to the archive, fsync the archive, then remove exactly those n bytes from
 * the front of the live file with fallocate(FALLOC_FL_COLLAPSE_RANGE). The service writes
 * through an O_APPEND fd, so whatever it appends meanwhile lands after the prefix and stays.
 * The bytes after n (less than one block, possibly half a line) stay in the live file:
 * archive + live file is byte-exact, the archive may end mid-line.
 * The copy is done in the kernel by copy_file_range (read/write where that is refused), and
 * the collapse in pieces of 32 MiB, so the service's writes wait at most one piece's
 * collapse (about 0.1 s) instead of the whole one (1.5 s for 1 GiB). Everything runs on the
 * caller's thread: on ext4 here one rotation of 1 GiB takes about 3 s (copy ~0.6 s, fsync
 * of the archive ~0.5 s, collapse ~1.5 s), during which the daemon's event loop is busy
 * (scripts/bench/logs.ts measures it).
 *
 * Where the file system refuses the collapse (tmpfs, btrfs, ext4 without extents: EOPNOTSUPP,
 * or EINVAL), the whole file is copied and then truncated to 0: what the service writes
 * between the end of the copy and the truncate is lost. That mode is reported as
 * "copy-truncate" so the daemon can say so.
 */
import fs from "node:fs";
import { copyFileRange, fallocateCollapse } from "../linux/ffi.ts";
import { PmError, errorMessage } from "../util/errors.ts";
import { closeQuietly, errnoOf } from "./fsutil.ts";

export type RotationKind = "collapse" | "copy-truncate";

export interface RotationResult {
  /** How the live file was emptied: losslessly by collapse, or by copy+truncate. */
  mode: RotationKind;
  /** Bytes that left the live file (and, unless discarded, went into the archive). */
  bytesMoved: number;
  /** Why less than everything moved, or why copy+truncate was used. */
  note?: string;
}

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
let kernelCopy = true;

/** Turns the in-kernel copy (copy_file_range) on or off; for benchmarks and tests. */
export function useKernelCopy(on: boolean): void {
  kernelCopy = on;
}

/**
 * Asks the file system whether it supports FALLOC_FL_COLLAPSE_RANGE on `fd` without touching
 * the file: a collapse of one block at 1 TiB is refused with EINVAL (range beyond the end of
 * the file) where collapse is supported, and with EOPNOTSUPP where it is not.
 */
export function probeCollapse(fd: number, blksize: number): boolean {
  try {
    fallocateCollapse(fd, PROBE_OFFSET, blksize);
    return true; // a file of more than 1 TiB: collapse works
  } catch (e) {
    const errno = errnoOf(e);
    return !(errno === EOPNOTSUPP || errno === ENOSYS);
  }
}

/** How `file` would be rotated, for status: "unknown" when it cannot be opened. */
export function probeRotationMode(file: string): RotationKind | "unknown" {
  let fd: number | null = null;
  try {
    fd = fs.openSync(file, "r+");
    const st = fs.fstatSync(fd);
    return probeCollapse(fd, st.blksize > 0 ? st.blksize : 4096) ? "collapse" : "copy-truncate";
  } catch {
    return "unknown";
  } finally {
    closeQuietly(fd);
  }
}

/**
 * An archive being appended to, which can be put back as it was. Opened without O_APPEND
 * (copy_file_range refuses an O_APPEND target) and written at explicit offsets from its end.
 */
class Archive {
  /** Where the next byte goes. */
  pos: number;
  /** What rollback keeps: the old length, plus whatever already left the live file for good. */
  private keepBytes: number;

  private constructor(
    readonly path: string,
    readonly fd: number,
    /** True when this rotation created the file (rollback deletes it). */
    readonly created: boolean,
    /** Its length before this rotation (rollback truncates back to it). */
    readonly oldLength: number,
  ) {
    this.pos = oldLength;
    this.keepBytes = oldLength;
  }

  static open(file: string, like: fs.Stats): Archive {
    const mode = like.mode & 0o777;
    try {
      const fd = fs.openSync(file, "wx", mode); // O_CREAT|O_EXCL: we know we made it
      try { fs.fchownSync(fd, like.uid, like.gid); } catch { /* not root: keep ours */ }
      return new Archive(file, fd, true, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const fd = fs.openSync(file, "r+");
    return new Archive(file, fd, false, fs.fstatSync(fd).size);
  }

  write(buf: Uint8Array, len: number): void {
    let off = 0;
    while (off < len) {
      const n = fs.writeSync(this.fd, buf, off, len - off, this.pos);
      off += n;
      this.pos += n;
    }
  }

  /** The first `moved` bytes this rotation wrote have left the live file: rollback keeps them. */
  commit(moved: number): void {
    this.keepBytes = this.oldLength + moved;
  }

  /** Puts the archive back as it was before this rotation (less what was committed); never throws. */
  rollback(): void {
    try {
      if (this.created && this.keepBytes === 0) fs.unlinkSync(this.path);
      else fs.ftruncateSync(this.fd, this.keepBytes);
    } catch { /* best effort: the live file is what matters */ }
  }

  close(): void { closeQuietly(this.fd); }
}

/**
 * Copies bytes of `fd` from `from` up to `to` (or to the end of file when `to` is undefined)
 * into the archive that `sink()` opens on first use; returns the number of bytes copied.
 */
function copyRange(fd: number, sink: () => Archive, from: number, to?: number): number {
  let pos = from;
  // In the kernel first (copy_file_range: about half the time of read/write, no user-space
  // buffer); read/write where the kernel or file system refuses.
  while (kernelCopy) {
    const want = to === undefined ? KERNEL_COPY_CHUNK : Math.min(KERNEL_COPY_CHUNK, to - pos);
    if (want <= 0) return pos - from;
    if (to === undefined && fs.fstatSync(fd).size <= pos) return pos - from; // nothing (more) to copy: no archive made
    const archive = sink();
    let got: number;
    try {
      got = copyFileRange(fd, pos, archive.fd, archive.pos, want);
    } catch (e) {
      if (!KERNEL_COPY_UNSUPPORTED.has(errnoOf(e) ?? 0)) throw e;
      break; // the rest by read/write
    }
    if (got === 0) {
      if (to !== undefined) throw new PmError("LOGS", `the file shrank while it was being copied (at byte ${pos})`);
      return pos - from;
    }
    archive.pos += got;
    pos += got;
  }
  const buf = Buffer.allocUnsafe(COPY_CHUNK);
  for (;;) {
    const want = to === undefined ? COPY_CHUNK : Math.min(COPY_CHUNK, to - pos);
    if (want <= 0) break;
    const got = fs.readSync(fd, buf, 0, want, pos);
    if (got === 0) {
      if (to !== undefined) throw new PmError("LOGS", `the file shrank while it was being copied (at byte ${pos})`);
      break;
    }
    sink().write(buf, got);
    pos += got;
  }
  return pos - from;
}

/**
 * Rotates the live log `file` into `archivePath` (appending if the archive exists), or
 * discards the moved bytes when `archivePath` is null. See the module comment for the
 * method. Throws PmError("LOGS") with the errno when it cannot; then the live file is as it
 * was and the archive is back to its old length (or removed if this call created it). In
 * particular ENOSPC (errno 28) while writing the archive leaves the live file untouched.
 */
export function rotateLogFile(file: string, archivePath: string | null): RotationResult {
  let fd: number;
  try {
    fd = fs.openSync(file, "r+"); // O_RDWR: fallocate needs a writable fd, not O_APPEND
  } catch (e) {
    throw new PmError("LOGS", `cannot open ${file} for rotation: ${errorMessage(e)}`, { errno: errnoOf(e), cause: e });
  }
  let archive: Archive | null = null;
  let stat: fs.Stats | null = null;
  const sink = (): Archive => {
    if (archive) return archive;
    if (archivePath === null) throw new Error("unreachable: no archive to write to");
    archive = Archive.open(archivePath, stat!);
    return archive;
  };
  const finishArchive = () => { if (archive) fs.fsyncSync(archive.fd); };

  try {
    stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new PmError("LOGS", `${file} is not a regular file; not rotated`);
    const blk = stat.blksize > 0 ? stat.blksize : 4096;

    if (probeCollapse(fd, blk)) {
      // The collapse may not reach the end of the file (the kernel answers EINVAL), so a file
      // of exactly k blocks keeps its last block.
      const n = stat.size > 0 ? Math.floor((stat.size - 1) / blk) * blk : 0;
      if (n === 0) {
        return {
          mode: "collapse",
          bytesMoved: 0,
          note: stat.size === 0 ? "empty" : `${stat.size} bytes, less than one ${blk}-byte block: left in the live file`,
        };
      }
      if (archivePath !== null) {
        copyRange(fd, sink, 0, n);
        finishArchive();
      }
      // In pieces, from the front: the kernel holds the file's lock for the whole of one
      // collapse, so the service's writes wait for it (one collapse of 1 GiB stalled a writer
      // 1.5 s on ext4 here; pieces of 32 MiB, about 0.1 s each).
      const piece = Math.max(blk, Math.floor(COLLAPSE_PIECE / blk) * blk);
      let collapsed = 0;
      try {
        while (collapsed < n) {
          const len = Math.min(piece, n - collapsed);
          fallocateCollapse(fd, 0, len);
          collapsed += len;
        }
        return { mode: "collapse", bytesMoved: n };
      } catch (e) {
        const errno = errnoOf(e);
        (archive as Archive | null)?.commit(collapsed); // those bytes left the live file: the archive keeps them
        if (errno !== EOPNOTSUPP && errno !== EINVAL) {
          const done = collapsed > 0 ? ` after ${collapsed} of ${n} bytes had moved${archivePath ? ` to ${archivePath}` : ""}` : "";
          throw new PmError("LOGS", `collapse of ${file} failed${done}: ${errorMessage(e)}`, { errno, cause: e });
        }
        // Refused after all: finish as copy+truncate. The archive already holds what the live
        // file still has up to n - collapsed.
        const rest = archivePath !== null ? copyRange(fd, sink, n - collapsed) : fs.fstatSync(fd).size - (n - collapsed);
        finishArchive();
        fs.ftruncateSync(fd, 0);
        return { mode: "copy-truncate", bytesMoved: n + rest, note: `collapse refused (errno ${errno}): copied and truncated` };
      }
    }

    const moved = archivePath !== null ? copyRange(fd, sink, 0) : stat.size;
    finishArchive();
    if (moved > 0) fs.ftruncateSync(fd, 0);
    return { mode: "copy-truncate", bytesMoved: moved };
  } catch (e) {
    (archive as Archive | null)?.rollback();
    if (e instanceof PmError && e.code === "LOGS") throw e;
    const errno = errnoOf(e);
    const what = errno === ENOSPC
      ? `no space left on device while archiving ${file} to ${archivePath}; the live file is unchanged`
      : `rotation of ${file}${archivePath ? ` to ${archivePath}` : ""} failed: ${errorMessage(e)}`;
    throw new PmError("LOGS", what, { errno, cause: e });
  } finally {
    (archive as Archive | null)?.close();
    closeQuietly(fd);
  }
}
