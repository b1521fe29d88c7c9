/**
 * Who can change a file or a folder, judged from ownership and mode of everything the kernel
 * passes through to reach it (path-walk.ts). A root daemon trusts a file only when nobody but
 * the trusted uids (root, and where it makes sense the service's user) could change what it
 * reads there: not the file, not a folder a name is looked up in on the way, including the
 * folders that hold each symlink of a chain, which others could use to swap entries or re-point
 * a hop. Folders with the sticky bit pass as folders on the way (in /tmp others cannot rename or
 * delete our entries; a symlink there must then be ours too, since its owner can replace it) but
 * not as the folder a missing file would be created in (others can create its name first).
 */
import { type Stats } from "node:fs";
import { kernelPath, parentOf, walkPath, type PathWalk } from "./path-walk.ts";
import { errorMessage } from "./errors.ts";

/** Names a uid for messages, e.g. `uid 65534 (nobody)`. */
export type UidNamer = (uid: number) => string;
const plainUid: UidNamer = (uid) => `uid ${uid}`;

export const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, "0");

/**
 * Why `file` (followed through symlinks) could be changed by someone other than `trusted`, or
 * null when it cannot. With `missing: "judge-folder"` a file that does not exist (a dangling
 * symlink included) is judged by the folder where the kernel would look for it: whoever can
 * create it there decides what is read.
 */
export function untrustedFileReason(
  file: string, trusted: ReadonlySet<number>, nameOf: UidNamer = plainUid, opts: { missing?: "judge-folder" } = {},
): string | null {
  let walk: PathWalk;
  try { walk = walkPath(kernelPath(process.cwd(), file)); } catch (e) { return `cannot be resolved: ${errorMessage(e)}`; }
  const { real, st } = walk;
  const what = real === file ? file : `${file} (-> ${real})`;
  if (st === null) {
    if (opts.missing !== "judge-folder") return `cannot be resolved: ${what} does not exist`;
    const dir = parentOf(real);
    const ds = walk.lookups.get(dir)!;
    const why = untrustedFolderStat(dir, ds, trusted, nameOf);
    if (why) return `${what} does not exist, and ${why}`;
  } else {
    if (!trusted.has(st.uid)) return `${what} is owned by ${nameOf(st.uid)}`;
    if (st.mode & 0o002) return `${what} is writable by everyone (mode ${octal(st.mode)})`;
    if (st.mode & 0o020) return `${what} is writable by its group, gid ${st.gid} (mode ${octal(st.mode)})`;
  }
  return untrustedWayReason(walk, file, trusted, nameOf);
}

/**
 * Why files in folder `dir` could be created, replaced or pre-empted by someone other than
 * `trusted` (the folder itself must be theirs and writable by no one else, sticky or not), or null.
 */
export function untrustedFolderReason(dir: string, trusted: ReadonlySet<number>, nameOf: UidNamer = plainUid): string | null {
  let walk: PathWalk;
  try { walk = walkPath(kernelPath(process.cwd(), dir)); } catch (e) { return `${dir} cannot be resolved: ${errorMessage(e)}`; }
  if (walk.st === null) return `${dir} cannot be resolved: ${walk.real} does not exist`;
  const what = walk.real === dir ? dir : `${dir} (-> ${walk.real})`;
  return untrustedFolderStat(what, walk.st, trusted, nameOf) ?? untrustedWayReason(walk, dir, trusted, nameOf);
}

function untrustedFolderStat(what: string, st: Stats, trusted: ReadonlySet<number>, nameOf: UidNamer): string | null {
  if (!trusted.has(st.uid)) return `the folder ${what} is owned by ${nameOf(st.uid)}`;
  if (st.mode & 0o022) return `the folder ${what} is writable by ${st.mode & 0o002 ? "everyone" : `its group, gid ${st.gid}`} (mode ${octal(st.mode)})`;
  return null;
}

/** The folders looked up in on the way, and the symlinks followed. */
function untrustedWayReason(walk: PathWalk, given: string, trusted: ReadonlySet<number>, nameOf: UidNamer): string | null {
  const linkIn = new Map<string, string>();
  for (const l of walk.links) if (!linkIn.has(l.dir)) linkIn.set(l.dir, l.path);
  for (const [dir, ds] of walk.lookups) {
    // A folder off both the given and the real path is there only because a symlink in it was followed.
    const onPath = isUnder(given, dir) || isUnder(walk.real, dir);
    const what = onPath || !linkIn.has(dir) ? dir : `${dir} (holding the symlink ${linkIn.get(dir)})`;
    if (!trusted.has(ds.uid)) return `its folder ${what} is owned by ${nameOf(ds.uid)}`;
    const sticky = (ds.mode & 0o1000) !== 0;
    if (!sticky && ds.mode & 0o002) return `its folder ${what} is writable by everyone (mode ${octal(ds.mode)})`;
    if (!sticky && ds.mode & 0o020) return `its folder ${what} is writable by its group, gid ${ds.gid} (mode ${octal(ds.mode)})`;
  }
  for (const l of walk.links) {
    const ds = walk.lookups.get(l.dir)!;
    if (ds.mode & 0o1000 && !trusted.has(l.st.uid)) return `the symlink ${l.path} in the sticky folder ${l.dir} is owned by ${nameOf(l.st.uid)}`;
  }
  return null;
}

function isUnder(path: string, dir: string): boolean {
  return dir === "/" || path.startsWith(`${dir}/`);
}

/** Root and this process's uid: whom a daemon trusts with its own files. */
export function selfTrusted(): Set<number> {
  return new Set([0, process.getuid?.() ?? 0]);
}
