/**
 * After boot the daemon gives back the pages of its own executable it mapped while booting.
 * About 42 MB of a booted daemon's RSS were file pages of the executable (the Bun runtime and the
 * embedded code: config parsing, YAML, the boot path), touched once and kept mapped, while an
 * idle daemon with 200 services touches ~4 MB of them again (issue 15, measured with this
 * module: RssFile 47.9 → 10.7 MB right after, 14.7 MB two seconds later).
 *
 * madvise(MADV_DONTNEED) on a private file mapping only removes our page-table entries: the
 * pages stay in the page cache (shared with every pmctl, nothing is read from disk again), and
 * a later access maps them back with a minor fault. That is only lossless where the mapping holds
 * no private copy-on-write page, so only read-only mappings of the executable whose smaps entry
 * counts no anonymous page are released; writable ones (data, relocations) are never touched.
 */
import { readFileSync, readlinkSync } from "node:fs";
import { madvise, MADV_DONTNEED } from "../linux/ffi.ts";

export interface Region { start: number; end: number }

/** The mappings of `exe` in /proc/self/smaps text that can be dropped and read back from the file. */
export function releasableRegions(smaps: string, exe: string): Region[] {
  const out: Region[] = [];
  let cur: { start: number; end: number; ok: boolean } | null = null;
  const close = () => { if (cur?.ok) out.push({ start: cur.start, end: cur.end }); cur = null; };
  for (const line of smaps.split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) ([-r][-w][-x][ps]) [0-9a-f]+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      close();
      // Private, never writable, and backed by the executable as it is (not a replaced file).
      const ok = head[4] === exe && head[3]![1] === "-" && head[3]![3] === "p";
      cur = { start: parseInt(head[1]!, 16), end: parseInt(head[2]!, 16), ok };
      continue;
    }
    const anon = /^Anonymous:\s+(\d+) kB/.exec(line);
    if (anon && cur && Number(anon[1]) !== 0) cur.ok = false; // a private copy: dropping it would lose it
  }
  close();
  return out;
}

/** Drops this process's mappings of its executable's pages (see above); returns how many bytes of address range. */
export function releaseExecutablePages(): number {
  const exe = readlinkSync("/proc/self/exe");
  if (exe.endsWith(" (deleted)")) return 0;
  let bytes = 0;
  for (const r of releasableRegions(readFileSync("/proc/self/smaps", "utf8"), exe)) {
    madvise(r.start, r.end - r.start, MADV_DONTNEED);
    bytes += r.end - r.start;
  }
  return bytes;
}
