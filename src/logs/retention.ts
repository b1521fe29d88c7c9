/**
 * Archives beside a live log: finding them, deleting the expired ones (time mode, by mtime)
 * and shifting numbered backups (size mode). Everything goes through the log folder's verified
 * fd (safe-dir.ts): names are listed from the fd, stat'ed without following symlinks, and
 * renamed or deleted with renameat/unlinkat relative to it, so a folder swapped for a symlink
 * or an archive name that is a symlink never makes the daemon touch a file elsewhere.
 */
import { ERRNO } from "../linux/ffi.ts";
import { errnoOf } from "./fsutil.ts";
import { backupNumber, isTimeArchiveName } from "./period.ts";
import type { LogDir } from "./safe-dir.ts";

/** The names of the time-rotation archives of the log `base` (`<base>.<period key>`), oldest first. */
export function listTimeArchives(dir: LogDir, base: string): string[] {
  return dir.list().filter((name) => isTimeArchiveName(base, name)).sort();
}

/**
 * Deletes the time-rotation archives of the log `base` whose mtime is more than `maxAgeMs`
 * before `nowMs`; returns the paths deleted. Only regular files are deleted (a symlink or a
 * folder that happens to carry an archive's name is left alone). `maxAgeMs <= 0` keeps everything.
 */
export function deleteExpiredArchives(dir: LogDir, base: string, maxAgeMs: number, nowMs: number): string[] {
  if (!(maxAgeMs > 0)) return [];
  const deleted: string[] = [];
  for (const name of listTimeArchives(dir, base)) {
    const st = dir.entry(name);
    if (!st?.isFile()) continue;
    if (nowMs - st.mtimeMs > maxAgeMs) {
      try {
        dir.unlink(name); // the entry itself: had it been swapped for a symlink meanwhile, only the link goes
        deleted.push(dir.at(name));
      } catch (e) {
        if (errnoOf(e) !== ERRNO.ENOENT) throw e;
      }
    }
  }
  return deleted;
}

/** The numbered backups of the log `base` (`<base>.1`, `<base>.2`, …) that exist, by number ascending. */
export function listBackups(dir: LogDir, base: string): { n: number; name: string }[] {
  const out: { n: number; name: string }[] = [];
  for (const name of dir.list()) {
    const n = backupNumber(base, name);
    if (n !== null) out.push({ n, name });
  }
  return out.sort((a, b) => a.n - b.n);
}

/**
 * Makes room for a new `<base>.1`: every `<base>.N` becomes `<base>.N+1`, newest last so no
 * rename overwrites a file not yet moved, and those that would end beyond `keep` are deleted.
 * Returns the paths deleted. With `keep` 0 every backup is deleted.
 */
export function shiftBackups(dir: LogDir, base: string, keep: number): string[] {
  const deleted: string[] = [];
  const backups = listBackups(dir, base);
  for (let i = backups.length - 1; i >= 0; i--) {
    const b = backups[i]!;
    if (b.n + 1 > keep) {
      try {
        dir.unlink(b.name);
        deleted.push(dir.at(b.name));
      } catch (e) {
        if (errnoOf(e) !== ERRNO.ENOENT) throw e;
      }
    } else {
      dir.rename(b.name, `${base}.${b.n + 1}`);
    }
  }
  return deleted;
}
