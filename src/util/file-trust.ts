/**
 * Who can change a file or a folder, judged from ownership and mode along its whole path. A
 * root daemon trusts a file only when nobody but the trusted uids (root, and where it makes
 * sense the service's user) could change what it reads there: not the file, not a folder on
 * the way to it (or to what a symlink points at), which others could use to swap entries.
 * Folders with the sticky bit pass as ancestors (in /tmp others cannot rename or delete our
 * entries) but not as the folder a file lives in (others can create its name first).
 */
import { realpathSync, statSync, type Stats } from "node:fs";
import { dirname } from "node:path";
import { errorMessage } from "./errors.ts";

/** Names a uid for messages, e.g. `uid 65534 (nobody)`. */
export type UidNamer = (uid: number) => string;
const plainUid: UidNamer = (uid) => `uid ${uid}`;

export const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, "0");

/**
 * Why `file` (followed through symlinks) could be changed by someone other than `trusted`, or
 * null when it cannot. `what` names it in messages ("" for the file's own path).
 */
export function untrustedFileReason(file: string, trusted: ReadonlySet<number>, nameOf: UidNamer = plainUid, known: KnownPaths = {}): string | null {
  let real: string;
  if (known.real !== undefined) real = known.real;
  else try { real = realpathSync(file); } catch (e) { return `cannot be resolved: ${errorMessage(e)}`; }
  const st = statSync(real);
  const what = real === file ? file : `${file} (-> ${real})`;
  if (!trusted.has(st.uid)) return `${what} is owned by ${nameOf(st.uid)}`;
  if (st.mode & 0o002) return `${what} is writable by everyone (mode ${octal(st.mode)})`;
  if (st.mode & 0o020) return `${what} is writable by its group, gid ${st.gid} (mode ${octal(st.mode)})`;
  return untrustedAncestorReason([...ancestors(file), ...ancestors(real)], trusted, nameOf, known.folders);
}

/**
 * What a caller checking many files at once already knows: the file's real path, and the verdict
 * on each folder seen so far (for one `trusted` set; keep it for one scan only). A boot of 5000
 * service files stat'ed the same five folders for every file (issue 15).
 */
export interface KnownPaths { real?: string; folders?: Map<string, string | null> }

/**
 * Why files in folder `dir` could be created, replaced or pre-empted by someone other than
 * `trusted` (the folder itself must be theirs and writable by no one else, sticky or not), or null.
 */
export function untrustedFolderReason(dir: string, trusted: ReadonlySet<number>, nameOf: UidNamer = plainUid): string | null {
  let real: string;
  try { real = realpathSync(dir); } catch (e) { return `${dir} cannot be resolved: ${errorMessage(e)}`; }
  let st: Stats;
  try { st = statSync(real); } catch (e) { return `${dir} cannot be read: ${errorMessage(e)}`; }
  const what = real === dir ? dir : `${dir} (-> ${real})`;
  if (!trusted.has(st.uid)) return `the folder ${what} is owned by ${nameOf(st.uid)}`;
  if (st.mode & 0o022) return `the folder ${what} is writable by ${st.mode & 0o002 ? "everyone" : `its group, gid ${st.gid}`} (mode ${octal(st.mode)})`;
  return untrustedAncestorReason([...ancestors(dir), ...ancestors(real)], trusted, nameOf);
}

function untrustedAncestorReason(dirs: string[], trusted: ReadonlySet<number>, nameOf: UidNamer, folders?: Map<string, string | null>): string | null {
  for (const dir of new Set(dirs)) {
    let why = folders?.get(dir);
    if (why === undefined) { why = ancestorReason(dir, trusted, nameOf); folders?.set(dir, why); }
    if (why !== null) return why;
  }
  return null;
}

function ancestorReason(dir: string, trusted: ReadonlySet<number>, nameOf: UidNamer): string | null {
  let ds: Stats;
  try { ds = statSync(dir); } catch { return null; }
  if (!trusted.has(ds.uid)) return `its folder ${dir} is owned by ${nameOf(ds.uid)}`;
  const sticky = (ds.mode & 0o1000) !== 0;
  if (!sticky && ds.mode & 0o002) return `its folder ${dir} is writable by everyone (mode ${octal(ds.mode)})`;
  if (!sticky && ds.mode & 0o020) return `its folder ${dir} is writable by its group, gid ${ds.gid} (mode ${octal(ds.mode)})`;
  return null;
}

export function ancestors(file: string): string[] {
  const out: string[] = [];
  for (let d = dirname(file); ; d = dirname(d)) { out.push(d); if (d === dirname(d)) break; }
  return out;
}

/** Root and this process's uid: whom a daemon trusts with its own files. */
export function selfTrusted(): Set<number> {
  return new Set([0, process.getuid?.() ?? 0]);
}
