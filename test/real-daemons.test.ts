/**
 * Real multi-process servers, with a test double of a pre-forking server (a master and its
 * workers, run as nobody; test/fixtures/servers/forking-server.sh): the main process's death
 * ends the service (exit_type auto), reload gives new workers under the same master, stop_mode
 * main signals the master alone, the main PID survives a daemon SIGKILL, and `pmctl signal`.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pidAlive, REPO, waitUntil, World } from "./helpers/harness.ts";
import { pmctlAsNobody } from "./security/attacker.ts";
import type { AppStatus } from "../src/supervisor/status.ts";

let world: World;
afterEach(async () => { await world?.cleanup(); });

const SERVER = join(REPO, "test", "fixtures", "servers", "forking-server.sh");
const WORKERS = 2;
/** A worker is a subshell and its `sleep`. */
const PIDS_WHEN_UP = 1 + 2 * WORKERS;

function forkingServer(process: Record<string, unknown> = {}, more: Record<string, unknown> = {}) {
  return {
    process: { command: ["/bin/sh", SERVER], user: "nobody", environment: { WORKERS: String(WORKERS) }, stop_grace_ms: 5000, ...process },
    restart_policy: { policy: "always", restart_backoff_ms: 100, tolerance: { max_restarts: 10, duration: "1m" } },
    ...more,
  };
}

/** The service once it is running with its master and every worker; the master is main_pid. */
async function upWithWorkers(name: string, not?: { main_pid: number | null }): Promise<AppStatus & { main_pid: number }> {
  return waitUntil(async () => {
    const a = await world.app(name);
    return a.state === "running" && a.pids.length === PIDS_WHEN_UP && a.main_pid !== null && a.main_pid !== not?.main_pid && a.pids.includes(a.main_pid)
      && (a as AppStatus & { main_pid: number });
  }, `${name} to run with ${WORKERS} workers${not ? ` and a main process other than ${not.main_pid}` : ""}`, 20_000);
}

/** The service once none of `was`'s workers is left and a full set runs again. */
async function newWorkers(name: string, was: AppStatus): Promise<AppStatus> {
  const old = was.pids.filter((p) => p !== was.main_pid);
  return waitUntil(async () => {
    const a = await world.app(name);
    return a.pids.length === PIDS_WHEN_UP && !a.pids.some((p) => old.includes(p)) && a;
  }, `a new set of workers for ${name}`);
}

const stdoutOf = (name: string) => { try { return readFileSync(join(world.appDir(name), "stdout.log"), "utf8"); } catch { return ""; } };

function newWorld() {
  world = new World();
  chmodSync(world.dir, 0o755); // the service's working folder must be reachable for nobody
  return world;
}

describe("a pre-forking server (test double, run as nobody)", () => {
  test("exit_type auto: kill -9 of the master ends the service, stops its workers and restarts it", async () => {
    newWorld().writeService("fork", forkingServer());
    const d = await world.daemon();
    const first = await upWithWorkers("fork");
    const workers = first.pids.filter((p) => p !== first.main_pid);
    process.kill(first.main_pid, "SIGKILL");
    await d.waitForLog(/the service has ended/);
    const second = await upWithWorkers("fork", first);
    for (const w of workers) expect(pidAlive(w)).toBe(false);
    expect(second.pids.some((p) => workers.includes(p))).toBe(false);
    expect(second).toMatchObject({ restarts: 1, exit_signal: "SIGKILL", last_exit: "exit" });
    expect(d.output()).toMatch(/main process \d+ killed by SIGKILL while other processes remain; the service has ended/);
  });

  test("exit_type cgroup: kill -9 of the master leaves the workers running, as before", async () => {
    newWorld().writeService("fork", forkingServer({ exit_type: "cgroup" }));
    await world.daemon();
    const first = await upWithWorkers("fork");
    process.kill(first.main_pid, "SIGKILL");
    const after = await waitUntil(async () => { const a = await world.app("fork"); return a.main_pid === null && a; }, "the main PID to be dropped");
    expect(after.state).toBe("running");
    expect(after.pids.sort()).toEqual(first.pids.filter((p) => p !== first.main_pid).sort());
  });

  test("pmctl reload sends reload_signal to the master: new worker PIDs under the same master; refused without write access; reload all", async () => {
    newWorld().writeService("fork", forkingServer({ reload_signal: "SIGHUP" }));
    world.writeService("other", forkingServer({ reload_signal: "SIGHUP" }));
    world.writeMaster({ sock_mode: "0666" });
    const d = await world.daemon();
    const before = await upWithWorkers("fork");
    const other = await upWithWorkers("other");
    const res = await world.pmctl(["reload", "fork"]);
    expect(res.stderr).toBe("");
    expect(res.stdout).toBe(`fork: SIGHUP to the main process ${before.main_pid}\n`);
    expect(res.code).toBe(0);
    const after = await newWorkers("fork", before);
    expect(after.main_pid).toBe(before.main_pid);
    expect(after.restarts).toBe(0);
    expect(d.output()).toMatch(/reload fork by uid 0 \(root\) pid \d+/);
    expect((await world.app("other")).pids).toEqual(other.pids); // only the service named

    const refused = await pmctlAsNobody(world, ["reload", "fork"]);
    expect(refused).toMatchObject({ code: 1, stderr: "pmctl: reload refused for uid 65534: changing services needs root\n" });
    await d.waitForLog(/refused reload fork from uid 65534 \(nobody\) pid \d+/); // the answer can come before this line is through the pipe

    const all = await world.pmctl(["reload", "all"]);
    expect(all).toMatchObject({ code: 0, stderr: "", stdout: `fork: SIGHUP to the main process ${before.main_pid}\nother: SIGHUP to the main process ${other.main_pid}\n` });
    await d.waitForLog(/reload all by uid 0 \(root\) pid \d+/);
    for (const [name, was] of [["fork", after], ["other", other]] as const) expect((await newWorkers(name, was)).main_pid).toBe(was.main_pid);
  });

  test("reload_command: runs with MAINPID; a failing one is reported with its output and the service keeps running", async () => {
    newWorld().writeService("fork", forkingServer({ reload_command: ["sh", "-c", 'kill -HUP "$MAINPID" && echo "reloaded $MAINPID"'] }));
    world.writeService("broken", forkingServer({ reload_command: ["sh", "-c", "echo 'config test failed: line 3' >&2; exit 4"] }));
    const d = await world.daemon();
    const fork = await upWithWorkers("fork");
    const broken = await upWithWorkers("broken");
    const ok = await world.pmctl(["reload", "fork"]);
    expect(ok).toMatchObject({ code: 0, stdout: `fork: reload_command sh -c kill -HUP "$MAINPID" && echo "reloaded $MAINPID"\n` });
    await newWorkers("fork", fork);
    const bad = await world.pmctl(["reload", "broken"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe("broken: failed: reload_command sh -c echo 'config test failed: line 3' >&2; exit 4: exited with code 4\n  config test failed: line 3\n");
    expect(await world.app("broken")).toMatchObject({ state: "running", main_pid: broken.main_pid, pids: broken.pids });
    expect(d.output()).toMatch(/\[broken\] reload failed: .*exited with code 4; output: config test failed: line 3; the service keeps running/);
    // A service that is not running cannot be reloaded; the others still are.
    expect((await world.pmctl(["stop", "broken"])).code).toBe(0);
    const mixed = await world.pmctl(["reload", "fork", "broken"]);
    expect(mixed.code).toBe(1);
    expect(mixed.stdout).toStartWith("fork: reload_command");
    expect(mixed.stderr).toBe("broken: failed: cannot reload broken: it is stopped, not running\n");
  });

  test("stop_mode main: the stop signal reaches the master only; stop_mode all: every worker too", async () => {
    newWorld().writeService("mainonly", forkingServer({ stop_mode: "main" }));
    world.writeService("every", forkingServer({ stop_mode: "all" }));
    await world.daemon();
    await upWithWorkers("mainonly");
    await upWithWorkers("every");
    const res = await world.pmctl(["stop", "mainonly", "every"]);
    expect(res.code).toBe(0);
    for (const name of ["mainonly", "every"]) expect(await world.app(name)).toMatchObject({ state: "stopped", last_exit: "exit", exit_code: 0 });
    expect(stdoutOf("mainonly")).toMatch(/master \d+ quit/);
    expect(stdoutOf("mainonly")).not.toContain("worker got TERM");
    expect(stdoutOf("every")).toContain("worker got TERM"); // the contrast: signalling every PID reaches the workers
  });

  test("after a daemon SIGKILL and restart, status shows the same main_pid, and kill -9 of it is seen and restarted", async () => {
    newWorld().writeService("fork", forkingServer());
    const d1 = await world.daemon();
    const first = await upWithWorkers("fork");
    d1.proc.kill("SIGKILL");
    await d1.exited;
    const d2 = await world.daemon();
    await d2.waitForLog(new RegExp(`adopted running service, main pid ${first.main_pid}`));
    const adopted = await world.app("fork");
    expect(adopted).toMatchObject({ state: "running", main_pid: first.main_pid });
    expect(adopted.pids.sort()).toEqual(first.pids.sort());
    const workers = first.pids.filter((p) => p !== first.main_pid);
    process.kill(first.main_pid, "SIGKILL");
    const second = await upWithWorkers("fork", first);
    for (const w of workers) expect(pidAlive(w)).toBe(false);
    // Not our child: how it ended is unknown, and that counts as a failure (auto).
    expect(second).toMatchObject({ restarts: 1, last_exit: "unknown" });
  });

  test("a service that ended while no daemon watched shows last_exit unknown after the restart, not the old exit", async () => {
    newWorld().writeService("fork", forkingServer());
    const d1 = await world.daemon();
    const first = await upWithWorkers("fork");
    expect((await world.pmctl(["restart", "fork"])).code).toBe(0); // a last exit to be stale: code 0 after SIGTERM
    const second = await upWithWorkers("fork", first);
    expect(second).toMatchObject({ last_exit: "exit", exit_code: 0 });
    d1.proc.kill("SIGKILL");
    await d1.exited;
    for (const pid of second.pids) process.kill(pid, "SIGKILL"); // the whole service dies unseen
    await waitUntil(() => world.cgroupPids("fork").length === 0, "the service's cgroup to empty");
    await world.daemon();
    const third = await upWithWorkers("fork", second);
    expect(third).toMatchObject({ last_exit: "unknown", exit_code: null, exit_signal: null });
    expect(Date.parse(third.last_exit_at!)).toBeGreaterThan(Date.parse(second.last_exit_at!));
  });

  test("a main PID saved in the state file whose process is gone is not adopted (PID reuse never makes another process main)", async () => {
    newWorld().writeService("fork", forkingServer({ exit_type: "cgroup" }));
    const d1 = await world.daemon();
    const first = await upWithWorkers("fork");
    d1.proc.kill("SIGKILL");
    await d1.exited;
    // Pretend the saved main process was another process that had this PID before: same PID, another start time.
    const statePath = join(world.dir, "state.json");
    const state = JSON.parse(readFileSync(statePath, "utf8"));
    expect(state.units.fork.mainPid).toBe(first.main_pid);
    expect(state.units.fork.mainStartTime).toMatch(/^\d+$/);
    state.units.fork.mainStartTime = String(Number(state.units.fork.mainStartTime) - 1);
    await Bun.write(statePath, JSON.stringify(state));
    await world.daemon();
    const adopted = await world.app("fork");
    expect(adopted.state).toBe("running");
    expect(adopted.main_pid).toBeNull();
  });

  test("pmctl signal: to every process, or --main to the master alone; refused without write access", async () => {
    newWorld().writeService("fork", forkingServer());
    world.writeMaster({ sock_mode: "0666" });
    const d = await world.daemon();
    const before = await upWithWorkers("fork");
    const hup = await world.pmctl(["signal", "HUP", "fork", "--main"]);
    expect(hup).toMatchObject({ code: 0, stdout: `fork: SIGHUP sent to the main process pid ${before.main_pid}\n` });
    await newWorkers("fork", before);
    expect(d.output()).toMatch(/signal SIGHUP --main fork by uid 0 \(root\) pid \d+/);

    const refused = await pmctlAsNobody(world, ["signal", "TERM", "fork"]);
    expect(refused).toMatchObject({ code: 1, stderr: "pmctl: signal refused for uid 65534: changing services needs root\n" });
    await d.waitForLog(/refused signal SIGTERM fork from uid 65534 \(nobody\)/); // the answer can come before this line is through the pipe

    // Exactly the signal asked for: a SIGSTOP is not undone by a SIGCONT behind it.
    const procState = (pid: number) => { const st = readFileSync(`/proc/${pid}/stat`, "latin1"); return st.slice(st.lastIndexOf(")") + 2)[0]; };
    expect((await world.pmctl(["signal", "STOP", "fork", "--main"])).code).toBe(0);
    await waitUntil(() => procState(before.main_pid) === "T", "the master to be stopped");
    expect((await world.pmctl(["signal", "CONT", "fork", "--main"])).code).toBe(0);
    await waitUntil(() => procState(before.main_pid) !== "T", "the master to run again");

    const term = await world.pmctl(["signal", "TERM", "fork"]);
    expect(term.code).toBe(0);
    await waitUntil(() => stdoutOf("fork").includes("worker got TERM"), "a worker to get SIGTERM");
    const bad = await world.pmctl(["signal", "NOPE", "fork"]);
    expect(bad).toMatchObject({ code: 2, stderr: "pmctl: unknown signal 'NOPE'; expected a name like SIGHUP, HUP or a number like 1\n" });
  });
});
