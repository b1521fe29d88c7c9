/**
 * Chaos 6: config abuse against a running daemon. Every broken file of the corpus
 * (test/fixtures/bad-config/, whose messages config.test.ts checks one by one) plus the cases
 * that cannot live in git (symlink loops, unreadable files, a 10 MB file, duplicate names) is
 * handed to `update`: the update is refused with an error naming the file (and its line where
 * there is one), and the daemon keeps running its old config, processes untouched.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pidAlive, waitUntil, World, type DaemonProc } from "../helpers/harness.ts";
import { callDaemon } from "../../src/control/client.ts";
import type { AppStatus } from "../../src/supervisor/status.ts";
import { PmError } from "../../src/util/errors.ts";

const CORPUS = join(import.meta.dir, "..", "fixtures", "bad-config");

// One daemon for the whole file: each case must leave it exactly as it found it.
let world: World;
let daemon: DaemonProc;
let keeperPid: number;
beforeAll(async () => {
  world = new World();
  world.writeService("keeper", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 } });
  daemon = await world.daemon();
  keeperPid = (await world.app("keeper")).pids[0]!;
}, 30_000);
afterAll(async () => { await world?.cleanup(); });

/** `update` must fail; returns the error. */
async function updateFails(): Promise<PmError> {
  try { await callDaemon(world.sockPath, "update"); } catch (e) { return e as PmError; }
  throw new Error("update was accepted");
}

/** The daemon runs exactly its old config: keeper alone, same process, still serving. */
async function oldConfigStillRuns() {
  const apps = await world.status();
  expect(apps.map((a: AppStatus) => a.name)).toEqual(["keeper"]);
  expect(apps[0]!.state).toBe("running");
  expect(apps[0]!.pids).toEqual([keeperPid]);
  expect(pidAlive(keeperPid)).toBe(true);
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("chaos: a running daemon given broken config by update", () => {
  for (const fixture of readdirSync(CORPUS).sort()) {
    test(`${fixture}: refused naming the file and line; the old config keeps running`, async () => {
      const target = join(world.confDir, fixture);
      copyFileSync(join(CORPUS, fixture), target);
      try {
        const e = await updateFails();
        expect(e.code).toBe("CONFIG_INVALID");
        expect(e.message).toMatch(new RegExp(`${escapeRe(target)}:\\d+: `));
        await oldConfigStillRuns();
      } finally { rmSync(target, { force: true }); }
    });
  }

  test("a valid new service beside a broken file is not started: the update is refused whole", async () => {
    world.writeService("newcomer", { process: { command: ["sleep", "1000"] } });
    const bad = join(world.confDir, "wrong-type.yaml");
    copyFileSync(join(CORPUS, "wrong-type.yaml"), bad);
    try {
      expect((await updateFails()).message).toContain(bad);
      await oldConfigStillRuns();
      expect(world.cgroupPids("newcomer")).toEqual([]);
    } finally { rmSync(bad, { force: true }); world.removeService("newcomer"); }
  });

  test("the running service's own file broken: it keeps running as it was", async () => {
    const own = join(world.confDir, "keeper.yaml");
    const good = readFileSync(own);
    writeFileSync(own, "process:\n  command: [sleep, 1000\n");
    try {
      const e = await updateFails();
      expect(e.message).toMatch(new RegExp(`${escapeRe(own)}:\\d+: `));
      await oldConfigStillRuns();
    } finally { writeFileSync(own, good); }
  });

  const generated: [what: string, make: (dir: string) => string, message: RegExp, hasLine: boolean][] = [
    ["a symlink loop", (dir) => { symlinkSync(join(dir, "loop-b.yaml"), join(dir, "loop-a.yaml")); symlinkSync(join(dir, "loop-a.yaml"), join(dir, "loop-b.yaml")); return join(dir, "loop-a.yaml"); }, /symbolic links|ELOOP|loop/i, false],
    ["a dangling symlink", (dir) => { symlinkSync(join(dir, "nowhere.txt"), join(dir, "dangling.yaml")); return join(dir, "dangling.yaml"); }, /cannot open|ENOENT|no such file/i, false],
    ["a FIFO named .yaml (would block a reader)", (dir) => { Bun.spawnSync(["mkfifo", join(dir, "fifo.yaml")]); return join(dir, "fifo.yaml"); }, /not a regular file/, false],
    ["a directory named .yaml", (dir) => { mkdirSync(join(dir, "folder.yaml")); return join(dir, "folder.yaml"); }, /directory/, false],
    ["a 10 MB file", (dir) => { writeFileSync(join(dir, "huge.yaml"), `process:\n  command: [sleep, "1"]\n# ${"x".repeat(10 << 20)}\n`); return join(dir, "huge.yaml"); }, /too large/, false],
    ["two files defining one name", (dir) => { writeFileSync(join(dir, "zz-twin.yaml"), "name: keeper\nprocess:\n  command: [sleep, '2']\n"); return join(dir, "zz-twin.yaml"); }, /duplicate service name 'keeper'/, true],
    ["an empty file", (dir) => { writeFileSync(join(dir, "empty.yaml"), ""); return join(dir, "empty.yaml"); }, /./, false],
  ];
  for (const [what, make, message, hasLine] of generated) {
    test(`${what}: refused naming the file; the old config keeps running`, async () => {
      const made: string[] = [];
      const before = new Set(readdirSync(world.confDir));
      try {
        const file = make(world.confDir);
        for (const n of readdirSync(world.confDir)) if (!before.has(n)) made.push(join(world.confDir, n));
        const e = await updateFails();
        expect(e.code).toBe("CONFIG_INVALID");
        expect(e.message).toContain(file);
        expect(e.message).toMatch(message);
        if (hasLine) expect(e.message).toMatch(new RegExp(`${escapeRe(file)}:\\d+: `));
        await oldConfigStillRuns();
      } finally { for (const f of made) rmSync(f, { recursive: true, force: true }); }
    });
  }

  test("a broken master config: update refused naming it, SIGHUP logs it; the daemon carries on", async () => {
    const good = readFileSync(world.configPath);
    writeFileSync(world.configPath, `${good}\ncgroup_name: [unclosed\n`);
    try {
      const e = await updateFails();
      expect(e.message).toContain(world.configPath);
      daemon.proc.kill("SIGHUP");
      await daemon.waitForLog(/update failed, old config kept: .*config\.yaml/);
      await oldConfigStillRuns();
    } finally { writeFileSync(world.configPath, good); }
  }, 20_000);

  test("pmctl update reports the broken file on stderr, exit code 1", async () => {
    const target = join(world.confDir, "bad-signal.yaml");
    copyFileSync(join(CORPUS, "bad-signal.yaml"), target);
    try {
      const r = await world.pmctl(["update"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`${escapeRe(target)}:3: process\\.stop_signal: `));
      await oldConfigStillRuns();
    } finally { rmSync(target, { force: true }); }
  }, 20_000);

  test("after all of it, a good update still works", async () => {
    world.writeService("late", { process: { command: ["sleep", "1000"] } });
    try {
      await callDaemon(world.sockPath, "update");
      await waitUntil(async () => (await world.app("late")).state === "running", "the late service to run");
      expect((await world.app("keeper")).pids).toEqual([keeperPid]);
    } finally {
      world.removeService("late");
      await callDaemon(world.sockPath, "update");
    }
  }, 20_000);
});
