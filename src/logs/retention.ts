/**
 * Archives beside a live log: finding them, deleting the expired ones (time mode, by mtime)
 * and shifting numbered backups (size mode). Everything goes through the log folder's verified
 * fd (safe-dir.ts): names are listed from the fd, stat'ed without following symlinks, and
 * renamed or deleted with renameat/unlinkat relative to it, so a folder swapped for a symlink
 * or an archive name that is a symlink never makes the daemon touch a file elsewhere.
 */
import { ERRNO } from "../linux/ffi.ts";
import { PmError } from "../util/errors.ts";
import { errnoOf } from "./fsutil.ts";
import { backupNumber, isTimeArchiveName } from "./period.ts";
import type { LogDir } from "./safe-dir.ts";

/** The names of the time-rotation archives of the log `base` (`<base>.<period key>`), oldest first. */
export function listTimeArchives(dir: LogDir, base: string): string[] {
  return dir.list().filter((name) => isTimeArchiveName(base, name)).sort();
}

/**
 * Deletes the time-rotation archives of the log `base` whose mtime is more than `maxAgeMs`
 * before `nowMs`; returns the paths deleted and when the next of those kept expires (wall ms,
 * Infinity when none will: the rotator need not look before then). Only regular files owned by
 * one of `owners` (when given) are deleted: a symlink, a folder, or another user's file that
 * happens to carry an archive's name (in a shared sticky folder, say) is left alone.
 * `maxAgeMs <= 0` keeps everything.
 */
export function deleteExpiredArchives(dir: LogDir, base: string, maxAgeMs: number, nowMs: number, owners?: Set<number>): { deleted: string[]; nextExpiryMs: number } {
  const deleted: string[] = [];
  let nextExpiryMs = Infinity;
  if (!(maxAgeMs > 0)) return { deleted, nextExpiryMs };
  for (const name of listTimeArchives(dir, base)) {
    const st = dir.entry(name);
    if (!st?.isFile() || (owners && !owners.has(st.uid))) continue;
    if (nowMs - st.mtimeMs > maxAgeMs) {
      try {
        dir.unlink(name); // the entry itself: had it been swapped for a symlink meanwhile, only the link goes
        deleted.push(dir.at(name));
      } catch (e) {
        if (errnoOf(e) !== ERRNO.ENOENT) throw e;
      }
    } else {
      nextExpiryMs = Math.min(nextExpiryMs, st.mtimeMs + maxAgeMs + 1);
    }
  }
  return { deleted, nextExpiryMs };
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
 * Returns the paths deleted. With `keep` 0 every backup is deleted. With `owners`, a backup
 * that is not a regular file owned by one of them stops the shift before anything moves (root
 * renaming over or deleting another user's file in a shared folder is what that user could
 * not do).
 */
export function shiftBackups(dir: LogDir, base: string, keep: number, owners?: Set<number>): string[] {
  const deleted: string[] = [];
  const backups = listBackups(dir, base);
  if (owners) {
    for (const b of backups) {
      const st = dir.entry(b.name);
      if (st && (!st.isFile() || !owners.has(st.uid))) {
        throw new PmError("LOGS", `${dir.at(b.name)} is ${st.isFile() ? `owned by uid ${st.uid}` : "not a regular file"}; backups not shifted`);
      }
    }
  }
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
