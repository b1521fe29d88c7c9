/**
 * `tail -F` for several files at once (`pmctl logs -f`): starts at the current end of each
 * file, prints every complete line as it arrives, and keeps following a file by name across
 * rotation (collapse or copy+truncate), truncation, deletion and recreation, and files that
 * do not exist yet.
 *
 * Wake-ups come from inotify (fs.watch) on each file and on its folder (the folder's watch
 * sees the file created again after a deletion; while the folder itself is missing, its
 * nearest existing ancestor is watched). A slow safety re-check (`pollMs`, default 1 s) covers
 * events inotify cannot deliver (network file systems, watch limit reached; then 100 ms).
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
 *      they are at the end of the archive just written. Look for the last bytes we read near
 *      the end of the most recently changed `<name>.*` beside the file, emit what follows
 *      them there, then read the live file from 0.
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
 *   are in the older archive); a file truncated and then written past the old offset before
 *   the follower wakes is read again from 0.
 */
import fs from "node:fs";
import path from "node:path";
import { closeQuietly, codeOf, statOrNull } from "./fsutil.ts";

export interface FollowOptions {
  /** Read files that exist now from their start instead of their end (default false). */
  fromStart?: boolean;
  /** Safety re-check interval besides inotify, ms; 0 turns it off (default 1000). */
  pollMs?: number;
  /** Problems other than a missing file (permission denied, …), once per file and kind. */
  onError?: (label: string, message: string) => void;
}

export interface Follower {
  close(): void;
}

const RECENT = 4096;
const READ_CHUNK = 1 << 20;
const MAX_RESYNC_CANDIDATES = 256;
/** Bytes of matching content that identify a resync position beyond doubt. */
const STRONG = 64;
/** Archives beside a file searched for unread bytes after a cut, and how far from their end. */
const ARCHIVES_SEARCHED = 3;
const ARCHIVE_SEARCH_BYTES = 16 << 20;
const DEGRADED_POLL_MS = 100;
/** Delay before looking again at a file that changed while we read it. */
const RETRY_MS = 10;
const MAX_VERIFY_FAILURES = 10;

interface Followed {
  path: string;
  label: string;
  dir: string;
  fd: number | null;
  ino: number;
  dev: number;
  blksize: number;
  offset: number;
  /** Bytes of the line not yet ended by a newline. */
  partial: Buffer;
  /** The last up to RECENT bytes read, ending at `offset`. */
  recent: Buffer;
  watcher: fs.FSWatcher | null;
  lastError: string | null;
  /** A resync found no place for the offset once: the next one decides. */
  unsure: boolean;
}

interface DirWatch {
  /** The folder we want to watch. */
  target: string;
  /** What is watched now: the target, or its nearest existing ancestor. */
  watching: string | null;
  watcher: fs.FSWatcher | null;
  files: Followed[];
}

export function followFiles(
  files: { path: string; label: string }[],
  onLine: (label: string, line: string) => void,
  opts: FollowOptions = {},
): Follower {
  const followed: Followed[] = files.map((f) => ({
    path: path.resolve(f.path),
    label: f.label,
    dir: path.dirname(path.resolve(f.path)),
    fd: null, ino: 0, dev: 0, blksize: 4096, offset: 0,
    partial: Buffer.alloc(0), recent: Buffer.alloc(0),
    watcher: null, lastError: null, unsure: false,
  }));
  const dirs = new Map<string, DirWatch>();
  const dirty = new Set<Followed>();
  let scheduled = false;
  let closed = false;
  let degradedTimer: ReturnType<typeof setInterval> | null = null;
  const timers = new Set<ReturnType<typeof setTimeout>>();

  const report = (f: Followed, message: string) => {
    if (f.lastError === message) return;
    f.lastError = message;
    opts.onError?.(f.label, message);
  };

  const degrade = () => {
    if (degradedTimer || closed) return;
    degradedTimer = setInterval(() => markAll(), DEGRADED_POLL_MS);
  };

  const schedule = () => {
    if (scheduled || closed) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      if (closed) return;
      const batch = [...dirty];
      dirty.clear();
      for (const f of batch) check(f);
    });
  };
  const mark = (f: Followed) => { dirty.add(f); schedule(); };
  const retryLater = (f: Followed) => {
    const t = setTimeout(() => { timers.delete(t); mark(f); }, RETRY_MS);
    timers.add(t);
  };
  const markAll = () => { for (const f of followed) dirty.add(f); schedule(); };

  // ---- emitting lines ----
  const consume = (f: Followed, chunk: Buffer) => {
    f.recent = chunk.length >= RECENT
      ? Buffer.from(chunk.subarray(chunk.length - RECENT))
      : Buffer.concat([f.recent, chunk]).subarray(-RECENT);
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      const line = f.partial.length > 0 ? Buffer.concat([f.partial, piece]) : piece;
      f.partial = Buffer.alloc(0);
      onLine(f.label, line.toString("utf8"));
      start = nl + 1;
    }
    if (start < chunk.length) f.partial = Buffer.concat([f.partial, chunk.subarray(start)]);
  };
  const flushPartial = (f: Followed) => {
    if (f.partial.length > 0) onLine(f.label, f.partial.toString("utf8"));
    f.partial = Buffer.alloc(0);
  };

  const preadExact = (fd: number, pos: number, len: number): Buffer | null => {
    const buf = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const r = fs.readSync(fd, buf, got, len - got, pos + got);
      if (r === 0) return null;
      got += r;
    }
    return buf;
  };

  /** True when the bytes before `pos` in the file are the end of what we read last. */
  const endsWithRecent = (f: Followed, pos: number): boolean => {
    const m = Math.min(f.recent.length, pos);
    if (m === 0) return true;
    const here = preadExact(f.fd!, pos - m, m);
    return here !== null && here.equals(f.recent.subarray(f.recent.length - m));
  };

  /**
   * The front of the file was cut (collapse) or the file was truncated: where to read on.
   * Candidates are the offsets p = offset − r for r a multiple of the block size, largest p
   * that the file can hold first (a follower that keeps up finds its place just below the
   * new size). A candidate with at least STRONG bytes of evidence wins at once; one with
   * fewer (p tiny) only if no other fits.
   */
  const resync = (f: Followed, size: number): number | null => {
    const blk = f.blksize > 0 ? f.blksize : 4096;
    const first = Math.max(blk, Math.ceil((f.offset - size) / blk) * blk);
    const strong = Math.min(f.recent.length, STRONG);
    const weak: number[] = [];
    let tries = 0;
    for (let r = first; r < f.offset && tries < MAX_RESYNC_CANDIDATES; r += blk, tries++) {
      const p = f.offset - r;
      if (Math.min(f.recent.length, p) < strong) { weak.push(p); continue; }
      if (endsWithRecent(f, p)) { f.unsure = false; return p; }
    }
    if (continueFromArchive(f)) { f.unsure = false; return 0; }
    if (!f.unsure) {
      // A read that raced a collapse in progress can fool the checks: look again shortly
      // before deciding that the file was truncated.
      f.unsure = true;
      retryLater(f);
      return null;
    }
    f.unsure = false;
    for (const p of weak) if (endsWithRecent(f, p)) return p;
    // Truncated, rewritten, or collapsed by exactly what we had read: from the start.
    f.recent = Buffer.alloc(0);
    return 0;
  };

  /**
   * When the cut took bytes we had not read yet (a follower that fell behind, or a
   * copy+truncate), they are at the end of the archive the rotation just wrote: find the
   * last bytes we read near the end of the most recently changed `<name>.*` beside the file,
   * and emit what follows them there. The live file is then read from 0.
   */
  const continueFromArchive = (f: Followed): boolean => {
    // Only what the live file held: older bytes of `recent` are in an older archive.
    const needle = f.recent.subarray(f.recent.length - Math.min(f.recent.length, f.offset));
    if (needle.length === 0) return false;
    const base = path.basename(f.path) + ".";
    let names: string[];
    try {
      names = fs.readdirSync(f.dir).filter((n) => n.startsWith(base));
    } catch {
      return false;
    }
    const archives = names
      .map((n) => ({ p: path.join(f.dir, n), st: statOrNull(path.join(f.dir, n)) }))
      .filter((a) => a.st?.isFile())
      .sort((a, b) => b.st!.mtimeMs - a.st!.mtimeMs)
      .slice(0, ARCHIVES_SEARCHED);
    for (const a of archives) {
      let fd: number | null = null;
      try {
        fd = fs.openSync(a.p, "r");
        const size = fs.fstatSync(fd).size;
        const from = Math.max(0, size - ARCHIVE_SEARCH_BYTES);
        const tail = preadExact(fd, from, size - from);
        const at = tail?.lastIndexOf(needle) ?? -1;
        if (tail && at >= 0) {
          const rest = tail.subarray(at + needle.length);
          if (rest.length > 0) consume(f, Buffer.from(rest));
          return true;
        }
      } catch {
        // gone or unreadable: try the next
      } finally {
        closeQuietly(fd);
      }
    }
    return false;
  };

  /**
   * Reads what the file has beyond the offset. Each chunk is read, then read again together
   * with the bytes before it: a buffered read that raced a collapse can return bytes of the
   * old layout, of the new one, or of both; only a chunk found twice, in place after what we
   * read last, is emitted. Otherwise the offset is checked again (and resynchronised).
   */
  const readAvailable = (f: Followed) => {
    const fd = f.fd!;
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    for (let failures = 0; failures < MAX_VERIFY_FAILURES;) {
      const st = fs.fstatSync(fd);
      f.blksize = st.blksize;
      if (st.size < f.offset || !endsWithRecent(f, f.offset)) {
        const p = resync(f, st.size);
        if (p === null) return; // looked at again shortly
        f.offset = p;
      }
      const got = fs.readSync(fd, buf, 0, READ_CHUNK, f.offset);
      if (got === 0) return;
      const chunk = Buffer.from(buf.subarray(0, got));
      if (!stillInPlace(f, chunk)) {
        failures++;
        continue;
      }
      f.offset += got;
      consume(f, chunk);
    }
    retryLater(f); // the file kept changing under us
  };

  /** True when the file holds what we read last followed by `chunk`, at the offset. */
  const stillInPlace = (f: Followed, chunk: Buffer): boolean => {
    const m = Math.min(f.recent.length, f.offset);
    const again = preadExact(f.fd!, f.offset - m, m + chunk.length);
    return again !== null
      && again.subarray(0, m).equals(f.recent.subarray(f.recent.length - m))
      && again.subarray(m).equals(chunk);
  };

  const closeFile = (f: Followed) => {
    try { f.watcher?.close(); } catch { /* already closed */ }
    f.watcher = null;
    closeQuietly(f.fd);
    f.fd = null;
  };

  const openFile = (f: Followed, atEnd: boolean): boolean => {
    let fd: number;
    try {
      fd = fs.openSync(f.path, "r");
    } catch (e) {
      if (codeOf(e) !== "ENOENT" && codeOf(e) !== "ENOTDIR") report(f, `cannot open ${f.path}: ${(e as Error).message}`);
      return false;
    }
    const st = fs.fstatSync(fd);
    f.fd = fd;
    f.ino = st.ino;
    f.dev = st.dev;
    f.blksize = st.blksize;
    f.lastError = null;
    f.offset = atEnd ? st.size : 0;
    const seed = Math.min(RECENT, f.offset);
    f.recent = seed > 0 ? preadExact(fd, f.offset - seed, seed) ?? Buffer.alloc(0) : Buffer.alloc(0);
    try {
      f.watcher = fs.watch(f.path, { persistent: true }, () => mark(f));
      f.watcher.on("error", () => { try { f.watcher?.close(); } catch { /* */ } f.watcher = null; });
    } catch {
      f.watcher = null; // the folder's watch still sees it
    }
    return true;
  };

  const check = (f: Followed) => {
    try {
      const st = statOrNull(f.path);
      if (f.fd !== null) {
        const own = fs.fstatSync(f.fd);
        const replaced = !st || st.ino !== f.ino || st.dev !== f.dev || own.nlink === 0;
        readAvailable(f); // whatever the old file still had
        if (!replaced) return;
        flushPartial(f);
        closeFile(f);
      }
      if (statOrNull(f.path) && openFile(f, false)) readAvailable(f);
    } catch (e) {
      report(f, `${f.path}: ${(e as Error).message}`);
    }
  };

  // ---- folder watches ----
  const nearestExisting = (dir: string): string => {
    let d = dir;
    for (;;) {
      const st = statOrNull(d);
      if (st?.isDirectory()) return d;
      const up = path.dirname(d);
      if (up === d) return d;
      d = up;
    }
  };
  const setupDir = (w: DirWatch) => {
    if (closed) return;
    const want = nearestExisting(w.target);
    if (want === w.watching && w.watcher) return;
    try { w.watcher?.close(); } catch { /* */ }
    w.watcher = null;
    w.watching = want;
    try {
      const watcher = fs.watch(want, { persistent: true }, (_ev, name) => {
        if (w.watching !== w.target) {
          setupDir(w); // a folder on the way may have appeared
          for (const f of w.files) mark(f);
          return;
        }
        const base = typeof name === "string" ? name : null;
        for (const f of w.files) if (base === null || path.basename(f.path) === base) mark(f);
      });
      watcher.on("error", () => {
        try { watcher.close(); } catch { /* */ }
        if (w.watcher === watcher) { w.watcher = null; w.watching = null; }
        degrade();
      });
      w.watcher = watcher;
    } catch {
      degrade();
    }
    // Anything created before the watch existed.
    for (const f of w.files) mark(f);
  };

  for (const f of followed) {
    let w = dirs.get(f.dir);
    if (!w) {
      w = { target: f.dir, watching: null, watcher: null, files: [] };
      dirs.set(f.dir, w);
    }
    w.files.push(f);
  }
  // Open what exists now at its end (or start), before any watch fires.
  for (const f of followed) {
    try {
      if (statOrNull(f.path)) openFile(f, !opts.fromStart);
    } catch (e) {
      report(f, `${f.path}: ${(e as Error).message}`);
    }
  }
  for (const w of dirs.values()) setupDir(w);
  if (opts.fromStart) markAll();

  const pollMs = opts.pollMs ?? 1000;
  const pollTimer = pollMs > 0 ? setInterval(() => {
    for (const w of dirs.values()) if (w.watching !== w.target || !w.watcher) setupDir(w);
    markAll();
  }, pollMs) : null;

  return {
    close() {
      if (closed) return;
      closed = true;
      if (pollTimer) clearInterval(pollTimer);
      if (degradedTimer) clearInterval(degradedTimer);
      for (const t of timers) clearTimeout(t);
      for (const w of dirs.values()) { try { w.watcher?.close(); } catch { /* */ } }
      for (const f of followed) closeFile(f);
    },
  };
}
