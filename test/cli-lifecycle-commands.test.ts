/**
 * The operator's lifecycle commands: `restart all` touches only what runs, `shutdown` stops
 * everything and the daemon without recording operator stops (and counts only what was
 * running), default log files of services without a working_directory never collide, and stop
 * progress lines, the daemon's log and `reload` give real counts with the right plural.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { restartTargets } from "../src/supervisor/selection.ts";
import { waitUntil, World } from "./helpers/harness.ts";

setDefaultTimeout(60_000);

let world: World;
afterEach(async () => { await world?.cleanup(); });

const sleeper = { process: { command: ["sleep", "1000"], stop_grace_ms: 2000 } };

describe("restart all", () => {
  test("restartTargets: all (or no names) takes running, starting and backoff services; names take what they name", () => {
    const phases = ["running", "starting", "backoff", "stopping", "stopped", "failed", "suppressed", "scheduled", "exited"];
    const units = phases.map((phase) => ({ name: phase, state: { phase } }));
    const expected = ["running", "starting", "backoff"];
    expect(restartTargets(units, ["all"]).map((u) => u.name)).toEqual(expected);
    expect(restartTargets(units, []).map((u) => u.name)).toEqual(expected);
    const named = units.filter((u) => u.name === "stopped" || u.name === "starting");
    expect(restartTargets(named, ["starting", "stopped"])).toEqual(named);
  });

  test("restarts running and backoff services; leaves stopped, disabled and failed ones; a named stopped one starts", async () => {
    world = new World();
    world.writeService("up", sleeper);
    world.writeService("held", sleeper);
    world.writeService("off", { ...sleeper, enabled: false });
    world.writeService("dead", { process: { command: ["sh", "-c", "exit 2"] } });
    world.writeService("flappy", { process: { command: ["sh", "-c", "exit 1"] }, restart_policy: { policy: "always", restart_backoff_ms: "1h" } });
    await world.daemon();
    const before = await waitUntil(async () => { const a = await world.app("up"); return a.state === "running" && a; }, "up to run");
    await waitUntil(async () => (await world.app("dead")).state === "failed", "dead to fail");
    await waitUntil(async () => (await world.app("flappy")).state === "backoff", "flappy in backoff");
    expect((await world.pmctl(["stop", "held"])).code).toBe(0);

    const r = await world.pmctl(["restart", "all", "--json"]);
    const touched = (JSON.parse(r.stdout).apps as { name: string }[]).map((a) => a.name).sort();
    expect(touched).toEqual(["flappy", "up"]);
    const after = await world.app("up");
    expect(after.state).toBe("running");
    expect(after.main_pid).not.toBe(before.main_pid);
    expect((await world.app("held")).state).toBe("stopped");
    expect((await world.app("off")).state).toBe("stopped");
    expect((await world.app("dead")).state).toBe("failed");

    const named = await world.pmctl(["restart", "held"]);
    expect(named.code).toBe(0);
    expect((await world.app("held")).state).toBe("running");
  });

  test("with nothing running it says so", async () => {
    world = new World();
    world.writeService("off", { ...sleeper, enabled: false });
    await world.daemon();
    const r = await world.pmctl(["restart", "all"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/nothing to restart/);
    expect((await world.app("off")).state).toBe("stopped");
  });
});

describe("shutdown", () => {
  test("stops every service in parallel, the daemon exits 0, and the next daemon starts them again", async () => {
    world = new World();
    world.writeService("a", sleeper);
    world.writeService("b", { process: { command: ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"], stop_grace_ms: 1500 } });
    world.writeService("held", sleeper);
    const d = await world.daemon();
    await waitUntil(async () => (await world.status()).filter((a) => a.state === "running").length === 3, "three running");
    expect((await world.pmctl(["stop", "held"])).code).toBe(0);

    const r = await world.pmctl(["shutdown"]);
    expect(r.code).toBe(0);
    // held was already stopped: only a and b were stopped by the shutdown.
    expect(r.stdout).toMatch(/^stopped 2 services \(killed after grace: b\); the daemon is exiting$/m);
    expect(await d.exited).toBe(0);
    for (const name of ["a", "b", "held"]) expect(world.cgroupPids(name)).toEqual([]);

    // No operator stop was recorded for a and b: a new daemon starts them; held stays stopped.
    await world.daemon();
    await waitUntil(async () => { const s = await world.status(); return s.find((x) => x.name === "a")?.state === "running" && s.find((x) => x.name === "b")?.state === "running"; }, "a and b running again");
    const held = await world.app("held");
    expect(held.state).toBe("stopped");
    expect(held.operator_stopped).toBe(true);
  });
});

describe("default log files", () => {
  test("services without working_directory log to <log_directory>/<service>/ and run side by side", async () => {
    world = new World();
    world.writeRawService("one.yaml", "process:\n  command: [\"sh\", \"-c\", \"echo from-one; exec sleep 1000\"]\n  stop_grace_ms: 1000\n");
    world.writeRawService("two.yaml", "process:\n  command: [\"sh\", \"-c\", \"echo from-two; exec sleep 1000\"]\n  stop_grace_ms: 1000\n");
    expect((await world.pmctl(["check"])).code).toBe(0);
    await world.daemon();
    for (const name of ["one", "two"]) {
      const file = join(world.dir, "logs", name, "stdout.log");
      await waitUntil(() => existsSync(file) && readFileSync(file, "utf8").includes(`from-${name}`), `${name}'s log`);
    }
  });
});

describe("stop progress", () => {
  test("progress lines count the processes really left, with the right plural", async () => {
    world = new World();
    world.writeService("stubborn", { process: { command: ["sh", "-c", "trap '' TERM; sleep 1000 & while true; do sleep 1; done"], stop_grace_ms: 2500 } });
    const d = await world.daemon();
    await waitUntil(async () => (await world.app("stubborn")).pids.length >= 2, "stubborn and its child");
    const r = await world.pmctl(["stop", "stubborn"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/stubborn: waiting for [2-9] processes to exit \(\d+s of 3s grace/);
    expect(r.stderr).not.toMatch(/waiting for 0 /);
    expect(r.stderr).not.toMatch(/process\(es\)/);
    expect(d.output()).toMatch(/sent SIGTERM to [2-9] processes/);
    expect(d.output()).not.toMatch(/process\(es\)/);
  });

  test("a reload signal with no main process known counts the processes it went to", async () => {
    world = new World();
    // exit_type cgroup: the run goes on while its cgroup has processes; the main one leaves at once.
    world.writeService("grp", { process: { command: ["sh", "-c", "(trap 'echo reloaded' HUP; while true; do sleep 1; done) & exit 0"], exit_type: "cgroup", reload_signal: "SIGHUP", stop_grace_ms: 2000 } });
    await world.daemon();
    await waitUntil(async () => { const a = await world.app("grp"); return a.state === "running" && a.pids.length >= 1 && a.main_pid == null; }, "grp to run without its main process");
    const r = await world.pmctl(["reload", "grp"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^grp: SIGHUP to (1 process|[2-9] processes) \(no main process known\)$/m);
    expect(r.stdout).not.toMatch(/process\(es\)/);
  });
});
