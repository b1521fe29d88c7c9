/** `pmctl update`: re-reading the config does exactly what changed, and nothing when a file is bad. */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pidAlive, waitUntil, World } from "./helpers/harness.ts";

// bunfig's [test] timeout is not read by Bun 1.4.5 (the default stays 5 s): set it here.
setDefaultTimeout(30_000);

let world: World;
afterEach(async () => { await world?.cleanup(); });

const sleeper = (extra: Record<string, unknown> = {}, top: Record<string, unknown> = {}) =>
  ({ ...top, process: { command: ["sleep", "1000"], stop_grace_ms: 2000, ...extra } });

/** The rows of pmctl update's table: action → services. */
function updateRows(stdout: string): Record<string, string> {
  const rows: Record<string, string> = {};
  for (const line of stdout.trim().split("\n").slice(1)) {
    const m = /^(.+?)\s{2,}(.+)$/.exec(line);
    if (m) rows[m[1]!.trim()] = m[2]!.trim();
  }
  return rows;
}

async function pidsOf(): Promise<Record<string, number[]>> {
  return Object.fromEntries((await world.status()).map((a) => [a.name, a.pids]));
}

describe("update", () => {
  test("added, removed, changed and unchanged services: the four right things, and it says so", async () => {
    world = new World();
    world.writeService("keep", sleeper());
    world.writeService("gone", sleeper());
    world.writeService("cmd", sleeper());
    const d = await world.daemon();
    const before = await pidsOf();
    expect(Object.values(before).every((p) => p.length === 1)).toBe(true);

    world.removeService("gone");
    world.writeService("cmd", sleeper({ command: ["sleep", "2000"] }));
    world.writeService("fresh", sleeper());
    const res = await world.pmctl(["update"]);
    expect(res.code).toBe(0);
    expect(updateRows(res.stdout)).toEqual({
      started: "fresh", "stopped and removed": "gone", restarted: "cmd", "updated in place": "-", unchanged: "keep",
    });

    const after = await world.status();
    expect(after.map((a) => a.name).sort()).toEqual(["cmd", "fresh", "keep"]);
    for (const a of after) expect(a.state).toBe("running");
    const now = Object.fromEntries(after.map((a) => [a.name, a.pids]));
    expect(now.keep).toEqual(before.keep!); // unchanged: same process
    expect(now.cmd!.length).toBe(1);
    expect(now.cmd![0]).not.toBe(before.cmd![0]); // changed: a new process ...
    expect(pidAlive(before.cmd![0]!)).toBe(false); // ... and the old one is gone
    expect(readFileSync(`/proc/${now.cmd![0]}/cmdline`, "utf8")).toBe("sleep\0" + "2000\0");
    expect(now.fresh!.length).toBe(1);
    expect(pidAlive(before.gone![0]!)).toBe(false); // removed: stopped ...
    expect(existsSync(world.serviceCgroup("gone"))).toBe(false); // ... its cgroup removed ...
    await waitUntil(() => !readFileSync(join(world.dir, "state.json"), "utf8").includes('"gone"'), "gone to leave the state file"); // ... and forgotten
    expect((await world.pmctl(["status", "gone"])).code).toBe(1);
    expect(d.output()).toContain("update: added [fresh] removed [gone] changed [cmd]");

    // A second update with nothing changed does nothing.
    const again = await world.pmctl(["update"]);
    expect(again.code).toBe(0);
    expect(updateRows(again.stdout)).toMatchObject({ started: "-", "stopped and removed": "-", restarted: "-", unchanged: "cmd fresh keep" });
    expect(await pidsOf()).toEqual(now);
  });

  test("a broken service file rejects the whole update: exit 1, file and line named, everything as before", async () => {
    world = new World();
    world.writeService("a", sleeper());
    world.writeService("b", sleeper());
    await world.daemon();
    const before = await pidsOf();

    world.writeService("a", sleeper({ command: ["sleep", "2000"] })); // would be restarted
    world.removeService("b"); // would be stopped
    world.writeService("c", sleeper()); // would be started
    const broken = world.writeRawService("broken.yaml", "process:\n  command: [sleep, 1000]\n  stop_signal: SIGNOPE\n");
    const res = await world.pmctl(["update"]);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe("");
    const first = res.stderr.split("\n")[0]!;
    expect(first).toContain("update rejected, nothing changed");
    expect(first).toContain(`${broken}:3`);
    expect(first).toContain("stop_signal");

    expect((await world.status()).map((a) => a.name)).toEqual(["a", "b"]);
    expect(await pidsOf()).toEqual(before);
    expect(world.cgroupPids("c")).toEqual([]);

    // Once the file is fixed, the same update goes through.
    world.writeRawService("broken.yaml", "process:\n  command: [sleep, 1000]\n  stop_signal: SIGINT\n");
    const ok = await world.pmctl(["update"]);
    expect(ok.code).toBe(0);
    expect(updateRows(ok.stdout)).toMatchObject({ started: "broken c", "stopped and removed": "b", restarted: "a" });
  });

  test("a broken master config rejects the update too", async () => {
    world = new World();
    world.writeService("a", sleeper());
    await world.daemon();
    const before = await pidsOf();
    world.writeMaster({ cgroup_name: "../escape" });
    const res = await world.pmctl(["update"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`${world.configPath}:`);
    expect(res.stderr).toContain("cgroup_name");
    expect(await pidsOf()).toEqual(before);
  });

  test("a resources-only or stop-settings change does not restart, and takes effect", async () => {
    world = new World();
    const stubborn = ["sh", "-c", "trap '' TERM; sleep 1000 & wait"];
    world.writeService("limited", sleeper());
    world.writeService("stubborn", sleeper({ command: stubborn, stop_grace_ms: 60_000 }));
    await world.daemon();
    await waitUntil(async () => (await world.app("stubborn")).pids.length === 2, "stubborn and its child");
    const before = await pidsOf();

    world.writeService("limited", sleeper({}, { resources: { memory_max: "64M", pids_max: 100 }, restart_policy: { policy: "always" } }));
    world.writeService("stubborn", sleeper({ command: stubborn, stop_grace_ms: 300 }));
    const res = await world.pmctl(["update"]);
    expect(res.code).toBe(0);
    expect(updateRows(res.stdout)).toMatchObject({ restarted: "-", "updated in place": "limited stubborn" });
    expect(await pidsOf()).toEqual(before);

    // The new grace is the one in force: the stop escalates after 300 ms, not 60 s.
    const stop = await world.pmctl(["stop", "stubborn"]);
    expect(stop.code).toBe(0);
    expect(stop.stdout).toContain("killed after grace");
  });

  test("disabling a service stops it without marking it operator-stopped; enabling it again starts it", async () => {
    world = new World();
    world.writeService("a", sleeper());
    await world.daemon();
    const first = (await world.app("a")).pids[0]!;

    world.writeService("a", sleeper({}, { enabled: false }));
    const off = await world.pmctl(["update"]);
    expect(off.code).toBe(0);
    expect(pidAlive(first)).toBe(false);
    expect(await world.app("a")).toMatchObject({ state: "stopped", operator_stopped: false, enabled: false, pids: [] });

    world.writeService("a", sleeper());
    const on = await world.pmctl(["update"]);
    expect(on.code).toBe(0);
    const a = await world.app("a");
    expect(a).toMatchObject({ state: "running", enabled: true });
    expect(a.pids.length).toBe(1);
  });

  test("a changed definition does not start a service the operator stopped", async () => {
    world = new World();
    world.writeService("a", sleeper());
    await world.daemon();
    expect((await world.pmctl(["stop", "a"])).code).toBe(0);
    world.writeService("a", sleeper({ command: ["sleep", "2000"] }));
    const res = await world.pmctl(["update"]);
    expect(res.code).toBe(0);
    expect(await world.app("a")).toMatchObject({ state: "stopped", operator_stopped: true, pids: [] });
    expect((await world.pmctl(["start", "a"])).code).toBe(0);
    const pid = (await world.app("a")).pids[0]!;
    expect(readFileSync(`/proc/${pid}/cmdline`, "utf8")).toBe("sleep\0" + "2000\0");
  });
  test("a service update is removing cannot be started again during its stop; it is stopped and forgotten", async () => {
    world = new World();
    world.writeService("a", { process: { command: ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"], stop_grace_ms: 1500 } });
    await world.daemon();
    const first = (await world.app("a")).pids;
    world.removeService("a");
    const updating = world.pmctl(["update"]);
    await waitUntil(async () => (await world.app("a")).state === "stopping", "the removal's stop to begin");
    const started = await world.pmctl(["start", "a"]);
    expect(started.code).toBe(1);
    expect(started.stderr).toMatch(/cannot start a: .*update is removing it/);
    const res = await Promise.race([updating, Bun.sleep(5000).then(() => null)]);
    expect(res, "pmctl update never answered").not.toBeNull();
    expect(res!.code, res!.stderr).toBe(0);
    for (const pid of first) expect(pidAlive(pid)).toBe(false);
    expect(world.cgroupPids("a")).toEqual([]);
    expect((await world.status()).map((a) => a.name)).toEqual([]);
  });
});
