/**
 * The pure service state machine: every phase × event pair, decided on purpose, then the cases
 * whose reasons are worth spelling out one by one.
 */
import { describe, expect, test } from "bun:test";
import type { RestartPolicyConfig } from "../src/config/types.ts";
import type { ExitInfo } from "../src/supervisor/policy.ts";
import { initialUnitState, PHASES, transition, type Effect, type Phase, type UnitContext, type UnitEvent, type UnitState } from "../src/supervisor/unit.ts";

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const GRACE = 2000;
const BACKOFF = 1000;

const policy = (over: Partial<RestartPolicyConfig> = {}): RestartPolicyConfig => ({
  policy: "on-failure", restartBackoffMs: BACKOFF, maxRestarts: 3, toleranceWindowMs: 60_000, ...over,
});

const ctxOf = (over: Partial<UnitContext> = {}): UnitContext => ({
  enabled: true, scheduled: false, stopGraceMs: GRACE, restartPolicy: policy(), nowWallMs: T0, ...over,
});

const code = (c: number): ExitInfo => ({ code: c, signal: null, known: true });

/** A unit resting in `phase`, with what that phase implies (a PID while running, escalated while killing). */
function stateIn(phase: Phase, over: Partial<UnitState> = {}): UnitState {
  const s: UnitState = { ...initialUnitState(), phase };
  if (phase === "running" || phase === "stopping" || phase === "killing") Object.assign(s, { mainPid: 4242, startedAtWallMs: T0 - 5000 });
  if (phase === "killing") s.escalated = true;
  if (phase === "backoff") s.nextAttemptWallMs = T0 + BACKOFF;
  if (phase === "suppressed") s.suppressedReason = "exited with code 1; 3 restarts in 1m";
  return { ...s, ...over };
}

/** The effects that act on the world, as a compact signature (logs and persists left out). */
function actions(effects: Effect[]): string[] {
  return effects.flatMap((e) => {
    switch (e.type) {
      case "spawn": case "sendStop": case "kill": case "cancelTimer": return [e.type];
      case "armTimer": return [`armTimer(${e.ms})`];
      default: return [];
    }
  });
}

interface Expected { phase: Phase; actions: string[] }
const stay = (phase: Phase): Expected => ({ phase, actions: [] });
const to = (phase: Phase, ...acts: string[]): Expected => ({ phase, actions: acts });

const SPAWN = ["cancelTimer", "spawn"];
const STOP = ["sendStop", `armTimer(${GRACE})`];

/**
 * The table, for an enabled, unscheduled service with restart policy on-failure (backoff 1 s)
 * and no operator stop. `exited` is a failure (code 1). Each row lists all ten phases.
 */
const EVENTS: { name: string; event: UnitEvent; expect: Record<Phase, Expected> }[] = [
  {
    // Daemon start, cgroup empty: the restored phase only matters when restarts were suppressed.
    name: "boot (cgroup empty)", event: { type: "boot", populated: false },
    expect: {
      stopped: to("starting", ...SPAWN), starting: to("starting", ...SPAWN), running: to("starting", ...SPAWN),
      stopping: to("starting", ...SPAWN), killing: to("starting", ...SPAWN), backoff: to("starting", ...SPAWN),
      exited: to("starting", ...SPAWN), failed: to("starting", ...SPAWN), suppressed: stay("suppressed"),
      scheduled: to("starting", ...SPAWN),
    },
  },
  {
    // Daemon start, cgroup populated: adopt, whatever was restored.
    name: "boot (cgroup populated)", event: { type: "boot", populated: true },
    expect: Object.fromEntries(PHASES.map((p) => [p, stay("running")])) as Record<Phase, Expected>,
  },
  {
    name: "start", event: { type: "start" },
    expect: {
      stopped: to("starting", ...SPAWN), starting: stay("starting"), running: stay("running"),
      stopping: stay("stopping"), killing: stay("killing"), // start again once the stop completes
      backoff: to("starting", ...SPAWN), exited: to("starting", ...SPAWN), failed: to("starting", ...SPAWN),
      suppressed: to("starting", ...SPAWN), scheduled: to("starting", ...SPAWN),
    },
  },
  {
    name: "stop", event: { type: "stop" },
    expect: {
      stopped: to("stopped", "cancelTimer"), starting: to("stopping", ...STOP), running: to("stopping", ...STOP),
      stopping: stay("stopping"), killing: stay("killing"),
      backoff: to("stopped", "cancelTimer"), exited: to("stopped", "cancelTimer"), failed: to("stopped", "cancelTimer"),
      suppressed: to("stopped", "cancelTimer"), scheduled: to("stopped", "cancelTimer"),
    },
  },
  {
    name: "restart", event: { type: "restart" },
    expect: {
      stopped: to("starting", ...SPAWN), starting: to("stopping", ...STOP), running: to("stopping", ...STOP),
      stopping: stay("stopping"), killing: stay("killing"),
      backoff: to("starting", ...SPAWN), exited: to("starting", ...SPAWN), failed: to("starting", ...SPAWN),
      suppressed: to("starting", ...SPAWN), scheduled: to("starting", ...SPAWN),
    },
  },
  {
    // Only a unit that asked for a spawn takes the report.
    name: "spawned", event: { type: "spawned", pid: 777 },
    expect: { ...Object.fromEntries(PHASES.map((p) => [p, stay(p)])), starting: stay("running") } as Record<Phase, Expected>,
  },
  {
    name: "spawnFailed", event: { type: "spawnFailed", message: "ENOENT" },
    expect: { ...Object.fromEntries(PHASES.map((p) => [p, stay(p)])), starting: to("backoff", `armTimer(${BACKOFF})`) } as Record<Phase, Expected>,
  },
  {
    name: "exited (code 1)", event: { type: "exited", exit: code(1) },
    expect: {
      stopped: stay("stopped"), starting: to("backoff", `armTimer(${BACKOFF})`), running: to("backoff", `armTimer(${BACKOFF})`),
      stopping: to("stopped", "cancelTimer"), killing: to("stopped", "cancelTimer"),
      backoff: stay("backoff"), exited: stay("exited"), failed: stay("failed"), suppressed: stay("suppressed"), scheduled: stay("scheduled"),
    },
  },
  {
    // The main process died by a signal with others left (exit_type auto, see exit-type.test.ts):
    // a running service ends; anywhere else only the PID is forgotten.
    name: "mainExited (SIGKILL, others remain)", event: { type: "mainExited", exit: { code: null, signal: "SIGKILL", known: true }, othersRemain: true },
    expect: { ...Object.fromEntries(PHASES.map((p) => [p, stay(p)])), running: to("stopping", ...STOP) } as Record<Phase, Expected>,
  },
  {
    // The one armed timer: grace in stopping, backoff in backoff; anywhere else it is stale.
    name: "timer", event: { type: "timer" },
    expect: { ...Object.fromEntries(PHASES.map((p) => [p, stay(p)])), stopping: to("killing", "kill"), backoff: to("starting", ...SPAWN) } as Record<Phase, Expected>,
  },
  {
    name: "cronTick", event: { type: "cronTick" },
    expect: {
      stopped: to("starting", ...SPAWN), starting: stay("starting"), running: stay("running"), stopping: stay("stopping"), killing: stay("killing"),
      backoff: stay("backoff"), exited: to("starting", ...SPAWN), failed: to("starting", ...SPAWN), suppressed: stay("suppressed"),
      scheduled: to("starting", ...SPAWN),
    },
  },
  {
    // The definition changed and the service is (still) enabled and unscheduled.
    name: "configChanged (enabled)", event: { type: "configChanged", enabled: true },
    expect: {
      stopped: to("starting", ...SPAWN), scheduled: to("starting", ...SPAWN),
      starting: stay("starting"), running: stay("running"), stopping: stay("stopping"), killing: stay("killing"),
      backoff: stay("backoff"), exited: stay("exited"), failed: stay("failed"), suppressed: stay("suppressed"),
    },
  },
  {
    name: "configChanged (disabled)", event: { type: "configChanged", enabled: false },
    expect: {
      stopped: stay("stopped"), starting: to("stopping", ...STOP), running: to("stopping", ...STOP),
      stopping: stay("stopping"), killing: stay("killing"), backoff: to("stopped", "cancelTimer"),
      exited: stay("exited"), failed: stay("failed"), suppressed: stay("suppressed"), scheduled: to("stopped", "cancelTimer"),
    },
  },
  {
    // The start gate found the run failed (readiness timeout, liveness): stop it; only a run can fail.
    name: "fail", event: { type: "fail", reason: "liveness failed 3 times in a row: HTTP 500" },
    expect: {
      starting: to("stopping", ...STOP), running: to("stopping", ...STOP),
      stopped: stay("stopped"), stopping: stay("stopping"), killing: stay("killing"), backoff: stay("backoff"),
      exited: stay("exited"), failed: stay("failed"), suppressed: stay("suppressed"), scheduled: stay("scheduled"),
    },
  },
];

describe("transition table: every phase × event", () => {
  test("the table covers every phase for every event type", () => {
    const types = new Set(EVENTS.map((e) => e.event.type));
    expect([...types].sort()).toEqual(["boot", "configChanged", "cronTick", "exited", "fail", "mainExited", "restart", "spawnFailed", "spawned", "start", "stop", "timer"]);
    for (const row of EVENTS) expect(Object.keys(row.expect).sort()).toEqual([...PHASES].sort());
  });

  for (const row of EVENTS) {
    for (const phase of PHASES) {
      test(`${phase} + ${row.name} → ${row.expect[phase].phase}`, () => {
        const ctx = ctxOf(row.event.type === "configChanged" ? { enabled: row.event.enabled } : {});
        const before = stateIn(phase);
        const frozen = structuredClone(before);
        const { state, effects } = transition(before, row.event, ctx);
        expect(state.phase).toBe(row.expect[phase].phase);
        expect(actions(effects)).toEqual(row.expect[phase].actions);
        expect(before).toEqual(frozen); // pure: the input state is never changed
        // A spawn always goes through starting; a timer is armed only where one can fire.
        if (effects.some((e) => e.type === "spawn")) expect(state.phase).toBe("starting");
        if (effects.some((e) => e.type === "armTimer")) expect(["stopping", "backoff"]).toContain(state.phase);
      });
    }
  }
});

describe("transition: focused cases", () => {
  const ctx = ctxOf();

  test("restart during a stop starts again once the cgroup is empty, without a second stop signal", () => {
    let s = transition(stateIn("running"), { type: "stop" }, ctx).state;
    expect(s).toMatchObject({ phase: "stopping", operatorStopped: true, startAfterStop: false });
    const r = transition(s, { type: "restart" }, ctx);
    expect(actions(r.effects)).toEqual([]);
    expect(r.effects).toContainEqual({ type: "persist" });
    s = r.state;
    expect(s).toMatchObject({ phase: "stopping", operatorStopped: false, startAfterStop: true });
    const done = transition(s, { type: "exited", exit: { code: null, signal: "SIGTERM", known: true } }, ctx);
    expect(done.state).toMatchObject({ phase: "starting", startAfterStop: false });
    expect(done.state.lastExit).toMatchObject({ signal: "SIGTERM", cause: "exit" });
    expect(actions(done.effects)).toEqual(["cancelTimer", "spawn"]);
  });

  test("start during a stop also starts again afterwards; stop during that cancels the start again", () => {
    let s = transition(stateIn("stopping", { operatorStopped: true }), { type: "start" }, ctx).state;
    expect(s).toMatchObject({ phase: "stopping", startAfterStop: true, operatorStopped: false });
    s = transition(s, { type: "stop" }, ctx).state;
    expect(s).toMatchObject({ phase: "stopping", startAfterStop: false, operatorStopped: true });
    expect(transition(s, { type: "exited", exit: code(0) }, ctx).state.phase).toBe("stopped");
  });

  test("stop during backoff cancels the timer, and the stale timer is then ignored", () => {
    const backoff = transition(stateIn("running"), { type: "exited", exit: code(1) }, ctx);
    expect(backoff.state.phase).toBe("backoff");
    expect(backoff.state.nextAttemptWallMs).toBe(T0 + BACKOFF);
    const stopped = transition(backoff.state, { type: "stop" }, ctx);
    expect(stopped.state).toMatchObject({ phase: "stopped", operatorStopped: true, nextAttemptWallMs: null });
    expect(actions(stopped.effects)).toEqual(["cancelTimer"]);
    const late = transition(stopped.state, { type: "timer" }, ctx);
    expect(late.state).toBe(stopped.state);
    expect(actions(late.effects)).toEqual([]);
  });

  test("cronTick while running is a no-op apart from a log line", () => {
    const s = stateIn("running");
    const r = transition(s, { type: "cronTick" }, ctxOf({ scheduled: true }));
    expect(r.state).toBe(s);
    expect(r.effects.map((e) => e.type)).toEqual(["log"]);
  });

  test("cronTick of a disabled or operator-stopped service does nothing", () => {
    expect(actions(transition(stateIn("scheduled"), { type: "cronTick" }, ctxOf({ scheduled: true, enabled: false })).effects)).toEqual([]);
    expect(actions(transition(stateIn("stopped", { operatorStopped: true }), { type: "cronTick" }, ctxOf({ scheduled: true })).effects)).toEqual([]);
  });

  test("boot with a populated cgroup and an operator stop finishes the stop", () => {
    const r = transition(stateIn("stopped", { operatorStopped: true }), { type: "boot", populated: true }, ctx);
    expect(r.state).toMatchObject({ phase: "stopping", operatorStopped: true, startAfterStop: false });
    expect(actions(r.effects)).toEqual(STOP);
    expect(transition(r.state, { type: "exited", exit: { code: null, signal: null, known: false } }, ctx).state.phase).toBe("stopped");
  });

  test("boot adopts a populated cgroup: no spawn, no main PID, the saved start time is kept", () => {
    const r = transition(stateIn("stopped", { startedAtWallMs: T0 - 60_000 }), { type: "boot", populated: true }, ctx);
    expect(r.state).toMatchObject({ phase: "running", mainPid: null, startedAtWallMs: T0 - 60_000 });
    expect(actions(r.effects)).toEqual([]);
  });

  test("boot with an empty cgroup: a last exit 'unknown' only for a service that was running (main process saved and gone, or a run begun)", () => {
    // `main` absent: none was saved; null: one was saved and is gone (findSavedMain).
    const neverRan = transition(stateIn("stopped"), { type: "boot", populated: false }, ctx);
    expect(neverRan.state.lastExit).toBeNull();
    expect(neverRan.state.phase).toBe("starting");
    const ranBefore = transition(stateIn("stopped"), { type: "boot", populated: false, main: null }, ctx);
    expect(ranBefore.state.lastExit).toMatchObject({ known: false, code: null, signal: null });
    expect(ranBefore.state.mainPid).toBeNull();
    const mainHadLeft = transition(stateIn("stopped", { startedAtWallMs: ctx.nowWallMs - 5000 }), { type: "boot", populated: false }, ctx);
    expect(mainHadLeft.state.lastExit).toMatchObject({ known: false });
    // Disabled now: it stays stopped, and the unknown exit is written to the state file.
    const disabled = transition(stateIn("stopped"), { type: "boot", populated: false, main: null }, ctxOf({ enabled: false }));
    expect(disabled.state).toMatchObject({ phase: "stopped", lastExit: { known: false } });
    expect(disabled.effects).toContainEqual({ type: "persist" });
    // An operator stop that ended while no daemon watched keeps the exit it had.
    const stoppedByOperator = transition(stateIn("stopped", { operatorStopped: true }), { type: "boot", populated: false, main: null }, ctx);
    expect(stoppedByOperator.state.lastExit).toBeNull();
  });

  test("boot with an empty cgroup: operator-stopped, disabled and scheduled services do not start", () => {
    const empty: UnitEvent = { type: "boot", populated: false };
    expect(transition(stateIn("stopped", { operatorStopped: true }), empty, ctx).state.phase).toBe("stopped");
    expect(transition(stateIn("stopped"), empty, ctxOf({ enabled: false })).state.phase).toBe("stopped");
    expect(transition(stateIn("stopped"), empty, ctxOf({ scheduled: true })).state.phase).toBe("scheduled");
  });

  test("boot drops a saved restart it does not finish (disabled, or its processes gone): nothing waits on it for ever", () => {
    const restarting = (phase: Phase = "stopped") => stateIn(phase, { startAfterStop: true });
    const cases: [UnitState, UnitEvent, UnitContext][] = [
      [restarting(), { type: "boot", populated: false }, ctxOf({ enabled: false })],
      [restarting(), { type: "boot", populated: false }, ctxOf({ scheduled: true })],
      [restarting("suppressed"), { type: "boot", populated: false }, ctx],
      [restarting(), { type: "boot", populated: true }, ctxOf({ enabled: false })],
    ];
    for (const [s, ev, c] of cases) expect(transition(s, ev, c).state.startAfterStop).toBe(false);
  });

  test("spawnFailed goes through the restart policy and is reported as spawn-failed", () => {
    const starting = transition(stateIn("stopped", { startedAtWallMs: T0 - 3_600_000 }), { type: "start" }, ctx).state;
    expect(starting.startedAtWallMs).toBeNull(); // a failed spawn has no run time of its own
    const r = transition(starting, { type: "spawnFailed", message: "no such file" }, ctx);
    expect(r.state).toMatchObject({ phase: "backoff", restarts: 1 });
    expect(r.state.lastExit).toMatchObject({ code: 127, cause: "spawn-failed" });
    expect(actions(r.effects)).toEqual([`armTimer(${BACKOFF})`]);
    const never = transition(starting, { type: "spawnFailed", message: "no such file" }, ctxOf({ restartPolicy: policy({ policy: "never" }) }));
    expect(never.state.phase).toBe("failed");
    // The tolerance applies to failed spawns too.
    let s = starting;
    for (let i = 0; i < 3; i++) s = transition(transition(s, { type: "spawnFailed", message: "x" }, ctx).state, { type: "timer" }, ctx).state;
    expect(transition(s, { type: "spawnFailed", message: "x" }, ctx).state.phase).toBe("suppressed");
  });

  test("exited while killing reports killed-after-grace", () => {
    const stopping = transition(stateIn("running"), { type: "stop" }, ctx).state;
    const killing = transition(stopping, { type: "timer" }, ctx).state;
    expect(killing).toMatchObject({ phase: "killing", escalated: true });
    const r = transition(killing, { type: "exited", exit: { code: null, signal: "SIGKILL", known: true } }, ctx);
    expect(r.state).toMatchObject({ phase: "stopped", escalated: false, mainPid: null });
    expect(r.state.lastExit).toMatchObject({ cause: "killed-after-grace", signal: "SIGKILL" });
  });

  test("an exit within grace is a plain exit", () => {
    const stopping = transition(stateIn("running"), { type: "stop" }, ctx).state;
    const r = transition(stopping, { type: "exited", exit: { code: 0, signal: null, known: true } }, ctx);
    expect(r.state.lastExit).toMatchObject({ cause: "exit", code: 0 });
  });

  test("an OOM kill is reported as oom-kill and counts as a failure for the policy", () => {
    const r = transition(stateIn("running"), { type: "exited", exit: { code: null, signal: "SIGKILL", known: true }, oomKilled: true }, ctx);
    expect(r.state.lastExit).toMatchObject({ cause: "oom-kill", signal: "SIGKILL" });
    expect(r.state.phase).toBe("backoff");
    expect(r.effects).toContainEqual({ type: "log", level: "info", message: expect.stringContaining("OOM") });
  });

  test("a clean exit with on-failure rests in exited; unknown status (adopted) counts as failure", () => {
    expect(transition(stateIn("running"), { type: "exited", exit: code(0) }, ctx).state.phase).toBe("exited");
    const adopted = transition(stateIn("running", { mainPid: null }), { type: "exited", exit: { code: null, signal: null, known: false } }, ctx);
    expect(adopted.state.phase).toBe("backoff");
    expect(transition(stateIn("running"), { type: "exited", exit: code(3) }, ctxOf({ restartPolicy: policy({ policy: "never" }) })).state.phase).toBe("failed");
  });

  test("a scheduled service rests in scheduled after a run, whatever its exit", () => {
    const sctx = ctxOf({ scheduled: true, restartPolicy: policy({ policy: "always" }) });
    expect(transition(stateIn("running"), { type: "exited", exit: code(1) }, sctx).state.phase).toBe("scheduled");
    expect(transition(stateIn("running"), { type: "exited", exit: code(0) }, sctx).state.phase).toBe("scheduled");
  });

  test("manual start clears suppression and the restart history", () => {
    const s = stateIn("suppressed", { restarts: 3, history: { restartsWallMs: [T0 - 3, T0 - 2, T0 - 1], backoffMs: null } });
    const r = transition(s, { type: "start" }, ctx);
    expect(r.state).toMatchObject({ phase: "starting", restarts: 0, suppressedReason: null, operatorStopped: false });
    expect(r.state.history.restartsWallMs).toEqual([]);
  });

  test("disabling through update is not an operator stop: enabling again starts it", () => {
    const off = ctxOf({ enabled: false });
    let s = transition(stateIn("running"), { type: "configChanged", enabled: false }, off).state;
    expect(s).toMatchObject({ phase: "stopping", operatorStopped: false });
    s = transition(s, { type: "exited", exit: code(0) }, off).state;
    expect(s.phase).toBe("stopped");
    const on = transition(s, { type: "configChanged", enabled: true }, ctx);
    expect(on.state.phase).toBe("starting");
    expect(actions(on.effects)).toEqual(SPAWN);
  });

  test("a changed definition does not start an operator-stopped service", () => {
    const s = stateIn("stopped", { operatorStopped: true });
    expect(transition(s, { type: "configChanged", enabled: true }, ctx).state.phase).toBe("stopped");
    expect(transition(s, { type: "configChanged", enabled: true }, ctxOf({ scheduled: true })).state.phase).toBe("stopped");
  });

  test("a schedule added to a finished service makes it wait for its cron time", () => {
    expect(transition(stateIn("exited"), { type: "configChanged", enabled: true }, ctxOf({ scheduled: true })).state.phase).toBe("scheduled");
    expect(transition(stateIn("stopped"), { type: "configChanged", enabled: true }, ctxOf({ scheduled: true })).state.phase).toBe("scheduled");
  });

  test("a grace timeout escalates to cgroup.kill and arms no further timer", () => {
    const r = transition(stateIn("stopping"), { type: "timer" }, ctx);
    expect(r.state).toMatchObject({ phase: "killing", escalated: true });
    expect(actions(r.effects)).toEqual(["kill"]);
  });
});

describe("a run the daemon stops for failing (fail event)", () => {
  const reason = "liveness failed 3 times in a row: HTTP 500";
  const failing = () => transition(stateIn("running"), { type: "fail", reason }, ctxOf()).state;

  test("its exit goes to the restart policy as a failure, even with code 0 on the stop signal", () => {
    const s = failing();
    expect(s.failing).toBe(reason);
    const t = transition(s, { type: "exited", exit: code(0) }, ctxOf({ stopSignal: "SIGTERM" }));
    expect(t.state.phase).toBe("backoff");
    expect(t.state.restarts).toBe(1);
    expect(t.state.failing).toBeNull();
    expect(t.effects).toContainEqual({ type: "log", level: "info", message: `${reason}; killed by SIGTERM; restart 1 of 3 in 1m, in 1s` });
    expect(t.state.lastExit).toMatchObject({ code: 0, cause: "exit" }); // the real exit is what status shows
  });

  test("with policy never it ends failed", () => {
    const t = transition(failing(), { type: "exited", exit: code(0) }, ctxOf({ restartPolicy: policy({ policy: "never" }) }));
    expect(t.state.phase).toBe("failed");
  });

  test("an operator stop or restart meanwhile wins", () => {
    const stopped = transition(failing(), { type: "stop" }, ctxOf()).state;
    expect(transition(stopped, { type: "exited", exit: code(0) }, ctxOf()).state.phase).toBe("stopped");
    const restarted = transition(failing(), { type: "restart" }, ctxOf()).state;
    const t = transition(restarted, { type: "exited", exit: code(0) }, ctxOf());
    expect(t.state.phase).toBe("starting");
    expect(t.state.restarts).toBe(0);
  });
});
