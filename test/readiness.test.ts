/** The start gate and health state machine (supervisor/readiness.ts), with plain numbers for time. */
import { describe, expect, test } from "bun:test";
import { beginGate, gateStep, type GateConfig, type GateEffect, type GateEvent, type GateState } from "../src/supervisor/readiness.ts";

const tcp = { intervalMs: 100, timeoutMs: 1000, failOnTimeout: true, notify: false, what: "tcp 127.0.0.1:1" };

/** Runs events at times; returns the final state and every effect type seen (with reasons). */
function run(cfg: GateConfig, events: [number, GateEvent][], adopted = false): { state: GateState; seen: string[]; effects: GateEffect[] } {
  let t = beginGate(cfg, 0, adopted);
  const effects = [...t.effects];
  for (const [at, ev] of events) {
    t = gateStep(t.state, ev, cfg, at);
    effects.push(...t.effects);
  }
  const seen = effects.filter((e) => e.type !== "arm" && e.type !== "disarm" && e.type !== "log")
    .map((e) => ("reason" in e ? `${e.type}: ${e.reason}` : "probe" in e ? `probe ${e.probe}` : e.type));
  return { state: t.state, seen, effects };
}

const armAt = (effects: GateEffect[]) => effects.filter((e) => e.type === "arm").map((e) => (e as { atMs: number }).atMs);

describe("start_seconds without readiness", () => {
  test.each([
    ["up once start_seconds passed", [[1000, { type: "timer" }]], "up", ["up", "ready"]],
    ["a timer before start_seconds changes nothing", [[500, { type: "timer" }]], null, []],
    ["an exit with a failure before start_seconds fails the start", [[200, { type: "ended", exitText: "exited with code 7", failure: true }]], "failed",
      ["startFailed: exited with code 7 after 0.2s, before start_seconds (1s)"]],
    ["an exit with code 0 before start_seconds is a completed one-shot", [[200, { type: "ended", exitText: "exited with code 0", failure: false }]], "up", ["up"]],
    ["an exit after the start succeeded is not a failed start", [[1000, { type: "timer" }], [5000, { type: "ended", exitText: "exited with code 1", failure: true }]], "up", ["up", "ready"]],
    ["a stop before start_seconds ends the start as failed", [[300, { type: "stopping" }]], "failed", []],
  ] as [string, [number, GateEvent][], string | null, string[]][])("%s", (_name, events, outcome, seen) => {
    const r = run({ startMs: 1000 }, events);
    expect(r.state.outcome).toBe(outcome as GateState["outcome"]);
    expect(r.seen).toEqual(seen);
  });

  test("start_seconds 0: up at once; the first timer is the start deadline", () => {
    expect(run({ startMs: 0 }, []).seen).toEqual(["up", "ready"]);
    expect(armAt(beginGate({ startMs: 1000 }, 0).effects)).toEqual([1000]);
  });
});

describe("readiness", () => {
  test.each([
    ["probes at once, again each interval while failing", { startMs: 0, readiness: tcp },
      [[0, { type: "probeResult", probe: "readiness", ok: false, detail: "connection refused" }], [100, { type: "timer" }]],
      null, ["probe readiness", "probe readiness"]],
    ["ready when a check passes: up and ready", { startMs: 0, readiness: tcp },
      [[0, { type: "probeResult", probe: "readiness", ok: false, detail: "refused" }], [100, { type: "timer" }], [150, { type: "probeResult", probe: "readiness", ok: true, detail: "connected" }]],
      "up", ["probe readiness", "probe readiness", "ready", "up"]],
    ["ready before start_seconds: up only once start_seconds passed", { startMs: 1000, readiness: tcp },
      [[50, { type: "probeResult", probe: "readiness", ok: true, detail: "connected" }], [1000, { type: "timer" }]],
      "up", ["probe readiness", "ready", "up"]],
    ["timeout with fail_on_timeout: the start fails and the run must be stopped", { startMs: 0, readiness: tcp },
      [[0, { type: "probeResult", probe: "readiness", ok: false, detail: "connection refused" }], [1000, { type: "timer" }]],
      "failed", ["probe readiness", "startFailed: not ready within 1s (tcp 127.0.0.1:1: connection refused)"]],
    ["timeout without fail_on_timeout: up but not ready, still checking", { startMs: 0, readiness: { ...tcp, failOnTimeout: false } },
      [[0, { type: "probeResult", probe: "readiness", ok: false, detail: "refused" }], [1000, { type: "timer" }]],
      "up", ["probe readiness", "up", "probe readiness"]],
    ["an exit before ready fails the start, naming readiness", { startMs: 0, readiness: tcp },
      [[300, { type: "ended", exitText: "exited with code 1", failure: true }]],
      "failed", ["probe readiness", "startFailed: exited with code 1 after 0.3s, before it was ready"]],
    ["notify: READY=1 makes it ready; no probes run", { startMs: 0, readiness: { ...tcp, notify: true } },
      [[200, { type: "notify", ready: true, status: "accepting" }]],
      "up", ["ready", "up"]],
    ["a probe result after the run ended is ignored", { startMs: 0, readiness: tcp },
      [[10, { type: "ended", exitText: "exited with code 1", failure: true }], [20, { type: "probeResult", probe: "readiness", ok: true, detail: "x" }]],
      "failed", ["probe readiness", "startFailed: exited with code 1 after 0s, before it was ready"]],
  ] as [string, GateConfig, [number, GateEvent][], string | null, string[]][])("%s", (_name, cfg, events, outcome, seen) => {
    const r = run(cfg, events);
    expect(r.state.outcome).toBe(outcome as GateState["outcome"]);
    expect(r.seen).toEqual(seen);
  });

  test("an adopted run is up; its readiness is checked but cannot fail it", () => {
    const r = run({ startMs: 1000, readiness: tcp }, [[0, { type: "probeResult", probe: "readiness", ok: false, detail: "refused" }], [5000, { type: "timer" }]], true);
    expect(r.state.outcome).toBe("up");
    expect(r.state.ready).toBe(false);
    expect(r.seen).toEqual(["probe readiness", "probe readiness"]);
  });
});

describe("liveness", () => {
  const live = { intervalMs: 1000, failureThreshold: 3, notify: false, what: "http x" };
  const fail = (at: number): [number, GateEvent][] => [[at, { type: "timer" }], [at + 10, { type: "probeResult", probe: "liveness", ok: false, detail: "HTTP 500" }]];

  test("checks begin once ready; failure_threshold failures in a row make the run unhealthy", () => {
    const r = run({ startMs: 0, liveness: live }, [...fail(1000), ...fail(2010), ...fail(3020)]);
    expect(r.seen).toEqual(["up", "ready", "probe liveness", "probe liveness", "probe liveness", "unhealthy: liveness failed 3 times in a row: HTTP 500"]);
    expect(r.state.active).toBe(false);
  });

  test("a passing check resets the count", () => {
    const ok: [number, GateEvent][] = [[2010, { type: "timer" }], [2020, { type: "probeResult", probe: "liveness", ok: true, detail: "HTTP 200" }]];
    const r = run({ startMs: 0, liveness: live }, [...fail(1000), ...ok, ...fail(3020), ...fail(4030)]);
    expect(r.seen).not.toContain("unhealthy: liveness failed 3 times in a row: HTTP 500");
    expect(r.state.livenessFailures).toBe(2);
  });

  test("notify watchdog: a missed WATCHDOG=1 counts as a failure; one in time resets", () => {
    const cfg: GateConfig = { startMs: 0, liveness: { ...live, notify: true, watchdogMs: 500, failureThreshold: 2 } };
    const kept = run(cfg, [[400, { type: "notify", watchdog: true }], [800, { type: "notify", watchdog: true }], [1200, { type: "timer" }]]);
    expect(kept.state.livenessFailures).toBe(0);
    const missed = run(cfg, [[500, { type: "timer" }], [1000, { type: "timer" }]]);
    expect(missed.seen.at(-1)).toBe("unhealthy: liveness failed 2 times in a row: no WATCHDOG=1 within 0.5s");
  });
});

describe("notify STOPPING=1", () => {
  const notifyReady = { ...tcp, notify: true, what: "notify" };
  const watchdog: GateConfig = { startMs: 0, readiness: notifyReady, liveness: { intervalMs: 1000, failureThreshold: 1, notify: true, watchdogMs: 500, what: "notify" } };
  const exec: GateConfig = { startMs: 0, liveness: { intervalMs: 100, failureThreshold: 1, notify: false, what: "exec true" } };

  test("after ready: not ready, no more checks or watchdog verdicts; its exit with code 0 is no failure", () => {
    const r = run(watchdog, [
      [100, { type: "notify", ready: true }],
      [200, { type: "notify", stopping: true }],
      [5000, { type: "timer" }],
      [5000, { type: "notify", watchdog: true }],
      [6000, { type: "ended", exitText: "exited with code 0", failure: false }],
    ]);
    expect(r.state).toMatchObject({ outcome: "up", ready: false, active: false, failure: null });
    expect(r.seen).toEqual(["ready", "up"]);
    expect(r.effects).toContainEqual({ type: "log", level: "info", message: "the service says it is stopping (STOPPING=1)" });
    // Nothing is armed after STOPPING=1: the watchdog deadline (at 600) is gone.
    const after = run(watchdog, [[100, { type: "notify", ready: true }], [200, { type: "notify", stopping: true }]]);
    expect(after.effects.at(-1)).toEqual({ type: "disarm" });
  });

  test("liveness probes stop once the service says it is stopping", () => {
    const before = run(exec, [[100, { type: "timer" }]]);
    expect(before.seen).toEqual(["up", "ready", "probe liveness"]);
    const r = run(exec, [[50, { type: "notify", stopping: true }], [100, { type: "timer" }], [1000, { type: "timer" }]]);
    expect(r.seen).toEqual(["up", "ready"]);
  });

  test.each([
    ["exit 0: a completed start", false, "up", []],
    ["a failure exit: a failed start", true, "failed", ["startFailed: exited with code 1 after 0.3s, before it was ready"]],
  ] as const)("while the start is pending, the exit decides it (%s)", (_name, failure, outcome, failed) => {
    const r = run({ startMs: 0, readiness: notifyReady }, [
      [100, { type: "notify", stopping: true }],
      [300, { type: "ended", exitText: `exited with code ${failure ? 1 : 0}`, failure }],
    ]);
    expect(r.state.outcome).toBe(outcome);
    expect(r.seen).toEqual(failure ? [...failed] : ["up"]);
  });
});
