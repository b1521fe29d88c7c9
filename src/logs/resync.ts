/**
 * Finding the read offset again after a followed file changed under the follower
 * (follow.ts). Pure functions over an fd and the last bytes the follower read.
 *
 * How the read offset survives a change of the file under it:
 * - Same file (inode), content before the offset unchanged: read on from the offset.
 * - New inode at the path, or ours unlinked: finish reading the old file, emit its last
 *   partial line, then read the new file from its start.
 * - Same inode, but the file is now shorter than the offset, or the bytes just before the
 *   offset are not the last ones we read (checked on every wake-up against the last up to
 *   4 KiB read): the front was cut. In order:
 *   1. Collapse that took only bytes we had read. A collapse removes a whole number of
 *      blocks r (st_blksize) from the front, so what we read last now ends at offset − r.
 *      Try the multiples r from the smallest the new size allows upward (a follower that
 *      keeps up finds its place just below the new end) and take the first whose preceding
 *      bytes equal the last ones we read (at least 64 bytes of evidence).
 *   2. The cut took bytes we had not read (a follower that fell behind, or copy+truncate):
 *      they are at the end of the archive just written. Look for the last bytes we read from
 *      the live file near the end of the most recently changed `<name>.*` beside the file
 *      (fewer than 64 bytes count only if they occur once there), emit what follows them
 *      there, then read the live file from 0.
 *   3. Not decided yet: look again 10 ms later (a read that raced a collapse in progress
 *      can fool steps 1 and 2), then:
 *   4. A collapse place with under 64 bytes of evidence (we had read only a few bytes past
 *      the block boundary).
 *   5. Otherwise the file was truncated or rewritten: read it from 0.
 *   That never repeats nor skips a line when the follower had read everything before the
 *   collapse (the usual case: it wakes within milliseconds of each write), nor when it had
 *   not but the archive lies beside the file (both rotation modes of processmaster put it
 *   there). A partial line is kept across a cut (copy+truncate leaves the writer mid-line).
 * - Buffered reads are not atomic with a collapse (a read can return bytes of the old layout,
 *   the new one, or both), so every chunk is read a second time together with the bytes
 *   before it, and emitted only when both reads agree; otherwise the offset is checked again.
 * - Known limits: content that repeats with a period of a block can fool the checks; bytes a
 *   follower had not read when two rotations happened before it woke up are skipped (they
 *   are in the older archive), and so are bytes rotated away before it read anything of
 *   the file (no place to find); copy+truncate itself loses what the service writes between
 *   the copy and the truncate, whatever the follower does.
 */
import fs from "node:fs";
import path from "node:path";
import { closeQuietly, openForReading, statOrNull } from "./fsutil.ts";

/** How many of the last bytes read a follower keeps to find its place again. */
export const RECENT = 4096;
/** Bytes of matching content that identify a place beyond doubt. */
export const STRONG = 64;
const MAX_CANDIDATES = 256;
/** Archives searched for unread bytes after a cut, and how far back from their end. */
const ARCHIVES_SEARCHED = 3;
const ARCHIVE_SEARCH_BYTES = 16 << 20;

/** Exactly `len` bytes at `pos`, or null when the file ends before. */
export function preadExact(fd: number, pos: number, len: number): Buffer | null {
  const buf = Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const r = fs.readSync(fd, buf, got, len - got, pos + got);
    if (r === 0) return null;
    got += r;
  }
  return buf;
}

/** True when the bytes of the file just before `pos` are the end of `recent`. */
export function endsWith(fd: number, pos: number, recent: Buffer): boolean {
  const m = Math.min(recent.length, pos);
  if (m === 0) return true;
  const here = preadExact(fd, pos - m, m);
  return here !== null && here.equals(recent.subarray(recent.length - m));
}

/**
 * Step 1 (and the candidates of step 4): the places p = offset − r, r a multiple of the
 * block size, that the file of `size` bytes can hold, largest p first (a follower that keeps
 * up finds its place just below the new end). `sure` is the first place with at least STRONG
 * bytes of evidence that match; `weak` are the places with less evidence, unchecked.
 */
export function findCollapsePlace(
  fd: number, offset: number, size: number, blksize: number, recent: Buffer,
): { sure: number | null; weak: number[] } {
  const blk = blksize > 0 ? blksize : 4096;
  const first = Math.max(blk, Math.ceil((offset - size) / blk) * blk);
  const strong = Math.min(recent.length, STRONG);
  const weak: number[] = [];
  let tries = 0;
  for (let r = first; r < offset && tries < MAX_CANDIDATES; r += blk, tries++) {
    const p = offset - r;
    if (Math.min(recent.length, p) < strong) { weak.push(p); continue; }
    if (endsWith(fd, p, recent)) return { sure: p, weak };
  }
  return { sure: null, weak };
}

/**
 * Step 2: the bytes the rotation took that the follower had not read, from the end of the
 * archive beside `file` that holds the last bytes it read (of the live file: older bytes of
 * `recent` are in an older archive). Null when no archive has them; an empty buffer when
 * the follower had read everything.
 */
export function unreadFromArchive(file: string, offset: number, recent: Buffer): Buffer | null {
  const needle = recent.subarray(recent.length - Math.min(recent.length, offset));
  if (needle.length === 0) return null;
  const dir = path.dirname(file);
  const prefix = path.basename(file) + ".";
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.startsWith(prefix));
  } catch {
    return null;
  }
  const archives = names
    .map((n) => ({ p: path.join(dir, n), st: statOrNull(path.join(dir, n)) }))
    .filter((a) => a.st?.isFile())
    .sort((a, b) => b.st!.mtimeMs - a.st!.mtimeMs)
    .slice(0, ARCHIVES_SEARCHED);
  for (const a of archives) {
    let fd: number | null = null;
    try {
      fd = openForReading(a.p);
      const size = fs.fstatSync(fd).size;
      const from = Math.max(0, size - ARCHIVE_SEARCH_BYTES);
      const tail = preadExact(fd, from, size - from);
      const at = tail?.lastIndexOf(needle) ?? -1;
      // A short needle (the follower had read only a few bytes) counts only if unambiguous.
      if (tail && at >= 0 && (needle.length >= STRONG || tail.indexOf(needle) === at)) {
        return Buffer.from(tail.subarray(at + needle.length));
      }
    } catch {
      // gone or unreadable: try the next
    } finally {
      closeQuietly(fd);
    }
  }
  return null;
}
