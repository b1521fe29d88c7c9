/**
 * Chaos 7: disk full. Logs (and the state file) on a 1 MiB tmpfs that fills up: services keep
 * running and are not blocked (a service writing continuously keeps making progress), the daemon
 * keeps serving, says what it could not write (rotation errors from `pmctl rotate` and from the
 * minute tick; the state file), and recovers once there is space again.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitUntil, World } from "../helpers/harness.ts";
import { callDaemon } from "../../src/control/client.ts";
import type { AppStatus } from "../../src/supervisor/status.ts";
import { LogRotator } from "../../src/logs/index.ts";
import { StateStore } from "../../src/supervisor/state-store.ts";
import { ManualClock } from "../../src/util/clock.ts";
import type { LogsConfig } from "../../src/config/types.ts";
import { LONG, withDeadline } from "./chaos-helpers.ts";

let world: World | undefined;
let mountPoint: string | undefined;

/** A 1 MiB tmpfs of our own (we run as root); unmounted in afterEach, after every process using it is gone. */
function mountTinyDisk(): string {
  const dir = mkdtempSync(join(tmpdir(), "pm-diskfull-"));
  const r = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", dir]);
  if (r.exitCode !== 0) { rmdirSync(dir); throw new Error(`mount tmpfs failed: ${r.stderr.toString()}`); }
  mountPoint = dir;
  return dir;
}

afterEach(async () => {
  await world?.cleanup(); // kills every service first, so nothing holds the tmpfs busy
  world = undefined;
  if (mountPoint) {
    const dir = mountPoint;
    mountPoint = undefined;
    if (Bun.spawnSync(["umount", dir]).exitCode !== 0) Bun.spawnSync(["umount", "-l", dir]);
    rmdirSync(dir);
  }
});

/** Fills what is left of the disk; returns the ballast file (delete it to make room). */
function fill(dir: string): string {
  const ballast = join(dir, "ballast");
  const chunk = Buffer.alloc(64 * 1024, 0x2e);
  const fd = require("node:fs").openSync(ballast, "a");
  try { for (;;) require("node:fs").writeSync(fd, chunk); } catch (e) { if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e; }
  try { for (;;) require("node:fs").writeSync(fd, Buffer.alloc(512)); } catch { /* the last few bytes */ }
  require("node:fs").closeSync(fd);
  return ballast;
}

const counterOf = (file: string) => { try { return Number(readFileSync(file, "utf8").trim()) || 0; } catch { return 0; } };
/** The writer's counter; `echo $i > file` truncates before it writes, so a read may find it empty: read again. */
const readCounter = (file: string) => waitUntil(() => counterOf(file), "a non-empty counter file", 15_000, 2);

describe("chaos: disk full", () => {
  test("services keep running and progressing, the daemon serves and reports what it could not write, then recovers", async () => {
    const disk = mountTinyDisk();
    world = new World({ master: {} });
    world.writeMaster({ state_file: join(disk, "state.json") });
    const counter = join(world.dir, "counter");
    // Writes an 8 KB line every 50 ms (160 KB/s: once there is room again, the disk takes
    // seconds to fill up anew), and a counter on a normal disk.
    const writer = `pad=$(printf '%8000s' x); i=0; while :; do i=$((i+1)); echo "line $i $pad"; echo $i > ${counter}; sleep 0.05; done`;
    world.writeService("writer", { process: { command: ["sh", "-c", writer], stop_grace_ms: 1000 }, logs: { stdout: join(disk, "writer.out"), stderr: join(disk, "writer.err") } });
    world.writeService("quiet", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 }, logs: { stdout: join(disk, "quiet.out"), stderr: join(disk, "quiet.err") } });
    const d = await world.daemon();
    const writerPid = (await world.app("writer")).pids[0]!;
    await waitUntil(() => counterOf(counter) > 5, "the writer to start writing");

    const ballast = fill(disk);
    expect(() => writeFileSync(join(disk, "probe"), "x".repeat(8192))).toThrow(/ENOSPC|no space/i);

    // The writer's log writes now fail; it must still make progress (it is never blocked).
    const c0 = await readCounter(counter);
    await waitUntil(() => counterOf(counter) >= c0 + 20, "the writer to keep going on a full disk", 10_000);
    const writerNow = await world.app("writer");
    expect(writerNow.state).toBe("running");
    expect(writerNow.pids).toContain(writerPid);

    // The daemon keeps serving and acting: a stop and a start (state file writes fail meanwhile).
    const t0 = performance.now();
    const status = (await withDeadline(callDaemon(world.sockPath, "status"), 30_000, "status on a full disk")) as { apps: AppStatus[] };
    console.log(`status round trip with the disk full: ${(performance.now() - t0).toFixed(1)} ms`);
    expect(status.apps.map((a) => [a.name, a.state])).toEqual([["quiet", "running"], ["writer", "running"]]);
    expect(status.apps.find((a) => a.name === "writer")!.pids).toContain(writerPid);
    const stopped = (await callDaemon(world.sockPath, "stop", ["quiet"])) as { apps: AppStatus[] };
    expect(stopped.apps[0]!.pids).toEqual([]);
    const started = (await callDaemon(world.sockPath, "start", ["quiet"])) as { apps: AppStatus[] };
    expect(started.apps[0]!.state).toBe("running");
    await d.waitForLog(/cannot write state file .*state\.json.*(ENOSPC|no space)/i, 20_000);

    // pmctl rotate says which file could not be rotated and why.
    const rot = await world.pmctl(["rotate", "writer"]);
    expect(rot.code).toBe(1);
    expect(rot.stderr).toMatch(new RegExp(`${join(disk, "writer.out").replace(/[.]/g, "\\.")}: .*(ENOSPC|no space)`, "i"));
    // The live log kept its content: the failed rotation rolled back.
    expect(readFileSync(join(disk, "writer.out"), "utf8")).toMatch(/^line 1 /);
    expect(existsSync(join(disk, `writer.out.${new Date().toISOString().slice(0, 10)}`))).toBe(false);

    // Room again: rotation works, the state file is written again, the writer's lines land again.
    rmSync(ballast);
    const rot2 = await world.pmctl(["rotate", "writer"]);
    expect(rot2.code, rot2.stderr).toBe(0);
    await callDaemon(world.sockPath, "stop", ["quiet"]);
    await waitUntil(() => { try { return JSON.parse(readFileSync(join(disk, "state.json"), "utf8")).units.quiet.operatorStopped === true; } catch { return false; } }, "the state file to be written again");
    const c1 = await readCounter(counter);
    await waitUntil(() => readFileSync(join(disk, "writer.out"), "utf8").includes(`line ${c1 + 5} `), "new lines in the log again").catch((e) => {
      const live = readFileSync(join(disk, "writer.out"), "utf8");
      throw new Error(`${e}; counter ${c1} -> ${counterOf(counter)}; live log ${live.length} bytes, lines ${[...live.matchAll(/line (\d+) /g)].map((m) => m[1]).slice(-5)}; ${Bun.spawnSync(["df", "-k", disk]).stdout}; files ${require("node:fs").readdirSync(disk)}; err ${readFileSync(join(disk, "writer.err"), "utf8").slice(-200)}`);
    });
  }, 60_000);

  test("the state file stays valid JSON when the disk fills in the middle of writing it", async () => {
    const disk = mountTinyDisk();
    world = new World();
    world.writeMaster({ state_file: join(disk, "state.json") });
    // Enough services that the state file needs two pages of the tmpfs.
    for (let i = 0; i < 30; i++) world.writeService(`s${String(i).padStart(2, "0")}`, { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 } });
    const d = await world.daemon();
    const statePath = join(disk, "state.json");
    await waitUntil(() => { try { return Object.keys(JSON.parse(readFileSync(statePath, "utf8")).units).length === 30; } catch { return false; } }, "the first state file");
    const size = readFileSync(statePath).length;
    expect(size).toBeGreaterThan(4096);
    // Leave exactly one free page: the next state file starts to be written, then runs out.
    const ballast = fill(disk);
    const fs = require("node:fs") as typeof import("node:fs");
    fs.truncateSync(ballast, Math.max(0, fs.statSync(ballast).size - 4096));
    await callDaemon(world.sockPath, "stop", ["s00"]);
    await d.waitForLog(/cannot write state file .*(ENOSPC|no space)/i, 20_000); // the write was tried
    const state = JSON.parse(readFileSync(statePath, "utf8")); // the old one, whole
    expect(Object.keys(state.units)).toHaveLength(30);
    // No half-written temporary file is left holding the little space there is.
    expect(fs.readdirSync(disk).filter((n) => n.startsWith("state.json.tmp"))).toEqual([]);
  }, 60_000);

  test("a state write that runs out of space in the middle leaves the old file whole (StateStore on its own)", () => {
    const disk = mountTinyDisk();
    const path = join(disk, "state.json");
    const errors: string[] = [];
    const log = { debug() {}, info() {}, warn() {}, error: (m: string) => errors.push(m) };
    const store = new StateStore(path, log);
    store.load();
    const unit = (i: number) => ({ operatorStopped: false, phase: "running" as const, history: { restartsWallMs: [i], backoffMs: null }, restarts: i, lastExit: null, startedAtWallMs: i, suppressedReason: null });
    for (let i = 0; i < 40; i++) store.set(`service-${i}`, unit(i));
    store.flush();
    const good = readFileSync(path, "utf8");
    expect(good.length).toBeGreaterThan(4096); // two pages: the next write can get one and not the other
    const ballast = fill(disk);
    const fs = require("node:fs") as typeof import("node:fs");
    fs.truncateSync(ballast, Math.max(0, fs.statSync(ballast).size - 4096));
    for (let i = 0; i < 40; i++) store.set(`service-${i}`, unit(i + 1000));
    store.flush();
    expect(readFileSync(path, "utf8")).toBe(good); // untouched, not cut short
    expect(errors.join("\n")).toMatch(/cannot write state file .*(ENOSPC|no space)/i);
    expect(fs.readdirSync(disk).filter((n) => n.startsWith("state.json.tmp"))).toEqual([]);
  });

  test("the rotation tick reports a rotation that fails for lack of space, and retries it later", async () => {
    const disk = mountTinyDisk();
    const live = join(disk, "app.log");
    writeFileSync(live, "hello\n".repeat(20_000)); // 120 KB
    const ballast = fill(disk);
    const config: LogsConfig = { stdout: live, stderr: live, hints: [], rotationMode: "time", rotationFrequency: "daily", rotationMaxAgeMs: 30 * 86_400_000, rotationBackups: 10 };
    const clock = new ManualClock(0, Date.UTC(2026, 0, 1, 12));
    const rotator = new LogRotator({ clock });
    rotator.setFiles([{ app: "app", path: live, config }]);
    expect((await rotator.tick()).errors).toEqual([]); // first sight: nothing due
    clock.advance(86_400_000); // the next day: the file is due for rotation, the disk is full
    const report = (await rotator.tick());
    expect(report.errors).toHaveLength(1);
    expect(report.errors[0]!.path).toBe(live);
    expect(report.errors[0]!.message).toMatch(/ENOSPC|no space/i);
    expect(readFileSync(live, "utf8")).toBe("hello\n".repeat(20_000)); // nothing lost
    rmSync(ballast);
    const retry = (await rotator.tick()); // a minute later: the same rotation is still due, and now succeeds
    expect(retry.errors).toEqual([]);
    expect(readFileSync(`${live}.2026-01-01`, "utf8") + readFileSync(live, "utf8")).toBe("hello\n".repeat(20_000));
  });

  test.skipIf(!LONG)("long: the daemon's own minute tick logs the failed rotation (waits for a minute boundary)", async () => {
    const disk = mountTinyDisk();
    world = new World();
    world.writeService("w", { process: { command: ["sh", "-c", "echo hello; exec sleep 1000"] }, logs: { stdout: join(disk, "w.out"), stderr: join(disk, "w.err"), rotation_mode: "size", rotation_size: "1K" } });
    const d = await world.daemon();
    await waitUntil(() => existsSync(join(disk, "w.out")) && readFileSync(join(disk, "w.out"), "utf8").length > 0, "the first line");
    writeFileSync(join(disk, "w.out"), "x".repeat(64 * 1024), { flag: "a" }); // past rotation_size
    fill(disk);
    await d.waitForLog(/log rotation of .*w\.out \(w\) failed, retrying next minute: .*(ENOSPC|no space)/i, 70_000);
  }, 90_000);
});
