/**
 * `status` with `options.view: "table"` (what pmctl's table asks for; issue 15): each row holds
 * the table's fields with the values of the full answer, null and empty ones left out,
 * and the table rendered from rows is the table rendered from the full answer. `--json` still
 * gets the full documented answer, and a daemon that does not know the option still serves the
 * table (pmctl falls back to the full request).
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { callDaemon } from "../src/control/client.ts";
import { parseRequest } from "../src/control/protocol.ts";
import { renderStatus } from "../src/cli/render.ts";
import type { AppStatus, StatusRow } from "../src/supervisor/status.ts";
import { pmctlCommand, runPm, waitUntil, World } from "./helpers/harness.ts";
import { app } from "./helpers/status-fixture.ts";

setDefaultTimeout(60_000);

let world: World;
afterEach(async () => { await world?.cleanup(); });

/** Every field a row may carry: the table's columns and notes (src/cli/render.ts). */
const ROW_FIELDS = ["name", "state", "pids", "restarts", "main_pid", "enabled", "operator_stopped", "uptime_ms", "exit_code", "exit_signal", "last_exit", "last_exit_at",
  "next_attempt_at", "next_run_at", "schedule_timezone", "suppressed_reason", "cpu_usage_usec", "memory_current", "limits_not_in_force",
  "ready", "start", "readiness", "health", "start_failure", "waiting_for"];
const ALWAYS = new Set(["name", "state", "pids", "restarts"]);

/** The full answer cut down to a row: table fields only, null and empty ones left out; `enabled` only when false, `operator_stopped` only when true. */
function project(a: AppStatus): StatusRow {
  const row: Record<string, unknown> = {};
  for (const k of ROW_FIELDS) {
    const v = (a as unknown as Record<string, unknown>)[k];
    if (ALWAYS.has(k)) row[k] = v;
    else if (k === "enabled") { if (v === false) row[k] = v; }
    else if (k === "operator_stopped") { if (v === true) row[k] = v; }
    else if (v !== null && v !== undefined && !(Array.isArray(v) && v.length === 0)) row[k] = v;
  }
  return row as StatusRow;
}

test("the table from rows is the table from the full answer", () => {
  const nowMs = Date.parse("2026-12-06T10:00:00Z");
  const apps = [
    app({ name: "web", pids: [10, 11, 12, 13, 14], main_pid: 12, uptime_ms: 65_000, cpu_usage_usec: 1_500_000, memory_current: 3 << 20, ready: true, start: "up", readiness: "ready" }),
    app({ name: "off", state: "stopped", enabled: false }),
    app({ name: "held", state: "stopped", operator_stopped: true, last_exit: "exit", exit_code: 0, last_exit_at: "2026-12-06T09:00:00.000Z" }),
    app({ name: "crash", state: "backoff", restarts: 3, last_exit: "exit", exit_code: 2, last_exit_at: "2026-12-06T09:59:58.000Z", next_attempt_at: "2026-12-06T10:00:04.000Z", start_failure: "exited with code 2 before start_seconds" }),
    app({ name: "gone", state: "suppressed", last_exit: "killed-after-grace", exit_signal: "SIGKILL", suppressed_reason: "5 restarts in 1m" }),
    app({ name: "job", state: "scheduled", next_run_at: "2026-12-06T10:05:00.000Z", schedule_timezone: "UTC", limits_not_in_force: [{ file: "cpu.max", value: "max", reason: "no cpu controller" }] }),
    app({ name: "api", state: "stopped", waiting_for: ["db (ready)"], ready: false, readiness: "tcp 127.0.0.1:1: refused", health: "2 failed checks: refused" }),
    app({ name: "adopted", last_exit: "unknown", pids: [7], uptime_ms: 500 }),
  ];
  for (const color of [false, true]) {
    expect(renderStatus(apps.map(project), { nowMs, color })).toBe(renderStatus(apps, { nowMs, color }));
  }
});

test("the PIDS column lists the main process first, marked *, before the cut to four", () => {
  const pidsCell = (over: Partial<AppStatus>) => renderStatus([project(app({ name: "s", ...over }))], { nowMs: 0 }).split("\n")[1]!.split(/\s+/)[2];
  expect(pidsCell({ pids: [10, 11, 12, 13, 14, 15], main_pid: 15 })).toBe("15*,10,11,12,+2");
  expect(pidsCell({ pids: [10, 11], main_pid: 10 })).toBe("10*,11");
  expect(pidsCell({ pids: [10, 11], main_pid: null })).toBe("10,11"); // exit_type cgroup, or the main process left
  expect(pidsCell({ pids: [11], main_pid: 10 })).toBe("11"); // a main PID not (or no longer) in the cgroup is not shown
  expect(pidsCell({ pids: [], main_pid: null, state: "stopped" })).toBe("-");
});

test("the protocol takes view: \"table\" and refuses any other view", () => {
  expect(parseRequest('{"cmd":"status","names":[],"options":{"view":"table"}}').options).toEqual({ view: "table" });
  expect(() => parseRequest('{"cmd":"status","names":[],"options":{"view":"all"}}')).toThrow(/view must be "table"/);
});

describe("a daemon's table rows", () => {
  test("hold the full answer's values for the table's fields, nulls left out; --json stays full", async () => {
    world = new World();
    const sleeper = { process: { command: ["sleep", "1000"], stop_grace_ms: 2000 } };
    world.writeService("up", sleeper);
    world.writeService("held", sleeper);
    world.writeService("off", { ...sleeper, enabled: false });
    world.writeService("dead", { process: { command: ["sh", "-c", "exit 2"] } });
    world.writeService("flappy", { process: { command: ["sh", "-c", "exit 1"] }, restart_policy: { policy: "always", restart_backoff_ms: "1h" } });
    world.writeService("job", { process: { command: ["true"], schedule: "0 0 1 1 *", schedule_timezone: "UTC" } });
    await world.daemon();
    await waitUntil(async () => (await world.app("up")).state === "running", "up to run");
    await waitUntil(async () => (await world.app("dead")).state === "failed", "dead to fail");
    await waitUntil(async () => (await world.app("flappy")).state === "backoff", "flappy in backoff");
    expect((await world.pmctl(["stop", "held"])).code).toBe(0);

    const rows = ((await callDaemon(world.sockPath, "status", [], { options: { view: "table" } })) as { apps: StatusRow[] }).apps;
    const full = await world.status();
    expect(rows.map((r) => r.name)).toEqual(full.map((a) => a.name));
    for (const [i, row] of rows.entries()) {
      for (const k of Object.keys(row)) expect(ROW_FIELDS, `${row.name}.${k}`).toContain(k);
      // Uptime and CPU time move between the two requests: compared for presence, the rest for equality.
      const want = project(full[i]!);
      for (const k of ["uptime_ms", "cpu_usage_usec"] as const) {
        expect(k in row, `${row.name}.${k}`).toBe(k in want);
        delete row[k]; delete want[k];
      }
      expect(row).toEqual(want);
    }
    expect(rows.find((r) => r.name === "up")!.pids.length).toBe(1);
    expect(rows.find((r) => r.name === "off")!.enabled).toBe(false);
    expect(rows.find((r) => r.name === "job")!.next_run_at).toBe("2027-01-01T00:00:00.000Z");

    const json = JSON.parse((await world.pmctl(["status", "--json"])).stdout) as { apps: AppStatus[] };
    expect(Object.keys(json.apps[0]!)).toEqual(expect.arrayContaining(["main_pid", "started_at", "memory_peak", "logs", "notify_status"]));
    const table = await world.pmctl(["status"]);
    expect(table.stdout).toMatch(new RegExp(`^up\\s+running\\s+${rows.find((r) => r.name === "up")!.main_pid}\\*\\s`, "m"));
    expect(table.stdout).toMatch(/^off\s+stopped\s.*disabled$/m);
    expect(table.stdout).toMatch(/^held\s+stopped\s.*stopped by operator$/m);
  });
});

test("pmctl's table works with a daemon that refuses the view option (one from before it)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pm-oldd-"));
  const sock = join(dir, "pm.sock");
  writeFileSync(join(dir, "config.yaml"), JSON.stringify({ sock_path: sock }));
  const seen: string[] = [];
  const full = { apps: [app({ name: "web", pids: [42], uptime_ms: 3000, ready: true, start: "up" })] };
  // What an older daemon answers: parseOptions refused any option it did not know.
  const server = Bun.listen({
    unix: sock,
    socket: {
      data(s, chunk) {
        const line = Buffer.from(chunk).toString().trim();
        seen.push(line);
        const req = JSON.parse(line) as { options?: Record<string, unknown> };
        const reply = req.options?.view !== undefined
          ? { type: "error", code: "PROTOCOL", message: 'unknown option "view"' }
          : { type: "result", data: full };
        s.write(JSON.stringify(reply) + "\n");
      },
    },
  });
  try {
    const r = await runPm(pmctlCommand(["-c", join(dir, "config.yaml"), "status"]));
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^web\s+running\s+42\s+3s\s/m);
    expect(seen.map((l) => JSON.parse(l).options ?? null)).toEqual([{ view: "table" }, null]);
  } finally {
    server.stop(true);
    rmSync(dir, { recursive: true, force: true });
  }
});
