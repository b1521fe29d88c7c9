/**
 * Chaos 9: processmaster as PID 1 of a new PID namespace (what a container gives it).
 * Orphans of services are reparented to PID 1 = the daemon; it must reap them (no zombies
 * pile up), and SIGTERM to PID 1 stops every service gracefully before the daemon exits.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { PM_CWD, pmCommand, pidAlive, waitUntil, World } from "../helpers/harness.ts";
import { callDaemon } from "../../src/control/client.ts";
import type { AppStatus } from "../../src/supervisor/status.ts";
import { childrenOf, populatedServiceCgroups } from "./chaos-helpers.ts";

const unshare = Bun.which("unshare");
const perl = Bun.which("perl"); // the orphan factory: forks without a shell's bookkeeping
if (!unshare || !perl) console.warn(`pid1: skipped: needs unshare and perl (unshare: ${unshare ?? "missing"}, perl: ${perl ?? "missing"})`);
let world: World | undefined;
let init: { proc: Subprocess<"ignore", "pipe", "pipe">; output: () => string; drained: Promise<unknown> } | undefined;

afterEach(async () => {
  if (init) { try { init.proc.kill("SIGKILL"); } catch { /* gone */ } await init.proc.exited; init = undefined; }
  await world?.cleanup(); // cgroup.kill of the master also ends the daemon (it lives in the _daemon leaf)
  world = undefined;
});

/** Starts the daemon as PID 1 of a new PID namespace; resolves with its PID as seen from here. */
async function startAsInit(w: World): Promise<number> {
  // --kill-child: if unshare dies (test cleanup), the kernel kills the namespace's init with it.
  const proc = Bun.spawn({
    cmd: [unshare!, "--pid", "--fork", "--kill-child", "--mount-proc", ...pmCommand(["daemon", "-c", w.configPath])], cwd: PM_CWD,
    stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, PM_LOG_LEVEL: "debug" },
  });
  let text = "";
  const pump = async (s: ReadableStream<Uint8Array>) => { const d = new TextDecoder(); for await (const c of s) text += d.decode(c, { stream: true }); };
  init = { proc, output: () => text, drained: Promise.all([pump(proc.stdout), pump(proc.stderr)]) };
  const ping = await waitUntil(async () => (await callDaemon(w.sockPath, "ping")) as { pid: number }, `the PID-1 daemon to serve; log:\n${text}`, 15_000, 50);
  expect(ping.pid).toBe(1);
  const [daemon] = childrenOf(proc.pid);
  expect(daemon).toBeDefined();
  return daemon!.pid;
}

const apps = async (w: World) => ((await callDaemon(w.sockPath, "status")) as { apps: AppStatus[] }).apps;
const zombiesOf = (pid: number) => childrenOf(pid).filter((c) => c.state === "Z").map((c) => c.pid);

describe.skipIf(!unshare || !perl)("chaos: processmaster as PID 1", () => {
  test("orphans of services are reaped: no zombies after double-forks whose children exit", async () => {
    world = new World();
    // The daemon re-lists a service's PIDs only when a PID it watches exits. This perl never
    // exits: after the first listing it forks 40 helpers that each fork a grandchild and exit;
    // each grandchild is orphaned to PID 1 and exits 100 ms later, never seen by exit tracking.
    const orphaner = "select(undef,undef,undef,0.3); for (1..40) { my $p = fork(); if ($p == 0) { if (fork() == 0) { select(undef,undef,undef,0.1); exit 0 } exit 0 } waitpid($p, 0); select(undef,undef,undef,0.03) } sleep 1000";
    world.writeService("orphaner", { process: { command: ["perl", "-e", orphaner], stop_grace_ms: 2000 } });
    // A classic daemonizing double fork in a new session; the grandchildren exit after a while.
    world.writeService("doublefork", { process: { command: ["sh", "-c", "(setsid sh -c 'sleep 0.3 & sleep 0.5 & exit 0' &); exec sleep 1000"], stop_grace_ms: 2000 } });
    // A stop_command runs in the daemon's own cgroup, watched by nobody; its helper is orphaned too.
    world.writeService("stopper", { process: { command: ["sleep", "1000"], stop_command: ["sh", "-c", "(sleep 0.2 &); exit 0"], stop_grace_ms: 300 } });
    const daemonPid = await startAsInit(world);
    await waitUntil(async () => (await apps(world!)).every((a) => a.state === "running"), "the services running");

    // Orphans really are reparented to the daemon (else this test would prove nothing).
    await waitUntil(() => childrenOf(daemonPid).some((c) => readComm(c.pid) === "sleep"), "an orphaned sleep to be reparented to PID 1", 15_000, 5);

    // For 2 s, about 40 orphans are born and die: zombies may exist for an instant, never pile up.
    const deadline = performance.now() + 2000;
    let most = 0;
    while (performance.now() < deadline) {
      most = Math.max(most, zombiesOf(daemonPid).length);
      await Bun.sleep(25);
    }
    expect(most).toBeLessThan(5);
    await waitUntil(() => zombiesOf(daemonPid).length === 0, `no zombie children of PID 1 (left: ${zombiesOf(daemonPid)})`, 15_000);

    const res = await callDaemon(world.sockPath, "stop", ["orphaner", "doublefork", "stopper"]);
    expect((res as { apps: AppStatus[] }).apps.every((a) => a.pids.length === 0)).toBe(true);
    // The stop_command's orphaned `sleep 0.2` ends after the stop: PID 1 reaps it too.
    await waitUntil(() => !childrenOf(daemonPid).some((c) => readComm(c.pid) === "sleep") && zombiesOf(daemonPid).length === 0,
      `no orphaned sleep and no zombies after stop (zombies: ${zombiesOf(daemonPid)})`, 15_000);
    // The daemon's own spawned children still report real exit codes (the reaper left them to Bun).
    world.writeService("oneshot", { process: { command: ["sh", "-c", "exit 7"] } });
    await callDaemon(world.sockPath, "update");
    const oneshot = await waitUntil(async () => (await apps(world!)).find((a) => a.name === "oneshot" && a.state === "failed"), "oneshot to fail with its code");
    expect(oneshot.exit_code).toBe(7);
    expect(init!.output()).not.toMatch(/reaping orphans failed|ECHILD|tracking failed/);
  }, 30_000);

  test("SIGTERM to PID 1 stops every service within its grace, keeps operator intent, then exits 0", async () => {
    world = new World();
    world.writeService("plain", { process: { command: ["sleep", "1000"], stop_grace_ms: 3000 } });
    world.writeService("stubborn", { process: { command: ["sh", "-c", "trap '' TERM; sleep 1000 & wait"], stop_grace_ms: 1000 } });
    world.writeService("parked", { process: { command: ["sleep", "1000"] } });
    const daemonPid = await startAsInit(world);
    await waitUntil(async () => (await apps(world!)).every((a) => a.state === "running" && a.pids.length >= 1), "services running");
    await callDaemon(world.sockPath, "stop", ["parked"]); // an operator stop must survive the container restart
    // PIDs as seen from here (status reports the namespace's own PIDs).
    const pids = [...populatedServiceCgroups(world.masterCgroup).values()].flat();
    expect(pids.length).toBe(3);

    const t0 = performance.now();
    process.kill(daemonPid, "SIGTERM");
    const code = await init!.proc.exited;
    await init!.drained;
    console.log(`SIGTERM to PID 1 until it exited (stubborn's 1 s grace ran out, plain's 3 s grace was not needed): ${(performance.now() - t0).toFixed(0)} ms`);
    const out = init!.output();
    expect(code, out).toBe(0);
    // Within each grace, all at once: both services are signalled before stubborn's grace runs
    // out; plain ends on its SIGTERM (its 3 s grace never runs out); the daemon exits after both.
    const at = (re: RegExp) => { const i = out.search(re); expect(i, `${re} in the log:\n${out}`).toBeGreaterThanOrEqual(0); return i; };
    const term = at(/SIGTERM: running as PID 1: stopping every service/);
    const plainSignalled = at(/\[plain\] sent SIGTERM/), stubbornSignalled = at(/\[stubborn\] sent SIGTERM/);
    const stubbornGraceOver = at(/\[stubborn\] still running after 1000ms grace/);
    const plainStopped = at(/\[plain\] stopped \(killed by SIGTERM\)/), stubbornStopped = at(/\[stubborn\] stopped \(killed after grace\)/);
    const exiting = at(/every service stopped; exiting/);
    expect(Math.min(plainSignalled, stubbornSignalled), out).toBeGreaterThan(term);
    expect(Math.max(plainSignalled, stubbornSignalled), out).toBeLessThan(stubbornGraceOver);
    expect(out).not.toMatch(/\[plain\] still running after/);
    expect(exiting, out).toBeGreaterThan(Math.max(plainStopped, stubbornStopped));
    for (const pid of pids) expect(pidAlive(pid)).toBe(false);
    expect([...populatedServiceCgroups(world.masterCgroup).keys()]).toEqual([]);

    const state = JSON.parse(readFileSync(join(world.dir, "state.json"), "utf8"));
    expect(state.units.plain.operatorStopped).toBe(false);
    expect(state.units.stubborn.operatorStopped).toBe(false);
    expect(state.units.parked.operatorStopped).toBe(true);

    // The "container" starts again: what ran before runs again, the operator stop holds.
    init = undefined;
    await startAsInit(world);
    const after = await waitUntil(async () => { const a = await apps(world!); return a.filter((x) => x.name !== "parked").every((x) => x.state === "running") && a; }, "services back after restart");
    expect(after.find((a) => a.name === "parked")!.state).toBe("stopped");
  }, 30_000);
});

function readComm(pid: number): string {
  try { return readFileSync(`/proc/${pid}/comm`, "utf8").trim(); } catch { return ""; }
}
