/**
 * Log benchmark (issue 3): `bun scripts/bench/logs.ts [--quick]`
 *
 * 1. Lines per second a service writes through processmaster's redirection (its stdout is an
 *    O_APPEND fd the daemon opened; the daemon is not in the data path) against the same
 *    writer with its stdout on a file opened by this script. Two writers: one write(2) per
 *    line, and 64 KiB buffered writes. Each writer times itself (first to last write), so
 *    start-up is not counted. The daemon's CPU time (utime+stime from /proc/PID/stat) is read
 *    from just before the start request until the writer's result file appears.
 * 2. The cost of one rotation of a 1 GiB log file in collapse mode (the script's temp folder
 *    must be on ext4/XFS; /tmp is ext4 here): rotateLogFile called directly, with the in-kernel
 *    copy (copy_file_range) and with read/write, and through the daemon (`rotate` request),
 *    with a ping sent while it runs: the ping's latency is how long the daemon's event loop
 *    was blocked by the rotation; and a process appending to the file meanwhile reports its
 *    longest write(2) (the kernel holds the file's lock during each collapse).
 *
 * Everything lives in its own temp folder and cgroup (`pmbench-logs-PID`), removed at the end
 * (also after Ctrl-C or a failure).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, rmdirSync, statSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { findCgroup2Mount } from "../../src/cgroup/mount.ts";
import { callDaemon } from "../../src/control/client.ts";
import { probeRotationMode, rotateLogFile, useKernelCopy } from "../../src/logs/rotate.ts";

const REPO = join(import.meta.dir, "..", "..");
const MAIN = join(REPO, "src", "main.ts");
const quick = process.argv.includes("--quick");
const REPS = quick ? 1 : 3;
const LINE_WRITES = quick ? 500_000 : 2_000_000;
const BUFFERED_LINES = quick ? 5_000_000 : 20_000_000;
const GIB = 1024 ** 3;
const CLK_TCK = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;

const dir = mkdtempSync(join(tmpdir(), "pmbench-logs-"));
const cgroupName = `pmbench-logs-${process.pid}`;
const masterCgroup = join(findCgroup2Mount(), cgroupName);
const sock = join(dir, "pm.sock");
let daemon: Subprocess | null = null;

const log = (s: string) => process.stderr.write(`${s}\n`);
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

async function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs = 60_000, everyMs = 5): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(everyMs);
  }
}

function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK; // fields 14 and 15: utime, stime
}

// ---- the writer -------------------------------------------------------------------------------

/** argv: mode (line|buffered), lines, result file. Writes `{ lines, ms }` to the result file. */
const WRITER = `
import fs from "node:fs";
const [mode, n, result] = [process.argv[2], Number(process.argv[3]), process.argv[4]];
const t0 = performance.now();
if (mode === "line") {
  for (let i = 1; i <= n; i++) fs.writeSync(1, i + "\\n");
} else {
  let buf = "";
  for (let i = 1; i <= n; i++) {
    buf += i + "\\n";
    if (buf.length >= 65536) { fs.writeSync(1, buf); buf = ""; }
  }
  if (buf) fs.writeSync(1, buf);
}
const ms = performance.now() - t0;
fs.writeFileSync(result + ".tmp", JSON.stringify({ lines: n, ms }));
fs.renameSync(result + ".tmp", result);
`;
const writerPath = join(dir, "writer.ts");

type Mode = "line" | "buffered";
const linesFor = (mode: Mode) => (mode === "line" ? LINE_WRITES : BUFFERED_LINES);

async function readResult(file: string): Promise<{ lines: number; ms: number }> {
  await waitFor(() => existsSync(file), `writer result ${file}`, 300_000);
  return JSON.parse(readFileSync(file, "utf8"));
}

/** The writer with stdout on a file this script opened (O_APPEND, like the daemon's). */
async function direct(mode: Mode, rep: number): Promise<number> {
  const out = join(dir, `direct-${mode}-${rep}.log`);
  const result = join(dir, `direct-${mode}-${rep}.json`);
  const fd = openSync(out, "a", 0o644);
  const proc = Bun.spawn({ cmd: [process.execPath, writerPath, mode, String(linesFor(mode)), result], stdin: "ignore", stdout: fd, stderr: "inherit" });
  closeSync(fd);
  await proc.exited;
  const r = await readResult(result);
  rmSync(out);
  return (r.lines / r.ms) * 1000;
}

/** The writer as a processmaster service; returns lines/s and the daemon's CPU ms meanwhile. */
async function throughProcessmaster(mode: Mode, rep: number, daemonPid: number): Promise<{ rate: number; daemonCpuMs: number; writerMs: number }> {
  const name = `writer-${mode}`;
  const result = join(dir, "apps", name, "result.json");
  rmSync(result, { force: true });
  const cpu0 = cpuMs(daemonPid);
  await callDaemon(sock, "start", [name]);
  const r = await readResult(result);
  const cpu1 = cpuMs(daemonPid);
  // Only now ask the daemon (asking earlier would cost it CPU during the measurement).
  await waitFor(async () => {
    const st = (await callDaemon(sock, "status", [name])) as { apps: { state: string }[] };
    return st.apps[0]!.state === "exited";
  }, `${name} to exit`, 60_000, 20);
  const log = join(dir, "apps", name, "stdout.log");
  const size = statSync(log).size;
  rmSync(log);
  if (size === 0) throw new Error(`${name} wrote nothing through processmaster`);
  void rep;
  return { rate: (r.lines / r.ms) * 1000, daemonCpuMs: cpu1 - cpu0, writerMs: r.ms };
}

// ---- the daemon ---------------------------------------------------------------------------------

function writeConfig() {
  mkdirSync(join(dir, "config.d"));
  writeFileSync(join(dir, "config.yaml"), JSON.stringify({ config_directory: "./config.d", sock_path: sock, state_file: "./state.json", cgroup_name: cgroupName }));
  for (const mode of ["line", "buffered"] as Mode[]) {
    const name = `writer-${mode}`;
    mkdirSync(join(dir, "apps", name), { recursive: true });
    writeFileSync(join(dir, "config.d", `${name}.yaml`), JSON.stringify({
      enabled: false,
      process: { command: [process.execPath, writerPath, mode, String(linesFor(mode)), "result.json"], working_directory: join(dir, "apps", name), stop_grace_ms: 2000 },
    }));
  }
  mkdirSync(join(dir, "apps", "big"), { recursive: true });
  writeFileSync(join(dir, "config.d", "big.yaml"), JSON.stringify({
    process: { command: ["sleep", "100000"], working_directory: join(dir, "apps", "big"), stop_grace_ms: 2000 },
    logs: { rotation_frequency: "none" }, // only the explicit rotate request rotates it
  }));
}

async function startDaemon(): Promise<number> {
  const errFd = openSync(join(dir, "daemon.log"), "a");
  daemon = Bun.spawn({ cmd: [process.execPath, MAIN, "daemon", "-c", join(dir, "config.yaml")], stdin: "ignore", stdout: errFd, stderr: errFd });
  closeSync(errFd);
  await waitFor(() => readFileSync(join(dir, "daemon.log"), "utf8").includes("serving ") || daemon!.exitCode !== null, "the daemon to serve", 30_000, 20);
  if (daemon.exitCode !== null) throw new Error(`the daemon exited: ${readFileSync(join(dir, "daemon.log"), "utf8")}`);
  return daemon.pid;
}

// ---- 1 GiB rotation -----------------------------------------------------------------------------

/** Appends 1 GiB of 100-byte lines to `file` and fsyncs it (so the rotation's fsync is only the archive's). */
function fillGiB(file: string) {
  const line = Buffer.from("x".repeat(99) + "\n");
  const chunk = Buffer.concat(Array.from({ length: 10_486 }, () => line)); // ~1 MiB of whole lines
  const fd = openSync(file, "a");
  let written = 0;
  while (written < GIB) written += writeSync(fd, chunk);
  fsyncSync(fd);
  closeSync(fd);
}

function rotateDirect(kernel: boolean, rep: number): number {
  const file = join(dir, `big-${rep}.log`);
  fillGiB(file);
  if (probeRotationMode(file) !== "collapse") throw new Error(`${dir} does not support FALLOC_FL_COLLAPSE_RANGE; run on ext4 or XFS`);
  useKernelCopy(kernel);
  const t0 = performance.now();
  const r = rotateLogFile(file, `${file}.1`);
  const ms = performance.now() - t0;
  useKernelCopy(true);
  if (r.mode !== "collapse" || statSync(`${file}.1`).size !== r.bytesMoved || r.bytesMoved < GIB - 4096) throw new Error(`unexpected rotation: ${JSON.stringify(r)}`);
  rmSync(file);
  rmSync(`${file}.1`);
  return ms;
}

/** Appends a line every ~1 ms to argv[2] until argv[3] exists; prints the longest write(2) in ms. */
const STALL_WRITER = `
import fs from "node:fs";
const fd = fs.openSync(process.argv[2], "a");
let max = 0, i = 0;
while (!fs.existsSync(process.argv[3])) {
  const t = performance.now();
  fs.writeSync(fd, "stall probe " + i++ + "\\n");
  max = Math.max(max, performance.now() - t);
  Bun.sleepSync(1);
}
console.log(JSON.stringify({ maxMs: max, writes: i }));
`;

async function rotateThroughDaemon(): Promise<{ rotateMs: number; pingMs: number; bytes: number; writerMaxStallMs: number }> {
  const live = join(dir, "apps", "big", "stdout.log");
  fillGiB(live);
  // A writer appending to the live file meanwhile (as the service would): how long does one write wait?
  writeFileSync(join(dir, "stall-writer.ts"), STALL_WRITER);
  const stop = join(dir, "stall-stop");
  const writer = Bun.spawn({ cmd: [process.execPath, join(dir, "stall-writer.ts"), live, stop], stdin: "ignore", stdout: "pipe", stderr: "inherit" });
  await waitFor(() => statSync(live).size > GIB, "the stall writer to start", 30_000, 10);
  const t0 = performance.now();
  const rotation = callDaemon(sock, "rotate", ["big"]) as Promise<{ rotated: { bytesMoved: number; mode: string }[]; errors: unknown[] }>;
  await Bun.sleep(20); // the request is in; the daemon is copying
  const p0 = performance.now();
  await callDaemon(sock, "ping");
  const pingMs = performance.now() - p0;
  const report = await rotation;
  const rotateMs = performance.now() - t0;
  writeFileSync(stop, "");
  const stall = JSON.parse(await new Response(writer.stdout).text()) as { maxMs: number };
  await writer.exited;
  const r = report.rotated[0];
  if (!r || r.mode !== "collapse" || report.errors.length) throw new Error(`unexpected rotation report: ${JSON.stringify(report)}`);
  for (const n of readdirSync(join(dir, "apps", "big"))) if (n.startsWith("stdout.log")) rmSync(join(dir, "apps", "big", n));
  return { rotateMs, pingMs, bytes: r.bytesMoved, writerMaxStallMs: stall.maxMs };
}

// ---- cleanup --------------------------------------------------------------------------------------

let cleaned = false;
async function cleanup() {
  if (cleaned) return;
  cleaned = true;
  if (daemon && daemon.exitCode === null) {
    try { await Promise.race([callDaemon(sock, "stop", ["all"]), Bun.sleep(10_000)]); } catch { /* the cgroup kill below */ }
    daemon.kill("SIGTERM");
    await daemon.exited;
  }
  if (existsSync(masterCgroup)) {
    try { writeFileSync(join(masterCgroup, "cgroup.kill"), "1"); } catch { /* empty */ }
    try { await waitFor(() => !/populated 1/.test(readFileSync(join(masterCgroup, "cgroup.events"), "utf8")), "the cgroup to empty", 10_000); } catch (e) { log(String(e)); }
    const rmTree = (p: string) => { for (const e of readdirSync(p, { withFileTypes: true })) if (e.isDirectory()) rmTree(join(p, e.name)); rmdirSync(p); };
    try { rmTree(masterCgroup); } catch (e) { log(`could not remove ${masterCgroup}: ${e}`); }
  }
  rmSync(dir, { recursive: true, force: true });
}
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => { void cleanup().finally(() => process.exit(130)); });

// ---- main -----------------------------------------------------------------------------------------

async function main() {
  writeFileSync(writerPath, WRITER);
  writeConfig();
  const daemonPid = await startDaemon();
  log(`temp ${dir}, cgroup ${cgroupName}, daemon pid ${daemonPid}, ${REPS} rep(s)${quick ? " (quick)" : ""}`);

  const results: Record<string, unknown> = {};
  console.log("## Write throughput: through processmaster vs straight to a file\n");
  console.log("| writer | lines | straight to a file (lines/s) | through processmaster (lines/s) | ratio | daemon CPU during the run |");
  console.log("|---|---|---|---|---|---|");
  for (const mode of ["line", "buffered"] as Mode[]) {
    const directRates: number[] = [];
    const pmRates: number[] = [];
    const daemonCpu: number[] = [];
    const writerMs: number[] = [];
    for (let rep = 0; rep < REPS; rep++) { // alternate, so drift in machine load hits both alike
      directRates.push(await direct(mode, rep));
      const pm = await throughProcessmaster(mode, rep, daemonPid);
      pmRates.push(pm.rate);
      daemonCpu.push(pm.daemonCpuMs);
      writerMs.push(pm.writerMs);
    }
    const d = median(directRates);
    const p = median(pmRates);
    results[mode] = { directRates, pmRates, daemonCpuMs: daemonCpu, writerMs };
    const what = mode === "line" ? "one write(2) per line" : "64 KiB writes";
    console.log(`| ${what} | ${fmt(linesFor(mode))} | ${fmt(d)} | ${fmt(p)} | ${(p / d).toFixed(2)} | ${median(daemonCpu).toFixed(0)} ms in ${median(writerMs).toFixed(0)} ms of writing (CLK_TCK ${CLK_TCK}) |`);
  }

  console.log("\n## One rotation of a 1 GiB log file (collapse mode)\n");
  const kernel: number[] = [];
  const readWrite: number[] = [];
  for (let rep = 0; rep < REPS; rep++) { // alternate which goes first (the first 1 GiB of a run tends to be slower)
    for (const k of rep % 2 ? [false, true] : [true, false]) (k ? kernel : readWrite).push(rotateDirect(k, rep));
  }
  const viaDaemon = await rotateThroughDaemon();
  results.rotation = { kernel, readWrite, viaDaemon };
  console.log("| how | time (median) | all runs |");
  console.log("|---|---|---|");
  console.log(`| rotateLogFile, copy_file_range + fsync + collapse | ${median(kernel).toFixed(0)} ms | ${kernel.map((x) => x.toFixed(0)).join(", ")} |`);
  console.log(`| rotateLogFile, read/write 1 MiB + fsync + collapse | ${median(readWrite).toFixed(0)} ms | ${readWrite.map((x) => x.toFixed(0)).join(", ")} |`);
  console.log(`| \`rotate\` request to the daemon (round trip) | ${viaDaemon.rotateMs.toFixed(0)} ms | ${fmt(viaDaemon.bytes)} bytes moved |`);
  console.log(`| a ping sent 20 ms into that rotation (the daemon's event loop is blocked meanwhile) | ${viaDaemon.pingMs.toFixed(0)} ms | |`);
  console.log(`| the longest write(2) of a process appending to the file meanwhile (collapse in 32 MiB pieces) | ${viaDaemon.writerMaxStallMs.toFixed(0)} ms | |`);
  console.log(`\nmachine: ${navigator.hardwareConcurrency} CPUs, load ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}; temp folder ${dir}`);
  if (process.argv.includes("--json")) console.log(JSON.stringify(results));
}

try {
  await main();
} catch (e) {
  log(`benchmark failed: ${e instanceof Error ? e.stack : e}`);
  if (existsSync(join(dir, "daemon.log"))) log(`daemon log:\n${readFileSync(join(dir, "daemon.log"), "utf8").slice(-4000)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
