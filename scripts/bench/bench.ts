/**
 * processmaster vs supervisord vs PM2, same workloads, same run. Entry point: scripts/bench/run.
 *
 *   scripts/bench/run [--quick] [--drivers processmaster,supervisord,pm2] [--build] [workload…]
 *
 * Workloads: cli-latency restart-latency start-stop idle memory log-throughput (default: all).
 * Results: scripts/bench/results.json (merged: a workload run alone replaces only its own part)
 * and BENCHMARKS.md, regenerated from it. See scripts/bench/NOTES.md for what each one measures.
 */
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, watch, writeFileSync, writeSync } from "node:fs";
import { cpus, hostname, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { findCgroup2Mount } from "../../src/cgroup/mount.ts";
import { BareRespawner, DRIVER_IDS, makeDriver, ProcessmasterDriver, type Driver, type DriverId } from "./lib/drivers.ts";
import { buildFloorClient, spawnBareFleet } from "./lib/floor.ts";
import { TABLE_VIEW } from "../../src/cli/status.ts";
import { encodeLine } from "../../src/control/protocol.ts";
import { Fleet, logBytes, readMark } from "./lib/fleet.ts";
import { ensurePeers, foreignSupervisord, type Peers } from "./lib/peers.ts";
import { renderMarkdown, renderTerminal, type Results } from "./lib/report.ts";
import { loadavg, log, now, pidAlive, procDelta, readText, run, sampleProc, sleep, summary, waitUntil, wallMs } from "./lib/util.ts";

const REPO = join(import.meta.dir, "..", "..");
const RESULTS = join(import.meta.dir, "results.json");
const MARKDOWN = join(REPO, "BENCHMARKS.md");

export const WORKLOADS = ["cli-latency", "restart-latency", "start-stop", "idle", "memory", "log-throughput", "scale"] as const;
export type WorkloadId = (typeof WORKLOADS)[number];

// ---- arguments --------------------------------------------------------------------------------

const argv = process.argv.slice(2);
if (argv.includes("-h") || argv.includes("--help")) {
  console.log(`usage: scripts/bench/run [--quick] [--drivers a,b] [--build] [--no-write] [workload…]
workloads: ${WORKLOADS.join(" ")} (default: all)
drivers:   ${DRIVER_IDS.join(",")} (default: all)
--quick    fewer repetitions, 15 s idle window (a smoke run; numbers are rougher)
--build    rebuild dist/processmaster first (otherwise built only when missing or older than src/)
--no-write print only; leave results.json and BENCHMARKS.md alone
--report   run nothing: rewrite BENCHMARKS.md from results.json and NOTES.md`);
  process.exit(0);
}
if (argv.includes("--report")) {
  const merged = JSON.parse(readFileSync(RESULTS, "utf8")) as Results;
  writeFileSync(MARKDOWN, renderMarkdown(merged, readText(join(import.meta.dir, "NOTES.md")) ?? ""));
  writeSync(1, renderTerminal(merged));
  process.exit(0);
}
const quick = argv.includes("--quick");
const forceBuild = argv.includes("--build");
const noWrite = argv.includes("--no-write");
const driversArg = (() => { const i = argv.indexOf("--drivers"); return i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith("--drivers="))?.slice(10); })();
const positional = argv.filter((a, i) => !a.startsWith("-") && argv[i - 1] !== "--drivers");
for (const w of positional) if (!(WORKLOADS as readonly string[]).includes(w)) { console.error(`unknown workload '${w}'; known: ${WORKLOADS.join(" ")}`); process.exit(2); }
const selected = new Set<WorkloadId>(positional.length ? (positional as WorkloadId[]) : WORKLOADS);
const driverIds = (driversArg ? driversArg.split(",") : DRIVER_IDS) as DriverId[];
for (const d of driverIds) if (!DRIVER_IDS.includes(d)) { console.error(`unknown driver '${d}'; known: ${DRIVER_IDS.join(",")}`); process.exit(2); }

const P = quick
  ? { cliReps: 10, cliBudgetMs: 15_000, restartReps: 15, startStopRounds: 2, idleSec: 15, idleSettleMs: 20_000, logReps: 1, logLines: 1_000_000, settleMs: 1000 }
  : { cliReps: 30, cliBudgetMs: 60_000, restartReps: 50, startStopRounds: 5, idleSec: 60, idleSettleMs: 60_000, logReps: 3, logLines: 1_000_000, settleMs: 2000 };

// ---- cleanup on every path --------------------------------------------------------------------

const cleanups = new Set<() => Promise<void>>();
let interrupted = false;
async function emergency(why: string, code: number) {
  if (interrupted) return;
  interrupted = true;
  log(`${why}: cleaning up`);
  for (const c of [...cleanups].reverse()) await c().catch((e) => log(`cleanup: ${e}`));
  process.exit(code);
}
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => void emergency(sig, 130));
process.on("SIGPIPE", () => {});
process.on("uncaughtException", (e) => void emergency(`uncaught ${e?.stack ?? e}`, 1));
process.on("unhandledRejection", (e) => void emergency(`unhandled rejection ${(e as Error)?.stack ?? e}`, 1));

// ---- setup --------------------------------------------------------------------------------------

async function ensureBuilt(): Promise<string> {
  // PMBENCH_BIN: benchmark another build (an A/B of a change), used as is; pmctl must sit beside it.
  if (process.env.PMBENCH_BIN) return process.env.PMBENCH_BIN;
  const bin = join(REPO, "dist", "processmaster");
  const newestSrc = (dir: string): number => {
    let t = 0;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      t = Math.max(t, e.isDirectory() ? newestSrc(p) : statSync(p).mtimeMs);
    }
    return t;
  };
  const stale = !existsSync(bin) || !existsSync(join(REPO, "dist", "pmctl")) || statSync(bin).mtimeMs < newestSrc(join(REPO, "src"));
  if (forceBuild || stale) {
    log(`building dist/processmaster (${forceBuild ? "--build" : existsSync(bin) ? "src/ is newer" : "missing"})`);
    const r = await run(["bun", "run", "build"], { cwd: REPO, timeoutMs: 300_000 });
    if (r.code !== 0) {
      if (!existsSync(bin)) throw new Error(`bun run build failed:\n${r.stderr || r.stdout}`);
      log(`bun run build failed; benchmarking the existing dist/processmaster:\n${(r.stderr || r.stdout).trim().slice(-600)}`);
    }
  }
  return bin;
}

function machine() {
  const cpu = cpus();
  return {
    host: hostname(), cpu: cpu[0]?.model ?? "?", cores: cpu.length, memGiB: Number((totalmem() / 2 ** 30).toFixed(1)),
    kernel: readText("/proc/sys/kernel/osrelease")?.trim() ?? "?",
    os: /^PRETTY_NAME="?([^"\n]*)/m.exec(readText("/etc/os-release") ?? "")?.[1] ?? "?",
  };
}

// ---- the workloads -------------------------------------------------------------------------------

type Row = Record<string, unknown>;
/** The compiled floor client for cli-latency (built into the run's temp dir). */
let floorClient: string | null = null;
const results: Record<string, Record<string, Record<string, Row>>> = {};
const put = (w: WorkloadId, key: string, who: string, data: Row) => {
  const byWho = ((results[w] ??= {})[key] ??= {});
  byWho[who] = { ...(byWho[who] ?? {}), ...data };
};

/**
 * Cold CLI round trips. For processmaster the floor client (lib/floor-client.ts: a compiled Bun
 * binary that sends the same request and prints the answer's line) runs alternately with pmctl,
 * so both see the same load on this shared machine; it is the `bare` row.
 */
async function cliLatency(d: Driver, size: number) {
  const args = d.statusArgs();
  const samples: number[] = [], floor: number[] = [];
  // The request line pmctl sends for the table (src/cli/status.ts), byte for byte.
  const floorArgv = d instanceof ProcessmasterDriver && floorClient ? [floorClient, d.sockPath(), encodeLine({ cmd: "status", names: [], options: TABLE_VIEW }).trimEnd()] : null;
  const start = now();
  let failures = 0, floorFailures = 0;
  for (let i = 0; i < P.cliReps; i++) {
    if (floorArgv) {
      const f = await run(floorArgv, { timeoutMs: 60_000 });
      if (f.code === 0 && f.stdout.startsWith('{"type":"result"')) floor.push(f.ms);
      else if (floorFailures++ === 0) log(`  floor client failed (${f.code}): ${(f.stderr || f.stdout).slice(0, 300)}`);
    }
    const r = await d.cli(args, 60_000);
    // supervisorctl exits 3 when some program is not RUNNING; we only time the round trip.
    if (r.code !== 0 && !(d.id === "supervisord" && r.code === 3)) failures++;
    else samples.push(r.ms);
    if (now() - start > P.cliBudgetMs && samples.length >= 5) break;
  }
  const s = summary(samples);
  put("cli-latency", String(size), d.id, { ...s, command: d.cliArgv(args).slice(0, 1).concat(args).join(" ").replace(/^.*\//, ""), failures, cut: samples.length < P.cliReps });
  log(`  cli ${d.id} ${size}: median ${s.median} ms (n=${s.n})`);
  if (floorArgv) {
    const f = summary(floor);
    put("cli-latency", String(size), "bare", { ...f, command: "floor-client status", failures: floorFailures, cut: false });
    log(`  cli floor ${size}: median ${f.median} ms (n=${f.n})`);
  }
}

/** Resolves with the time the pid file names a PID other than `oldPid`. */
function watchNewPid(fleet: Fleet, name: string, oldPid: number, timeoutMs = 15_000): Promise<number> {
  return new Promise((resolve, reject) => {
    let done = false;
    const check = () => {
      if (done) return;
      const pid = fleet.readPid(name);
      if (pid && pid !== oldPid) { const t = now(); finish(); resolve(t); }
    };
    // inotify wakes us at once; Bun may fold the truncate and the write of the pid file into one
    // event seen before the write, so a 1 ms poll (one small read) backs it up.
    const w = watch(fleet.pidDir, (_ev, file) => { if (file === name) check(); });
    const poll = setInterval(check, 1);
    const timer = setTimeout(() => { finish(); reject(new Error(`no new pid for ${name} within ${timeoutMs} ms`)); }, timeoutMs);
    const finish = () => { done = true; w.close(); clearInterval(poll); clearTimeout(timer); };
  });
}

/** One kill -9 of the fleet's first service: ms until its pid file names a new PID. */
async function killOnce(fleet: Fleet): Promise<number> {
  const name = fleet.names[0]!;
  const pid = await waitUntil(() => { const p = fleet.readPid(name); return p && pidAlive(p) ? p : null; }, `${name} running`, 15_000, 10);
  await sleep(150 + Math.random() * 50); // let the supervisor settle (PM2 min_uptime etc.)
  const next = watchNewPid(fleet, name, pid);
  const t0 = now();
  process.kill(pid, "SIGKILL");
  return (await next) - t0;
}

/**
 * `floor`: the bare respawn loop's fleet, killed in turn with the supervisor's (processmaster's:
 * its goal is a ratio to the floor, and this shared machine's load changes within seconds), so
 * both are measured under the same load; its samples are the `bare` row.
 */
async function restartLatency(who: string, fleet: Fleet, floor?: Fleet) {
  const samples: number[] = [], floorSamples: number[] = [];
  for (let i = 0; i < P.restartReps; i++) {
    try {
      samples.push(await killOnce(fleet));
      if (floor) floorSamples.push(await killOnce(floor));
    } catch (e) { log(`  restart ${who}: ${(e as Error).message}`); break; }
  }
  for (const [id, xs] of floor ? [[who, samples], ["bare", floorSamples]] as const : [[who, samples]] as const) {
    const s = summary([...xs], 3);
    put("restart-latency", "kill-9", id, s);
    log(`  restart ${id}: median ${s.median} ms p95 ${s.p95} ms (n=${s.n})`);
  }
}

/** The bare respawn loop on a fleet of one; `measure` runs while it is up. */
async function withBareRespawner(dir: string, measure: (fleet: Fleet) => Promise<void>) {
  const fleet = new Fleet(join(dir, "bare-restart"), 1, "sleep");
  const r = new BareRespawner(fleet.argv(fleet.names[0]!), fleet.dir);
  const cleanup = async () => { await r.stop(); fleet.killAll(); fleet.remove(); };
  cleanups.add(cleanup);
  try {
    r.start();
    await measure(fleet);
  } finally {
    await cleanup();
    cleanups.delete(cleanup);
  }
}

async function startStop(d: Driver, fleet: Fleet) {
  const start: number[] = [], stop: number[] = [], startCli: number[] = [], stopCli: number[] = [];
  for (let round = 0; round < P.startStopRounds; round++) {
    const pids = fleet.livePids();
    let t0 = now();
    const rs = await d.stopAll();
    stopCli.push(rs.ms);
    if (rs.code !== 0) log(`  ${d.id} stop all exited ${rs.code}: ${(rs.stderr || rs.stdout).trim().slice(-300)}`);
    await waitUntil(() => pids.every((p) => !pidAlive(p)), `${d.id}: 100 services to stop`, 60_000, 2);
    stop.push(now() - t0);
    fleet.clearPidFiles();
    await sleep(300);
    t0 = now();
    const rr = await d.startAll();
    startCli.push(rr.ms);
    if (rr.code !== 0) log(`  ${d.id} start all exited ${rr.code}: ${(rr.stderr || rr.stdout).trim().slice(-300)}`);
    await waitUntil(() => fleet.runningCount() === fleet.n, `${d.id}: 100 services to start`, 60_000, 2);
    start.push(now() - t0);
    await sleep(500);
  }
  put("start-stop", "start", d.id, { ...summary(start), cliMedian: summary(startCli).median });
  put("start-stop", "stop", d.id, { ...summary(stop), cliMedian: summary(stopCli).median });
  log(`  start/stop ${d.id}: start ${summary(start).median} ms, stop ${summary(stop).median} ms`);
}

/**
 * Idle cost, all supervisors side by side: each brings up its fleet, then after a settle (boot
 * work such as JIT, the GC of the config parse or PM2's first metrics is not idleness) one
 * window measures every daemon at once. Concurrent daemons barely disturb each other's
 * wake-up counts, and this saves two idle windows of the run's time budget.
 */
async function idleSideBySide(drivers: Driver[], size: number, dir: string, todo: WorkloadId[]) {
  const up: { d: Driver; fleet: Fleet; cleanup: () => Promise<void> }[] = [];
  try {
    for (const d of drivers) {
      const fleet = new Fleet(join(dir, `${d.id}-idle-${size}`), size, "sleep");
      const cleanup = async () => { await d.down(); fleet.remove(); };
      cleanups.add(cleanup);
      up.push({ d, fleet, cleanup });
      try {
        const t0 = now();
        await d.up(fleet, { autostart: true });
        await waitUntil(() => fleet.runningCount() === fleet.n, `${d.id}: ${size} services running`, 60_000 + size * 200, 50);
        log(`${d.id}: ${size} services up in ${Math.round(now() - t0)} ms`);
      } catch (e) {
        log(`${d.id} size ${size}: ${(e as Error).message}`);
        for (const w of todo) put(w, "errors", d.id, { error: (e as Error).message.slice(0, 300), size });
        await cleanup().catch(() => {});
        cleanups.delete(cleanup);
        up.pop();
      }
    }
    log(`idle: settling ${P.idleSettleMs / 1000} s, then a ${P.idleSec} s window for ${up.map((u) => u.d.id).join(", ")}`);
    await sleep(P.idleSettleMs);
    if (todo.includes("memory")) for (const { d } of up) memory(d, size);
    if (!todo.includes("idle")) return;
    const before = up.map(({ d }) => sampleProc(d.daemonPid()));
    await sleep(P.idleSec * 1000);
    up.forEach(({ d }, i) => {
      const a = before[i], b = sampleProc(d.daemonPid());
      if (!a || !b) { put("idle", "errors", d.id, { error: "daemon vanished during the idle window", size }); return; }
      const delta = procDelta(a, b);
      put("idle", String(size), d.id, { ...delta, threads: Object.keys(b.threads).length, window: P.idleSec, settle: P.idleSettleMs / 1000 });
      log(`  idle ${d.id}: ${delta.wakeupsPerSec} wake-ups/s, ${delta.cpuMs} ms CPU in ${delta.seconds} s (${delta.busyThreads.map((t) => `${t.name} ${t.switches}`).join(", ") || "no thread woke"})`);
    });
  } finally {
    for (const { d, cleanup } of up) {
      await cleanup().catch((e) => log(`cleanup of ${d.id}: ${e}`));
      cleanups.delete(cleanup);
    }
  }
}

function memory(d: Driver, size: number) {
  const s = sampleProc(d.daemonPid());
  if (!s) throw new Error(`${d.id} daemon is gone`);
  const mib = (kb: number) => Number((kb / 1024).toFixed(1));
  put("memory", String(size), d.id, { rssMiB: mib(s.rssKb), anonMiB: mib(s.rssAnonKb), fileMiB: mib(s.rssFileKb), threads: Object.keys(s.threads).length });
  log(`  memory ${d.id} ${size}: ${mib(s.rssKb)} MiB (anon ${mib(s.rssAnonKb)}, file ${mib(s.rssFileKb)})`);
}

/** One run of the log writer; `begin` starts it, the service stays up afterwards. */
async function oneLogRun(who: string, fleet: Fleet, daemonPid: number | null, begin: () => Promise<unknown>) {
  const name = fleet.names[0]!;
  rmSync(fleet.startMark(name), { force: true });
  rmSync(fleet.endMark(name), { force: true });
  const size0 = fleet.logSize(name);
  const want = size0 + logBytes(fleet.logLines);
  await begin();
  const tStart = await waitUntil(() => readMark(fleet.startMark(name)), `${who}: log writer to start`, 30_000, 2);
  const a = daemonPid ? sampleProc(daemonPid) : null;
  await waitUntil(() => fleet.logSize(name) >= want, `${who}: ${fleet.logLines} lines in the log file`, 300_000, 5);
  const tDone = wallMs();
  const b = daemonPid ? sampleProc(daemonPid) : null;
  const tEnd = await waitUntil(() => readMark(fleet.endMark(name)), `${who}: log writer to finish`, 30_000, 5);
  return {
    seconds: (tDone - tStart) / 1000,
    writerSeconds: (tEnd - tStart) / 1000,
    daemonCpuMs: a && b ? b.cpuMs - a.cpuMs : null,
    daemonSwitches: a && b ? b.voluntary + b.nonvoluntary - a.voluntary - a.nonvoluntary : null,
  };
}

function logSummary(who: string, lines: number, runs: Awaited<ReturnType<typeof oneLogRun>>[]) {
  const rate = runs.map((r) => lines / r.seconds);
  const cpu = runs.map((r) => r.daemonCpuMs).filter((x): x is number => x !== null);
  const data = {
    linesPerSec: summary(rate, 0).median, seconds: summary(runs.map((r) => r.seconds), 3).median,
    writerSeconds: summary(runs.map((r) => r.writerSeconds), 3).median,
    daemonCpuMs: cpu.length ? summary(cpu, 1).median : null,
    daemonSwitches: cpu.length ? summary(runs.map((r) => r.daemonSwitches ?? 0), 0).median : null,
    n: runs.length, lines, bytes: logBytes(lines),
  };
  put("log-throughput", `${lines}`, who, data);
  log(`  logs ${who}: ${data.linesPerSec} lines/s, daemon CPU ${data.daemonCpuMs} ms`);
}

async function logThroughput(d: Driver, fleet: Fleet) {
  const name = fleet.names[0]!;
  const runs = [];
  for (let i = 0; i < P.logReps; i++) {
    runs.push(await oneLogRun(d.id, fleet, d.daemonPid(), () => d.startOne(name)));
    const pid = fleet.readPid(name);
    const r = await d.stopOne(name);
    if (r.code !== 0) log(`  ${d.id} stop ${name} exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(-300)}`);
    if (pid) await waitUntil(() => !pidAlive(pid), `${d.id}: log writer to stop`, 30_000, 10);
  }
  logSummary(d.id, fleet.logLines, runs);
}

async function bareLogs(dir: string) {
  const fleet = new Fleet(join(dir, "bare-logs"), 1, "log", P.logLines);
  const name = fleet.names[0]!;
  cleanups.add(async () => { fleet.killAll(); });
  const runs = [];
  try {
    for (let i = 0; i < P.logReps; i++) {
      let proc: ReturnType<typeof Bun.spawn> | null = null;
      runs.push(await oneLogRun("bare", fleet, null, async () => {
        const fd = openSync(fleet.stdoutLog(name), "a");
        proc = Bun.spawn({ cmd: fleet.argv(name), cwd: fleet.dir, stdin: "ignore", stdout: fd, stderr: "ignore" });
        closeSync(fd);
      }));
      const p = proc as ReturnType<typeof Bun.spawn> | null;
      if (p) { p.kill("SIGKILL"); await p.exited; }
    }
    logSummary("bare", fleet.logLines, runs);
  } finally {
    fleet.killAll();
    fleet.remove();
  }
}

// ---- sessions: one daemon per driver and fleet size, several workloads on it ----------------------

interface Session { size: number; kind: "sleep" | "log"; workloads: WorkloadId[]; sideBySide?: boolean; only?: DriverId }
const SESSIONS: Session[] = [
  { size: 20, kind: "sleep", workloads: ["memory", "cli-latency", "restart-latency"] },
  { size: 100, kind: "sleep", workloads: ["start-stop"] },
  { size: 200, kind: "sleep", workloads: ["memory", "idle"], sideBySide: true },
  { size: 1000, kind: "sleep", workloads: ["memory", "cli-latency"] },
  { size: 1, kind: "log", workloads: ["log-throughput"] },
  // processmaster alone: its peers take minutes per `status` at this size (supervisord: 2 s at 1000).
  { size: 5000, kind: "sleep", workloads: ["scale"], only: "processmaster" },
];

/**
 * 5000 services (issue 15): the daemon's boot until every service runs (its own start-up
 * included), `status` against the floor client, and RSS. Pid files are checked incrementally
 * (a service seen running is not read again) so the harness's polling stays small beside the
 * daemon's work.
 */
async function scale(d: Driver, fleet: Fleet, dir: string) {
  const t0 = now();
  await d.up(fleet, { autostart: true });
  const servingMs = now() - t0;
  const pending = new Set(fleet.names);
  await waitUntil(() => {
    for (const name of pending) { const pid = fleet.readPid(name); if (pid && pidAlive(pid)) pending.delete(name); }
    return pending.size === 0;
  }, `${d.id}: ${fleet.n} services running (${fleet.n - pending.size} so far)`, 120_000, 100);
  const bootMs = now() - t0;
  log(`${d.id}: ${fleet.n} services up in ${Math.round(bootMs)} ms (serving after ${Math.round(servingMs)} ms)`);
  await sleep(P.settleMs);
  const mem = sampleProc(d.daemonPid());
  const mib = (kb: number) => Number((kb / 1024).toFixed(1));
  await cliLatency(d, fleet.n);
  const cli = results["cli-latency"]?.[String(fleet.n)];
  put("scale", String(fleet.n), d.id, {
    bootMs: Math.round(bootMs), servingMs: Math.round(servingMs), statusMedian: cli?.[d.id]?.median ?? null,
    rssMiB: mem ? mib(mem.rssKb) : null, anonMiB: mem ? mib(mem.rssAnonKb) : null,
  });
  put("scale", String(fleet.n), "bare", { statusMedian: cli?.bare?.median ?? null });
  void dir;
}

/** The floor of booting a fleet (lib/floor.ts spawnBareFleet), then the same wait for every pid file as for the daemon. */
async function bareBoot(dir: string, n: number) {
  const fleet = new Fleet(join(dir, `bare-boot-${n}`), n, "sleep");
  const cg = join(findCgroup2Mount(), `pmbench-bare-${process.pid}`);
  const procs: ReturnType<typeof Bun.spawn>[] = [];
  const cleanup = async () => {
    for (const p of procs) { try { p.kill("SIGKILL"); } catch { /* gone */ } }
    await Promise.all(procs.map((p) => p.exited));
    fleet.killAll();
    try { for (const e of readdirSync(cg)) if (!e.includes(".")) rmdirSync(join(cg, e)); rmdirSync(cg); } catch (e) { log(`bare boot cleanup: ${e}`); }
    fleet.remove();
  };
  cleanups.add(cleanup);
  try {
    mkdirSync(cg);
    const t0 = now();
    spawnBareFleet(fleet, cg, procs);
    const spawnedMs = now() - t0;
    const pending = new Set(fleet.names);
    await waitUntil(() => {
      for (const name of pending) { const pid = fleet.readPid(name); if (pid && pidAlive(pid)) pending.delete(name); }
      return pending.size === 0;
    }, `bare: ${n} services running`, 120_000, 100);
    const bootMs = now() - t0;
    log(`bare: ${n} services up in ${Math.round(bootMs)} ms (spawned in ${Math.round(spawnedMs)} ms)`);
    put("scale", String(n), "bare", { bootMs: Math.round(bootMs), servingMs: Math.round(spawnedMs) });
  } finally {
    await cleanup();
    cleanups.delete(cleanup);
  }
}

async function runSession(d: Driver, s: Session, dir: string, todo: WorkloadId[]) {
  const fleet = new Fleet(join(dir, `${d.id}-${s.kind}-${s.size}`), s.size, s.kind, P.logLines);
  const cleanup = async () => { await d.down(); fleet.remove(); };
  cleanups.add(cleanup);
  try {
    if (todo.includes("scale")) { await bareBoot(dir, s.size); await scale(d, fleet, dir); return; }
    const t0 = now();
    await d.up(fleet, { autostart: s.kind === "sleep" });
    if (s.kind === "sleep") {
      await waitUntil(() => fleet.runningCount() === fleet.n, `${d.id}: ${s.size} services running (${fleet.runningCount()} so far)`, 60_000 + s.size * 200, 50);
      log(`${d.id}: ${s.size} services up in ${Math.round(now() - t0)} ms`);
      await sleep(P.settleMs);
    }
    for (const w of todo) {
      switch (w) {
        case "memory": memory(d, s.size); break;
        case "cli-latency": await cliLatency(d, s.size); break;
        case "restart-latency":
          if (d.id === "processmaster") await withBareRespawner(dir, (floor) => restartLatency(d.id, fleet, floor));
          else await restartLatency(d.id, fleet);
          break;
        case "start-stop": await startStop(d, fleet); break;
        case "log-throughput": await logThroughput(d, fleet); break;
      }
    }
  } catch (e) {
    log(`${d.id} size ${s.size}: ${(e as Error).message}`);
    for (const w of todo) put(w, "errors", d.id, { error: (e as Error).message.slice(0, 300), size: s.size });
  } finally {
    await cleanup().catch((e) => log(`cleanup of ${d.id}: ${e}`));
    cleanups.delete(cleanup);
  }
}

async function main() {
  const started = new Date();
  const t0 = now();
  const load0 = loadavg();
  const pmBin = await ensureBuilt();
  const pmVersion = (await run([pmBin, "--version"])).stdout.trim().replace(/^processmaster\s+/, "");
  const peers: Peers = await ensurePeers({ supervisord: driverIds.includes("supervisord"), pm2: driverIds.includes("pm2") });
  const foreign = foreignSupervisord();
  if (foreign.length) log(`note: supervisord already running on this host (pids ${foreign.join(" ")}), not ours`);
  const cgroupRoot = findCgroup2Mount();
  const drivers = driverIds.map((id) => makeDriver(id, peers, { bin: pmBin, version: pmVersion, cgroupRoot })).filter((d): d is Driver => d !== null);
  const dir = mkdtempSync(join(tmpdir(), "pmbench-"));
  cleanups.add(async () => rmSync(dir, { recursive: true, force: true }));
  if ((selected.has("cli-latency") || selected.has("scale")) && driverIds.includes("processmaster")) floorClient = await buildFloorClient(dir);
  log(`temp dir ${dir}; workloads: ${[...selected].join(" ")}; drivers: ${drivers.map((d) => d.id).join(" ")}${quick ? " (quick)" : ""}`);

  try {
    // With processmaster the floor's kills alternate with its own (restartLatency).
    if (selected.has("restart-latency") && !driverIds.includes("processmaster")) { log("restart latency: bare respawn loop"); await withBareRespawner(dir, (f) => restartLatency("bare", f)); }
    if (selected.has("log-throughput")) { log("log throughput: bare file write"); await bareLogs(dir); }
    for (const s of SESSIONS) {
      const todo = s.workloads.filter((w) => selected.has(w));
      if (todo.length === 0) continue;
      if (s.sideBySide) {
        log(`${s.size} services, all supervisors side by side: ${todo.join(", ")}`);
        await idleSideBySide(drivers, s.size, dir, todo);
        continue;
      }
      for (const d of drivers) {
        if (interrupted) return;
        if (s.only && d.id !== s.only) continue;
        log(`${d.id}: ${s.size} ${s.kind === "log" ? "log writer" : "services"}: ${todo.join(", ")}`);
        await runSession(d, s, dir, todo);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const meta = {
    date: started.toISOString(), durationSec: Math.round((now() - t0) / 1000), mode: quick ? "quick" : "full",
    machine: machine(), loadavgStart: load0, loadavgEnd: loadavg(),
    versions: {
      processmaster: pmVersion, bun: Bun.version, supervisord: peers.supervisord?.version ?? null,
      python: (await run(["python3", "--version"])).stdout.trim() || null,
      pm2: peers.pm2?.version ?? null, node: peers.pm2?.nodeVersion ?? null,
    },
    problems: peers.problems,
    params: P,
  };
  const merged: Results = existsSync(RESULTS) && !noWrite ? JSON.parse(readFileSync(RESULTS, "utf8")) : { workloads: {} };
  merged.workloads ??= {};
  for (const w of selected) {
    if (!results[w]) continue;
    // A partial run (fewer drivers) keeps the other drivers' earlier numbers for this workload.
    const prev = merged.workloads[w];
    const keep = prev && driverIds.length < DRIVER_IDS.length ? prev.data : {};
    for (const [k, byWho] of Object.entries(results[w])) keep[k] = { ...(keep[k] ?? {}), ...byWho };
    merged.workloads[w] = { meta, data: keep };
  }
  merged.last = meta;
  try { writeSync(1, renderTerminal(merged)); } catch { /* stdout closed */ }
  if (!noWrite) {
    writeFileSync(RESULTS, JSON.stringify(merged, null, 2) + "\n");
    const notes = readText(join(import.meta.dir, "NOTES.md")) ?? "";
    writeFileSync(MARKDOWN, renderMarkdown(merged, notes));
    log(`wrote ${RESULTS} and ${MARKDOWN} (${meta.durationSec} s)`);
  }
}

main().then(() => process.exit(0), async (e) => {
  log(`failed: ${(e as Error).stack ?? e}`);
  for (const c of [...cleanups].reverse()) await c().catch(() => {});
  process.exit(1);
});
