import { describe, expect, test } from "bun:test";
import type { RestartPolicyConfig } from "../src/config/types.ts";
import {
  decideAfterExit,
  emptyHistory,
  isFailure,
  manualStartHistory,
  type ExitInfo,
  type RestartDecision,
  type RestartHistory,
} from "../src/supervisor/policy.ts";

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const MIN = 60_000;

const policy = (over: Partial<RestartPolicyConfig> = {}): RestartPolicyConfig => ({
  policy: "always",
  restartBackoffMs: 1000,
  maxRestarts: 3,
  toleranceWindowMs: MIN,
  ...over,
});

const code = (c: number): ExitInfo => ({ code: c, signal: null, known: true });
const sig = (s: string): ExitInfo => ({ code: null, signal: s, known: true });
const unknown: ExitInfo = { code: null, signal: null, known: false };

const decide = (p: RestartPolicyConfig, h: RestartHistory, exit: ExitInfo, nowWallMs: number, runDurationMs = 10, scheduled = false) =>
  decideAfterExit(p, h, exit, { nowWallMs, runDurationMs, scheduled });

function expectRestart(d: RestartDecision): Extract<RestartDecision, { kind: "restart" }> {
  expect(d.kind).toBe("restart");
  return d as Extract<RestartDecision, { kind: "restart" }>;
}

describe("isFailure", () => {
  test("code 0 is success; non-zero, signal and unknown are failures", () => {
    expect(isFailure(code(0))).toBe(false);
    expect(isFailure(code(1))).toBe(true);
    expect(isFailure(code(255))).toBe(true);
    expect(isFailure(sig("SIGKILL"))).toBe(true);
    expect(isFailure({ code: 0, signal: "SIGTERM", known: true })).toBe(true);
    expect(isFailure(unknown)).toBe(true);
    expect(isFailure({ code: 0, signal: null, known: false })).toBe(true);
  });
});

describe("policy kinds", () => {
  test("never: no restart, whatever the exit", () => {
    for (const e of [code(0), code(1), sig("SIGKILL"), unknown]) {
      const d = decide(policy({ policy: "never" }), emptyHistory(), e, T0);
      expect(d.kind).toBe("none");
    }
  });

  test("on-failure: code 0 → none; code 1, signal, unknown → restart", () => {
    const p = policy({ policy: "on-failure" });
    const ok = decide(p, emptyHistory(), code(0), T0);
    expect(ok).toEqual({ kind: "none", reason: "exited with code 0; restart policy is on-failure" });
    const r1 = expectRestart(decide(p, emptyHistory(), code(1), T0));
    expect(r1.reason).toBe("exited with code 1; restart 1 of 3 in 1m, in 1s");
    const r2 = expectRestart(decide(p, emptyHistory(), sig("SIGSEGV"), T0));
    expect(r2.reason).toStartWith("killed by SIGSEGV; restart 1 of 3");
    const r3 = expectRestart(decide(p, emptyHistory(), unknown, T0));
    expect(r3.reason).toStartWith("exit status unknown; restart 1 of 3");
  });

  test("always: restarts after success too", () => {
    const d = expectRestart(decide(policy(), emptyHistory(), code(0), T0));
    expect(d.delayMs).toBe(1000);
    expect(d.history).toEqual({ restartsWallMs: [T0], backoffMs: null });
  });

  test("scheduled services are never restarted by policy", () => {
    for (const kind of ["always", "on-failure", "never"] as const) {
      const d = decide(policy({ policy: kind }), emptyHistory(), code(1), T0, 10, true);
      expect(d.kind).toBe("none");
      expect(d.reason).toContain("scheduled job; next run by schedule");
    }
  });

  test("the history passed in is not changed", () => {
    const h: RestartHistory = { restartsWallMs: [T0 - 1000], backoffMs: null };
    decide(policy(), h, code(1), T0);
    expect(h).toEqual({ restartsWallMs: [T0 - 1000], backoffMs: null });
  });
});

describe("tolerance window", () => {
  test("exiting at once with max 3: exactly 3 restarts, suppressed on the 4th exit", () => {
    const p = policy({ policy: "on-failure", restartBackoffMs: 100 });
    let h = emptyHistory();
    let now = T0;
    const kinds: string[] = [];
    const reasons: string[] = [];
    for (let i = 0; i < 4; i++) {
      const d = decide(p, h, code(1), now);
      kinds.push(d.kind);
      reasons.push(d.reason);
      if (d.kind === "restart") {
        h = d.history;
        now += d.delayMs + 5; // backoff, then the process exits again 5 ms later
      }
    }
    expect(kinds).toEqual(["restart", "restart", "restart", "suppress"]);
    expect(reasons[1]).toBe("exited with code 1; restart 2 of 3 in 1m, in 100ms");
    expect(reasons[3]).toBe("exited with code 1; 3 restarts in 1m");
    expect(h.restartsWallMs).toEqual([T0, T0 + 105, T0 + 210]);
  });

  test("with max 1 the suppression says '1 restart', not '1 restarts'", () => {
    const d = decide(policy({ maxRestarts: 1 }), { restartsWallMs: [T0], backoffMs: null }, code(1), T0 + 1000);
    expect(d).toMatchObject({ kind: "suppress", reason: "exited with code 1; 1 restart in 1m" });
  });

  test("an entry exactly one window old still counts; one ms older does not", () => {
    const p = policy();
    const h: RestartHistory = { restartsWallMs: [T0, T0 + 10, T0 + 20], backoffMs: null };
    // now - window === T0: the entry at T0 is still in the window → 3 restarts → suppress
    const atEdge = decide(p, h, code(1), T0 + MIN);
    expect(atEdge.kind).toBe("suppress");
    if (atEdge.kind === "suppress") expect(atEdge.history.restartsWallMs).toEqual([T0, T0 + 10, T0 + 20]);
    // one ms later the entry at T0 has aged out → 2 in the window → restart 3 of 3
    const after = expectRestart(decide(p, h, code(1), T0 + MIN + 1));
    expect(after.history.restartsWallMs).toEqual([T0 + 10, T0 + 20, T0 + MIN + 1]);
    expect(after.reason).toContain("restart 3 of 3 in 1m");
  });

  test("restarts spread wider than the window never suppress", () => {
    const p = policy();
    let h = emptyHistory();
    for (let i = 0; i < 20; i++) {
      const d = expectRestart(decide(p, h, code(1), T0 + i * (MIN / 2 + 1)));
      h = d.history;
      expect(h.restartsWallMs.length).toBeLessThanOrEqual(3);
    }
  });

  test("suppressed stays suppressed within the window; a manual start resets it", () => {
    const p = policy();
    const full: RestartHistory = { restartsWallMs: [T0, T0 + 1, T0 + 2], backoffMs: null };
    expect(decide(p, full, code(1), T0 + 1000).kind).toBe("suppress");
    const h = manualStartHistory();
    expect(h).toEqual(emptyHistory());
    const d = expectRestart(decide(p, h, code(1), T0 + 2000));
    expect(d.reason).toContain("restart 1 of 3");
  });

  test("max_restarts 0: never restarted automatically", () => {
    expect(decide(policy({ maxRestarts: 0 }), emptyHistory(), code(1), T0).kind).toBe("suppress");
  });

  test("wall clock stepping backward forgets entries now in the future", () => {
    const p = policy();
    const h: RestartHistory = { restartsWallMs: [T0, T0 + 10, T0 + 20], backoffMs: null };
    // the clock went back 1 h: all three entries lie in the future → forgotten → restart 1 of 3
    const d = expectRestart(decide(p, h, code(1), T0 - 3_600_000));
    expect(d.history.restartsWallMs).toEqual([T0 - 3_600_000]);
    expect(d.reason).toContain("restart 1 of 3");
    // a partial step back keeps the entries that are not in the future
    const d2 = expectRestart(decide(p, h, code(1), T0 + 15));
    expect(d2.history.restartsWallMs).toEqual([T0, T0 + 10, T0 + 15]);
  });

  test("wall clock stepping forward ages entries out", () => {
    const h: RestartHistory = { restartsWallMs: [T0, T0 + 10, T0 + 20], backoffMs: null };
    const d = expectRestart(decide(policy(), h, code(1), T0 + 86_400_000));
    expect(d.history.restartsWallMs).toEqual([T0 + 86_400_000]);
  });
});

describe("backoff", () => {
  test("constant by default", () => {
    const p = policy({ restartBackoffMs: 250, maxRestarts: 10 });
    let h = emptyHistory();
    for (let i = 0; i < 5; i++) {
      const d = expectRestart(decide(p, h, code(1), T0 + i));
      expect(d.delayMs).toBe(250);
      expect(d.history.backoffMs).toBeNull();
      h = d.history;
    }
  });

  test("exponential: starts at the base, doubles, capped at the max", () => {
    const p = policy({ restartBackoffMs: 100, restartBackoffMaxMs: 1000, maxRestarts: 100 });
    let h = emptyHistory();
    const delays: number[] = [];
    let now = T0;
    for (let i = 0; i < 7; i++) {
      const d = expectRestart(decide(p, h, code(1), now, 10));
      delays.push(d.delayMs);
      h = d.history;
      now += d.delayMs + 10;
    }
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
    expect(h.backoffMs).toBe(1000);
  });

  test("exponential: a run longer than the window resets the backoff to the base", () => {
    const p = policy({ restartBackoffMs: 100, restartBackoffMaxMs: 10_000, maxRestarts: 100 });
    const h: RestartHistory = { restartsWallMs: [T0, T0 + 200, T0 + 600], backoffMs: 400 };
    // a run of exactly the window does not reset
    const same = expectRestart(decide(p, h, code(1), T0 + 1000, MIN));
    expect(same.delayMs).toBe(800);
    // a longer run resets; the earlier restarts (all before the run began) have left the window
    const now = T0 + 600 + 400 + MIN + 1;
    const reset = expectRestart(decide(p, h, code(1), now, MIN + 1));
    expect(reset.delayMs).toBe(100);
    expect(reset.history).toEqual({ restartsWallMs: [now], backoffMs: 100 });
    expect(reset.reason).toContain("restart 1 of 100");
  });

  test("exponential: the suppress decision keeps the backoff; a manual start resets it", () => {
    const p = policy({ restartBackoffMs: 100, restartBackoffMaxMs: 10_000, maxRestarts: 2 });
    const h: RestartHistory = { restartsWallMs: [T0, T0 + 100], backoffMs: 200 };
    const s = decide(p, h, code(1), T0 + 300);
    expect(s.kind).toBe("suppress");
    if (s.kind === "suppress") expect(s.history.backoffMs).toBe(200);
    const d = expectRestart(decide(p, manualStartHistory(), code(1), T0 + 400));
    expect(d.delayMs).toBe(100);
  });

  test("exponential with a cap below the base uses the cap", () => {
    const p = policy({ restartBackoffMs: 5000, restartBackoffMaxMs: 2000 });
    expect(expectRestart(decide(p, emptyHistory(), code(1), T0)).delayMs).toBe(2000);
  });
});
