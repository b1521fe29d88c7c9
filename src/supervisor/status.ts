/** What `pmctl status` reports about a unit: plain JSON, the contract of `status --json`. */
import { logFileSize } from "../logs/index.ts";
import type { CgroupTree } from "../cgroup/index.ts";
import type { Unit } from "./supervisor.ts";
import type { GateState } from "./readiness.ts";
import { plural } from "../util/plural.ts";

export interface LogFileStatus { path: string; size: number | null; rotation_mode: string }

/** `status --json` of one app; the health fields come from healthStatus() (daemon.ts merges them). */
export interface AppStatus extends Partial<HealthStatus> {
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

/** `logSize`: logs/sizes.ts LogSizes.size for a whole reply (one folder open per reply, not per file). */
export function unitStatus(unit: Unit, cgroups: CgroupTree, nowWallMs: number, rotationModeOf: (path: string) => string, logSize: (path: string) => number | null = logFileSize): AppStatus {
  const { logs } = unit.config;
  const logPaths = [...new Set([logs.stdout, logs.stderr, logs.stopCommandStdout, logs.stopCommandStderr].filter((p): p is string => !!p))];
  return {
    ...stateStatus(unit, cgroups, nowWallMs, false),
    logs: logPaths.map((path) => {
      // Never through a symlink a service's user put there: status would tell the size of any file.
      return { path, size: logSize(path), rotation_mode: rotationModeOf(path) };
    }),
  };
}

/**
 * Every field of AppStatus but `logs` (the costly one): what both unitStatus and statusRow derive
 * from the unit. A table row shows no memory_peak: it is not read for one.
 */
function stateStatus(unit: Unit, cgroups: CgroupTree, nowWallMs: number, forRow: boolean): Omit<AppStatus, "logs"> {
  const s = unit.state;
  const pids = cgroups.pids(unit.name).sort((a, b) => a - b);
  const stats = cgroups.stats(unit.name, { peak: !forRow, ooms: false });
  const running = s.phase === "running" || s.phase === "stopping" || s.phase === "killing";
  const last = s.lastExit;
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
  };
}

/**
 * The fields the `status` table shows (README "pmctl"); the rest of AppStatus is for `--json`.
 * A row leaves out a field that is null or empty (`enabled` is there only when false,
 * `operator_stopped` only when true): at 1000
 * services the full answer is ~0.5 MB and its log-size lookups (open, stat, close per file) were
 * a third of the daemon's time (issue 15, perf of the daemon).
 */
export type StatusRow = Pick<AppStatus, "name" | "state" | "pids" | "restarts"> &
  Partial<Pick<AppStatus, "main_pid" | "enabled" | "operator_stopped" | "uptime_ms" | "exit_code" | "exit_signal" | "last_exit" | "last_exit_at" | "next_attempt_at" | "next_run_at"
    | "schedule_timezone" | "suppressed_reason" | "cpu_usage_usec" | "memory_current" | "limits_not_in_force">> &
  Partial<Pick<HealthStatus, "ready" | "start" | "readiness" | "health" | "start_failure" | "waiting_for">>;

const notNull = (v: unknown) => v !== null;
const nonEmpty = (v: unknown) => (v as unknown[]).length > 0;
const truthy = (v: unknown) => !!v;

/** A row's optional fields, in the row's order, each with when the row keeps it ("" is left out where `truthy`). */
const ROW_OPTIONAL: readonly (readonly [Exclude<keyof StatusRow, "name" | "state" | "pids" | "restarts">, (v: unknown) => boolean])[] = [
  ["main_pid", notNull], ["enabled", (v) => v === false], ["operator_stopped", (v) => v === true], ["uptime_ms", notNull],
  ["last_exit", notNull], ["exit_code", notNull], ["exit_signal", truthy], ["last_exit_at", notNull], ["next_attempt_at", notNull],
  ["next_run_at", notNull], ["schedule_timezone", truthy], ["suppressed_reason", truthy], ["cpu_usage_usec", notNull], ["memory_current", notNull],
  ["limits_not_in_force", nonEmpty], ["ready", notNull], ["start", notNull], ["readiness", notNull], ["health", notNull], ["start_failure", notNull],
  ["waiting_for", nonEmpty],
];

/** One service's row for the table (`status` with `options.view: "table"`): the same values as unitStatus + healthStatus. */
export function statusRow(unit: Unit, cgroups: CgroupTree, nowWallMs: number, health: HealthStatus): StatusRow {
  const full = { ...stateStatus(unit, cgroups, nowWallMs, true), ...health };
  const row: StatusRow = { name: full.name, state: full.state, pids: full.pids, restarts: full.restarts };
  for (const [field, keep] of ROW_OPTIONAL) if (keep(full[field])) (row as Record<string, unknown>)[field] = full[field];
  return row;
}

/** Readiness, health and dependency fields of `status --json` (README "Readiness"). */
export interface HealthStatus {
  /** Whether the current run is ready; null when not running. */
  ready: boolean | null;
  /** The start of the current run: `starting` (start_seconds or readiness pending), `up`, `failed`; null when not running. */
  start: "starting" | "up" | "failed" | null;
  /** Readiness detail: what the last check said, or `READY=1`. */
  readiness: string | null;
  /** Liveness detail: consecutive failures and the last failure, or why the run was found unhealthy. */
  health: string | null;
  /** Why the last start failed (exit before start_seconds, readiness timeout, spawn error). */
  start_failure: string | null;
  /** STATUS= from sd_notify. */
  notify_status: string | null;
  /** MAINPID= from sd_notify (a process of the service). */
  notify_main_pid: number | null;
  /** The last run found unhealthy by liveness (and restarted through the restart policy): why, and when. */
  last_unhealthy: string | null;
  last_unhealthy_at: string | null;
  /** While the first start waits for dependencies: `db (ready)`. */
  waiting_for: string[];
}

export function healthStatus(unit: Unit, gate: { state: GateState | null; startFailure: string | null; notifyMainPid?: number | null; lastUnhealthy: { reason: string; atWallMs: number } | null }, waitingFor: string[]): HealthStatus {
  const g = gate.state;
  const live = unit.state.phase === "running" && g !== null;
  return {
    ready: live ? g.ready : unit.state.phase === "running" ? false : null,
    start: live ? (g.outcome === null ? "starting" : g.outcome) : null,
    readiness: live ? (g.ready ? g.readinessDetail ?? "ready" : g.readinessDetail) : null,
    health: g?.failure && g.outcome === "up" ? g.failure : live && g.livenessFailures > 0 ? `${plural(g.livenessFailures, "failed check")}: ${g.livenessDetail}` : null,
    start_failure: gate.startFailure,
    notify_status: live ? g.status : null,
    notify_main_pid: live ? gate.notifyMainPid ?? null : null,
    last_unhealthy: gate.lastUnhealthy?.reason ?? null,
    last_unhealthy_at: iso(gate.lastUnhealthy?.atWallMs ?? null),
    waiting_for: waitingFor,
  };
}
