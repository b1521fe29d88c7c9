/**
 * Interface files of service cgroups kept open and re-read with pread at offset 0: one system
 * call per read instead of open + read + read + close, and no path walk. `status` of 1000
 * services read cgroup.procs and cpu.stat of every service on every call, and every exit reads
 * cgroup.events (issue 15).
 *
 * Nothing is cached but the open file: every read asks the kernel again (cgroupfs files are
 * generated on each read from offset 0), so a PID list or a CPU counter is never older than the
 * call that reads it. A cgroup removed and made again (a start after a kill makes a fresh one) leaves
 * the old fd answering ENODEV: the owner drops the handles when it removes the cgroup, and a
 * read that meets ENODEV anyway reopens by path once.
 *
 * Open fds are bounded: past `maxFds` (a quarter of RLIMIT_NOFILE, leaving the rest to pidfds,
 * log files, sockets), files are read by path as before.
 */
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { join } from "node:path";

export type LiveFile = "cgroup.procs" | "cpu.stat" | "cgroup.events";

/**
 * cgroupfs files are seq_files: one read returns one buffer-full (a page, at least 4 KiB) of
 * whole lines, or all that is left. A read that returns less than half a page is therefore
 * the end; the read at the end offset is skipped, since the kernel generates the whole file again
 * to find that offset (half the pread time of a `status` of 1000 services, issue 15).
 * test/cgroup-live-reads.test.ts reads a cgroup.procs of several pages.
 */
const SEQ_SHORT_READ = 2048;
const SEQ_PAGE = 4096;

/** Soft RLIMIT_NOFILE from /proc/self/limits; 1024 when unreadable. */
function openFileLimit(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    if (m) return m[1] === "unlimited" ? 1 << 20 : Number(m[1]);
  } catch { /* not Linux procfs */ }
  return 1024;
}

export class LiveFiles {
  /** fds by cgroup folder, then by file name. */
  private readonly open = new Map<string, Map<LiveFile, number>>();
  private count = 0;
  private buf = Buffer.allocUnsafe(16 << 10);

  constructor(readonly maxFds = Math.floor(openFileLimit() / 4)) {}

  /**
   * The file's current content, or null when it cannot be read (cgroup gone). With `keep` false
   * a file not open yet is read by path and not kept open (see CgroupTree.populated).
   */
  read(dir: string, file: LiveFile, keep = true): string | null {
    let fds = this.open.get(dir);
    let fd = fds?.get(file);
    for (let attempt = 0; attempt < 2; attempt++) {
      if (fd === undefined) {
        if (!keep || this.count >= this.maxFds) return readByPath(join(dir, file));
        try { fd = openSync(join(dir, file), "r"); } catch { return null; }
        if (!fds) this.open.set(dir, (fds = new Map()));
        fds.set(file, fd);
        this.count++;
      }
      try { return this.pread(fd); } catch {
        // ENODEV: the cgroup this fd belonged to was removed (perhaps made again since).
        this.closeOne(dir, file);
        fd = undefined;
      }
    }
    return null;
  }

  /** Closes every file kept for this cgroup folder (before it is removed or made again). */
  forget(dir: string): void {
    const fds = this.open.get(dir);
    if (!fds) return;
    for (const fd of fds.values()) { try { closeSync(fd); } catch { /* already closed */ } }
    this.count -= fds.size;
    this.open.delete(dir);
  }

  /** How many fds are open now (tests check that removal closes them). */
  get openCount(): number { return this.count; }

  private closeOne(dir: string, file: LiveFile) {
    const fds = this.open.get(dir);
    const fd = fds?.get(file);
    if (fd === undefined) return;
    try { closeSync(fd); } catch { /* already closed */ }
    fds!.delete(file);
    this.count--;
    if (fds!.size === 0) this.open.delete(dir);
  }

  /** Whole file from offset 0; the buffer grows for a long cgroup.procs. */
  private pread(fd: number): string {
    let n = 0;
    for (;;) {
      // Every read asks for at least a page: only then is a short answer the end (a smaller
      // request near the buffer's end would be answered short and cut the file, mid-PID).
      if (this.buf.length - n < SEQ_PAGE) {
        const bigger = Buffer.allocUnsafe(this.buf.length * 2);
        this.buf.copy(bigger, 0, 0, n);
        this.buf = bigger;
      }
      const got = readSync(fd, this.buf, n, this.buf.length - n, n);
      if (got === 0) break;
      n += got;
      if (got < SEQ_SHORT_READ) break;
    }
    return this.buf.toString("latin1", 0, n);
  }
}

function readByPath(path: string): string | null {
  try { return readFileSync(path, "latin1"); } catch { return null; }
}
