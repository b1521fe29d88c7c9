/** Rendering daemon replies as tables for people. */
import type { StatusRow } from "../supervisor/status.ts";
import { formatBytes, formatDurationMs } from "../util/units.ts";
import { printable } from "../util/log.ts";
import { localTime, relativeTime } from "./times.ts";

export interface RenderOptions {
  /** ANSI colours for states (only on a terminal, without NO_COLOR/--no-color). */
  color?: boolean;
  /** Wall-clock now, for relative times. */
  nowMs?: number;
}

/** SGR colour of each state: green up, yellow on the way, red down for a reason, plain at rest. */
const STATE_COLOURS: Record<string, string> = {
  running: "32", starting: "33", stopping: "33", killing: "33", backoff: "33",
  failed: "31", suppressed: "31", scheduled: "36", exited: "2", stopped: "2",
};
export const colourState = (state: string) => (STATE_COLOURS[state] ? `\x1b[${STATE_COLOURS[state]}m${state}\x1b[0m` : state);

/** Rows of the table view leave out null, false and empty fields (StatusRow): `== null` and `?.` below. */
export function lastExitText(a: StatusRow): string {
  if (a.last_exit == null) return "-";
  if (a.last_exit === "unknown") return "unknown";
  const what = a.exit_signal ? a.exit_signal : a.exit_code != null ? `code ${a.exit_code}` : null;
  if (what === null) return a.last_exit; // e.g. oom-kill of an adopted run: no exit status known
  return a.last_exit === "exit" ? what : `${a.last_exit} (${what})`;
}

/** PIDS column: the main process first, marked `*`, then the others; at most 4, then `+N`. */
function pidsText(a: StatusRow): string {
  const main = a.main_pid != null && a.pids.includes(a.main_pid) ? a.main_pid : null;
  const cells = main === null ? a.pids.map(String) : [`${main}*`, ...a.pids.filter((p) => p !== main).map(String)];
  return cells.length > 4 ? `${cells.slice(0, 4).join(",")},+${cells.length - 4}` : cells.join(",") || "-";
}

/** READY column: `yes`, `no`, `starting` (start_seconds or readiness pending); `-` when not running. */
function readyText(a: StatusRow): string {
  if (a.ready === undefined || a.ready === null) return "-";
  if (a.start === "starting") return "starting";
  return a.ready ? "yes" : "no";
}

function noteText(a: StatusRow, nowMs: number): string {
  const notes: string[] = [];
  if (a.waiting_for?.length) notes.push(`waiting for ${a.waiting_for.join(", ")}`);
  if (a.ready === false && a.readiness) notes.push(`not ready: ${a.readiness}`);
  if (a.health) notes.push(a.health);
  if (a.start_failure && a.state !== "running") notes.push(`start failed: ${a.start_failure}`);
  if (a.state === "backoff" && a.next_attempt_at) notes.push(`next attempt ${localTime(a.next_attempt_at, nowMs)}`);
  if (a.state === "suppressed" && a.suppressed_reason) notes.push(a.suppressed_reason);
  if (a.next_run_at) notes.push(`next run ${localTime(a.next_run_at, nowMs, a.schedule_timezone)}`);
  if (a.enabled === false) notes.push("disabled");
  if (a.operator_stopped && a.state === "stopped") notes.push("stopped by operator");
  if (a.limits_not_in_force?.length) notes.push(`limits not in force: ${a.limits_not_in_force.map((l) => l.file).join(",")}`);
  return notes.join("; ");
}

/**
 * Columns padded to their widest cell; `paint` decorates a cell after padding (escape codes have
 * no width). Plain loops: a cold pmctl runs this in the interpreter, and at 1000 services the
 * map/spread version took ~4 ms of it (issue 15, timestamps in a compiled build).
 */
export function renderTable(rows: string[][], paint?: (row: number, col: number, padded: string) => string): string {
  const cols = rows[0]!.length;
  const widths: number[] = new Array(cols).fill(0);
  for (const r of rows) {
    for (let i = 0; i < cols; i++) { const n = (r[i] ?? "").length; if (n > widths[i]!) widths[i] = n; }
  }
  const lines: string[] = new Array(rows.length);
  for (let ri = 0; ri < rows.length; ri++) {
    const r = rows[ri]!;
    let line = "";
    for (let i = 0; i < r.length; i++) {
      const padded = i === r.length - 1 ? r[i]! : r[i]!.padEnd(widths[i]!);
      line += (i === 0 ? "" : "  ") + (paint ? paint(ri, i, padded) : padded);
    }
    lines[ri] = line.trimEnd();
  }
  return lines.join("\n");
}

/** The NOTE cell; most rows have none, and an empty one needs no escaping. */
function noteOf(a: StatusRow, nowMs: number): string {
  const note = noteText(a, nowMs);
  return note === "" ? "" : printable(note, 2000);
}

export function renderStatus(apps: StatusRow[], opts: RenderOptions = {}): string {
  const nowMs = opts.nowMs ?? Date.now();
  if (apps.length === 0) return "no services configured";
  const rows = [["NAME", "STATE", "PIDS", "UPTIME", "RESTARTS", "LAST EXIT", "CPU", "MEM", "READY", "NOTE"]];
  for (const a of apps) {
    rows.push([
      a.name, a.state, pidsText(a),
      a.uptime_ms == null ? "-" : formatDurationMs(a.uptime_ms),
      String(a.restarts), a.last_exit != null && a.last_exit_at ? `${lastExitText(a)}, ${relativeTime(Date.parse(a.last_exit_at), nowMs)}` : lastExitText(a),
      a.cpu_usage_usec == null ? "-" : `${(a.cpu_usage_usec / 1e6).toFixed(1)}s`,
      a.memory_current == null ? "-" : formatBytes(a.memory_current),
      readyText(a),
      // Notes carry text a service chose (start failures, health output): no control characters reach the terminal.
      noteOf(a, nowMs),
    ]);
  }
  if (!opts.color) return renderTable(rows);
  return renderTable(rows, (row, col, padded) => {
    if (row === 0) return `\x1b[1m${padded}\x1b[0m`;
    if (col !== 1) return padded;
    const state = padded.trimEnd();
    return colourState(state) + padded.slice(state.length);
  });
}
