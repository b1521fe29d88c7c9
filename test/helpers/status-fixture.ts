/** A full status answer for one service, for render tests: defaults of a running service with nothing known, `over` on top. */
import type { AppStatus } from "../../src/supervisor/status.ts";

export const app = (over: Partial<AppStatus>): AppStatus => ({
  name: "x", state: "running", enabled: true, pids: [], main_pid: null, restarts: 0, exit_code: null, exit_signal: null, last_exit: null,
  last_exit_at: null, started_at: null, uptime_ms: null, next_attempt_at: null, next_run_at: null, schedule_timezone: null,
  suppressed_reason: null, operator_stopped: false, cpu_usage_usec: null, memory_current: null, memory_peak: null, limits_not_in_force: [], logs: [], ...over,
});
