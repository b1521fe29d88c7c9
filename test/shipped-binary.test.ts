/**
 * The compiled binary as users run it: copied out of the repository, started from `/` (or from
 * a folder others can write), the client through a `pmctl` symlink. These tests always use the
 * binary, in every lane; `bun run test` builds it first.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { EXIT } from "../src/cli/args.ts";
import { PidWatcher } from "../src/linux/pidwatch.ts";
import { installedBinary, pidAlive, PM_CWD, REPO, runPm, waitUntil, World } from "./helpers/harness.ts";

let world: World | undefined;
const planted: string[] = [];
const entries: Subprocess[] = [];
afterEach(async () => {
  for (const p of entries.splice(0)) { p.kill("SIGKILL"); await p.exited; }
  await world?.cleanup();
  world = undefined;
  for (const d of planted.splice(0)) rmSync(d, { recursive: true, force: true });
});

const pmctl = (w: World, args: string[]) => runPm([installedBinary().pmctl, "-c", w.configPath, ...args]);

describe("the compiled binary started from /", () => {
  test("sees the exit of a child its service forked (not a child of the daemon)", async () => {
    world = new World();
    world.writeService("forker", { process: { command: ["/bin/sh", "-c", "sleep 1 & exit 0"], stop_grace_ms: 2000 } });
    await world.daemon([], { binary: true });
    await waitUntil(async () => (await world!.app("forker")).state === "running", "forker to run", 20_000);
    const ended = await waitUntil(async () => {
      const a = await world!.app("forker");
      return a.state !== "running" && a;
    }, "the forked sleep's exit to end the service", 30_000, 50);
    expect(ended.state).toBe("exited");
    expect(ended.pids).toEqual([]);
    expect(world.cgroupPids("forker")).toEqual([]);
  });

  test("stops a service it adopted after the daemon was SIGKILLed", async () => {
    world = new World();
    world.writeService("sleeper", { process: { command: ["sleep", "1000"], stop_grace_ms: 2000 } });
    const first = await world.daemon([], { binary: true });
    const [pid] = await waitUntil(() => { const p = world!.cgroupPids("sleeper"); return p.length === 1 && p; }, "sleeper to run", 20_000);
    first.proc.kill("SIGKILL");
    await first.exited;
    await world.daemon([], { binary: true });
    expect((await world.app("sleeper")).pids).toEqual([pid!]);
    const stop = await pmctl(world, ["stop", "sleeper"]);
    expect(stop.code).toBe(0);
    const after = await world.app("sleeper");
    expect(after.state).toBe("stopped");
    expect(world.cgroupPids("sleeper")).toEqual([]);
  });

  test("an upgrade (new binary renamed over the old, daemon restarted) adopts every service without restarting it", async () => {
    world = new World();
    world.writeService("web", { process: { command: ["sh", "-c", "sleep 1000 & wait"], stop_grace_ms: 2000 } });
    world.writeService("off", { enabled: false, process: { command: ["sleep", "1000"], stop_grace_ms: 2000 } });
    const old = await world.daemon([], { binary: true });
    const pids = await waitUntil(() => { const p = world!.cgroupPids("web"); return p.length === 2 && p; }, "web to run", 20_000);
    // As the README's upgrade steps: install the new file next to the old one, rename it over.
    // The new file is the same build (what adoption relies on is the cgroup tree and the state
    // file, not the code that wrote them), but another file: the old daemon runs the old one.
    // The two inode checks guard this setup (the rename put another file in place, and the new
    // daemon is started from it); they hold by construction and prove nothing about adoption.
    const installed = installedBinary().daemon;
    const oldFile = statSync(`/proc/${old.pid}/exe`).ino;
    copyFileSync(join(REPO, "dist", "processmaster"), installed + ".new");
    renameSync(installed + ".new", installed);
    expect(statSync(installed).ino).not.toBe(oldFile);
    old.proc.kill("SIGTERM");
    expect(await old.exited).toBe(0);
    expect(world.cgroupPids("web")).toEqual(pids); // nothing stopped while no daemon ran
    const upgraded = await world.daemon([], { binary: true });
    expect(statSync(`/proc/${upgraded.pid}/exe`).ino).toBe(statSync(installed).ino);
    const after = await world.status();
    expect(after.map((a) => [a.name, a.state])).toEqual([["off", "stopped"], ["web", "running"]]);
    expect(after[1]!.pids.sort()).toEqual([...pids].sort());
    expect(after[1]!.restarts).toBe(0);
  });

  test("loads no code or settings from its working directory (bunfig.toml preload, .env, tsconfig.json, package.json, both workers' file names)", async () => {
    world = new World();
    const cwd = mkdtempSync(join(tmpdir(), "pm-hostile-cwd-"));
    planted.push(cwd);
    chmodSync(cwd, 0o1777);
    const marker = join(cwd, "PLANTED-CODE-RAN");
    const evil = `require("node:fs").writeFileSync(${JSON.stringify(marker)}, "ran");\n`;
    writeFileSync(join(cwd, "bunfig.toml"), `preload = ["./preload.ts"]\n`);
    writeFileSync(join(cwd, "preload.ts"), evil);
    writeFileSync(join(cwd, ".env"), "PM_PLANTED_ENV=from-dotenv\n");
    // Settings that would route module resolution to the planted file, were they read.
    writeFileSync(join(cwd, "tsconfig.json"), JSON.stringify({ compilerOptions: { baseUrl: ".", paths: { "*": ["./preload.ts"] } }, files: ["preload.ts"] }));
    writeFileSync(join(cwd, "package.json"), JSON.stringify({ name: "planted", main: "preload.ts", module: "preload.ts", imports: { "#*": "./preload.ts" } }));
    const workerNames = ["linux/pidwatch-worker", "logs/rotate-worker"].flatMap((w) => [`src/${w}.ts`, `${w}.js`, `${w}.ts`, `${w.split("/")[1]}.js`]);
    for (const rel of workerNames) {
      mkdirSync(join(cwd, rel, ".."), { recursive: true });
      writeFileSync(join(cwd, rel), evil);
    }
    world.writeService("forker", { process: { command: ["/bin/sh", "-c", "echo \"planted=${PM_PLANTED_ENV:-none}\"; sleep 1 & exit 0"], stop_grace_ms: 2000 } });
    // 9 MiB of log: rotations of 8 MiB and more run in the rotation worker (src/logs/rotate.ts).
    const BIG = 9 << 20;
    world.writeService("big", {
      process: { command: ["sh", "-c", `head -c ${BIG} /dev/zero; exec sleep 1000`], stop_grace_ms: 2000 },
      logs: { rotation_mode: "size", rotation_size: "1G", rotation_backups: 1 },
    });
    const d = await world.daemon([], { binary: true, cwd });
    // The forked sleep's exit is seen: the embedded pid-watch worker runs, not a planted one.
    await waitUntil(async () => (await world!.app("forker")).state === "exited", "the forked child's exit to be seen", 30_000, 50);
    // A rotation in the embedded rotation worker: every byte moved to the archive.
    const live = join(world.appDir("big"), "stdout.log");
    await waitUntil(() => existsSync(live) && statSync(live).size === BIG, "big to write 9 MiB", 60_000, 50);
    const rot = await pmctl(world, ["rotate", "big"]);
    expect(rot.code, rot.stderr).toBe(0);
    expect(statSync(`${live}.1`).size + statSync(live).size).toBe(BIG);
    expect(statSync(`${live}.1`).size).toBeGreaterThan(BIG - 65536);
    expect(existsSync(marker)).toBe(false);
    expect(readFileSync(join(world.appDir("forker"), "stdout.log"), "utf8")).toContain("planted=none");
    expect(d.output()).not.toContain("from-dotenv");
  });
});

describe("exit detection is never lost silently", () => {
  test("a pid-watch worker that cannot start rejects start() with a message naming it", async () => {
    const watcher = new PidWatcher();
    const failures: Error[] = [];
    const missing = join(tmpdir(), `no-such-worker-${process.pid}.js`);
    await expect(watcher.start((e) => failures.push(e), 30_000, missing)).rejects.toThrow(/exit detection is not available: the pid-watch worker .*no-such-worker/);
    watcher.close();
  });

  // test/helpers/daemon-entry.ts: the daemon as src/main.ts serves it, with the real PidWatcher broken on purpose.
  const ENTRY = join(REPO, "test", "helpers", "daemon-entry.ts");

  test("a daemon whose watcher cannot start exits with EXIT.failed, naming the cause, before making a socket or a cgroup", async () => {
    world = new World();
    world.writeService("web", { process: { command: ["sleep", "1000"], stop_grace_ms: 2000 } });
    // Tracked, so that afterEach kills it by PID should it serve instead of exiting.
    const proc = Bun.spawn({ cmd: ["bun", ENTRY, "cannot-start", world.configPath], cwd: PM_CWD, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
    entries.push(proc);
    const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
    expect(stderr).toMatch(/processmaster: exit detection is not available: the pid-watch worker \(\S*no-such-pidwatch-worker-\d+\.js\)/);
    expect(code).toBe(EXIT.failed);
    expect(existsSync(world.sockPath)).toBe(false);
    expect(existsSync(world.serviceCgroup("web"))).toBe(false);
    expect(existsSync(world.masterCgroup)).toBe(false);
  });

  test("a daemon whose watcher dies after boot exits 1 and leaves the services running, for the next daemon to adopt", async () => {
    world = new World();
    world.writeService("web", { process: { command: ["sh", "-c", "sleep 1000 & wait"], stop_grace_ms: 2000 } });
    const proc = Bun.spawn({ cmd: ["bun", ENTRY, "dies-on-usr2", world.configPath], stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    entries.push(proc);
    let log = "";
    const pump = (async () => { for await (const chunk of proc.stderr.pipeThrough(new TextDecoderStream())) log += chunk; })();
    await waitUntil(() => /serving /.test(log), "the daemon to serve", 20_000);
    const pids = await waitUntil(() => { const p = world!.cgroupPids("web"); return p.length === 2 && p; }, "web to run", 20_000);
    proc.kill("SIGUSR2");
    expect(await proc.exited).toBe(EXIT.failed);
    await pump;
    expect(log).toMatch(/ERROR .*exit detection is not available: the pid-watch worker \(\S+\) stopped; exiting so that a new daemon adopts the services/);
    expect(world.cgroupPids("web")).toEqual(pids);
    expect(pids.every(pidAlive)).toBe(true);
    await world.daemon();
    const adopted = await world.app("web");
    expect([adopted.state, [...adopted.pids].sort(), adopted.restarts]).toEqual(["running", [...pids].sort(), 0]);
  });

  test("a started pid-watch worker reports the exit of a process that is not our child", async () => {
    const watcher = new PidWatcher();
    await watcher.start(() => {});
    const child = Bun.spawn({ cmd: ["sh", "-c", "sleep 0.2 & exec sleep 0.1"], stdio: ["ignore", "ignore", "ignore"] });
    await watcher.watch(child.pid);
    await child.exited;
    watcher.close();
  });
});
