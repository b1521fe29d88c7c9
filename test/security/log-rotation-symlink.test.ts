/**
 * Issue 11, item 2: rotation never follows what a service's user planted. The live file, an
 * existing archive, the size-mode staging file, and a log folder swapped for a symlink (retention
 * and backup shifting) are each turned against a root-only file by `nobody`, the service's
 * user; root then runs `pmctl rotate`. The root files must be unchanged and nothing of them may
 * reach a file nobody can read.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { asNobody, dailyArchiveNames, nobodysFolder, pmctlWithin, RootFiles } from "../helpers/attack.ts";
import { waitUntil, World } from "../helpers/harness.ts";

let world: World;
let root: RootFiles;
afterEach(async () => {
  await world?.cleanup();
  root?.cleanup();
});

const SECRET = "root secret\n".repeat(2000); // 24 KB: several blocks for a collapse to take
const DAY = 86_400_000;

/** A nobody service that writes `lines` lines once, then sleeps. */
function victim(logs: Record<string, unknown> = {}, lines = 5000) {
  return {
    process: { command: ["sh", "-c", `i=0; while [ $i -lt ${lines} ]; do echo "service line $i"; i=$((i+1)); done; exec sleep 1000`], user: "nobody", stop_grace_ms: 1000 },
    logs,
  };
}

/** Starts the world's daemon and waits until the service has written its lines to `file`. */
async function started(file: string, lines = 5000) {
  const d = await world.daemon();
  await waitUntil(() => existsSync(file) && readFileSync(file, "utf8").includes(`service line ${lines - 1}\n`), "the service's output", 30_000);
  return d;
}

async function rotateAsRoot(app: string) {
  const r = await pmctlWithin(world, ["rotate", app], 30_000);
  expect([0, 4]).toContain((await pmctlWithin(world, ["status"], 10_000)).code); // still answering root (4: the attacked service failed)
  return r;
}

/**
 * A root file with an mtime two days back (an older period), the victim running and its output
 * written, and the archive names nobody pre-creates (today's, yesterday's, the root file's period's).
 */
async function olderRootFileSetup() {
  world = new World();
  root = new RootFiles();
  const secret = root.add("secret", SECRET, Date.now() - 2 * DAY);
  root.snapshot();
  const wd = nobodysFolder(world, "victim");
  world.writeService("victim", victim());
  const d = await started(join(wd, "stdout.log"));
  const archives = [...dailyArchiveNames("stdout.log"), `stdout.log.${new Date(Date.now() - 2 * DAY).toISOString().slice(0, 10)}`];
  return { secret, wd, archives, d };
}

describe("rotation never follows what a service's user planted", () => {
  test("live file swapped for a symlink to an older root file, that period's archive pre-created: nothing of it moves", async () => {
    const { secret, wd, archives } = await olderRootFileSetup();
    const r = await asNobody(wd, `rm -f stdout.log && ln -s ${secret} stdout.log && touch ${archives.join(" ")}`);
    expect(r.code).toBe(0);
    await rotateAsRoot("victim");
    expect(root.changes()).toEqual([]);
    for (const a of archives) if (existsSync(join(wd, a))) expect(readFileSync(join(wd, a), "utf8")).not.toContain("root secret");
  }, 60_000);

  test("live file deleted, a rotation run notices it gone, then linked to an older root file (archive pre-created): nothing of it moves", async () => {
    const { secret, wd, archives, d } = await olderRootFileSetup();
    expect((await asNobody(wd, "rm -f stdout.log")).code).toBe(0);
    await rotateAsRoot("victim"); // the tick: the rotator finds the file gone (its period is then taken from the next file's mtime)
    await d.waitForLog(/log file .*stdout\.log of victim is gone/, 10_000);
    expect((await asNobody(wd, `ln -s ${secret} stdout.log && touch ${archives.join(" ")}`)).code).toBe(0);
    await rotateAsRoot("victim");
    expect(root.changes()).toEqual([]);
    for (const a of archives) expect(readFileSync(join(wd, a), "utf8")).not.toContain("root secret");
  }, 60_000);

  test("an existing archive that is a symlink to a root file: nothing is appended to it", async () => {
    world = new World();
    root = new RootFiles();
    const secret = root.add("secret", SECRET);
    root.snapshot();
    const wd = nobodysFolder(world, "victim");
    world.writeService("victim", victim());
    await started(join(wd, "stdout.log"));
    const links = dailyArchiveNames("stdout.log").map((a) => `ln -s ${secret} ${a}`).join(" && ");
    expect((await asNobody(wd, links)).code).toBe(0);
    const r = await rotateAsRoot("victim");
    expect(root.changes()).toEqual([]);
    expect(r.stdout + r.stderr).toMatch(/is a symbolic link/);
  }, 60_000);

  test("size mode: the staging file is a symlink to a root file: nothing is appended to it", async () => {
    world = new World();
    root = new RootFiles();
    const secret = root.add("secret", SECRET);
    root.snapshot();
    const wd = nobodysFolder(world, "victim");
    world.writeService("victim", victim({ rotation_mode: "size", rotation_size: "10M", rotation_backups: 2 }));
    await started(join(wd, "stdout.log"));
    expect((await asNobody(wd, `ln -s ${secret} stdout.log.rotating`)).code).toBe(0);
    await rotateAsRoot("victim");
    expect(root.changes()).toEqual([]);
    expect(existsSync(join(wd, "stdout.log.1"))).toBe(false); // nothing shifted for a failed rotation
  }, 60_000);

  test("time mode: the log folder swapped for a symlink to a root folder: retention deletes nothing there", async () => {
    world = new World();
    root = new RootFiles();
    root.add("stdout.log.2020-01-01", SECRET, Date.UTC(2020, 0, 1));
    root.snapshot();
    const wd = nobodysFolder(world, "victim");
    world.writeService("victim", victim({ stdout: join(wd, "logs", "stdout.log"), stderr: join(wd, "logs", "stderr.log"), rotation_max_age_ms: DAY }));
    await started(join(wd, "logs", "stdout.log"));
    expect((await asNobody(wd, `mv logs logs.old && ln -s ${root.dir} logs`)).code).toBe(0);
    const r = await rotateAsRoot("victim");
    expect(root.changes()).toEqual([]);
    expect(r.stdout + r.stderr).toMatch(/is a symbolic link/);
  }, 60_000);

  test("size mode: the log folder swapped for a symlink to a root folder: no rotation, shift or delete there", async () => {
    world = new World();
    root = new RootFiles();
    root.add("stdout.log", SECRET);
    root.add("stdout.log.1", "root's first backup\n");
    root.snapshot();
    const wd = nobodysFolder(world, "victim");
    world.writeService("victim", victim({ stdout: join(wd, "logs", "stdout.log"), stderr: join(wd, "logs", "stderr.log"), rotation_mode: "size", rotation_size: "1K", rotation_backups: 1 }));
    await started(join(wd, "logs", "stdout.log"));
    expect((await asNobody(wd, `mv logs logs.old && ln -s ${root.dir} logs`)).code).toBe(0);
    await rotateAsRoot("victim");
    expect(root.changes()).toEqual([]);
  }, 60_000);

  test("the legitimate rotation still works: archive owned like the live file, content byte-exact", async () => {
    world = new World();
    const wd = nobodysFolder(world, "victim");
    world.writeService("victim", victim({ rotation_mode: "size", rotation_size: "1K", rotation_backups: 2 }));
    await started(join(wd, "stdout.log"));
    const before = readFileSync(join(wd, "stdout.log"), "latin1");
    const r = await rotateAsRoot("victim");
    expect(r.code).toBe(0);
    const archive = join(wd, "stdout.log.1");
    expect(readFileSync(archive, "latin1") + readFileSync(join(wd, "stdout.log"), "latin1")).toBe(before);
    const a = statSync(archive), l = statSync(join(wd, "stdout.log"));
    expect([a.uid, a.gid, a.mode & 0o777]).toEqual([l.uid, l.gid, l.mode & 0o777]);
  }, 60_000);
});
