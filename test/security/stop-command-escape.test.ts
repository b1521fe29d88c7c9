/**
 * Issue 11 item 9: a service's user writes a stop_command that leaves a process behind
 * (`setsid sleep &`). It must not outlive the stop: no process of the service's user may be left
 * in the daemon's own cgroup, outside every limit, where `stop` never kills it.
 */
import { afterEach, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pidAlive, waitUntil, World } from "../helpers/harness.ts";
import { openWorld } from "./attacker.ts";

let world: World | undefined;
let escaped: number | undefined;
afterEach(async () => {
  if (escaped !== undefined && pidAlive(escaped)) process.kill(escaped, "SIGKILL"); // the old code's leftover
  escaped = undefined;
  await world?.cleanup(); world = undefined;
});

/**
 * A world whose service `svc` runs as nobody in a folder nobody owns, with `commandKey`
 * (stop_command or reload_command) set to `sh -c script(pidFile)`; the daemon serves and svc runs.
 */
async function serviceWithHelperCommand(commandKey: "stop_command" | "reload_command", script: (pidFile: string) => string, graceMs = 5000): Promise<{ w: World; pidFile: string; d: Awaited<ReturnType<World["daemon"]>> }> {
  world = new World();
  openWorld(world);
  const pidFile = join(world.appDir("svc"), "escaped.pid");
  world.writeService("svc", {
    process: { user: "nobody", command: ["sleep", "1000"], stop_grace_ms: graceMs, [commandKey]: ["sh", "-c", script(pidFile)] },
  });
  await Bun.$`chown nobody ${world.appDir("svc")}`;
  const d = await world.daemon();
  await waitUntil(async () => (await world!.app("svc")).state === "running", "svc to run");
  return { w: world, pidFile, d };
}

test("what a stop_command forks (setsid, background) is killed when the stop ends", async () => {
  // Leaves a sleep behind in a session of its own, then fails: the daemon falls back to stop_signal.
  const { w, pidFile } = await serviceWithHelperCommand("stop_command", (f) => `setsid sleep 99999 </dev/null >/dev/null 2>&1 & echo $! > ${f}; exit 1`);

  const stop = await w.pmctl(["stop", "svc"]);
  expect(stop.code).toBe(0);
  escaped = Number(readFileSync(pidFile, "utf8").trim());
  expect(escaped).toBeGreaterThan(0);
  await waitUntil(() => !pidAlive(escaped!), "the stop command's forked sleep to be gone", 10_000);
  const daemonLeaf = readFileSync(join(w.masterCgroup, "_daemon", "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
  expect(daemonLeaf).not.toContain(escaped);
});

test("what a reload_command forks is killed when it ends; a child holding its output does not hang the request", async () => {
  // The leftover keeps the command's stdout open: the daemon used to wait for it forever.
  const { w, pidFile } = await serviceWithHelperCommand("reload_command", (f) => `setsid sleep 99999 & echo $! > ${f}; echo reloaded`);

  const reload = await w.pmctl(["reload", "svc"]);
  expect(reload.code).toBe(0);
  expect(reload.stdout).toContain("reloaded");
  escaped = Number(readFileSync(pidFile, "utf8").trim());
  await waitUntil(() => !pidAlive(escaped!), "the reload command's forked sleep to be gone", 10_000);
  expect((await w.app("svc")).state).toBe("running");
});

test("a daemon killed mid-stop: the next one kills what the stop_command left and removes its _stop- cgroup at boot", async () => {
  // A slow stop command that leaves a setsid'd sleep behind; the daemon is SIGKILLed while it runs.
  const { w, pidFile, d } = await serviceWithHelperCommand("stop_command", (f) => `setsid sleep 99999 </dev/null >/dev/null 2>&1 & echo $! > ${f}; exec sleep 99999`, 120_000);
  const helper = join(w.masterCgroup, "_stop-svc");
  const stop = w.pmctl(["stop", "svc"]);
  escaped = await waitUntil(() => { try { return Number(readFileSync(pidFile, "utf8").trim()); } catch { return 0; } }, "the stop command to fork");
  expect(readFileSync(join(helper, "cgroup.procs"), "utf8").split("\n").map(Number)).toContain(escaped);
  d.proc.kill("SIGKILL");
  await d.exited;
  await stop; // its connection closed with the daemon
  const leftovers = [escaped, ...readFileSync(join(helper, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number)];
  expect(pidAlive(escaped)).toBe(true); // left behind, as a crashed daemon leaves it

  // The next daemon resumes the stop; without a stop_command now, by signal: no helper cgroup of
  // its own is made (making one would also clear the old), so only its sweep at boot removes it.
  w.writeService("svc", { process: { user: "nobody", command: ["sleep", "1000"], stop_grace_ms: 5000 } });
  const d2 = await w.daemon();
  await waitUntil(() => !existsSync(helper) && !leftovers.some(pidAlive), "the new daemon to kill the leftovers and remove _stop-svc", 20_000);
  expect(d2.output()).not.toContain("running stop_command");
  expect((await w.pmctl(["status"])).code).toBe(0);
});
