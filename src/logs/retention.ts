/**
 * Archives beside a live log: finding them, deleting the expired ones (time mode, by mtime)
 * and shifting numbered backups (size mode).
 */
import fs from "node:fs";
import path from "node:path";
import { backupNumber, isTimeArchiveName } from "./period.ts";
import { codeOf } from "./fsutil.ts";

function readDirOrEmpty(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch (e) {
    if (codeOf(e) === "ENOENT" || codeOf(e) === "ENOTDIR") return [];
    throw e;
  }
}

/**
 * The names in each folder, read once per rotation check: with one log folder shared by N
 * services, listing it once per file cost N² directory entries a minute (issue 6, idle cost).
 */
export type DirListing = Map<string, string[]>;

function listDir(dir: string, listing?: DirListing): string[] {
  if (!listing) return readDirOrEmpty(dir);
  let names = listing.get(dir);
  if (!names) { names = readDirOrEmpty(dir); listing.set(dir, names); }
  return names;
}

/** The time-rotation archives of `file` (`<file>.<period key>`), oldest name first. */
export function listTimeArchives(file: string, listing?: DirListing): string[] {
  const dir = path.dirname(file);
  const base = path.basename(file);
  return listDir(dir, listing)
    .filter((name) => isTimeArchiveName(base, name))
    .sort()
    .map((name) => path.join(dir, name));
}

/**
 * Deletes the time-rotation archives of `file` whose mtime is more than `maxAgeMs` before
 * `nowMs`; returns the paths deleted. Only regular files are touched (a symlink that happens
 * to carry an archive's name is left alone). `maxAgeMs <= 0` keeps everything.
 */
export function deleteExpiredArchives(file: string, maxAgeMs: number, nowMs: number, listing?: DirListing): string[] {
  if (!(maxAgeMs > 0)) return [];
  const deleted: string[] = [];
  for (const archive of listTimeArchives(file, listing)) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(archive);
    } catch {
      continue; // gone meanwhile
    }
    if (!st.isFile()) continue;
    if (nowMs - st.mtimeMs > maxAgeMs) {
      try {
        fs.unlinkSync(archive);
        deleted.push(archive);
      } catch (e) {
        if (codeOf(e) !== "ENOENT") throw e;
      }
    }
  }
  return deleted;
}

/** The numbered backups of `file` (`<file>.1`, `<file>.2`, …) that exist, by number ascending. */
export function listBackups(file: string): { n: number; path: string }[] {
  const dir = path.dirname(file);
  const base = path.basename(file);
  const out: { n: number; path: string }[] = [];
  for (const name of readDirOrEmpty(dir)) {
    const n = backupNumber(base, name);
    if (n !== null) out.push({ n, path: path.join(dir, name) });
  }
  return out.sort((a, b) => a.n - b.n);
}

/**
 * Makes room for a new `<file>.1`: every `<file>.N` becomes `<file>.N+1`, newest last so no
 * rename overwrites a file not yet moved, and those that would end beyond `keep` are deleted.
 * Returns the paths deleted. With `keep` 0 every backup is deleted.
 */
export function shiftBackups(file: string, keep: number): string[] {
  const deleted: string[] = [];
  const backups = listBackups(file);
  for (let i = backups.length - 1; i >= 0; i--) {
    const b = backups[i]!;
    if (b.n + 1 > keep) {
      try {
        fs.unlinkSync(b.path);
        deleted.push(b.path);
      } catch (e) {
        if (codeOf(e) !== "ENOENT") throw e;
      }
    } else {
      fs.renameSync(b.path, `${file}.${b.n + 1}`);
    }
  }
  return deleted;
}
