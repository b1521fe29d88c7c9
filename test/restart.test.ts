/**
 * Restart policy with real processes in real cgroups: never / on-failure / always, backoff
 * (constant and exponential), tolerance and suppression, what status and the log say, and what
 * survives a daemon restart.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pidAlive, waitUntil, World, type DaemonProc } from "./helpers/harness.ts";

let world: World;
afterEach(async () => { await world?.cleanup(); });

/** Lines of a file the services append to (one per run); 0 when it does not exist yet. */
function lines(path: string): string[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8").split("\n").filter(Boolean);
}

/** A service that notes each run in `runs` (in its working directory), then runs `rest`. */
function counted(rest: string, restartPolicy: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { process: { command: ["sh", "-c", `echo run >> runs; ${rest}`], stop_grace_ms: 1000, ...extra }, restart_policy: restartPolicy };
}

const runsOf = (name: string) => lines(join(world.appDir(name), "runs")).length;

async function waitForState(name: string, state: string, timeoutMs = 10_000) {
  return waitUntil(async () => { const a = await world.app(name); return a.state === state && a; }, `${name} to be ${state}`, timeoutMs);
}

async function stopDaemon(d: DaemonProc, signal: "SIGTERM" | "SIGKILL") {
  d.proc.kill(signal);
  await d.exited;
}

describe("restart policy", () => {
  test("always: an exit-1 service is restarted exactly 3 times, then suppressed; a manual start runs it again", async () => {
    world = new World();
    world.writeService("crash", counted("exit 1", { policy: "always", restart_backoff_ms: 100, tolerance: { max_restarts: 3, duration: "1m" } }));
    const d = await world.daemon();

    const a = await waitForState("crash", "suppressed");
    expect(a).toMatchObject({ restarts: 3, exit_code: 1, last_exit: "exit", suppressed_reason: "exited with code 1; 3 restarts in 1m", pids: [] });
    expect(runsOf("crash")).toBe(4); // the first run and 3 restarts
    for (const n of [1, 2, 3]) expect(d.output()).toContain(`[crash] exited with code 1; restart ${n} of 3 in 1m, in 100ms`);
    expect(d.output()).toContain("[crash] not restarting: exited with code 1; 3 restarts in 1m; run pmctl start to try again");

    const table = await world.pmctl(["status"]);
    expect(table.stdout).toMatch(/\ncrash\s+suppressed\s+-\s+-\s+3\s+code 1, (now|\d+s ago)\s.*3 restarts in 1m/);

    // A manual start clears suppression and the count, then the policy runs its course again.
    // The start waits for its outcome: a failed start (exit before start_seconds), already
    // counted as the first restart of the new count.
    const started = await world.pmctl(["start", "crash", "--json"]);
    expect(started.code).toBe(1);
    const reply = JSON.parse(started.stdout);
    expect(reply.apps[0].restarts).toBe(1);
    expect(reply.apps[0].state).toBe("backoff");
    expect(reply.results[0].reason).toContain("exited with code 1");
    await waitUntil(() => runsOf("crash") === 8, "4 more runs after the manual start");
    const again = await waitForState("crash", "suppressed");
    expect(again.restarts).toBe(3);
    await Bun.sleep(300); // 3 backoffs' worth: nothing more may run
    expect(runsOf("crash")).toBe(8);
  });

  test("never: the service stays exited/failed with its real exit code", async () => {
    world = new World();
    world.writeService("bad", counted("exit 3", { policy: "never", restart_backoff_ms: 0 }));
    world.writeService("good", counted("exit 0", { policy: "never", restart_backoff_ms: 0 }));
    const d = await world.daemon();
    const bad = await waitForState("bad", "failed");
    expect(bad).toMatchObject({ exit_code: 3, exit_signal: null, restarts: 0, last_exit: "exit" });
    const good = await waitForState("good", "exited");
    expect(good).toMatchObject({ exit_code: 0, restarts: 0 });
    await d.waitForLog(/\[bad\] exited with code 3; restart policy is never/);
    expect(runsOf("bad")).toBe(1);
    expect(runsOf("good")).toBe(1);
    const table = await world.pmctl(["status"]);
    expect(table.stdout).toMatch(/\nbad\s+failed\s+-\s+-\s+0\s+code 3/);
  });

  test("on-failure: restarted after exit 1, not after exit 0", async () => {
    world = new World();
    // Fails on its first run, succeeds on the second.
    world.writeService("flaky", counted("if [ -f failed-once ]; then exit 0; fi; touch failed-once; exit 1", { policy: "on-failure", restart_backoff_ms: 50 }));
    const d = await world.daemon();
    const a = await waitForState("flaky", "exited");
    expect(a).toMatchObject({ restarts: 1, exit_code: 0 });
    expect(runsOf("flaky")).toBe(2);
    expect(d.output()).toContain("[flaky] exited with code 1; restart 1 of 3 in 1m, in 50ms");
    expect(d.output()).toContain("[flaky] exited with code 0; restart policy is on-failure");
  });

  test("always: kill -9 of a running service brings a new PID after the backoff; status shows the next attempt", async () => {
    world = new World();
    world.writeService("svc", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 }, restart_policy: { policy: "always", restart_backoff_ms: 1500 } });
    const d = await world.daemon();
    const first = (await waitForState("svc", "running")).pids[0]!;

    const killedAtWall = Date.now();
    process.kill(first, "SIGKILL");
    const backoff = await waitForState("svc", "backoff", 5000);
    const seenAtWall = Date.now();
    expect(backoff).toMatchObject({ exit_signal: "SIGKILL", exit_code: null, restarts: 1, pids: [] });
    // The backoff counts from the exit, which came between the kill and the status that showed it.
    const nextAttempt = Date.parse(backoff.next_attempt_at!);
    expect(nextAttempt).toBeGreaterThanOrEqual(killedAtWall + 1500);
    expect(nextAttempt).toBeLessThanOrEqual(seenAtWall + 1500);
    const table = await world.pmctl(["status"]);
    expect(table.stdout).toMatch(/next attempt \d\d:\d\d:\d\d \((in \d+s|now)\)/); // local time, relative
    expect(table.stdout).toMatch(/\nsvc\s+backoff\s+-\s+-\s+1\s+SIGKILL/);

    const again = await waitUntil(async () => { const a = await world.app("svc"); return a.state === "running" && a.pids[0] !== first && a; }, "a new pid");
    const second = again.pids[0]!;
    console.log(`restart after a 1.5 s backoff: the new run started ${Date.parse(again.started_at!) - killedAtWall} ms after the kill`);
    // Not before the planned attempt (timers never fire early by more than a tick).
    expect(Date.parse(again.started_at!)).toBeGreaterThanOrEqual(nextAttempt - 20);
    expect(pidAlive(second)).toBe(true);
    expect(world.cgroupPids("svc")).toEqual([second]);
    expect(d.output()).toContain("[svc] killed by SIGKILL; restart 1 of 3 in 1m, in 1s");
  });

  test("exponential backoff doubles from restart_backoff_ms up to restart_backoff_max_ms", async () => {
    world = new World();
    world.writeService("exp", {
      process: { command: ["sh", "-c", "date +%s%N >> runs; exit 1"] },
      restart_policy: { policy: "always", restart_backoff_ms: 100, restart_backoff_max_ms: 400, tolerance: { max_restarts: 5, duration: "1m" } },
    });
    const d = await world.daemon();
    await waitForState("exp", "suppressed");
    const delays = [100, 200, 400, 400, 400];
    delays.forEach((ms, i) => expect(d.output()).toContain(`[exp] exited with code 1; restart ${i + 1} of 5 in 1m, in ${ms}ms`));
    const starts = lines(join(world.appDir("exp"), "runs")).map((ns) => Number(BigInt(ns) / 1_000_000n));
    expect(starts).toHaveLength(6);
    // Each gap is at least its backoff; the largest ones are capped (no 800 ms step).
    for (let i = 0; i < delays.length; i++) expect(starts[i + 1]! - starts[i]!).toBeGreaterThanOrEqual(delays[i]! - 5);
    expect(starts[2]! - starts[1]!).toBeGreaterThan(starts[1]! - starts[0]!);
  });
});

describe("restart state across daemon restarts", () => {
  test("suppression and the restart count survive a daemon restart (SIGTERM and SIGKILL)", async () => {
    world = new World();
    world.writeService("crash", counted("exit 1", { policy: "always", restart_backoff_ms: 50 }));
    const first = await world.daemon();
    await waitForState("crash", "suppressed");
    expect(runsOf("crash")).toBe(4);
    await stopDaemon(first, "SIGTERM");

    const second = await world.daemon();
    const a = await world.app("crash");
    expect(a).toMatchObject({ state: "suppressed", restarts: 3, exit_code: 1, suppressed_reason: "exited with code 1; 3 restarts in 1m" });
    expect(runsOf("crash")).toBe(4); // not started again at boot
    await stopDaemon(second, "SIGKILL"); // a crash: the state file was written as it went

    await world.daemon();
    expect(await world.app("crash")).toMatchObject({ state: "suppressed", restarts: 3 });
    expect(runsOf("crash")).toBe(4);
  });

  test("an adopted service keeps its count; its exit is 'unknown' and counts against the tolerance", async () => {
    world = new World();
    world.writeService("svc", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 }, restart_policy: { policy: "always", restart_backoff_ms: 0, tolerance: { max_restarts: 2, duration: "1m" } } });
    const first = await world.daemon();
    const pid1 = (await waitForState("svc", "running")).pids[0]!;
    process.kill(pid1, "SIGKILL");
    const pid2 = await waitUntil(async () => { const a = await world.app("svc"); return a.state === "running" && a.pids[0] !== pid1 && a.restarts === 1 && a.pids[0]; }, "restart 1");
    await stopDaemon(first, "SIGKILL");
    expect(pidAlive(pid2)).toBe(true); // services outlive the daemon

    const second = await world.daemon();
    const adopted = await world.app("svc");
    expect(adopted).toMatchObject({ state: "running", pids: [pid2], restarts: 1, exit_signal: "SIGKILL" });
    await second.waitForLog(/\[svc\] adopted running service/);

    process.kill(pid2, "SIGKILL"); // not the new daemon's child: exit status unknown
    const pid3 = await waitUntil(async () => { const a = await world.app("svc"); return a.state === "running" && a.pids[0] !== pid2 && a.pids[0]; }, "restart 2");
    const after = await world.app("svc");
    expect(after).toMatchObject({ restarts: 2, last_exit: "unknown", exit_code: null });
    expect(second.output()).toContain("[svc] exit status unknown; restart 2 of 2 in 1m, in 0ms");
    expect((await world.pmctl(["status"])).stdout).toMatch(/\nsvc\s+running\s+\d+\*\s+\S+\s+2\s+unknown/);

    process.kill(pid3, "SIGKILL");
    const suppressed = await waitForState("svc", "suppressed");
    expect(suppressed).toMatchObject({ restarts: 2, suppressed_reason: "killed by SIGKILL; 2 restarts in 1m", pids: [] });
  });
});
