/**
 * `tail -F` for several files at once (`pmctl logs -f`): starts at the current end of each
 * file, prints every complete line as it arrives, and keeps following a file by name across
 * rotation (collapse or copy+truncate), truncation, deletion and recreation, and files that
 * do not exist yet.
 *
 * Wake-ups come from inotify (fs.watch) on each file and on its folder (the folder's watch
 * sees the file created again after a deletion; while the folder itself is missing, its
 * nearest existing ancestor is watched). Bun's fs.watch drops an event that comes within about
 * 2 ms of the previous one, so each file is looked at once more 15 ms after its last event.
 * An idle follower wakes only when a followed file or its folder changes (issue 15): no timer
 * runs, and while a folder is missing only the creation of the next folder on its path wakes it,
 * not other activity in the ancestor (e.g. /tmp). `pollMs` adds a periodic re-check for file
 * systems whose changes inotify cannot see (network file systems; off by default); 100 ms
 * polling starts by itself when a watch cannot be set up (e.g. the inotify watch limit).
 *
 * How the read offset survives rotation, truncation and replacement: see resync.ts.
 */
import fs from "node:fs";
import path from "node:path";
import { closeQuietly, codeOf, openForReading, statOrNull } from "./fsutil.ts";
import { RECENT, endsWith, findCollapsePlace, preadExact, unreadFromArchive } from "./resync.ts";

export interface FollowOptions {
  /** Read files that exist now from their start instead of their end (default false). */
  fromStart?: boolean;
  /** Periodic re-check besides inotify, ms (for network file systems); default 0: none. */
  pollMs?: number;
  /** Problems other than a missing file (permission denied, …), once per file and kind. */
  onError?: (label: string, message: string) => void;
}

export interface Follower {
  close(): void;
  /** How many times a file was looked at so far (tests check that idleness costs nothing). */
  readonly checks: number;
}

const READ_CHUNK = 1 << 20;
const DEGRADED_POLL_MS = 100;
/**
 * Bun's fs.watch drops an inotify event that comes within about 2 ms of the one it just
 * delivered, so a file is looked at once more this long after its last event (and after
 * every look that found something), which catches writes that fell in that blind spot.
 * Idle files cost nothing.
 */
const TRAILING_MS = 15;
/** Delay before looking again at a file that changed while we read it. */
const RETRY_MS = 10;
const MAX_VERIFY_FAILURES = 10;
/** A line longer than this is emitted in pieces (a file without newlines must not grow memory). */
const MAX_LINE = 1 << 20;

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
  /** The look after the last wake-up (see TRAILING_MS). */
  trailing: ReturnType<typeof setTimeout> | null;
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
    watcher: null, lastError: null, unsure: false, trailing: null,
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
      for (const f of batch) if (check(f)) armTrailing(f);
    });
  };
  const mark = (f: Followed) => { dirty.add(f); schedule(); };
  const retryLater = (f: Followed) => {
    const t = setTimeout(() => { timers.delete(t); mark(f); }, RETRY_MS);
    timers.add(t);
  };
  const markAll = () => { for (const f of followed) dirty.add(f); schedule(); };
  const armTrailing = (f: Followed) => {
    if (closed) return;
    if (f.trailing) clearTimeout(f.trailing);
    f.trailing = setTimeout(() => { f.trailing = null; mark(f); }, TRAILING_MS);
  };
  /** An inotify event about `f`: look now, and once more shortly after the last one. */
  const onEvent = (f: Followed) => { mark(f); armTrailing(f); };

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
    if (f.partial.length > MAX_LINE) flushPartial(f); // no newline in sight: show it anyway
  };
  const flushPartial = (f: Followed) => {
    if (f.partial.length > 0) onLine(f.label, f.partial.toString("utf8"));
    f.partial = Buffer.alloc(0);
  };

  /** True when the bytes before `pos` in the file are the end of what we read last. */
  const endsWithRecent = (f: Followed, pos: number): boolean => endsWith(f.fd!, pos, f.recent);

  /**
   * The bytes before the offset changed: the front was cut (collapse), or the file was
   * truncated or rewritten. Where to read on, or null when it is too early to decide (a
   * check is then scheduled). The steps are described in resync.ts.
   */
  const resync = (f: Followed, size: number): number | null => {
    const place = findCollapsePlace(f.fd!, f.offset, size, f.blksize, f.recent);
    if (place.sure !== null) { f.unsure = false; return place.sure; }
    const unread = unreadFromArchive(f.path, f.offset, f.recent);
    if (unread !== null) {
      f.unsure = false;
      if (unread.length > 0) consume(f, unread);
      return 0;
    }
    if (!f.unsure) {
      f.unsure = true;
      retryLater(f);
      return null;
    }
    f.unsure = false;
    for (const p of place.weak) if (endsWithRecent(f, p)) return p;
    f.recent = Buffer.alloc(0); // truncated or rewritten: from the start
    return 0;
  };

  /**
   * Reads what the file has beyond the offset. Each chunk is read, then read again together
   * with the bytes before it: a buffered read that raced a collapse can return bytes of the
   * old layout, of the new one, or of both; only a chunk found twice, in place after what we
   * read last, is emitted. Otherwise the offset is checked again (and resynchronised).
   */
  const readAvailable = (f: Followed): number => {
    const fd = f.fd!;
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    let consumed = 0;
    for (let failures = 0; failures < MAX_VERIFY_FAILURES;) {
      const st = fs.fstatSync(fd);
      f.blksize = st.blksize;
      if (st.size < f.offset || !endsWithRecent(f, f.offset)) {
        const p = resync(f, st.size);
        if (p === null) return consumed; // looked at again shortly
        f.offset = p;
      }
      const got = fs.readSync(fd, buf, 0, READ_CHUNK, f.offset);
      if (got === 0) return consumed;
      const chunk = Buffer.from(buf.subarray(0, got));
      if (!stillInPlace(f, chunk)) {
        failures++;
        continue;
      }
      f.offset += got;
      consumed += got;
      consume(f, chunk);
    }
    retryLater(f); // the file kept changing under us
    return consumed;
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
      fd = openForReading(f.path);
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
      f.watcher = fs.watch(f.path, { persistent: true }, () => onEvent(f));
      f.watcher.on("error", () => { try { f.watcher?.close(); } catch { /* */ } f.watcher = null; });
    } catch {
      f.watcher = null; // the folder's watch still sees it
    }
    return true;
  };

  /** Brings `f` up to date; true when it read something. */
  let checks = 0;
  const check = (f: Followed): boolean => {
    checks++;
    let consumed = 0;
    try {
      const st = statOrNull(f.path);
      if (f.fd !== null) {
        const own = fs.fstatSync(f.fd);
        const replaced = !st || st.ino !== f.ino || st.dev !== f.dev || own.nlink === 0;
        consumed += readAvailable(f); // whatever the old file still had
        if (!replaced) return consumed > 0;
        flushPartial(f);
        closeFile(f);
      }
      if (statOrNull(f.path) && openFile(f, false)) consumed += readAvailable(f) + 1;
    } catch (e) {
      report(f, `${f.path}: ${(e as Error).message}`);
    }
    return consumed > 0;
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
        if (w.watcher !== watcher) return; // replaced
        const base = typeof name === "string" ? name : null;
        if (w.watching !== w.target) {
          // Watching an ancestor: only the next folder on the way to the target matters.
          const next = path.relative(want, w.target).split(path.sep)[0];
          if (base !== null && base !== next) return;
          setupDir(w); // it may have appeared
          for (const f of w.files) onEvent(f);
          return;
        }
        // The folder itself was deleted (or renamed): watch its nearest existing ancestor.
        if (base === path.basename(w.target) && !statOrNull(w.target)?.isDirectory()) setupDir(w);
        for (const f of w.files) if (base === null || path.basename(f.path) === base) onEvent(f);
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
    // A folder on the way made before this watch existed sends it no event: look again.
    if (w.watcher && want !== w.target && nearestExisting(w.target) !== want) { setupDir(w); return; }
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

  const pollMs = opts.pollMs ?? 0;
  const pollTimer = pollMs > 0 ? setInterval(() => {
    for (const w of dirs.values()) if (w.watching !== w.target || !w.watcher) setupDir(w);
    markAll();
  }, pollMs) : null;

  return {
    get checks() { return checks; },
    close() {
      if (closed) return;
      closed = true;
      if (pollTimer) clearInterval(pollTimer);
      if (degradedTimer) clearInterval(degradedTimer);
      for (const t of timers) clearTimeout(t);
      for (const w of dirs.values()) { try { w.watcher?.close(); } catch { /* */ } }
      for (const f of followed) {
        if (f.trailing) clearTimeout(f.trailing);
        closeFile(f);
      }
    },
  };
}
