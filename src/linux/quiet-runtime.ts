/**
 * An idle process should sleep: the daemon, and a `pmctl logs -f` that waits for lines (issue
 * 15). Two parts of the runtime wake a Bun process on their own, and both read their setting
 * only at start-up, so such a process re-executes itself once with them set, before doing
 * anything else (execve of /proc/self/exe keeps the PID, the open fds, the terminal and argv):
 *
 * - BUN_GC_TIMER_DISABLE=1: Bun's garbage-collection timer woke the main thread about once a
 *   second (and the GC's helper threads with it). Collections still run when the daemon allocates.
 * - MIMALLOC_SCAVENGER=0: Bun's mimalloc (v3.5.3) runs a `mi-scavenger` thread. Each time a
 *   thread's event loop goes to sleep it hands its heaps to that thread to sweep, and the thread
 *   wakes again when purges fall due and every 30 s as a safety net: 7–15 wake-ups a minute of
 *   an idle daemon (issue 15). Without it the event loop sweeps its own heaps and purges freed
 *   memory inline, rate-limited, just before it sleeps, so freed memory still goes back to the
 *   OS (measured: RSS of a 128 MB free the same as with the thread). MIMALLOC_PURGE_DELAY=-1
 *   would also stop the thread but keeps every freed page: not used.
 *
 * A setting the operator gave stays as given. The ones we add are named in PM_QUIET_RUNTIME
 * and removed from our environment after the re-exec, so services do not inherit them.
 * Measured (BENCHMARKS.md, idle): an idle daemon with 200 services 17–30 → 1 wake-up a minute
 * (with the rotation tick's change); an idle `pmctl logs -f` ~120 a minute → none.
 */
import { readFileSync } from "node:fs";
import { execve } from "./ffi.ts";
import { errorMessage } from "../util/errors.ts";
import { logger } from "../util/log.ts";

const QUIET: Readonly<Record<string, string>> = { BUN_GC_TIMER_DISABLE: "1", MIMALLOC_SCAVENGER: "0" };
/** The variables this module sets: the daemon's own, never a service's (supervisor/service-env.ts). */
export const QUIET_RUNTIME_NAMES: readonly string[] = Object.keys(QUIET);
/** The names of the settings we added ourselves, comma-separated. */
const MARK = "PM_QUIET_RUNTIME";

/** Re-executes this process with the settings it lacks; returns (no re-exec) when it has them. `warn` hears a failed execve. */
export function reexecWithQuietRuntime(warn: (message: string) => void = (m) => logger("daemon").warn(m)): void {
  const mark = process.env[MARK];
  if (mark !== undefined) {
    for (const name of mark.split(",")) if (name in QUIET) delete process.env[name];
    delete process.env[MARK];
    return;
  }
  if (process.env.PM_NO_REEXEC !== undefined) return;
  const add = Object.keys(QUIET).filter((name) => process.env[name] === undefined);
  if (add.length === 0) return;
  try {
    const argv = readFileSync("/proc/self/cmdline", "utf8").split("\0");
    if (argv.at(-1) === "") argv.pop();
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    for (const name of add) env[name] = QUIET[name]!;
    env[MARK] = add.join(",");
    // The running image itself, not a path read from the link: a binary renamed over since start
    // (an upgrade) is not what runs next under this PID, and a deleted one still re-executes.
    execve("/proc/self/exe", argv, env);
  } catch (e) {
    warn(`could not re-execute with ${add.map((n) => `${n}=${QUIET[n]}`).join(" ")} (${errorMessage(e)}); the runtime's timers and threads will wake this idle process`);
  }
}
