/**
 * Issue 11, item 1: a service's user must not get the root daemon to open, append to or create
 * a file through its log path: a symlink at the log file, a symlink at a log folder, a file of
 * another user. The attacker is `nobody`, the service's own user, acting in its own folder and
 * killing its own process so the daemon reopens the logs on restart.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, closeSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { asNobody, NOBODY, nobodysFolder, pmctlWithin, RootFiles } from "../helpers/attack.ts";
import { waitUntil, World } from "../helpers/harness.ts";
import { openLogFd, openLogFds } from "../../src/logs/open.ts";

let world: World;
let root: RootFiles;
const extra: string[] = [];
afterEach(async () => {
  await world?.cleanup();
  root?.cleanup();
  for (const d of extra.splice(0)) rmSync(d, { recursive: true, force: true });
});

const SECRET = "root secret\n".repeat(1000);

/** A nobody service that writes a line at each start, restarted quickly when it dies. */
function victim(logs: Record<string, unknown> = {}) {
  return {
    process: { command: ["sh", "-c", "echo started by the daemon; exec sleep 1000"], user: "nobody", stop_grace_ms: 1000 },
    restart_policy: { policy: "always", restart_backoff_ms: 100 },
    logs,
  };
}

async function runningPid(name: string): Promise<number> {
  return waitUntil(async () => { const a = await world.app(name); return a.state === "running" && a.main_pid; }, `${name} to run`, 20_000);
}

/**
 * Kills the service as nobody after `script` and waits until the daemon has either refused the
 * log (the message matching `refusal`) or started the service again (it wrote through the attack).
 */
async function attackAndRestart(name: string, script: string, refusal: RegExp, d: Awaited<ReturnType<World["daemon"]>>) {
  const pid = await runningPid(name);
  const before = (await world.app(name)).restarts;
  const r = await asNobody(world.appDir(name), `${script} && kill ${pid}`);
  expect(r).toEqual({ code: 0, out: "" });
  await waitUntil(async () => refusal.test(d.output()) || ((await world.app(name)).restarts > before && (await world.app(name)).state === "running"),
    "the daemon to refuse the log or restart the service", 30_000);
}

describe("log files are never opened through what a service's user planted", () => {
  test("stdout.log replaced by a symlink to a root file: the root file is unchanged, the start refused and logged", async () => {
    world = new World();
    root = new RootFiles();
    const secret = root.add("secret", SECRET);
    root.snapshot();
    nobodysFolder(world, "victim");
    world.writeService("victim", victim());
    const d = await world.daemon();
    await waitUntil(() => existsSync(join(world.appDir("victim"), "stdout.log")) && readFileSync(join(world.appDir("victim"), "stdout.log"), "utf8").includes("started"), "first output");
    await attackAndRestart("victim", `rm -f stdout.log stderr.log && ln -s ${secret} stdout.log && ln -s ${secret} stderr.log`, /stdout\.log is a symbolic link; refusing to follow it/, d);
    expect(root.changes()).toEqual([]);
    expect(d.output()).toMatch(/stdout\.log is a symbolic link; refusing to follow it/);
    expect([0, 4]).toContain((await pmctlWithin(world, ["status"], 10_000)).code); // answered (4: the attacked service failed)
  }, 60_000);

  test("a dangling symlink into a root folder: nothing is created there", async () => {
    world = new World();
    root = new RootFiles();
    root.snapshot();
    nobodysFolder(world, "victim");
    world.writeService("victim", victim());
    const d = await world.daemon();
    await attackAndRestart("victim", `rm -f stdout.log && ln -s ${root.path("made-by-root")} stdout.log`, /stdout\.log is a symbolic link/, d);
    expect(root.changes()).toEqual([]);
    expect(existsSync(root.path("made-by-root"))).toBe(false);
  }, 60_000);

  test("the log folder swapped for a symlink to a root folder: the root files are unchanged, nothing created", async () => {
    world = new World();
    root = new RootFiles();
    root.add("out.log", SECRET);
    root.snapshot();
    const wd = nobodysFolder(world, "victim");
    world.writeService("victim", victim({ stdout: join(wd, "logs", "out.log"), stderr: join(wd, "logs", "out.log") }));
    const d = await world.daemon();
    await runningPid("victim");
    await attackAndRestart("victim", `mv logs logs.old && ln -s ${root.dir} logs`, /log folder path .*logs is a symbolic link/, d);
    expect(root.changes()).toEqual([]);
  }, 60_000);

  test("a root service's log in a sticky world-writable folder, pre-created by nobody: refused, nobody's file gets nothing", async () => {
    world = new World();
    chmodSync(world.dir, 0o755);
    const shared = mkdtempSync(join(tmpdir(), "pmsticky-"));
    extra.push(shared);
    chmodSync(shared, 0o1777);
    const planted = join(shared, "rootsvc.log");
    expect(await asNobody(shared, `: > ${planted}`)).toEqual({ code: 0, out: "" });
    world.writeService("rootsvc", { process: { command: ["sh", "-c", "echo root service output; exec sleep 1000"] }, logs: { stdout: planted, stderr: planted } });
    const d = await world.daemon();
    await d.waitForLog(/rootsvc\.log is owned by uid 65534, not by root/, 20_000);
    expect(readFileSync(planted, "utf8")).toBe("");
    expect([0, 4]).toContain((await pmctlWithin(world, ["status"], 10_000)).code); // answered (4: the attacked service failed)
  }, 60_000);

  test("a new log file is created 0640, owned by root and the service's group", async () => {
    world = new World();
    nobodysFolder(world, "victim");
    world.writeService("victim", victim());
    await world.daemon();
    await runningPid("victim");
    const st = statSync(join(world.appDir("victim"), "stdout.log"));
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o640, 0, NOBODY]);
  }, 60_000);

  test("openLogFd refuses a file with a second hard link and a FIFO, and follows a root-made symlink only in a root-only folder", () => {
    const dir = mkdtempSync(join(tmpdir(), "pmlinks-"));
    extra.push(dir);
    const other = join(dir, "elsewhere");
    writeFileSync(other, "x");
    linkSync(other, join(dir, "hard.log"));
    expect(() => openLogFd(join(dir, "hard.log"))).toThrow(/has 2 hard links/);
    Bun.spawnSync(["mkfifo", join(dir, "fifo.log")]);
    expect(() => openLogFd(join(dir, "fifo.log"))).toThrow(/FIFO/);
    // A folder symlink root made in a folder only root can write is followed (e.g. /var/run -> /run).
    mkdirSync(join(dir, "real"));
    symlinkSync(join(dir, "real"), join(dir, "alias"));
    closeSync(openLogFd(join(dir, "alias", "ok.log")));
    expect(existsSync(join(dir, "real", "ok.log"))).toBe(true);
    closeSync(openLogFd("/dev/null")); // a device root chose, in a folder only root can change

  });

  test("openLogFds (stdout and stderr through one walk to their folder) checks each file alike and leaves nothing open when one is refused", () => {
    const dir = mkdtempSync(join(tmpdir(), "pmpair-"));
    extra.push(dir);
    const fdCount = () => readdirSync("/proc/self/fd").length;
    const [out, err] = openLogFds([join(dir, "out.log"), join(dir, "err.log")]);
    expect(out).not.toBe(err);
    expect([statSync(join(dir, "out.log")).mode & 0o7777, statSync(join(dir, "err.log")).mode & 0o7777]).toEqual([0o640, 0o640]);
    closeSync(out!);
    closeSync(err!);
    symlinkSync(join(dir, "out.log"), join(dir, "link.log"));
    const before = fdCount();
    expect(() => openLogFds([join(dir, "out.log"), join(dir, "link.log")])).toThrow(/symbolic link/);
    expect(fdCount()).toBe(before);
  });
});
