/**
 * exit_type: what the main process's exit means while other processes remain (pure table), and
 * how the state machine acts on it: ending the service, reporting the main exit, applying the
 * restart policy; and the main process kept or lost across a daemon restart.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ExitType, RestartPolicyConfig } from "../src/config/types.ts";
import { mainExitVerdict, type MainExitVerdict } from "../src/supervisor/exit-type.ts";
import type { ExitInfo } from "../src/supervisor/policy.ts";
import { logger } from "../src/util/log.ts";
import type { PidWatcher } from "../src/linux/pidwatch.ts";
import { findSavedMain } from "../src/supervisor/main-process.ts";
import { persistedState, restoredState, StateStore } from "../src/supervisor/state-store.ts";
import { initialUnitState, transition, type UnitContext, type UnitState } from "../src/supervisor/unit.ts";

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const ok: ExitInfo = { code: 0, signal: null, known: true };
const fail: ExitInfo = { code: 3, signal: null, known: true };
const killed: ExitInfo = { code: null, signal: "SIGKILL", known: true };
const unseen: ExitInfo = { code: null, signal: null, known: false };

describe("mainExitVerdict", () => {
  const rows: [ExitType, string, ExitInfo, boolean, MainExitVerdict][] = [
    // exit_type, exit, othersRemain → verdict
    ["auto", "code 0", ok, true, "keep-running"],        // a daemon that forked and left
    ["auto", "code 3", fail, true, "end-service"],
    ["auto", "SIGKILL", killed, true, "end-service"],    // kill -9 of nginx's master
    ["auto", "unseen", unseen, true, "end-service"],     // an adopted main process: not our child
    ["main", "code 0", ok, true, "end-service"],
    ["main", "code 3", fail, true, "end-service"],
    ["main", "SIGKILL", killed, true, "end-service"],
    ["main", "unseen", unseen, true, "end-service"],
    ["cgroup", "code 0", ok, true, "keep-running"],
    ["cgroup", "code 3", fail, true, "keep-running"],
    ["cgroup", "SIGKILL", killed, true, "keep-running"],
    ["cgroup", "unseen", unseen, true, "keep-running"],
  ];
  for (const exitType of ["auto", "main", "cgroup"] as const) {
    for (const [what, exit] of [["code 0", ok], ["code 3", fail], ["SIGKILL", killed], ["unseen", unseen]] as const) rows.push([exitType, what, exit, false, "cgroup-ends-run"]);
  }
  for (const [exitType, what, exit, others, verdict] of rows) {
    test(`${exitType}: main ${what}, ${others ? "others remain" : "nothing left"} → ${verdict}`, () => {
      expect(mainExitVerdict(exitType, exit, others)).toBe(verdict);
    });
  }
});

const policy = (p: RestartPolicyConfig["policy"]): RestartPolicyConfig => ({ policy: p, restartBackoffMs: 0, maxRestarts: 3, toleranceWindowMs: 60_000 });
const ctxOf = (over: Partial<UnitContext> = {}): UnitContext => ({
  enabled: true, scheduled: false, stopGraceMs: 2000, restartPolicy: policy("always"), nowWallMs: T0, exitType: "auto", ...over,
});
const running = (over: Partial<UnitState> = {}): UnitState => ({
  ...initialUnitState(), phase: "running", mainPid: 100, mainStartTime: "777", startedAtWallMs: T0 - 5000, ...over,
});
const kinds = (effects: { type: string }[]) => effects.map((e) => e.type).filter((t) => t !== "log" && t !== "persist");

describe("the state machine on a main process exit", () => {
  test("auto, killed by SIGKILL with workers left: stop the rest, then the main exit is the run's and the policy restarts", () => {
    const ctx = ctxOf();
    const a = transition(running(), { type: "mainExited", exit: killed, othersRemain: true }, ctx);
    expect(a.state).toMatchObject({ phase: "stopping", mainPid: null, mainExit: killed });
    expect(kinds(a.effects)).toEqual(["sendStop", "armTimer"]);
    // The workers got the stop signal and left: the run ends with the master's exit, and restarts.
    const b = transition(a.state, { type: "exited", exit: { code: 0, signal: null, known: true } }, ctx);
    expect(b.state).toMatchObject({ phase: "starting", restarts: 1, mainExit: null, lastExit: { signal: "SIGKILL", cause: "exit" } });
    expect(kinds(b.effects)).toEqual(["cancelTimer", "spawn"]);
  });

  test("a stop that needed cgroup.kill still reports the main exit, not killed-after-grace", () => {
    const ctx = ctxOf({ restartPolicy: policy("never") });
    const a = transition(running(), { type: "mainExited", exit: fail, othersRemain: true }, ctx);
    const k = transition(a.state, { type: "timer" }, ctx);
    expect(k.state.phase).toBe("killing");
    const b = transition(k.state, { type: "exited", exit: unseen }, ctx);
    expect(b.state).toMatchObject({ phase: "failed", lastExit: { code: 3, cause: "exit" } });
  });

  test("auto, code 0 with others left: a forking daemon; the main PID is dropped and it keeps running", () => {
    const a = transition(running(), { type: "mainExited", exit: ok, othersRemain: true }, ctxOf());
    expect(a.state).toMatchObject({ phase: "running", mainPid: null, mainStartTime: null, mainExit: null });
    expect(kinds(a.effects)).toEqual([]);
  });

  test("main, code 0 with others left: the service ended; policy on-failure does not restart it", () => {
    const ctx = ctxOf({ exitType: "main", restartPolicy: policy("on-failure") });
    const a = transition(running(), { type: "mainExited", exit: ok, othersRemain: true }, ctx);
    expect(a.state.phase).toBe("stopping");
    const b = transition(a.state, { type: "exited", exit: killed }, ctx);
    expect(b.state).toMatchObject({ phase: "exited", lastExit: { code: 0, signal: null } });
  });

  test("cgroup: nothing happens but forgetting the main PID", () => {
    const a = transition(running(), { type: "mainExited", exit: killed, othersRemain: true }, ctxOf({ exitType: "cgroup" }));
    expect(a.state).toMatchObject({ phase: "running", mainPid: null });
  });

  test("nothing else left: the cgroup's own exit report ends the run", () => {
    const s = running();
    const a = transition(s, { type: "mainExited", exit: killed, othersRemain: false }, ctxOf());
    expect(a.state).toBe(s);
    expect(a.effects).toEqual([]);
  });

  test("while stopping (an operator stop), a main exit only forgets the PID; the stop ends as a stop", () => {
    const ctx = ctxOf();
    const stopping = transition(running(), { type: "stop" }, ctx).state;
    const a = transition(stopping, { type: "mainExited", exit: killed, othersRemain: true }, ctx);
    expect(a.state).toMatchObject({ phase: "stopping", mainPid: null, mainExit: null });
    expect(transition(a.state, { type: "exited", exit: killed }, ctx).state.phase).toBe("stopped");
  });

  test("an operator stop while the main exit's stop runs wins: stopped, no restart", () => {
    const ctx = ctxOf();
    const a = transition(running(), { type: "mainExited", exit: killed, othersRemain: true }, ctx);
    const b = transition(a.state, { type: "stop" }, ctx);
    expect(transition(b.state, { type: "exited", exit: killed }, ctx).state.phase).toBe("stopped");
  });

  test("disabled by update while the main exit's stop runs: not restarted", () => {
    const a = transition(running(), { type: "mainExited", exit: killed, othersRemain: true }, ctxOf());
    const off = ctxOf({ enabled: false });
    const b = transition(a.state, { type: "configChanged", enabled: false }, off);
    expect(transition(b.state, { type: "exited", exit: killed }, off).state.phase).toBe("stopped");
  });
});

describe("the main process across a daemon restart", () => {
  const saved = (): UnitState => ({ ...initialUnitState(), mainPid: 100, mainStartTime: "777" });

  test("found again (same PID and start time in the cgroup): adopted as main", () => {
    const a = transition(saved(), { type: "boot", populated: true, main: { pid: 100, startTime: "777" } }, ctxOf());
    expect(a.state).toMatchObject({ phase: "running", mainPid: 100, mainStartTime: "777" });
  });

  test("a stop the previous daemon had begun is finished with the main process known (stop_mode main can reach it)", () => {
    const a = transition({ ...saved(), operatorStopped: true }, { type: "boot", populated: true, main: { pid: 100, startTime: "777" } }, ctxOf());
    expect(a.state).toMatchObject({ phase: "stopping", mainPid: 100 });
    expect(kinds(a.effects)).toEqual(["sendStop", "armTimer"]);
  });

  test("gone while others remain (auto): it ended unseen; the service is stopped and then restarted", () => {
    const ctx = ctxOf();
    const a = transition(saved(), { type: "boot", populated: true, main: null }, ctx);
    expect(a.state).toMatchObject({ phase: "stopping", mainPid: null, mainExit: unseen });
    expect(transition(a.state, { type: "exited", exit: unseen }, ctx).state).toMatchObject({ phase: "starting", lastExit: { known: false } });
  });

  test("gone while others remain (cgroup): adopted without a main PID", () => {
    const a = transition(saved(), { type: "boot", populated: true, main: null }, ctxOf({ exitType: "cgroup" }));
    expect(a.state).toMatchObject({ phase: "running", mainPid: null });
  });

  test("none saved (an old state file, or a forking daemon's parent left): adopted as before", () => {
    const a = transition(initialUnitState(), { type: "boot", populated: true }, ctxOf());
    expect(a.state).toMatchObject({ phase: "running", mainPid: null });
  });

  test("it ended while no daemon watched and the cgroup is empty: the last exit says unknown, not the old one", () => {
    const old = { code: 0, signal: null, known: true, cause: "exit" as const, atWallMs: T0 - 60_000 };
    const a = transition({ ...saved(), lastExit: old }, { type: "boot", populated: false, main: null }, ctxOf());
    expect(a.state).toMatchObject({ phase: "starting", lastExit: { known: false, atWallMs: T0 } });
  });

  /**
   * As the daemon boots: the unit's entry written by one StateStore and read back by another,
   * the state rebuilt from it (restoredState) and the boot event made by findSavedMain. (The
   * tests above hand-make the booted state, so they missed that the daemon dropped the saved main.)
   */
  describe("booted from its state file entry", () => {
    const dirs: string[] = [];
    afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });
    const notWatched = undefined as unknown as PidWatcher; // an empty cgroup: findSavedMain watches nothing
    const reboot = (state: UnitState, cgroupPids: number[], ctx = ctxOf()) => {
      const dir = mkdtempSync(join(tmpdir(), "pm-exit-type-"));
      dirs.push(dir);
      const path = join(dir, "state.json");
      const before = new StateStore(path, logger("test"));
      before.set("w", persistedState(state));
      before.flush();
      const after = new StateStore(path, logger("test"));
      after.load();
      const entry = after.get("w");
      return transition(restoredState(entry), { type: "boot", populated: cgroupPids.length > 0, main: findSavedMain(entry, cgroupPids, notWatched) }, ctx);
    };
    /** A service restarted once by the operator (its last exit: code 0 at T0 - 60 s), now running pid 101. */
    const afterRestart = (): UnitState => {
      const ctx = ctxOf({ nowWallMs: T0 - 60_000 });
      let s = transition(initialUnitState(), { type: "boot", populated: false }, ctx).state;
      s = transition(s, { type: "spawned", pid: 100, startTime: "777" }, ctx).state;
      s = transition(s, { type: "restart" }, ctx).state;
      s = transition(s, { type: "exited", exit: ok }, ctx).state;
      return transition(s, { type: "spawned", pid: 101, startTime: "778" }, ctx).state;
    };

    test("it ended while no daemon watched (empty cgroup): the last exit is unknown, not the restart's", () => {
      const s = afterRestart();
      expect(s).toMatchObject({ phase: "running", mainPid: 101, lastExit: { known: true, code: 0, atWallMs: T0 - 60_000 } });
      expect(reboot(s, []).state).toMatchObject({ phase: "starting", lastExit: { known: false, code: null, signal: null, atWallMs: T0 } });
    });

    test("its main process had left (exit_type auto, code 0) and the rest ended while no daemon watched: the last exit is unknown", () => {
      const ctx = ctxOf({ nowWallMs: T0 - 60_000 });
      const s = transition(afterRestart(), { type: "mainExited", exit: ok, othersRemain: true }, ctx).state;
      expect(s).toMatchObject({ phase: "running", mainPid: null }); // a daemon that forked and left
      expect(reboot(s, []).state).toMatchObject({ phase: "starting", lastExit: { known: false, atWallMs: T0 } });
    });

    test("until boot finds it again, the restored state holds no main PID (a service held for its dependencies shows none)", () => {
      const entry = persistedState(afterRestart());
      expect(entry.mainPid).toBe(101);
      expect(restoredState(entry)).toMatchObject({ mainPid: null, mainStartTime: null });
    });

    test("a service stopped before the daemon went keeps its last exit", () => {
      const ctx = ctxOf({ nowWallMs: T0 - 60_000 });
      let s = transition(afterRestart(), { type: "stop" }, ctx).state;
      s = transition(s, { type: "exited", exit: ok }, ctx).state;
      expect(reboot(s, []).state).toMatchObject({ phase: "stopped", lastExit: { known: true, code: 0, atWallMs: T0 - 60_000 } });
    });
  });
});
