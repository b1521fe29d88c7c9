/**
 * Waiting, event-driven, until a service's cgroup is empty: our own child through its
 * `proc.exited`, every other PID through a pidfd in the PidWatcher's worker, cgroup.events
 * `populated` as the final word. No timer runs while processes are there.
 *
 * Each PID's exit promise gets one reaction for the whole run: a Promise.race over all PIDs at
 * every exit would add a reaction to each still-running PID's promise (the main process's above
 * all), and a service that forks a short-lived helper every second would grow the daemon
 * without bound.
 */
import type { Subprocess } from "bun";
import type { CgroupTree } from "../cgroup/index.ts";
import type { PidWatcher } from "../linux/pidwatch.ts";
import { errorMessage } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";

export interface CgroupExitDeps {
  cgroups: CgroupTree;
  watcher: PidWatcher;
  /** The process this daemon spawned for the run, read afresh on each wake. */
  ownProcess: () => Subprocess | null;
  log: Logger;
}

/** PIDs of one service watched through pidfds at once (each costs the daemon a file descriptor). */
export const MAX_WATCHED_PIDS = 256;
const CAPPED_RECHECK_MS = 1000;

export async function untilCgroupEmpty(service: string, deps: CgroupExitDeps): Promise<void> {
  const { cgroups, watcher, log } = deps;
  const watched = new Set<number>();
  let wake: () => void = () => {};
  let failing = false;
  let capped = false;
  for (let first = true; ; first = false) {
    // cgroup.events first (one pread): `populated 0` is the kernel's word for the whole subtree,
    // and the usual answer right after the main process's exit. The first look (at the spawn)
    // keeps no fd open: most services are not looked at again until they exit.
    if (!cgroups.populated(service, !first)) return;
    const pids = cgroups.pids(service, !first);
    const changed = new Promise<void>((r) => { wake = r; });
    const retry = (ms: number) => { const w = wake; setTimeout(w, ms); };
    // Populated but no PID listed: a process in transit; the kernel settles within ~10 ms.
    if (pids.length === 0) retry(10);
    let overflow = false;
    try {
      for (const pid of pids) {
        if (watched.has(pid)) continue;
        const own = deps.ownProcess();
        const isOwn = own !== null && pid === own.pid;
        // Each watched PID holds a pidfd: a service that forks 20,000 processes must not use up
        // the daemon's file descriptors. Past the cap, the rest is looked at again periodically.
        if (!isOwn && watched.size >= MAX_WATCHED_PIDS) {
          if (!capped) log.warn(`more than ${MAX_WATCHED_PIDS} processes in the cgroup: watching ${MAX_WATCHED_PIDS}, checking the rest every ${CAPPED_RECHECK_MS} ms`);
          capped = overflow = true;
          continue;
        }
        const gone = isOwn ? own.exited : watcher.watch(pid);
        watched.add(pid);
        const done = () => { watched.delete(pid); wake(); };
        gone.then(done, done);
      }
      if (overflow) retry(CAPPED_RECHECK_MS);
      failing = false;
    } catch (e) {
      // Never report an exit the kernel has not confirmed (that could start a second run
      // beside this one): look again in a second.
      if (!failing) log.error(`cannot watch the service's processes (${errorMessage(e)}); checking again every second`);
      failing = true;
      retry(1000);
    }
    await changed;
  }
}
