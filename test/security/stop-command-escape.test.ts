/**
 * Issue 11 item 9: a service's user writes a stop_command that leaves a process behind
 * (`setsid sleep &`). It must not outlive the stop: no process of the service's user may be left
 * in the daemon's own cgroup, outside every limit, where `stop` never kills it.
 */
import { afterEach, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
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
async function serviceWithHelperCommand(commandKey: "stop_command" | "reload_command", script: (pidFile: string) => string): Promise<{ w: World; pidFile: string }> {
  world = new World();
  openWorld(world);
  const pidFile = join(world.appDir("svc"), "escaped.pid");
  world.writeService("svc", {
    process: { user: "nobody", command: ["sleep", "1000"], stop_grace_ms: 5000, [commandKey]: ["sh", "-c", script(pidFile)] },
  });
  await Bun.$`chown nobody ${world.appDir("svc")}`;
  await world.daemon();
  await waitUntil(async () => (await world!.app("svc")).state === "running", "svc to run");
  return { w: world, pidFile };
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
