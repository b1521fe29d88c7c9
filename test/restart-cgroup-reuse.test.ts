/**
 * A restart keeps the service's emptied cgroup instead of removing and making it again (issue
 * 15, restart after kill -9), except where that would carry something of the old run into the
 * new one: status still reports the new run's own CPU time, and a cgroup that received
 * cgroup.kill (which on the kernels we run on goes on killing every process spawned into it) is
 * never used for another run: after the daemon's own kill the next run gets a fresh cgroup, and
 * after a kill written by someone else the start is made again in a fresh one, once.
 */
import { afterEach, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pidAlive, waitUntil, World } from "./helpers/harness.ts";

let world: World;
afterEach(async () => { await world?.cleanup(); });

/** Notes each run in `runs`, writes its PID to `pid` (the PID stays: sh execs), runs `rest`. */
const command = (rest: string) => ["sh", "-c", `echo run >> runs; ${rest}; echo $$ > pid; exec sleep 100000`];
const always = { policy: "always", restart_backoff_ms: 0, tolerance: { max_restarts: 100, duration: "1m" } };

const runs = (name: string) => (existsSync(join(world.appDir(name), "runs")) ? readFileSync(join(world.appDir(name), "runs"), "utf8").split("\n").filter(Boolean).length : 0);
const pidFile = (name: string) => { try { return Number(readFileSync(join(world.appDir(name), "pid"), "utf8").trim()) || null; } catch { return null; } };
const cgroupIno = (name: string) => statSync(world.serviceCgroup(name)).ino;

/** Status once the run with a main PID other than `old` has exec'd its sleep (its pid file names it) and is alive. */
async function runningAgain(name: string, old: number | null) {
  return waitUntil(async () => {
    const a = await world.app(name);
    return a.state === "running" && a.main_pid !== null && a.main_pid !== old && pidFile(name) === a.main_pid && pidAlive(a.main_pid) && a;
  }, `${name} to run again`);
}

test("a crash restarts in the same, emptied cgroup; status's CPU time is the new run's own", async () => {
  world = new World();
  world.writeService("svc", { process: { command: command("if [ -e burn ]; then rm burn; i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; fi") }, restart_policy: always });
  writeFileSync(join(world.appDir("svc"), "burn"), "");
  await world.daemon();
  const first = await runningAgain("svc", null);
  const cpuFirst = first.cpu_usage_usec!;
  expect(cpuFirst).toBeGreaterThan(20_000); // the first run burnt CPU; the next one does not
  const ino = cgroupIno("svc");

  process.kill(first.main_pid!, "SIGKILL");
  const second = await runningAgain("svc", first.main_pid);
  expect(second.restarts).toBe(1);
  expect(cgroupIno("svc")).toBe(ino); // kept, not made anew
  expect(second.cpu_usage_usec).not.toBeNull();
  expect(second.cpu_usage_usec!).toBeLessThan(cpuFirst);
});

test("a new daemon that adopts a run in a kept cgroup still reports that run's own CPU time", async () => {
  world = new World();
  world.writeService("svc", { process: { command: command("if [ -e burn ]; then rm burn; i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; fi") }, restart_policy: always });
  writeFileSync(join(world.appDir("svc"), "burn"), "");
  const d = await world.daemon();
  const first = await runningAgain("svc", null);
  const cpuFirst = first.cpu_usage_usec!;
  expect(cpuFirst).toBeGreaterThan(20_000);
  process.kill(first.main_pid!, "SIGKILL");
  const second = await runningAgain("svc", first.main_pid); // this reply waited for the state file
  expect(second.cpu_usage_usec!).toBeLessThan(cpuFirst);
  d.proc.kill("SIGKILL");
  await d.exited;

  const next = await world.daemon();
  await next.waitForLog(/\[svc\] adopted running service/);
  const adopted = await world.app("svc");
  expect(adopted.main_pid).toBe(second.main_pid);
  expect(adopted.cpu_usage_usec).not.toBeNull();
  expect(adopted.cpu_usage_usec!).toBeLessThan(cpuFirst); // not the cgroup's counter since its first run
});

test("after the daemon's own cgroup.kill (stop past its grace) the next run gets a fresh cgroup", async () => {
  world = new World();
  // Ignores SIGTERM (sleep inherits that), so the restart's stop ends with cgroup.kill.
  world.writeService("stubborn", { process: { command: ["sh", "-c", "trap '' TERM; echo run >> runs; echo $$ > pid; exec sleep 100000"], stop_grace_ms: 200 }, restart_policy: always });
  const d = await world.daemon();
  const first = await runningAgain("stubborn", null);
  const ino = cgroupIno("stubborn");

  expect((await world.pmctl(["restart", "stubborn"])).code).toBe(0);
  const second = await runningAgain("stubborn", first.main_pid);
  expect(second.last_exit).toBe("killed-after-grace");
  expect(cgroupIno("stubborn")).not.toBe(ino);
  expect(runs("stubborn")).toBe(2);
  expect(d.output()).not.toContain("killed before it ran"); // known to be killed: no spawn into it
});

test("after a cgroup.kill written by someone else the service starts again in a fresh cgroup, once", async () => {
  world = new World();
  world.writeService("victim", { process: { command: command("true") }, restart_policy: always });
  const d = await world.daemon();
  const first = await runningAgain("victim", null);
  const ino = cgroupIno("victim");

  writeFileSync(join(world.serviceCgroup("victim"), "cgroup.kill"), "1");
  // Spawned into the killed cgroup, the new process would die before it ran, again and again.
  const second = await runningAgain("victim", first.main_pid);
  expect(second.restarts).toBe(1);
  expect(second.last_exit).toBe("exit");
  expect(second.exit_signal).toBe("SIGKILL");
  expect(runs("victim")).toBe(2);
  // The start was made again, in a fresh cgroup, once.
  expect(cgroupIno("victim")).not.toBe(ino);
  await d.waitForLog(/was killed before it ran/);
  expect(d.output().match(/was killed before it ran/g)).toHaveLength(1);
});
