/**
 * What `pmctl update` must do: compare two loaded configs service by service.
 *
 * A service is `resourcesOnly` when everything that shapes the running process is equal and
 * only settings the daemon can apply live differ. Those live settings are:
 *  - `resources:` (all of it): written to the service's cgroup files in place;
 *  - `restart_policy:` (all of it): consulted only when the process next exits;
 *  - `logs.rotation_*` and `logs.hints`: used by the daemon's rotation timer and by `pmctl logs`;
 *    the service keeps writing to the same stdout/stderr files;
 *  - how to stop it: `process.stop_command`, `process.stop_signal`, `process.stop_grace_ms`,
 *    `logs.stop_command_stdout`, `logs.stop_command_stderr`, `process.stop_mode`: used only at the next stop;
 *  - `process.reload_signal`, `process.reload_command`: used only by `pmctl reload`;
 *  - `process.start_seconds`, `readiness:`, `liveness:`: used from the next run on;
 *  - `depends_on:`: used at the next start or stop (order), never a reason to restart.
 * Everything else — `enabled`, `process.command`, working directory, user/group, environment,
 * schedule, `allow_writable_command`, `logs.stdout`/`logs.stderr` — is `changed`: the daemon
 * restarts the service (or starts/stops it for `enabled`). The defining file's path is ignored.
 * For both `changed` and `resourcesOnly`, the daemon replaces its stored definition.
 */
import type { Config, ServiceConfig } from "./types.ts";
import { extrasRunShape } from "./process-extras.ts";

export interface ConfigDiff {
  added: string[];
  removed: string[];
  /** Needs a restart (or a start/stop, when `enabled` flipped). */
  changed: string[];
  unchanged: string[];
  /** Only live-applicable settings differ (see the header comment); no restart. */
  resourcesOnly: string[];
}

/** The part of a service definition whose change requires a restart. */
function restartShape(s: ServiceConfig): unknown {
  const p = s.process;
  return {
    name: s.name,
    enabled: s.enabled,
    process: {
      command: p.command, workingDirectory: p.workingDirectory, user: p.user, group: p.group, uid: p.uid, gid: p.gid,
      environment: p.environment, schedule: p.schedule, scheduleTimezone: p.scheduleTimezone,
      allowWritableCommand: p.allowWritableCommand, ...(extrasRunShape(p) as object),
      inheritEnvironment: p.inheritEnvironment, noNewPrivileges: p.noNewPrivileges,
      // startMs is left out on purpose: a live setting (see the header).
    },
    logs: { stdout: s.logs.stdout, stderr: s.logs.stderr },
  };
}

/** Everything of a service definition but the file it came from. */
function fullShape(s: ServiceConfig): unknown {
  const { file: _file, ...rest } = s;
  return rest;
}

export function diffConfigs(old: Config, next: Config): ConfigDiff {
  const d: ConfigDiff = { added: [], removed: [], changed: [], unchanged: [], resourcesOnly: [] };
  for (const [name, n] of next.services) {
    const o = old.services.get(name);
    if (!o) d.added.push(name);
    else if (!deepEqual(restartShape(o), restartShape(n))) d.changed.push(name);
    else if (!deepEqual(fullShape(o), fullShape(n))) d.resourcesOnly.push(name);
    else d.unchanged.push(name);
  }
  for (const name of old.services.keys()) if (!next.services.has(name)) d.removed.push(name);
  for (const list of Object.values(d)) (list as string[]).sort();
  return d;
}

/** Structural equality of plain config values; `undefined` members count as absent. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  if (ak.length !== bk.length) return false;
  return ak.every((k) => Object.hasOwn(bo, k) && deepEqual(ao[k], bo[k]));
}
