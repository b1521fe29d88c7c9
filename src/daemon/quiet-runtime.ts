/**
 * An idle daemon should sleep. Bun's garbage-collection timer wakes the process about once a
 * second (and its heap-helper and allocator threads with it) even when nothing happens; the
 * runtime reads BUN_GC_TIMER_DISABLE only at start-up, so the daemon re-executes itself once
 * with it set, before doing anything else. execve keeps the PID, the open fds (stdout/stderr
 * to the log or the init system) and argv. Collections still run when the daemon allocates.
 * Measured (BENCHMARKS.md, idle): ~1 wake-up a second of the main thread → none in 20 s.
 */
import { readFileSync, readlinkSync } from "node:fs";
import { execve } from "../linux/ffi.ts";
import { errorMessage } from "../util/errors.ts";
import { logger } from "../util/log.ts";

const FLAG = "BUN_GC_TIMER_DISABLE";
/** Marks a flag we set ourselves, so services do not inherit it (one set by the operator stays). */
const MARK = "PM_QUIET_RUNTIME";

export function reexecWithQuietRuntime(): void {
  if (process.env[MARK] === "1") { delete process.env[MARK]; delete process.env[FLAG]; return; }
  if (process.env[FLAG] !== undefined || process.env.PM_NO_REEXEC !== undefined) return;
  try {
    const exe = readlinkSync("/proc/self/exe");
    const argv = readFileSync("/proc/self/cmdline", "utf8").split("\0");
    if (argv.at(-1) === "") argv.pop();
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    env[FLAG] = "1";
    env[MARK] = "1";
    execve(exe, argv, env);
  } catch (e) {
    logger("daemon").warn(`could not re-execute with ${FLAG}=1 (${errorMessage(e)}); the runtime's GC timer will wake the daemon about once a second`);
  }
}
