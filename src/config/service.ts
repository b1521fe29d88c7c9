/** One service file (`config.d/NAME.yaml`): parsing, validation and defaults. */
import * as fs from "node:fs";
import * as path from "node:path";
import { Cron } from "croner";
import { isMap, isScalar, isSeq } from "./yaml.ts";
import type { Node } from "./yaml.ts";
import type {
  ConfigProblem, LogsConfig, ProcessConfig, ResourcesConfig, RestartPolicyConfig, RotationFrequency, RotationMode,
  RestartPolicyKind, ServiceConfig,
} from "./types.ts";
import { Ctx, MapView, clip, deref, describe, isNullish, parseYaml, readConfigSource, scalarText } from "./source.ts";
import type { Entry } from "./source.ts";
import {
  MAX_TIMER_MS, readBool, readCpuMax, readDuration, readEnum, readInt, readMemoryLimit, readPidsMax, readSignal, readSize,
  readString, readStringList, readStringListNode,
} from "./values.ts";
import { SHELL_OPERATORS, splitCommandWords } from "./command.ts";
import { resolveGroup, resolveUser } from "./users.ts";
import { parseDependsOn, parseLiveness, parseReadiness, readStartMs } from "./health.ts";
import { errorMessage } from "../util/errors.ts";
import { EXTRA_PROCESS_KEYS, parseProcessExtras } from "./process-extras.ts";

export const SERVICE_KEYS = ["name", "enabled", "process", "logs", "restart_policy", "resources", "readiness", "liveness", "depends_on"] as const;
export const PROCESS_KEYS = [
  "command", "working_directory", "user", "group", "environment", "stop_command", "stop_signal", "stop_grace_ms",
  "schedule", "schedule_timezone", "allow_writable_command", "start_seconds", "inherit_environment", "no_new_privileges", ...EXTRA_PROCESS_KEYS,
] as const;
export const LOGS_KEYS = [
  "stdout", "stderr", "stop_command_stdout", "stop_command_stderr", "hints", "rotation_mode", "rotation_frequency",
  "rotation_max_age_ms", "rotation_size", "rotation_backups",
] as const;
export const RESTART_KEYS = ["policy", "restart_backoff_ms", "restart_backoff_max_ms", "tolerance"] as const;
export const TOLERANCE_KEYS = ["max_restarts", "duration"] as const;
export const RESOURCES_KEYS = ["cpu_max", "cpu_weight", "memory_max", "memory_high", "memory_swap_max", "pids_max"] as const;

const ROTATION_MODES: readonly RotationMode[] = ["time", "size"];
const ROTATION_FREQUENCIES: readonly RotationFrequency[] = ["minutely", "hourly", "daily", "weekly", "monthly", "none"];
const POLICIES: readonly RestartPolicyKind[] = ["never", "always", "on-failure"];
/** Names pmctl gives a meaning of its own. */
export const RESERVED_SERVICE_NAMES: ReadonlySet<string> = new Set(["all"]);
const DAY_MS = 86_400_000;
/** `process.start_seconds` without readiness or schedule: 1 s, as supervisord's startsecs. */
export const DEFAULT_START_MS = 1000;

/** `process.start_seconds` in ms: as set, else 0 with a readiness check (it decides) or a schedule (a one-shot), else 1 s. */
export function startMsOf(p: { startMs?: number; schedule?: string }, hasReadiness: boolean): number {
  return p.startMs ?? (hasReadiness || p.schedule !== undefined ? 0 : DEFAULT_START_MS);
}

/** `process.no_new_privileges`: as set, else on for a service run as a user other than root. */
export function noNewPrivilegesOf(p: { noNewPrivileges?: boolean; uid?: number }): boolean {
  return p.noNewPrivileges ?? (p.uid !== undefined && p.uid !== 0);
}

/** Why `name` cannot be a service name (it becomes a cgroup folder), or null when it can. */
export function serviceNameError(name: string): string | null {
  if (name.length === 0) return "must not be empty";
  if (name.length > 200) return `must be at most 200 characters, found ${name.length}`;
  if (!/^[A-Za-z0-9_@-][A-Za-z0-9_.@-]*$/.test(name)) {
    return `may contain only letters, digits, '-', '_', '.', '@' and must not start with '.', found '${clip(name)}'`;
  }
  if (RESERVED_SERVICE_NAMES.has(name)) return `'${name}' is reserved (pmctl uses it for every service)`;
  return null;
}

export interface ServiceParse {
  /** Set only when the file has no problems. */
  service?: ServiceConfig;
  problems: ConfigProblem[];
  /** Lines of a few keys (`name`, `logs.stdout`, `logs.stderr`, `process.working_directory`, `process`, `logs`), for cross-file problems. */
  lines?: Record<string, number | undefined>;
}

/** Parse one service file. `masterDir` is the folder of the master config (default working directory). */
export function parseServiceFile(file: string, masterDir: string, logDirectory?: string): ServiceParse {
  const src = readConfigSource(file);
  if (!src.ok) return { problems: [src.problem] };
  return parseServiceText(file, src.text, masterDir, logDirectory);
}

/** `logDirectory`: where a service without working_directory logs (default `<masterDir>/logs`). */
export function parseServiceText(file: string, text: string, masterDir: string, logDirectory = path.join(masterDir, "logs")): ServiceParse {
  const { ctx, root } = parseYaml(file, text);
  if (root === null && ctx.problems.length > 0) return { problems: ctx.problems };
  if (root === null || (isScalar(root) && root.value === null)) {
    ctx.add(root, undefined, "the file is empty; a service file needs at least process.command");
    return { problems: ctx.problems };
  }
  if (!isMap(root)) {
    ctx.add(root, undefined, `expected a mapping at the top level (name:, enabled:, process:, logs:, restart_policy:, resources:), found ${describe(root)}`);
    return { problems: ctx.problems };
  }
  const top = MapView.open(ctx, root, "", SERVICE_KEYS)!;

  const base = path.basename(file).replace(/\.ya?ml$/, "");
  let name = readString(top, "name", { loose: true });
  const nameErr = name === undefined ? (top.has("name") ? null : serviceNameError(base)) : serviceNameError(name);
  if (nameErr) top.add(top.get("name"), top.has("name") ? nameErr : `the file name '${clip(base)}' gives the service name, which ${nameErr}; set name: to a valid name`, "name");
  name ??= base;
  const enabled = readBool(top, "enabled") ?? true;

  const seen = { workingDirectory: false };
  const proc = parseProcess(ctx, top, masterDir, seen);
  // Default log files: beside an explicit working_directory (the seed's ./stdout.log), else in a
  // folder of the service's own under log_directory, so two services never share one by default.
  const logs = parseLogs(ctx, top, proc?.workingDirectory ?? masterDir, seen.workingDirectory ? undefined : path.join(logDirectory, name));
  const restart = parseRestart(ctx, top);
  const restartPolicy = restart?.config;
  const resources = parseResources(ctx, top);
  const readiness = parseReadiness(ctx, top, proc?.workingDirectory ?? masterDir);
  const liveness = parseLiveness(ctx, top, proc?.workingDirectory ?? masterDir);
  const dependsOn = parseDependsOn(ctx, top);
  // A readiness check decides when a start succeeded; a scheduled job is a one-shot.
  if (proc) proc.startMs = startMsOf(proc, !!readiness);

  if (proc?.schedule !== undefined && restartPolicy?.policy === "always") {
    ctx.add(restart?.policyNode ?? null, "restart_policy.policy",
      "policy: always cannot be combined with process.schedule: a scheduled job is re-run by its schedule; use policy: never or on-failure");
  }

  sortProblems(ctx.problems);
  if (ctx.problems.length > 0 || !proc || !logs || !restartPolicy || !resources || readiness === null || liveness === null || dependsOn === null) return { problems: ctx.problems };
  const lines: Record<string, number | undefined> = {};
  for (const [key, group, sub] of [["name", "name", ""], ["process", "process", ""], ["logs", "logs", ""],
    ["process.working_directory", "process", "working_directory"], ["logs.stdout", "logs", "stdout"], ["logs.stderr", "logs", "stderr"], ["depends_on", "depends_on", ""]] as const) {
    const g = top.get(group);
    if (!sub) lines[key] = ctx.lineOf(g?.keyNode);
    else if (g?.node && isMap(g.node)) lines[key] = ctx.lineOf(g.node.items.find((it) => isScalar(it.key) && it.key.value === sub)?.key as Node);
  }
  const health = { ...(readiness ? { readiness } : {}), ...(liveness ? { liveness } : {}), ...(dependsOn ? { dependsOn } : {}) };
  return { service: { name, file, enabled, process: proc, logs, restartPolicy, resources, ...health }, problems: [], lines };
}

/** Problems of one file in line order (stable for equal lines). */
export function sortProblems(problems: ConfigProblem[]): void {
  problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
}

function parseProcess(ctx: Ctx, top: MapView, masterDir: string, seen: { workingDirectory: boolean }): ProcessConfig | undefined {
  const pe = top.get("process");
  if (!pe || isNullish(pe.node)) {
    if (top.has("process") && !pe) return undefined; // a dangling alias, reported
    top.add(pe, "missing process.command: the command to run (a list like [\"/usr/bin/app\", \"--flag\"] or a string)", "process");
    return undefined;
  }
  const p = MapView.open(ctx, pe.node, "process", PROCESS_KEYS, pe.keyNode);
  if (!p) return undefined;

  let command: string[] | undefined;
  const ce = p.get("command");
  if (!ce) { if (!p.has("command")) p.add(undefined, "missing command: the command to run (a list like [\"/usr/bin/app\", \"--flag\"] or a string)", "command"); }
  else command = readCommand(p, ce);

  let workingDirectory = masterDir;
  const wd = readString(p, "working_directory");
  if (wd !== undefined) {
    seen.workingDirectory = true;
    workingDirectory = path.resolve(masterDir, wd);
    let err: string | null = null;
    try {
      if (!fs.statSync(workingDirectory).isDirectory()) err = "is not a directory";
    } catch (e) {
      err = (e as NodeJS.ErrnoException).code === "ENOENT" ? "does not exist" : `cannot be used (${(e as NodeJS.ErrnoException).code ?? errorMessage(e)})`;
    }
    if (err) p.add(p.get("working_directory"), `the folder ${workingDirectory} ${err}; expected an existing folder (relative paths are relative to the master config's folder ${masterDir})`);
  }

  const user = readString(p, "user", { loose: true });
  const group = readString(p, "group", { loose: true });
  let uid: number | undefined;
  let gid: number | undefined;
  if (user !== undefined) {
    const u = resolveUser(user);
    if (!u) p.add(p.get("user"), `unknown user '${clip(user)}' (not in /etc/passwd)`);
    else { uid = u.uid; gid = u.gid; }
  }
  if (group !== undefined) {
    const g = resolveGroup(group);
    if (!g) p.add(p.get("group"), `unknown group '${clip(group)}' (not in /etc/group)`);
    else gid = g.gid;
  }

  const environment = readEnvironment(p);
  let stopCommand: string[] | undefined;
  const sc = p.get("stop_command");
  if (sc) stopCommand = readCommand(p, sc);
  const stopSignal = readSignal(p, "stop_signal") ?? "SIGTERM";
  const stopGraceMs = readDuration(p, "stop_grace_ms", { max: MAX_TIMER_MS }) ?? 30_000;

  const schedule = readString(p, "schedule");
  const scheduleTimezone = readString(p, "schedule_timezone");
  if (schedule !== undefined) checkSchedule(p, schedule, scheduleTimezone);
  else if (scheduleTimezone !== undefined) p.add(p.get("schedule_timezone"), "schedule_timezone is set but process.schedule is not; add a schedule or remove the timezone");
  const allowWritableCommand = readBool(p, "allow_writable_command") ?? false;
  const startMs = readStartMs(p);
  const extras = parseProcessExtras(p, { workingDirectory, readCommand: (e) => readCommand(p, e) });
  const inheritEnvironment = readBool(p, "inherit_environment");
  const noNewPrivileges = readBool(p, "no_new_privileges");

  if (!command) return undefined;
  for (const [argv, entry] of [[command, p.get("command")], [stopCommand, p.get("stop_command")]] as const) {
    const why = argv ? execSizeProblem(argv, environment ?? {}) : null;
    if (why) { p.add(entry, why); return undefined; }
  }
  return {
    command, workingDirectory, user, group, uid, gid, environment: environment ?? {}, stopCommand, stopSignal, stopGraceMs,
    schedule, scheduleTimezone, allowWritableCommand, ...extras, ...(startMs !== undefined ? { startMs } : {}),
    ...(inheritEnvironment !== undefined ? { inheritEnvironment } : {}), ...(noNewPrivileges !== undefined ? { noNewPrivileges } : {}),
  };
}

/** `command`/`stop_command`: an argv list, or a string split like a shell splits words. */
function readCommand(p: MapView, e: Entry): string[] | undefined {
  const expected = "a command: a list like [\"/usr/bin/app\", \"--flag\"] or a string like \"/usr/bin/app --flag\"";
  let argv: string[] | undefined;
  if (e.node && isScalar(e.node) && typeof e.node.value === "string") {
    try {
      const words = splitCommandWords(e.node.value);
      const op = words.find((w) => !w.quoted && SHELL_OPERATORS.has(w.word));
      if (op) {
        p.add(e, `'${op.word}' is a shell operator, but the command is not run by a shell; write [\"sh\", \"-c\", \"...\"] to use a shell, or quote it to pass it as an argument`);
        return undefined;
      }
      argv = words.map((w) => w.word);
    } catch (err) {
      p.add(e, `cannot split the command: ${errorMessage(err)}`);
      return undefined;
    }
  } else if (e.node && isSeq(e.node)) {
    argv = readStringListNode(p, e);
    if (!argv) return undefined;
  } else {
    p.add(e, `expected ${expected}, found ${describe(e.node)}`);
    return undefined;
  }
  if (argv.length === 0) { p.add(e, `expected ${expected}, found an empty command`); return undefined; }
  if (argv[0] === "") { p.add(e, "the program (first word of the command) must not be empty"); return undefined; }
  if (argv.some((a) => a.includes("\0"))) { p.add(e, "the command must not contain NUL characters"); return undefined; }
  return argv;
}

function readEnvironment(p: MapView): Record<string, string> | undefined {
  const e = p.get("environment");
  if (!e || isNullish(e.node)) return undefined;
  if (!isMap(e.node!)) { p.add(e, `expected a mapping of NAME: value, found ${describe(e.node)}`); return undefined; }
  const env: Record<string, string> = {};
  for (const pair of e.node.items) {
    const k = deref(p.ctx, pair.key, e.key);
    if (!k || !isScalar(k) || (typeof k.value !== "string" && typeof k.value !== "number")) {
      p.ctx.add((k as Node) ?? e.node, e.key, `expected a variable name, found ${describe(k as Node)}`);
      continue;
    }
    const name = typeof k.value === "string" ? k.value : scalarText(k);
    const key = `${e.key}.${name}`;
    if (!ENV_NAME.test(name)) {
      p.ctx.add(k, key, `an environment variable name must be letters, digits and '_', not starting with a digit, found '${clip(name)}'`);
      continue;
    }
    const v = deref(p.ctx, pair.value, key);
    if (v === undefined && pair.value) continue;
    const val = v && isScalar(v) ? v.value : undefined;
    if (v && isScalar(v) && (typeof val === "string" || typeof val === "number" || typeof val === "boolean" || typeof val === "bigint")) {
      const text = typeof val === "string" ? val : scalarText(v);
      // The kernel takes environment strings NUL-terminated: a NUL would fail only at spawn.
      if (text.includes("\0")) { p.ctx.add(v, key, "an environment value must not contain NUL characters"); continue; }
      env[name] = text;
    } else {
      p.ctx.add(v ?? k, key, `expected a text, number or boolean value (write "" for an empty value), found ${describe(v)}`);
    }
  }
  return env;
}

/** Names a shell can use; anything else (spaces, '=', a leading digit) would not reach a program as meant. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * What execve takes at most for argv plus environment, well below the kernel's ARG_MAX
 * (2 MiB with the default 8 MiB stack); one string may not exceed MAX_ARG_STRLEN (128 KiB).
 */
export const MAX_EXEC_BYTES = 1024 * 1024;
const MAX_ARG_STRLEN = 128 * 1024;

/** Why argv + env would not fit an execve, or null. Counted as the kernel counts: each string and its NUL. */
export function execSizeProblem(argv: string[], env: Record<string, string>): string | null {
  let total = 0;
  for (const s of [...argv, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)]) {
    const bytes = Buffer.byteLength(s) + 1;
    if (bytes > MAX_ARG_STRLEN) return `one argument or variable is ${bytes} bytes; the kernel takes at most ${MAX_ARG_STRLEN} per string`;
    total += bytes;
  }
  return total > MAX_EXEC_BYTES ? `the command and environment add up to ${total} bytes; at most ${MAX_EXEC_BYTES} are allowed` : null;
}

function checkSchedule(p: MapView, schedule: string, timezone: string | undefined): void {
  const e = p.get("schedule");
  try {
    // Same mode as schedule/cron.ts, so `check` rejects what the daemon would (7 fields).
    const cron = new Cron(schedule, { timezone, paused: true, mode: "5-or-6-parts" });
    const next = cron.nextRun();
    cron.stop();
    if (next === null) p.add(e, `the schedule '${clip(schedule)}' never fires (no matching date, e.g. February 30)`);
  } catch (err) {
    const msg = errorMessage(err);
    if (timezone !== undefined && /timezone|time zone/i.test(msg)) {
      p.add(p.get("schedule_timezone"), `unknown timezone '${clip(timezone)}'; expected an IANA name like Europe/Berlin or UTC`);
    } else {
      p.add(e, `invalid cron schedule '${clip(schedule)}': ${msg.replace(/^CronPattern: /, "").replace(/\.$/, "")}; expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first`);
    }
  }
}

function parseLogs(ctx: Ctx, top: MapView, workingDirectory: string, defaultFolder?: string): LogsConfig | undefined {
  const le = top.get("logs");
  const l = MapView.open(ctx, le?.node ?? null, "logs", LOGS_KEYS, le?.keyNode);
  if (!l) return undefined;
  const logPath = (name: string, def?: string): string | undefined => {
    const v = readString(l, name);
    if (v === undefined) return def === undefined ? undefined : path.resolve(workingDirectory, def);
    const abs = path.resolve(workingDirectory, v);
    // Usually not there yet (created when the service starts): no exception for that, it costs
    // more than the stat itself, twice per service at boot (issue 15).
    try {
      if (fs.statSync(abs, { throwIfNoEntry: false })?.isDirectory()) l.add(l.get(name), `${abs} is a directory; expected a log file path`);
    } catch { /* not reachable: reported when the service starts */ }
    return abs;
  };
  const stdout = logPath("stdout", path.join(defaultFolder ?? workingDirectory, "stdout.log"))!;
  const stderr = logPath("stderr", path.join(defaultFolder ?? workingDirectory, "stderr.log"))!;
  const stopCommandStdout = logPath("stop_command_stdout");
  const stopCommandStderr = logPath("stop_command_stderr");
  const hints = (readStringList(l, "hints") ?? []).map((h) => path.resolve(workingDirectory, h));
  const rotationMode = readEnum(l, "rotation_mode", ROTATION_MODES) ?? "time";
  const rotationFrequency = readEnum(l, "rotation_frequency", ROTATION_FREQUENCIES) ?? "daily";
  const rotationMaxAgeMs = readDuration(l, "rotation_max_age_ms", { min: 1 }) ?? 30 * DAY_MS;
  const rotationSizeBytes = readSize(l, "rotation_size", 1);
  if (rotationMode === "size" && !l.has("rotation_size")) {
    l.add(l.get("rotation_mode"), "size rotation needs logs.rotation_size (e.g. rotation_size: 10M)", "rotation_mode");
  }
  const rotationBackups = readInt(l, "rotation_backups", 0, 10_000) ?? 10;
  return {
    stdout, stderr, stopCommandStdout, stopCommandStderr, hints, rotationMode, rotationFrequency, rotationMaxAgeMs,
    rotationSizeBytes, rotationBackups,
  };
}

function parseRestart(ctx: Ctx, top: MapView): { config: RestartPolicyConfig; policyNode: Node | null } | undefined {
  const re = top.get("restart_policy");
  const r = MapView.open(ctx, re?.node ?? null, "restart_policy", RESTART_KEYS, re?.keyNode);
  if (!r) return undefined;
  const policy = readEnum(r, "policy", POLICIES) ?? "never";
  const restartBackoffMs = readDuration(r, "restart_backoff_ms", { max: MAX_TIMER_MS }) ?? 1000;
  const restartBackoffMaxMs = readDuration(r, "restart_backoff_max_ms", { max: MAX_TIMER_MS });
  if (restartBackoffMaxMs !== undefined && restartBackoffMaxMs < restartBackoffMs) {
    r.add(r.get("restart_backoff_max_ms"), `must be at least restart_backoff_ms (${restartBackoffMs} ms), found ${restartBackoffMaxMs} ms`);
  }
  const te = r.get("tolerance");
  const t = MapView.open(ctx, te?.node ?? null, "restart_policy.tolerance", TOLERANCE_KEYS, te?.keyNode);
  let maxRestarts = 3;
  let toleranceWindowMs = 60_000;
  if (t) {
    const mr = t.get("max_restarts");
    const zero = mr?.node && isScalar(mr.node) && mr.node.value === 0;
    if (zero) t.add(mr, "max_restarts must be at least 1; to never restart, use restart_policy.policy: never");
    else maxRestarts = readInt(t, "max_restarts", 1, Number.MAX_SAFE_INTEGER) ?? 3;
    toleranceWindowMs = readDuration(t, "duration", { min: 1 }) ?? 60_000;
  }
  return {
    config: { policy, restartBackoffMs, restartBackoffMaxMs, maxRestarts, toleranceWindowMs },
    policyNode: r.get("policy")?.node ?? null,
  };
}

function parseResources(ctx: Ctx, top: MapView): ResourcesConfig | undefined {
  const re = top.get("resources");
  const r = MapView.open(ctx, re?.node ?? null, "resources", RESOURCES_KEYS, re?.keyNode);
  if (!r) return undefined;
  return {
    cpuMax: readCpuMax(r, "cpu_max"),
    cpuWeight: readInt(r, "cpu_weight", 1, 10_000),
    memoryMax: readMemoryLimit(r, "memory_max", 1),
    memoryHigh: readMemoryLimit(r, "memory_high", 1),
    memorySwapMax: readMemoryLimit(r, "memory_swap_max", 0),
    pidsMax: readPidsMax(r, "pids_max"),
  };
}
