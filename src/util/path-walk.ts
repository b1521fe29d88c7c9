/**
 * A path resolved the way the kernel resolves it, recording every folder a name is looked up
 * in. What a root daemon runs is decided by those folders only: whoever can write one of them
 * can swap the entry looked up there (a file, a folder, a symlink's next hop) between the check
 * and the exec. realpath(3) gives the end of the walk but not the folders of the links in the
 * middle of a chain, and a lexical `..` (path.resolve) is not the kernel's `..` after a symlink.
 */
import { lstatSync, readlinkSync, type Stats } from "node:fs";

/** Linux's limit on symlinks followed in one lookup (MAXSYMLINKS): beyond it, ELOOP. */
export const MAX_SYMLINK_HOPS = 40;

export interface PathWalk {
  /** Every folder a name was looked up in, with its stat. */
  lookups: Map<string, Stats>;
  /** The symlinks followed, in order, with their stat and the folder that holds each. */
  links: { path: string; st: Stats; dir: string }[];
  /** Where the walk ended: the real path of what `path` names, or the name that is missing. */
  real: string;
  /** The stat of `real`; null when a name on the way is missing (`real` is then that name). */
  st: Stats | null;
}

/** Thrown for what the kernel would refuse (ELOOP, ENOTDIR, EACCES, …); `message` says why. */
class WalkError extends Error {}

/**
 * Walks the absolute `path` from `/`, one component at a time: a symlink's target is walked in
 * its place (from `/` when absolute, else from the folder holding it), and `..` goes to the
 * parent of the folder reached so far, after the links before it were followed.
 */
export function walkPath(path: string): PathWalk {
  if (!path.startsWith("/")) throw new WalkError(`${path} is not an absolute path`);
  const seen = new Map<string, Stats>([["/", lstatSync("/")]]);
  const lookups = new Map<string, Stats>();
  const links: PathWalk["links"] = [];
  const pending = components(path);
  let cur = "/";
  while (pending.length > 0) {
    const name = pending.shift()!;
    if (name === "..") { cur = parentOf(cur); continue; }
    const curSt = seen.get(cur) ?? lstatSync(cur);
    lookups.set(cur, curSt);
    const next = cur === "/" ? `/${name}` : `${cur}/${name}`;
    let st: Stats;
    try { st = lstatSync(next); } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return { lookups, links, real: next, st: null };
      throw new WalkError(`${next}: ${code ?? (e as Error).message}`);
    }
    if (st.isSymbolicLink()) {
      if (links.length >= MAX_SYMLINK_HOPS) throw new WalkError(`more than ${MAX_SYMLINK_HOPS} symlinks on the way (ELOOP)`);
      links.push({ path: next, st, dir: cur });
      const target = readlinkSync(next);
      pending.unshift(...components(target));
      if (target.startsWith("/")) cur = "/";
      continue;
    }
    if (pending.length === 0) return { lookups, links, real: next, st };
    if (!st.isDirectory()) throw new WalkError(`${next} is not a folder (ENOTDIR)`);
    seen.set(next, st);
    cur = next;
  }
  // The path ended at a folder (or `/`, or `..`): what it names is `cur` itself.
  return { lookups, links, real: cur, st: seen.get(cur) ?? lstatSync(cur) };
}

function components(path: string): string[] {
  return path.split("/").filter((c) => c !== "" && c !== ".");
}

/** The folder holding `path` (absolute, no `.` or `..` in it). */
export function parentOf(dir: string): string {
  const i = dir.lastIndexOf("/");
  return i <= 0 ? "/" : dir.slice(0, i);
}

/**
 * `word` as the kernel will see it from working directory `cwd`: `cwd/word` with `.` and empty
 * components dropped but every `..` kept, because `a/link/..` is not `a` when `link` is a symlink.
 */
export function kernelPath(cwd: string, word: string): string {
  const full = word.startsWith("/") ? word : `${cwd}/${word}`;
  return "/" + components(full).join("/");
}
