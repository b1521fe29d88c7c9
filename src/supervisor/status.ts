/** What `pmctl status` reports about a unit: plain JSON, the contract of `status --json`. */
import { logFileSize } from "../logs/index.ts";
import type { CgroupTree } from "../cgroup/index.ts";
import type { Unit } from "./supervisor.ts";

export interface LogFileStatus { path: string; size: number | null; rotation_mode: string }

export interface AppStatus {
  name: string;
  state: string;
  enabled: boolean;
  pids: number[];
  main_pid: number | null;
  restarts: number;
  /** Exit code of the last run; null when unknown (adopted) or killed by a signal. */
  exit_code: number | null;
  exit_signal: string | null;
  /** `exit`, `killed-after-grace`, `oom-kill`, `spawn-failed`, or `unknown` for adopted runs. */
  last_exit: string | null;
  last_exit_at: string | null;
  started_at: string | null;
  uptime_ms: number | null;
  next_attempt_at: string | null;
  next_run_at: string | null;
  /** The zone of `schedule` (`schedule_timezone`); null: the daemon's local zone or no schedule. */
  schedule_timezone: string | null;
  suppressed_reason: string | null;
  operator_stopped: boolean;
  cpu_usage_usec: number | null;
  memory_current: number | null;
  memory_peak: number | null;
  limits_not_in_force: { file: string; value: string; reason: string }[];
  logs: LogFileStatus[];
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function unitStatus(unit: Unit, cgroups: CgroupTree, nowWallMs: number, rotationModeOf: (path: string) => string): AppStatus {
  const s = unit.state;
  const pids = cgroups.pids(unit.name).sort((a, b) => a - b);
  const stats = cgroups.stats(unit.name);
  const running = s.phase === "running" || s.phase === "stopping" || s.phase === "killing";
  const last = s.lastExit;
  const { logs } = unit.config;
  const logPaths = [...new Set([logs.stdout, logs.stderr, logs.stopCommandStdout, logs.stopCommandStderr].filter((p): p is string => !!p))];
  return {
    name: unit.name,
    state: s.phase,
    enabled: unit.config.enabled,
    pids,
    main_pid: s.mainPid,
    restarts: s.restarts,
    exit_code: last && last.known ? last.code : null,
    exit_signal: last?.signal ?? null,
    // The OOM killer is known from memory.events even for an adopted run whose exit code is not.
    last_exit: last === null ? null : !last.known && last.cause !== "oom-kill" ? "unknown" : last.cause,
    last_exit_at: iso(last?.atWallMs ?? null),
    started_at: running ? iso(s.startedAtWallMs) : null,
    uptime_ms: running && s.startedAtWallMs !== null ? Math.max(0, nowWallMs - s.startedAtWallMs) : null,
    next_attempt_at: s.phase === "backoff" ? iso(s.nextAttemptWallMs) : null,
    // Ticks are ignored while the operator has it stopped or it is disabled: no next run to show.
    next_run_at: unit.schedule && unit.config.enabled && !s.operatorStopped ? iso(unit.schedule.nextFireWallMs()) : null,
    schedule_timezone: unit.config.process.scheduleTimezone ?? null,
    suppressed_reason: s.phase === "suppressed" ? s.suppressedReason : null,
    operator_stopped: s.operatorStopped,
    cpu_usage_usec: stats.cpuUsageUsec,
    memory_current: stats.memoryCurrent,
    memory_peak: stats.memoryPeak,
    limits_not_in_force: unit.limits?.notApplied ?? [],
    logs: logPaths.map((path) => {
      // Never through a symlink a service's user put there: status would tell the size of any file.
      return { path, size: logFileSize(path), rotation_mode: rotationModeOf(path) };
    }),
  };
}
