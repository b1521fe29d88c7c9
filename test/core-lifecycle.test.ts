/** Start, stop, restart and status of real services in real cgroups, through the daemon. */
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { expectKilledAfterGrace, pidAlive, waitUntil, World } from "./helpers/harness.ts";

let world: World;
afterEach(async () => { await world?.cleanup(); });

const sleeper = (extra: Record<string, unknown> = {}) => ({ process: { command: ["sleep", "1000"], stop_grace_ms: 2000, ...extra } });

describe("lifecycle", () => {
  test("enabled services start with the daemon; disabled ones do not", async () => {
    world = new World();
    world.writeService("a", sleeper());
    world.writeService("b", { enabled: false, ...sleeper() });
    await world.daemon();
    const [a, b] = await world.status();
    expect(a!.name).toBe("a");
    expect(a!.state).toBe("running");
    expect(a!.pids.length).toBe(1);
    expect(world.cgroupPids("a")).toEqual(a!.pids);
    expect(b!.state).toBe("stopped");
    expect(b!.pids).toEqual([]);
  });

  test("stop, start and restart of one service report the outcome", async () => {
    world = new World();
    world.writeService("a", sleeper());
    await world.daemon();
    const before = (await world.app("a")).pids[0]!;

    const stopped = await world.pmctl(["stop", "a"]);
    expect(stopped.code).toBe(0);
    expect(stopped.stdout).toContain("a: stopped");
    expect(pidAlive(before)).toBe(false);
    expect((await world.app("a")).state).toBe("stopped");

    const started = await world.pmctl(["start", "a"]);
    expect(started.code).toBe(0);
    expect(started.stdout).toMatch(/a: running \(pid \d+\)/);
    const second = (await world.app("a")).pids[0]!;
    expect(second).not.toBe(before);

    const restarted = await world.pmctl(["restart", "a"]);
    expect(restarted.code).toBe(0);
    const third = await world.app("a");
    expect(third.state).toBe("running");
    expect(third.pids[0]).not.toBe(second);
    expect(pidAlive(second)).toBe(false);
  });

  test("stop all and start all act on every service, stops in parallel", async () => {
    world = new World();
    // Each ignores SIGTERM for 1.5 s of grace: one after another would take 4.5 s.
    for (const n of ["x", "y", "z"]) world.writeService(n, { process: { command: ["sh", "-c", "trap '' TERM; sleep 1000 & wait"], stop_grace_ms: 1500 } });
    const d = await world.daemon();
    await waitUntil(async () => (await world.status()).every((a) => a.pids.length === 2), "all services to have 2 pids");
    const logFrom = d.output().length;
    const t0 = performance.now();
    const res = await world.pmctl(["stop", "all"]);
    console.log(`stop all of 3 services, each killed after its 1.5 s grace: ${(performance.now() - t0).toFixed(0)} ms (one after another would take 4.5 s)`);
    expect(res.code).toBe(0);
    // In parallel: every service got its SIGTERM before the first grace ran out (one after
    // another, x's grace would run out, and x be killed, before y got its signal).
    const log = d.output().slice(logFrom);
    const firstGraceOver = log.search(/\[[xyz]\] still running after 1500ms grace/);
    expect(firstGraceOver, log).toBeGreaterThan(0);
    for (const n of ["x", "y", "z"]) {
      const signalled = log.search(new RegExp(`\\[${n}\\] sent SIGTERM to 2 processes`));
      expect(signalled, `${n} signalled before the first grace ran out:\n${log}`).toBeGreaterThanOrEqual(0);
      expect(signalled, `${n} signalled before the first grace ran out:\n${log}`).toBeLessThan(firstGraceOver);
    }
    for (const a of await world.status()) {
      expect(a.state).toBe("stopped");
      expect(a.last_exit).toBe("killed-after-grace");
      expect(world.cgroupPids(a.name)).toEqual([]);
    }
    const started = await world.pmctl(["start", "all"]);
    expect(started.code).toBe(0);
    for (const a of await world.status()) expect(a, JSON.stringify(a) + d.output()).toMatchObject({ state: "running" });
  });

  test("a SIGTERM-ignoring service with a child is gone once its grace runs out: SIGTERM, grace, cgroup.kill, stopped", async () => {
    world = new World();
    world.writeService("stubborn", { process: { command: ["sh", "-c", "trap '' TERM; sh -c \"trap '' TERM; sleep 1000\" & while true; do sleep 0.2; done"], stop_grace_ms: 1000 } });
    const d = await world.daemon();
    const pids = await waitUntil(async () => { const a = await world.app("stubborn"); return a.pids.length >= 3 && a.pids; }, "the service and its children");
    const logFrom = d.output().length;
    const t0 = performance.now();
    const res = await world.pmctl(["stop", "stubborn"]);
    console.log(`stop of a SIGTERM-ignoring tree with a 1 s grace: ${(performance.now() - t0).toFixed(0)} ms, pmctl round trip included`);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain("killed after grace");
    await expectKilledAfterGrace(d, logFrom, "stubborn", 1000);
    for (const pid of pids) expect(pidAlive(pid)).toBe(false);
    expect(world.cgroupPids("stubborn")).toEqual([]);
  });

  test("a service that double-forks stays running while its cgroup is populated; stop leaves nothing", async () => {
    world = new World();
    // The main process exits at once; the grandchild lives on in a new session.
    world.writeService("forker", { process: { command: ["sh", "-c", "setsid sh -c 'sleep 1000 & wait' & exit 0"], stop_grace_ms: 1000 } });
    const d = await world.daemon();
    const pids = await waitUntil(async () => { const a = await world.app("forker"); return a.pids.length >= 2 && !a.pids.includes(a.main_pid ?? -1) && a.pids; }, "only the grandchildren left");
    const a = await world.app("forker");
    expect(a.state).toBe("running");
    expect(d.output()).not.toMatch(/\[forker\] .*(exited with|stopped \()/);
    const res = await world.pmctl(["stop", "forker"]);
    expect(res.code).toBe(0);
    for (const pid of pids) expect(pidAlive(pid)).toBe(false);
    expect(world.cgroupPids("forker")).toEqual([]);
  });

  test("a service whose processes all exit is reported exited with its real code", async () => {
    world = new World();
    world.writeService("oneshot", { process: { command: ["sh", "-c", "exit 7"] } });
    await world.daemon();
    const a = await waitUntil(async () => { const s = await world.app("oneshot"); return s.state === "failed" && s; }, "oneshot to fail");
    expect(a.exit_code).toBe(7);
    expect(a.pids).toEqual([]);
  });

  test("a stop_command that hangs is killed (with what it forked) once the stop's grace is over", async () => {
    world = new World();
    world.writeService("s", {
      process: {
        command: ["sleep", "1000"],
        // Never returns and forks a helper: neither may outlive the stop's grace.
        stop_command: ["sh", "-c", "sleep 1000 & echo $$ $! > stopcmd.pids; wait"],
        stop_grace_ms: 500,
      },
    });
    await world.daemon();
    const res = await world.pmctl(["stop", "s"]);
    expect(res.code, res.stderr).toBe(0);
    const file = `${world.appDir("s")}/stopcmd.pids`;
    const pids = await waitUntil(() => { try { const p = readFileSync(file, "utf8").trim().split(" ").map(Number); return p.length === 2 && p; } catch { return false; } }, "the stop command's pids");
    await waitUntil(() => pids.every((p) => !pidAlive(p)), "the stop command and its child to be killed", 5000);
  });

  test("a stop answers once the service is down, even when a start came in during its grace", async () => {
    world = new World();
    world.writeService("a", { process: { command: ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"], stop_grace_ms: 1500 } });
    await world.daemon();
    const first = (await world.app("a")).pids;
    const stopping = world.pmctl(["stop", "a"]);
    await waitUntil(async () => (await world.app("a")).state === "stopping", "the stop to begin");
    const started = await world.pmctl(["start", "a"]);
    expect(started.code, started.stderr).toBe(0);
    const res = await Promise.race([stopping, Bun.sleep(5000).then(() => null)]);
    expect(res, "pmctl stop never answered").not.toBeNull();
    for (const pid of first) expect(pidAlive(pid)).toBe(false);
    expect((await world.app("a")).state).toBe("running");
  });

  test("status as a table and as JSON", async () => {
    world = new World();
    world.writeService("a", sleeper());
    await world.daemon();
    const table = await world.pmctl(["status"]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^NAME\s+STATE\s+PIDS\s+UPTIME\s+RESTARTS\s+LAST EXIT/);
    expect(table.stdout).toMatch(/\na\s+running\s+\d+/);
    const json = JSON.parse((await world.pmctl(["status", "--json"])).stdout);
    expect(json.apps[0]).toMatchObject({ name: "a", state: "running", restarts: 0, exit_code: null });
    expect(json.apps[0].pids).toHaveLength(1);
  });
});
