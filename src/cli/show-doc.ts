/**
 * The effective config `pmctl show` prints: a parsed service spelled back in the config file's
 * own key names, every default filled in. Loaded only by `show` (it reaches the config parser's
 * modules, which a plain pmctl call never loads: client-lazy-load.test.ts).
 */
import { relative } from "node:path";
import { RUNTIME_BASE } from "../config/process-extras.ts";
import { noNewPrivilegesOf, startMsOf } from "../config/service.ts";
import type { ProbeCheck, ServiceConfig } from "../config/types.ts";
import { resolveGroup } from "../config/users.ts";

const octalText = (mode: number) => `0${mode.toString(8).padStart(3, "0")}`;

/** A probe's one check as its key would be written: `tcp: 127.0.0.1:5432`, `notify: true`. */
function checkDoc(c: ProbeCheck): Record<string, unknown> {
  switch (c.kind) {
    case "tcp": return { tcp: `${c.host.includes(":") ? `[${c.host}]` : c.host}:${c.port}` };
    case "http": return { http: c.url };
    case "unix": return { unix: c.path };
    case "exec": return { exec: c.command };
    case "log": return { log: c.pattern };
    case "notify": return { notify: true };
  }
}

/**
 * The service as a config file would spell it: every key present, paths absolute, durations in
 * ms (the `*_sec`/`*_seconds` keys in seconds). A test holds its keys to the documented ones.
 */
export function effectiveServiceDoc(svc: ServiceConfig): Record<string, unknown> {
  const p = svc.process;
  const l = svc.logs;
  const r = svc.restartPolicy;
  const res = svc.resources;
  const ready = svc.readiness;
  const live = svc.liveness;
  return {
    name: svc.name,
    enabled: svc.enabled,
    process: {
      command: p.command,
      working_directory: p.workingDirectory,
      user: p.user ?? null,
      group: p.group ?? null,
      environment: p.environment,
      stop_command: p.stopCommand ?? null,
      stop_signal: p.stopSignal,
      stop_grace_ms: p.stopGraceMs,
      schedule: p.schedule ?? null,
      schedule_timezone: p.scheduleTimezone ?? null,
      allow_writable_command: p.allowWritableCommand,
      start_seconds: startMsOf(p, ready !== undefined) / 1000,
      inherit_environment: p.inheritEnvironment ?? false,
      no_new_privileges: noNewPrivilegesOf(p),
      exit_type: p.exitType,
      stop_mode: p.stopMode,
      reload_signal: p.reloadSignal ?? null,
      reload_command: p.reloadCommand ?? null,
      limits: p.limits,
      umask: p.umask === undefined ? null : octalText(p.umask),
      environment_file: p.environmentFiles.map((f) => `${f.optional ? "-" : ""}${f.path}`),
      supplementary_groups: p.supplementaryGroups.map((gid) => resolveGroup(gid)?.name ?? gid),
      runtime_directory: p.runtimeDirectories.map((dir) => relative(RUNTIME_BASE, dir)),
      runtime_directory_mode: octalText(p.runtimeDirectoryMode),
    },
    logs: {
      stdout: l.stdout,
      stderr: l.stderr,
      stop_command_stdout: l.stopCommandStdout ?? null,
      stop_command_stderr: l.stopCommandStderr ?? null,
      hints: l.hints,
      rotation_mode: l.rotationMode,
      rotation_frequency: l.rotationFrequency,
      rotation_max_age_ms: l.rotationMaxAgeMs,
      rotation_size: l.rotationSizeBytes ?? null,
      rotation_backups: l.rotationBackups,
    },
    restart_policy: {
      policy: r.policy,
      restart_backoff_ms: r.restartBackoffMs,
      restart_backoff_max_ms: r.restartBackoffMaxMs ?? null,
      tolerance: { max_restarts: r.maxRestarts, duration: r.toleranceWindowMs },
    },
    resources: {
      cpu_max: res.cpuMax ?? null,
      cpu_weight: res.cpuWeight ?? null,
      memory_max: res.memoryMax ?? null,
      memory_high: res.memoryHigh ?? null,
      memory_swap_max: res.memorySwapMax ?? null,
      pids_max: res.pidsMax ?? null,
    },
    readiness: ready ? {
      ...checkDoc(ready.check), interval: ready.intervalMs, probe_timeout: ready.probeTimeoutMs,
      timeout: ready.timeoutMs, fail_on_timeout: ready.failOnTimeout,
    } : null,
    liveness: live ? {
      ...checkDoc(live.check), interval: live.intervalMs, probe_timeout: live.probeTimeoutMs,
      failure_threshold: live.failureThreshold, watchdog_sec: live.watchdogMs === undefined ? null : live.watchdogMs / 1000,
    } : null,
    depends_on: svc.dependsOn ?? {},
  };
}
