/** Rendering daemon replies as tables for people. */
import type { AppStatus, HealthStatus } from "../supervisor/status.ts";
import { formatBytes, formatDurationMs } from "../util/units.ts";

export function lastExitText(a: AppStatus): string {
  if (a.last_exit === null) return "-";
  if (a.last_exit === "unknown") return "unknown";
  const what = a.exit_signal ? a.exit_signal : a.exit_code !== null ? `code ${a.exit_code}` : null;
  if (what === null) return a.last_exit; // e.g. oom-kill of an adopted run: no exit status known
  return a.last_exit === "exit" ? what : `${a.last_exit} (${what})`;
}

/** READY column: `yes`, `no`, `starting` (start_seconds or readiness pending); `-` when not running. */
function readyText(a: AppStatus & Partial<HealthStatus>): string {
  if (a.ready === undefined || a.ready === null) return "-";
  if (a.start === "starting") return "starting";
  return a.ready ? "yes" : "no";
}

function noteText(a: AppStatus & Partial<HealthStatus>): string {
  const notes: string[] = [];
  if (a.waiting_for?.length) notes.push(`waiting for ${a.waiting_for.join(", ")}`);
  if (a.ready === false && a.readiness) notes.push(`not ready: ${a.readiness}`);
  if (a.health) notes.push(a.health);
  if (a.start_failure && a.state !== "running") notes.push(`start failed: ${a.start_failure}`);
  if (a.state === "backoff" && a.next_attempt_at) notes.push(`next attempt ${a.next_attempt_at}`);
  if (a.state === "suppressed" && a.suppressed_reason) notes.push(a.suppressed_reason);
  if (a.next_run_at) notes.push(`next run ${a.next_run_at}`);
  if (!a.enabled) notes.push("disabled");
  if (a.operator_stopped && a.state === "stopped") notes.push("stopped by operator");
  if (a.limits_not_in_force.length) notes.push(`limits not in force: ${a.limits_not_in_force.map((l) => l.file).join(",")}`);
  return notes.join("; ");
}

export function renderTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd()).join("\n");
}

export function renderStatus(apps: AppStatus[]): string {
  if (apps.length === 0) return "no services configured";
  const rows = [["NAME", "STATE", "PIDS", "UPTIME", "RESTARTS", "LAST EXIT", "CPU", "MEM", "READY", "NOTE"]];
  for (const a of apps) {
    const pids = a.pids.length > 4 ? `${a.pids.slice(0, 4).join(",")},+${a.pids.length - 4}` : a.pids.join(",") || "-";
    rows.push([
      a.name, a.state, pids,
      a.uptime_ms === null ? "-" : formatDurationMs(a.uptime_ms),
      String(a.restarts), lastExitText(a),
      a.cpu_usage_usec === null ? "-" : `${(a.cpu_usage_usec / 1e6).toFixed(1)}s`,
      a.memory_current === null ? "-" : formatBytes(a.memory_current),
      readyText(a),
      noteText(a),
    ]);
  }
  return renderTable(rows);
}
