/**
 * The daemon as a process: it exits (SIGTERM or SIGKILL) and a new one adopts what runs, one
 * daemon per socket, SIGHUP, and the command line's exit codes and messages.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { PM_CWD, REPO, TARGET, pidAlive, pmCommand, pmctlCommand, runPm, waitUntil, World } from "./helpers/harness.ts";
import { VERSION } from "../src/version.ts";

/** `--version`: the version, the commit (`bun run build` defines it: 12 hex digits, "-dirty" for uncommitted changes; "source" from source), and Bun's version. */
const BUILT_COMMIT = "[0-9a-f]{12}(-dirty)?";
const versionLine = (prog: string, commit = TARGET === "binary" ? BUILT_COMMIT : "source") =>
  new RegExp(`^${prog} ${VERSION.replace(/\./g, "\\.")} \\(commit ${commit}, bun ${Bun.version.replace(/\./g, "\\.")}\\)\\n$`);

// bunfig's [test] timeout is not read by Bun 1.4.5 (the default stays 5 s): set it here.
setDefaultTimeout(30_000);

let world: World;
afterEach(async () => { await world?.cleanup(); });

/** Prints one start line per run, then lives on with a child: two PIDs in its cgroup. */
const withChild = { process: { command: ["sh", "-c", "echo \"start $$\"; sleep 1000 & wait"], stop_grace_ms: 2000 } };
const sleeper = { process: { command: ["sleep", "1000"], stop_grace_ms: 2000 } };

const startLines = (name: string) => readFileSync(join(world.appDir(name), "stdout.log"), "utf8").split("\n").filter((l) => l.startsWith("start "));

/** Runs processmaster, or (argv0 "pmctl…") the client as a symlink of that name would: from source through argv0, in the binary lane through the pmctl symlink. */
async function run(args: string[], argv0?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  if (argv0 && TARGET === "binary") return runPm(pmctlCommand(args));
  const proc = Bun.spawn({ cmd: pmCommand(args), cwd: PM_CWD, ...(argv0 ? { argv0 } : {}), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

const oneLine = (s: string) => s.trimEnd().split("\n").length === 1 && s.trim().length > 0;

describe("daemon restart adopts running services", () => {
  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    test(`after ${signal}: same PIDs running, nothing started twice, operator stop kept`, async () => {
      world = new World();
      world.writeService("kid", withChild);
      world.writeService("held", sleeper);
      const first = await world.daemon();
      const before = await waitUntil(async () => { const a = await world.app("kid"); return a.pids.length === 2 && a; }, "kid and its child");
      await waitUntil(() => startLines("kid").length === 1, "the start line");
      const stop = await world.pmctl(["stop", "held"]);
      expect(stop.code).toBe(0);

      first.proc.kill(signal);
      const code = await first.exited;
      if (signal === "SIGTERM") {
        expect(code).toBe(0);
        expect(first.output()).toContain("SIGTERM: exiting; services keep running");
        expect(existsSync(world.sockPath)).toBe(false); // a clean exit removes its socket
      } else {
        expect(existsSync(world.sockPath)).toBe(true); // stale: nobody listens
        const down = await world.pmctl(["status"]);
        expect(down.code).toBe(3);
        expect(oneLine(down.stderr)).toBe(true);
        expect(down.stderr).toContain("nothing is listening");
      }
      for (const pid of before.pids) expect(pidAlive(pid)).toBe(true);

      const second = await world.daemon();
      const [held, kid] = await world.status();
      // The main process is found again by PID and start time (issue 12).
      expect(kid).toMatchObject({ name: "kid", state: "running", pids: before.pids, main_pid: before.main_pid });
      expect(world.cgroupPids("kid").sort()).toEqual(before.pids);
      expect(startLines("kid")).toEqual([`start ${before.main_pid}`]);
      expect(held).toMatchObject({ name: "held", state: "stopped", operator_stopped: true, pids: [] });
      expect(world.cgroupPids("held")).toEqual([]);
      expect(second.output()).toContain("[kid] adopted running service");
      expect(second.output()).not.toMatch(/started, pid/);
      // The restart count and the start time came through the state file.
      expect(kid!.started_at).toBe(before.started_at);
    });
  }

  test("an adopted service's exit is noticed (exit status unknown) and its child too", async () => {
    world = new World();
    world.writeService("kid", withChild);
    const first = await world.daemon();
    const { pids } = await waitUntil(async () => { const a = await world.app("kid"); return a.pids.length === 2 && a; }, "kid and its child");
    first.proc.kill("SIGKILL");
    await first.exited;
    await world.daemon();
    expect((await world.app("kid")).state).toBe("running");
    for (const pid of pids) process.kill(pid, "SIGKILL"); // both are ours: the test's service
    // The main process's death may come first: exit_type auto then stops what is left (stopping).
    const after = await waitUntil(async () => { const a = await world.app("kid"); return !["running", "stopping", "killing"].includes(a.state) && a; }, "the adopted service to end");
    expect(after).toMatchObject({ state: "exited", last_exit: "unknown", exit_code: null, pids: [] });
  });

  test("an operator stop that a daemon restart interrupted is finished by the next daemon", async () => {
    world = new World();
    world.writeService("stubborn", { process: { command: ["sh", "-c", "trap '' TERM; sleep 1000 & wait"], stop_grace_ms: 60_000 } });
    const first = await world.daemon();
    await waitUntil(async () => (await world.app("stubborn")).pids.length === 2, "stubborn and its child");
    const stopping = world.pmctl(["stop", "stubborn"]);
    await waitUntil(async () => (await world.app("stubborn")).state === "stopping", "the stop to begin");
    first.proc.kill("SIGKILL");
    await first.exited;
    expect((await stopping).code).toBe(3); // the connection died with the daemon
    // Make the next stop quick: the new daemon reads the grace from the (unchanged) file otherwise.
    world.writeService("stubborn", { process: { command: ["sh", "-c", "trap '' TERM; sleep 1000 & wait"], stop_grace_ms: 300 } });
    const second = await world.daemon();
    await waitUntil(async () => { const a = await world.app("stubborn"); return a.state === "stopped" && a.pids.length === 0; }, "the stop to finish");
    expect(second.output()).not.toMatch(/started, pid/);
    expect((await world.app("stubborn")).operator_stopped).toBe(true);
  });
});

describe("one daemon per socket", () => {
  test("a second daemon on the same socket refuses with a clear message and exit 1; the first keeps serving", async () => {
    world = new World();
    world.writeService("a", sleeper);
    const first = await world.daemon();
    const pids = (await world.app("a")).pids;
    const second = world.startDaemon();
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain(`another processmaster is already listening on ${world.sockPath}`);
    expect(oneLine(second.output())).toBe(true);
    expect(existsSync(world.sockPath)).toBe(true);
    expect((await world.app("a")).pids).toEqual(pids);
    expect(world.cgroupPids("a")).toEqual(pids);
    const st = await world.pmctl(["status"]);
    expect(st.code).toBe(0);
    expect(first.output()).not.toContain("exiting");
  });

  test("two daemons started at the same moment: exactly one serves, every service starts once", async () => {
    // Without a lock both could find no live socket; one in a few tries then started everything twice.
    for (let round = 0; round < 3; round++) {
      world = new World();
      world.writeService("once", { process: { command: ["sh", "-c", "echo \"start $$\"; exec sleep 1000"], stop_grace_ms: 2000 } });
      const pair = [world.startDaemon(), world.startDaemon()];
      const outcomes = await Promise.all(pair.map((d) => Promise.race([
        d.waitForLog(/serving /, 15_000).then(() => "serving"),
        d.exited.then((code) => `exit ${code}`),
      ])));
      expect(outcomes.sort()).toEqual(["exit 1", "serving"]);
      const loser = pair.find((d) => d.proc.exitCode === 1)!;
      expect(loser.output()).toContain("another processmaster is already listening on");
      await waitUntil(() => startLines("once").length > 0, "the start line");
      expect(startLines("once").length).toBe(1);
      expect(world.cgroupPids("once").length).toBe(1);
      expect((await world.pmctl(["status"])).code).toBe(0);
      if (round < 2) await world.cleanup();
    }
  });

  test("a stale socket file from a SIGKILLed daemon is replaced", async () => {
    world = new World();
    const first = await world.daemon();
    first.proc.kill("SIGKILL");
    await first.exited;
    expect(existsSync(world.sockPath)).toBe(true);
    await world.daemon();
    expect((await world.pmctl(["status"])).code).toBe(0);
  });
});

describe("SIGHUP", () => {
  test("SIGHUP re-reads the config like update", async () => {
    world = new World();
    world.writeService("old", sleeper);
    const d = await world.daemon();
    const oldPid = (await world.app("old")).pids[0]!;
    world.removeService("old");
    world.writeService("fresh", sleeper);
    d.proc.kill("SIGHUP");
    await d.waitForLog(/update: added \[fresh\] removed \[old\]/);
    const apps = await world.status();
    expect(apps.map((a) => a.name)).toEqual(["fresh"]);
    expect(apps[0]!.state).toBe("running");
    expect(pidAlive(oldPid)).toBe(false);
    expect(existsSync(world.serviceCgroup("old"))).toBe(false);
  });

  test("a SIGHUP with a broken file is logged and changes nothing", async () => {
    world = new World();
    world.writeService("a", sleeper);
    const d = await world.daemon();
    const pid = (await world.app("a")).pids[0]!;
    world.writeRawService("broken.yaml", "process:\n  command: [sleep, 1000]\n  stop_grace_ms: soon\n");
    d.proc.kill("SIGHUP");
    await d.waitForLog(/update failed, old config kept: [\s\S]*broken\.yaml:3: process\.stop_grace_ms/);
    expect((await world.app("a")).pids).toEqual([pid]);
  });
});

describe("command line", () => {
  test("pmctl against no daemon prints one line and exits 3", async () => {
    world = new World();
    const r = await world.pmctl(["status"]);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe("");
    expect(oneLine(r.stderr)).toBe(true);
    expect(r.stderr).toContain(`not reachable at ${world.sockPath}`);
  });

  test("usage errors exit 2 with one line, before talking to any daemon", async () => {
    world = new World();
    const cases: [string[], RegExp][] = [
      [["status", "--bogus"], /unknown option '--bogus'/],
      [["frobnicate"], /unknown command 'frobnicate'/],
      [["start"], /start needs service names or 'all'/],
      [["stop"], /stop needs service names/],
      [["restart"], /restart needs service names/],
      [["logs", "-n", "many"], /-n expects a whole number/],
    ];
    const results = await Promise.all(cases.map(([args]) => world.pmctl(args)));
    results.forEach((r, i) => {
      const [args, message] = cases[i]!;
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(oneLine(r.stderr)).toBe(true);
      expect(r.stderr).toMatch(message);
    });
  });

  test("an unknown service exits 1 and names the service", async () => {
    world = new World();
    world.writeService("a", sleeper);
    await world.daemon();
    for (const cmd of ["start", "stop", "restart", "status"]) {
      const r = await world.pmctl([cmd, "a", "nosuch"]);
      expect({ cmd, code: r.code }).toEqual({ cmd, code: 1 });
      expect(oneLine(r.stderr)).toBe(true);
      expect(r.stderr).toContain("unknown service 'nosuch'");
    }
    expect((await world.app("a")).state).toBe("running"); // nothing acted on the known name
  });

  test("--version and --help of processmaster and of pmctl (by argv0, as through the symlink)", async () => {
    const [pmVersion, pmHelp, ctlVersion, ctlHelp, ctlSub, ctlCmdHelp, ctlBare, ctlSubHelp] = await Promise.all([
      run(["--version"]),
      run(["--help"]),
      run(["--version"], "pmctl"),
      run(["--help"], "/usr/local/bin/pmctl"),
      run(["ctl", "--version"]),
      run(["status", "--help"], "pmctl"),
      run([], "pmctl"),
      run(["ctl", "--help"]),
    ]);
    expect(pmVersion).toMatchObject({ code: 0, stderr: "" });
    expect(pmVersion.stdout).toMatch(versionLine("processmaster"));
    expect(pmHelp.code).toBe(0);
    expect(pmHelp.stdout).toContain("usage: processmaster");
    expect(pmHelp.stdout).toMatch(/^\s+daemon \[-c config\.yaml\]/m);
    expect(ctlVersion).toMatchObject({ code: 0, stderr: "" });
    expect(ctlVersion.stdout).toMatch(versionLine("pmctl"));
    expect(ctlSub).toMatchObject({ code: 0, stderr: "" });
    expect(ctlSub.stdout).toMatch(versionLine("pmctl"));
    for (const help of [ctlHelp, ctlSubHelp]) {
      expect(help.code).toBe(0);
      expect(help.stdout).toContain("usage: pmctl");
      expect(help.stdout).not.toMatch(/^\s+daemon /m); // the client does not run the daemon
      expect(help.stdout).toMatch(/exit codes:\n  0  success\n  1  the request failed.*\n  2  usage error.*\n  3  the daemon is not reachable\n  4  status: /);
    }
    expect(ctlCmdHelp.code).toBe(0);
    expect(ctlCmdHelp.stdout).toContain("usage: pmctl [-c config.yaml] status");
    expect(ctlBare.code).toBe(2); // no command: usage on stderr
    expect(ctlBare.stderr).toContain("usage: pmctl");
  });

  const built = join(REPO, "dist", "pmctl");
  test.skipIf(!existsSync(built))("the built binary answers --version as processmaster and through its pmctl symlink", async () => {
    const exec = async (cmd: string[]) => {
      const p = Bun.spawn({ cmd, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      return { code: await p.exited, stdout: await new Response(p.stdout).text() };
    };
    expect((await exec([built, "--version"])).stdout).toMatch(versionLine("pmctl", BUILT_COMMIT));
    expect((await exec([join(REPO, "dist", "processmaster"), "--version"])).stdout).toMatch(versionLine("processmaster", BUILT_COMMIT));
    const help = await exec([built, "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("usage: pmctl");
  });
});
