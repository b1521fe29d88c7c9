/**
 * Logs through the daemon and pmctl: lossless rotation under load (`pmctl rotate` in a loop
 * while a service writes as fast as it can), the tmpfs fallback, what `pmctl rotate` and
 * `status --json` say, a log file deleted under a running service, two services on one file,
 * and the stop command's output files.
 *
 * The load test uses size mode with `rotation_size: 1T` (the minute tick never rotates on its
 * own) and enough `rotation_backups` that none is deleted: every rotation makes a new
 * `stdout.log.1` and shifts the older ones, so the archives in order are `.N` … `.1`, then the
 * live file, and the test also exercises the staging + shift path on every rotation. (Time
 * mode would append every forced rotation to the one archive of the day, which tests less.)
 */
import { afterEach, describe, expect, test } from "bun:test";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeRotationMode, rotateLogFile, useKernelCopy } from "../src/logs/rotate.ts";
import { waitUntil, World } from "./helpers/harness.ts";

let world: World | undefined;
const extraDirs: string[] = [];
afterEach(async () => {
  await world?.cleanup();
  world = undefined;
  for (const d of extraDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Whether the temp folder (where World puts services) supports collapse (ext4/XFS: yes; tmpfs: no). */
const TMP_COLLAPSE = (() => {
  const d = mkdtempSync(join(tmpdir(), "pmtest-probe-"));
  try { writeFileSync(join(d, "f"), "x"); return probeRotationMode(join(d, "f")) === "collapse"; } finally { rmSync(d, { recursive: true, force: true }); }
})();
/** PM_LOGS_LONG=1 (or PM_CHAOS_LONG=1) also runs the test that waits for the daemon's own minute tick (up to 65 s). */
const LONG = process.env.PM_LOGS_LONG === "1" || process.env.PM_CHAOS_LONG === "1";

const ROTATIONS = 30;
const MIN_LINES = 300_000;
/** Safety cap: the writer stops by itself after this many lines. */
const MAX_LINES = 20_000_000;

/**
 * A service that writes numbered lines (`1\n`, `2\n`, …), one write(2) each, as fast as it
 * can, until a `stop` file appears in its folder; then it writes how many lines it wrote to
 * `count` and exits 0.
 */
const WRITER = `
import fs from "node:fs";
let i = 0;
while (i < ${MAX_LINES}) {
  for (let k = 0; k < 1000; k++) { i++; fs.writeSync(1, i + "\\n"); }
  if (fs.existsSync("stop")) break;
}
fs.writeFileSync("count", String(i));
`;

/** Bytes that lines 1..n take. */
function bytesOfLines(n: number): number {
  let total = 0;
  for (let digits = 1, lo = 1; lo <= n; digits++, lo *= 10) total += (Math.min(n, lo * 10 - 1) - lo + 1) * (digits + 1);
  return total;
}

/** Counts every line number in `data`: how many are missing, twice or more, and lines that are not a number in 1..count. */
function countLines(data: Buffer, count: number) {
  const seen = new Uint8Array(count + 1);
  let bad = 0;
  let num = 0;
  let digits = 0;
  let junk = false;
  for (let i = 0; i < data.length; i++) {
    const c = data[i]!;
    if (c === 0x0a) {
      if (digits === 0 || junk || num < 1 || num > count) bad++;
      else if (seen[num]! < 255) seen[num]!++;
      num = 0; digits = 0; junk = false;
    } else if (c >= 0x30 && c <= 0x39 && digits < 10) {
      num = num * 10 + (c - 0x30); digits++;
    } else {
      junk = true;
    }
  }
  if (digits > 0 || junk) bad++; // a last line without its newline
  let missing = 0;
  let duplicated = 0;
  for (let n = 1; n <= count; n++) {
    if (seen[n] === 0) missing++;
    else if (seen[n]! > 1) duplicated++;
  }
  return { missing, duplicated, bad };
}

/** `<live>.N` … `<live>.1`, oldest first. */
function backupsOldestFirst(live: string): string[] {
  const dir = join(live, "..");
  const base = live.slice(dir.length + 1);
  return readdirSync(dir)
    .map((n) => ({ n, k: n.startsWith(base + ".") ? Number(n.slice(base.length + 1)) : NaN }))
    .filter((x) => Number.isInteger(x.k) && x.k > 0)
    .sort((a, b) => b.k - a.k)
    .map((x) => join(dir, x.n));
}

function sizeOr0(p: string): number {
  try { return statSync(p).size; } catch { return 0; }
}

function isTmpfs(dir: string): boolean {
  return readFileSync("/proc/mounts", "utf8").split("\n").some((l) => { const m = l.split(" "); return m[1] === dir && m[2] === "tmpfs"; });
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Runs the writer as service `w` with its logs in `logDir`, rotates it with `pmctl rotate w`
 * at least ROTATIONS times and until it wrote MIN_LINES lines, stops it, and returns what the
 * archives plus the live file hold.
 */
async function rotateUnderLoad(w: World, logDir: string, expectedMode: "collapse" | "copy-truncate") {
  const live = join(logDir, "stdout.log");
  const appDir = w.appDir("w");
  w.writeService("w", {
    process: { command: [process.execPath, join(appDir, "writer.ts")], stop_grace_ms: 2000 },
    logs: { stdout: live, stderr: join(logDir, "stderr.log"), rotation_mode: "size", rotation_size: "1T", rotation_backups: 10_000 },
  });
  writeFileSync(join(appDir, "writer.ts"), WRITER);
  const d = await w.daemon();
  await waitUntil(() => sizeOr0(live) > 0, "the writer's first lines");

  // status --json: each log file's path, size and rotation mode.
  const st = await w.pmctl(["status", "w", "--json"]);
  expect(st.code, st.stderr).toBe(0);
  const logs = (JSON.parse(st.stdout).apps[0].logs as { path: string; size: number | null; rotation_mode: string }[]);
  expect(logs.map((l) => l.path)).toEqual([live, join(logDir, "stderr.log")]);
  expect(logs[0]!.size).toBeGreaterThan(0);
  expect(logs[1]!.size).toBe(0);
  for (const l of logs) expect(l.rotation_mode).toBe(expectedMode);

  const rotateLine = new RegExp(`^w: ${escapeRe(live)} -> ${escapeRe(live)}\\.1 \\(\\d+ bytes, ${expectedMode}\\)$`, "m");
  let rotations = 0;
  let named = 0;
  // Until ROTATIONS of them moved data: on a loaded machine the writer sometimes has not filled a
  // block between two rotations, and those count as attempts only.
  while (named < ROTATIONS || sizeOr0(live) + backupsOldestFirst(live).reduce((s, p) => s + sizeOr0(p), 0) < bytesOfLines(MIN_LINES)) {
    const r = await w.pmctl(["rotate", "w"]);
    expect(r.code, r.stderr).toBe(0);
    if (rotateLine.test(r.stdout)) named++;
    // Less than a block since the last one; after a copy+truncate the writer may not have written yet.
    else expect(r.stdout).toMatch(/^(w: .*stdout\.log: not rotated \(.*\)|nothing to rotate \(no log file has content\))$/m);
    rotations++;
    expect(rotations).toBeLessThan(2000);
  }
  expect(existsSync(join(appDir, "count"))).toBe(false); // the writer was writing all along
  writeFileSync(join(appDir, "stop"), "");
  await waitUntil(async () => (await w.app("w")).state === "exited", "the writer to finish", 30_000, 50);
  const app = await w.app("w");
  expect(app.exit_code).toBe(0);
  const count = Number(readFileSync(join(appDir, "count"), "utf8"));
  expect(count).toBeGreaterThanOrEqual(MIN_LINES);

  const archives = backupsOldestFirst(live);
  const data = Buffer.concat([...archives, live].map((p) => readFileSync(p)));
  return { d, live, rotations, named, archives, count, result: countLines(data, count) };
}

describe("rotation through the daemon", () => {
  test.skipIf(!TMP_COLLAPSE)(`pmctl rotate ${ROTATIONS}+ times while a service writes as fast as it can: every line exactly once (ext4, collapse)`, async () => {
    world = new World();
    const r = await rotateUnderLoad(world, world.appDir("w"), "collapse");
    console.log(`collapse: ${r.count} lines, ${r.rotations} rotations (${r.named} moved data), ${r.archives.length} archives: missing ${r.result.missing}, twice ${r.result.duplicated}, bad ${r.result.bad}`);
    expect(r.named).toBeGreaterThanOrEqual(ROTATIONS - 2); // each rotation moved data (a writer this fast fills a block between two)
    expect(r.archives.length).toBe(r.named);
    expect(r.result).toEqual({ missing: 0, duplicated: 0, bad: 0 });
    // The daemon says once, at start, how its files are rotated (one line for all), and names each rotation.
    const out = r.d.output();
    expect(out.split("rotation by fallocate collapse (lossless)").length - 1).toBe(1);
    expect(out).toContain("2 log files: rotation by fallocate collapse (lossless)");
    expect(out).toContain(`w: ${r.live}: `);
    expect(out).toMatch(/bytes rotated to .*stdout\.log\.1 by collapse \(pmctl rotate\)/);
  }, 120_000);

  const shm = "/dev/shm";
  test.skipIf(!existsSync(shm) || !isTmpfs(shm))("on tmpfs: the fallback copy+truncate is reported (status, daemon log once), counts are reported", async () => {
    world = new World();
    const logDir = mkdtempSync(join(shm, "pmtest-logs-"));
    extraDirs.push(logDir);
    const r = await rotateUnderLoad(world, logDir, "copy-truncate");
    // No assertion of zero loss here: copy+truncate loses what is written between copy and truncate.
    console.log(`copy-truncate on tmpfs: ${r.count} lines, ${r.rotations} rotations, ${r.archives.length} archives: missing ${r.result.missing}, twice ${r.result.duplicated}, bad ${r.result.bad}`);
    expect(r.named).toBeGreaterThanOrEqual(ROTATIONS - 2);
    // Not even "nothing twice": a read racing a write that straddles a page can end the archive
    // with part of a line whose rest the truncate drops, and that part joined to the next
    // archive's first line can read as another line's number.
    expect(r.result.missing + r.result.duplicated + r.result.bad).toBeLessThan(r.count);
    const warned = r.d.output().split("\n").filter((l) => l.includes("does not support FALLOC_FL_COLLAPSE_RANGE; rotation by copy+truncate"));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toContain(`2 log files on a file system`);
    expect(warned[0]).toContain(r.live);
    expect(warned[0]).toMatch(/ WARN /);
  }, 120_000);
});

describe.skipIf(!TMP_COLLAPSE)("rotateLogFile on a file larger than one collapse piece (32 MiB)", () => {
  for (const kernel of [true, false]) {
    test(`byte-exact while a writer appends (${kernel ? "copy_file_range" : "read/write"} copy)`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "pmtest-biglog-"));
      extraDirs.push(dir);
      const live = join(dir, "stdout.log");
      const filler = Buffer.alloc(100 << 20, "filler line\n"); // 100 MiB: four pieces
      writeFileSync(live, filler);
      writeFileSync(join(dir, "writer.ts"), WRITER);
      const fd = openSync(live, "a");
      const writer = Bun.spawn({ cmd: [process.execPath, join(dir, "writer.ts")], cwd: dir, stdin: "ignore", stdout: fd, stderr: "inherit" });
      closeSync(fd);
      try {
        await waitUntil(() => sizeOr0(live) > filler.length + 100_000, "the writer's first lines");
        useKernelCopy(kernel);
        const r = rotateLogFile(live, `${live}.1`);
        expect(r.mode).toBe("collapse");
        expect(r.bytesMoved).toBeGreaterThan(filler.length - 4096);
        expect(sizeOr0(`${live}.1`)).toBe(r.bytesMoved);
      } finally {
        useKernelCopy(true);
        writeFileSync(join(dir, "stop"), "");
        await writer.exited;
      }
      const count = Number(readFileSync(join(dir, "count"), "utf8"));
      const all = Buffer.concat([readFileSync(`${live}.1`), readFileSync(live)]);
      expect(all.subarray(0, filler.length).equals(filler)).toBe(true);
      expect(countLines(all.subarray(filler.length), count)).toEqual({ missing: 0, duplicated: 0, bad: 0 });
    }, 60_000);
  }
});

describe("log files and the daemon", () => {
  test("a log file deleted under a running service: the daemon says so once; after restart the service writes a new file", async () => {
    world = new World();
    world.writeService("d", { process: { command: ["sh", "-c", "echo started $$; exec sleep 1000"], stop_grace_ms: 2000 } });
    const daemon = await world.daemon();
    const live = join(world.appDir("d"), "stdout.log");
    const first = (await world.app("d")).pids[0]!;
    await waitUntil(() => existsSync(live) && readFileSync(live, "utf8").includes(`started ${first}`), "the first line");

    rmSync(live);
    const rot = await world.pmctl(["rotate", "d"]);
    expect(rot.code, rot.stderr).toBe(0);
    expect(rot.stdout).toContain(`d: ${live} does not exist; it is created on the service's next start`);
    const gone = new RegExp(`log file ${escapeRe(live)} of d is gone; it is recreated on the service's next start`);
    await daemon.waitForLog(gone);
    // Said once, not at every check.
    expect((await world.pmctl(["rotate", "d"])).code).toBe(0);
    expect(daemon.output().split("\n").filter((l) => gone.test(l))).toHaveLength(1);
    expect((await world.app("d")).logs[0]).toEqual({ path: live, size: null, rotation_mode: "collapse" });

    const restarted = await world.pmctl(["restart", "d"]);
    expect(restarted.code, restarted.stderr).toBe(0);
    const second = (await world.app("d")).pids[0]!;
    expect(second).not.toBe(first);
    await waitUntil(() => existsSync(live) && readFileSync(live, "utf8") === `started ${second}\n`, "the restarted service to write a new file at the path");
    expect((await world.app("d")).logs[0]!.size).toBe(`started ${second}\n`.length);
  }, 60_000);

  test.skipIf(!LONG || !TMP_COLLAPSE)("long: the daemon's one minute-aligned timer rotates a minutely log at the boundary", async () => {
    world = new World();
    // More than one block, written once: the whole of it belongs to the minute it was written in.
    world.writeService("m", { process: { command: ["sh", "-c", "i=0; while [ $i -lt 1000 ]; do echo minute line $i; i=$((i+1)); done; exec sleep 1000"], stop_grace_ms: 1000 }, logs: { rotation_frequency: "minutely" } });
    const d = await world.daemon();
    const live = join(world.appDir("m"), "stdout.log");
    await waitUntil(() => readFileSync(live, "utf8").includes("minute line 999\n"), "the lines");
    const before = readFileSync(live);
    const line = await d.waitForLog(/m: \S+stdout\.log: \d+ bytes rotated to \S+stdout\.log\.\d{4}-\d{2}-\d{2}T\d{2}-\d{2} by collapse \(minute tick\)/, 65_000);
    const archive = line.match(/rotated to (\S+) by/)![1]!;
    // The tick for that boundary did it: the archive was written in the minute after its period
    // (not before the period ended, not at a later tick). The seconds past the boundary are printed.
    const [, y, mo, da, h, mi] = archive.match(/\.(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})$/)!.map(Number);
    const periodEnd = new Date(y!, mo! - 1, da!, h!, mi! + 1).getTime();
    const writtenAt = statSync(archive).mtimeMs;
    console.log(`minute tick: archive written ${((writtenAt - periodEnd) / 1000).toFixed(2)} s after the boundary`);
    expect(writtenAt).toBeGreaterThanOrEqual(periodEnd);
    expect(writtenAt).toBeLessThan(periodEnd + 60_000);
    expect(Buffer.concat([readFileSync(archive), readFileSync(live)]).equals(before)).toBe(true);
  }, 90_000);

  test("pmctl rotate names what it did; time mode archives under the period's name", async () => {
    world = new World();
    world.writeService("t", { process: { command: ["sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done; exec sleep 1000"], stop_grace_ms: 2000 } });
    await world.daemon();
    const live = join(world.appDir("t"), "stdout.log");
    await waitUntil(() => sizeOr0(live) > 10_000 && readFileSync(live, "utf8").includes("line 1999\n"), "the lines");
    const before = readFileSync(live);
    const rot = await world.pmctl(["rotate", "t"]);
    expect(rot.code, rot.stderr).toBe(0);
    const archive = rot.stdout.match(new RegExp(`^t: ${escapeRe(live)} -> (${escapeRe(live)}\\.\\d{4}-\\d{2}-\\d{2}) \\((\\d+) bytes, collapse\\)$`, "m"));
    expect(archive, rot.stdout).not.toBeNull();
    expect(Number(archive![2])).toBe(readFileSync(archive![1]!).length);
    expect(Buffer.concat([readFileSync(archive![1]!), readFileSync(live)]).equals(before)).toBe(true);
    // Again right away: less than one block is left, so nothing moves, and it says why.
    const again = await world.pmctl(["rotate", "t"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(new RegExp(`^t: ${escapeRe(live)}: not rotated \\(\\d+ bytes, less than one \\d+-byte block: left in the live file\\)$`, "m"));
    // An unknown service is an error naming it.
    const bad = await world.pmctl(["rotate", "nosuch"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/nosuch/);
  }, 60_000);

  test("two services writing the same file is a config error", async () => {
    world = new World();
    world.writeService("a", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 } });
    world.writeService("b", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 }, logs: { stdout: join(world.appDir("a"), "stdout.log") } });
    const check = await world.pmctl(["check"]);
    expect(check.code).toBe(1);
    expect(check.stderr).toMatch(/b\.yaml:\d+: logs\.stdout: .*apps\/a\/stdout\.log is already written by service 'a'/);
    const d = await world.daemon();
    await d.waitForLog(/service file skipped: .*b\.yaml.*is already written by service 'a'/);
    expect((await world.status()).map((s) => s.name)).toEqual(["a"]);
  }, 60_000);

  test("stop_command output goes to logs.stop_command_stdout / stop_command_stderr", async () => {
    world = new World();
    world.writeService("s", {
      process: {
        command: ["sh", "-c", "echo $$ > pid; exec sleep 1000"],
        stop_command: ["sh", "-c", "echo stopping $(cat pid); echo from the stop command >&2; kill $(cat pid)"],
        stop_grace_ms: 5000,
      },
      logs: { stop_command_stdout: "./stop.out", stop_command_stderr: "logs/stop.err" },
    });
    await world.daemon();
    const dir = world.appDir("s");
    const pid = (await world.app("s")).pids[0]!;
    await waitUntil(() => existsSync(join(dir, "pid")), "the pid file");
    const stopped = await world.pmctl(["stop", "s"]);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect((await world.app("s")).last_exit).not.toBe("killed-after-grace");
    expect(readFileSync(join(dir, "stop.out"), "utf8")).toBe(`stopping ${pid}\n`);
    expect(readFileSync(join(dir, "logs", "stop.err"), "utf8")).toBe("from the stop command\n"); // its folder was created
    expect(readFileSync(join(dir, "stdout.log"), "utf8")).toBe("");
    // status lists them with the service's own files.
    const logs = (await world.app("s")).logs;
    expect(logs.map((l) => l.path)).toEqual([join(dir, "stdout.log"), join(dir, "stderr.log"), join(dir, "stop.out"), join(dir, "logs", "stop.err")]);
    expect(logs[2]!.size).toBe(`stopping ${pid}\n`.length);
  }, 60_000);
});
