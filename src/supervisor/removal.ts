/**
 * Services whose definition is gone while their processes still run: `update` removed the
 * service and the daemon died before its processes were gone, or the service file was deleted
 * while no daemon ran. No service file names it, so no pmctl command can reach it: left alone
 * it would run on, unmanaged. At boot the daemon finishes the removal as `stop` would have:
 * the stop signal its definition had (kept in the state file; the defaults when the daemon died
 * before writing it) to every process, cgroup.kill once its grace is over, then the cgroup and
 * the state entry go. Every cgroup under the master cgroup is processmaster's own.
 *
 * While any service file fails to load, only those `update` was removing when the daemon died
 * (`removing` in the state file): the broken file may be the definition of the others, and a
 * typo must not stop a running service.
 */
import type { CgroupTree } from "../cgroup/index.ts";
import type { Config } from "../config/types.ts";
import type { PidWatcher } from "../linux/pidwatch.ts";
import { errorMessage } from "../util/errors.ts";
import type { Logger } from "../util/log.ts";
import type { PersistedUnit, StateStore, StopSettings } from "./state-store.ts";

/** For a state entry written before the stop settings were kept: the defaults of a definition. */
const DEFAULT_STOP: StopSettings = { stopSignal: "SIGTERM", stopGraceMs: 30_000 };

export interface RemovalDeps {
  cgroups: CgroupTree;
  watcher: PidWatcher;
  store: StateStore;
}

/** Should boot stop the running processes of `saved`, a service the config no longer defines? */
export function shouldFinishRemoval(saved: PersistedUnit | undefined, config: Config): boolean {
  return saved?.removing === true || config.serviceErrors.length === 0;
}

export async function finishRemoval(name: string, saved: PersistedUnit | undefined, deps: RemovalDeps, log: Logger): Promise<void> {
  const { cgroups, store } = deps;
  const { stopSignal, stopGraceMs } = saved?.stop ?? DEFAULT_STOP;
  const why = saved?.removing ? "update was removing it when the previous daemon stopped" : "no service file defines it";
  log.warn(`'${name}' still runs but ${why}; stopping it: ${stopSignal}, cgroup.kill after ${stopGraceMs}ms`);
  try {
    cgroups.signal(name, stopSignal as NodeJS.Signals);
    cgroups.signal(name, "SIGCONT"); // a stopped process must wake to see the signal
    if (!(await untilEmpty(name, stopGraceMs, deps))) {
      log.warn(`'${name}' still running after ${stopGraceMs}ms grace, killing its cgroup`);
      cgroups.kill(name);
      await untilEmpty(name, 10_000, deps);
    }
  } catch (e) {
    log.error(`stopping '${name}' failed: ${errorMessage(e)}`);
  }
  if (cgroups.removeService(name)) {
    store.delete(name);
    log.info(`'${name}' stopped and removed`);
  } else {
    log.warn(`cgroup of '${name}' could not be removed (not empty); the next daemon start tries again`);
  }
}

/** Resolves true once the service's cgroup is empty, false when `timeoutMs` passed first. */
async function untilEmpty(name: string, timeoutMs: number, { cgroups, watcher }: RemovalDeps): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((r) => { timer = setTimeout(() => r("timeout"), timeoutMs); });
  try {
    for (;;) {
      if (!cgroups.populated(name)) return true;
      const pids = cgroups.pids(name);
      // Populated but no PID listed: a process in transit; the kernel settles within ~10 ms.
      const next = pids.length === 0 ? new Promise<void>((r) => setTimeout(r, 10)) : Promise.race(pids.map((pid) => watcher.watch(pid)));
      if ((await Promise.race([next, timedOut])) === "timeout") return !cgroups.populated(name);
    }
  } finally {
    clearTimeout(timer);
  }
}
