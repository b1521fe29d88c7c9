/**
 * Verdicts of the root daemon's command check (exec.ts: the file execvp would run, and that only
 * root or the service's user can change it, its folders and the scripts it runs) kept between
 * starts, for as long as nothing they were drawn from has changed. Each restart otherwise
 * looked through PATH and stat'ed the file, its real path and every folder on the way again
 * (~10 system calls and ~0.1 ms of the restart; issue 15).
 *
 * Validity is checked, not assumed: every file and folder the check reads is watched with
 * inotify (modes, owners, names created, removed or renamed; a watch follows symlinks as stat
 * does, and each link's own entry is in a watched folder) before the check that is kept runs.
 * A lookup first reads the inotify queue; an event on a watched path, or on a name in a watched
 * folder that is on one of the paths (others, as in /tmp, do not count), or a lost event drops
 * every verdict, so a verdict is used only if nothing on its paths changed since it was drawn. The kernel queues an event within
 * the system call that makes the change, so this is exactly as strict as checking again at
 * each start. Only verdicts that let a command run are kept; a refusal is checked anew.
 */
import { basename, delimiter, dirname, resolve } from "node:path";
import { existsSync, realpathSync } from "node:fs";
import { scriptArguments } from "./script-args.ts";
import { ChangeWatch } from "../linux/inotify.ts";
import { ancestors } from "../util/file-trust.ts";

/** Watches at most this many paths; past it, every start checks again. */
const MAX_WATCHES = 4000;

let watch: ChangeWatch | null | undefined;
const verdicts = new Map<string, string>();

export interface CheckInput { word: string; PATH: string | undefined; cwd: string; uid: number | undefined; argv: readonly string[] }

const keyOf = (c: CheckInput) => JSON.stringify([c.word, c.PATH ?? null, c.cwd, c.uid ?? null, c.argv]);

/** The file a kept verdict found for this command, or null (check it). */
export function trustedFile(c: CheckInput): string | null {
  if (!watch) return null;
  if (watch.changed()) { verdicts.clear(); return null; }
  return verdicts.get(keyOf(c)) ?? null;
}

/**
 * Keeps a verdict: watches everything `check` reads, then runs it again (what it sees now is
 * what the watches guard) and keeps its file if it still passes. Returns the file of that run.
 */
export function keepVerdict(c: CheckInput, file: string, check: () => string): string {
  if (watch === undefined) watch = ChangeWatch.open();
  if (!watch || watch.size > MAX_WATCHES) return file;
  // Folders before what is in them: a name swapped after its folder's watch is in place is an event.
  const paths = [...watchedPaths(c, file)].sort((a, b) => depth(a) - depth(b));
  // In a folder only the names on these paths matter (a busy /tmp changes all the time).
  const inside = new Map<string, Set<string>>();
  for (const p of paths) if (p !== "/") { const d = dirname(p); if (!inside.has(d)) inside.set(d, new Set()); inside.get(d)!.add(basename(p)); }
  // A path that exists but cannot be watched (watch limit): its changes would go unseen.
  for (const p of paths) if (!watch.watch(p, inside.get(p) ?? []) && existsSync(p)) return file;
  const again = check();
  if (again === file) verdicts.set(keyOf(c), file);
  return again;
}

const depth = (p: string) => p.split("/").length;

/** What resolveCommand, untrustedFileReason and unsafeScriptReason read for this command. */
function watchedPaths(c: CheckInput, file: string): Set<string> {
  const out = new Set<string>();
  const addChain = (p: string) => {
    out.add(p);
    for (const a of ancestors(p)) out.add(a);
    let real: string | null = null;
    try { real = realpathSync(p); } catch { /* gone: the check refuses it */ }
    if (real !== null && real !== p) { out.add(real); for (const a of ancestors(real)) out.add(a); }
  };
  if (!c.word.includes("/")) {
    // The PATH folders tried before the one that had it: a file appearing there would be run instead.
    for (const dir of (c.PATH ?? "/bin:/usr/bin").split(delimiter)) {
      const candidate = resolve(c.cwd, dir || ".", c.word);
      addChain(candidate);
      if (candidate === file) break;
    }
  }
  addChain(file);
  for (const s of scriptArguments(c.argv)) { const p = resolve(c.cwd, s); addChain(p); addChain(dirname(p)); }
  return out;
}
