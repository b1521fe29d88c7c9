/**
 * Boot of N services by one daemon, alone (issue 15): the same fleet and service files as the
 * `scale` workload, timed from the daemon's spawn to "serving" (its config parse and every spawn:
 * the boot is one synchronous loop), to every pid file naming a live process, then VmRSS and
 * RssAnon after a settle. Smaller and quicker than `scripts/bench/run scale`, for A/B of changes.
 *
 *   bun scripts/bench/boot-profile.ts [N=5000] [--settle=3000] [--keep] [--usr2] [--bare] [--log=COPY] [--status=K] -- <daemon argv…>
 * `--bare`: the floor loop of `scale` instead of a daemon; `--usr2`: SIGUSR2 to the daemon after the settle (for a debug preload).
 *   (default daemon argv: dist/processmaster daemon; e.g. `-- bun --cpu-prof src/main.ts daemon`)
 * `-c CONFIG` is appended to the daemon argv. Everything it starts is killed by PID and through
 * its own cgroup's cgroup.kill, and the temp dir removed.
 */
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { Fleet } from "./lib/fleet.ts";
import { CLK_TCK, now, pidAlive, sampleProc, sleep } from "./lib/util.ts";
import { findCgroup2Mount } from "../../src/cgroup/mount.ts";
import { writeProcessmasterConfig } from "./lib/drivers.ts";
import { spawnBareFleet } from "./lib/floor.ts";

const dash = process.argv.indexOf("--");
const own = dash < 0 ? process.argv.slice(2) : process.argv.slice(2, dash);
const daemonArgv = dash < 0 ? [join(import.meta.dir, "../../dist/processmaster"), "daemon"] : process.argv.slice(dash + 1);
const n = Number(own.find((a) => /^\d+$/.test(a)) ?? 5000);
const settleMs = Number(own.find((a) => a.startsWith("--settle="))?.slice(9) ?? 3000);
const keep = own.includes("--keep");

const dir = mkdtempSync(join(tmpdir(), "pm-boot-"));
const fleet = new Fleet(join(dir, "fleet"), n, "sleep");
const pmDir = join(dir, "pm");
const cgroupName = `pmboot-${process.pid}`;
const config = writeProcessmasterConfig(pmDir, fleet, cgroupName, true);

if (own.includes("--bare")) { await bare(); process.exit(0); }

/** The floor, as the `scale` workload's: fresh cgroup, both logs opened, one Bun.spawn each, in one loop here. */
async function bare() {
  const cg = join(findCgroup2Mount(), `pmboot-bare-${process.pid}`);
  const procs: ReturnType<typeof Bun.spawn>[] = [];
  try {
    mkdirSync(cg);
    const t0 = now(), cpu0 = process.cpuUsage();
    spawnBareFleet(fleet, cg, procs);
    const servingMs = now() - t0, cpu = process.cpuUsage(cpu0);
    const pending = new Set(fleet.names);
    while (pending.size > 0) {
      for (const name of pending) { const pid = fleet.readPid(name); if (pid && pidAlive(pid)) pending.delete(name); }
      await sleep(50);
    }
    console.log(JSON.stringify({ n, bare: true, servingMs: Math.round(servingMs), upMs: Math.round(now() - t0), cpuMs: Math.round((cpu.user + cpu.system) / 1000) }));
  } finally {
    for (const p of procs) { try { p.kill("SIGKILL"); } catch { /* gone */ } }
    await Promise.all(procs.map((p) => p.exited));
    fleet.killAll();
    try { for (const e of readdirSync(cg)) if (!e.includes(".")) rmdirSync(join(cg, e)); rmdirSync(cg); } catch (e) { console.error(`bare cleanup: ${e}`); }
    rmSync(dir, { recursive: true, force: true });
  }
}

const logPath = join(pmDir, "daemon.log");
const out = openSync(logPath, "a");
const t0 = now();
const proc = Bun.spawn({ cmd: [...daemonArgv, "-c", config], stdin: "ignore", stdout: out, stderr: out, env: { ...process.env } });
closeSync(out);
let masterCgroup: string | null = null;
try {
  let servingMs = NaN;
  const pending = new Set(fleet.names);
  while (pending.size > 0 || Number.isNaN(servingMs)) {
    if (proc.exitCode !== null) throw new Error(`daemon exited ${proc.exitCode}: ${readFileSync(logPath, "utf8").slice(-800)}`);
    if (Number.isNaN(servingMs) && / serving /.test(readFileSync(logPath, "utf8").slice(-4000))) {
      servingMs = now() - t0;
      masterCgroup = /cgroup (\S+) \(root/.exec(readFileSync(logPath, "utf8").slice(-4000))?.[1] ?? null;
    }
    for (const name of pending) { const pid = fleet.readPid(name); if (pid && pidAlive(pid)) pending.delete(name); }
    if (now() - t0 > 300_000) throw new Error(`${pending.size} services not up after 300 s`);
    await sleep(50);
  }
  const upMs = now() - t0;
  await sleep(settleMs);
  const s = sampleProc(proc.pid);
  const statF = readFileSync(`/proc/${proc.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  const userMs = Math.round((Number(statF[11]) * 1000) / CLK_TCK), sysMs = Math.round((Number(statF[12]) * 1000) / CLK_TCK);
  // With a debug preload that answers SIGUSR2 (heap stats, a snapshot): ask, give it time to write.
  if (own.includes("--usr2")) { proc.kill("SIGUSR2"); await sleep(Number(process.env.USR2_WAIT_MS ?? 3000)); }
  const mib = (kb: number) => (kb / 1024).toFixed(1);
  // `--status=K`: K cold `pmctl status` calls (pmctl beside the daemon binary), first and median ms.
  const statusReps = Number(own.find((a) => a.startsWith("--status="))?.slice(9) ?? 0);
  const statusMs: number[] = [];
  for (let i = 0; i < statusReps; i++) {
    const a = now();
    const r = Bun.spawnSync([join(daemonArgv.find((a) => a.endsWith("/processmaster")) ?? daemonArgv[0]!, "..", "pmctl"), "-c", config, "status"], { stdout: "ignore", stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`pmctl status: ${r.stderr.toString()}`);
    statusMs.push(now() - a);
  }
  if (process.env.SHOW_STATUS) console.log(statusMs.map((x) => Math.round(x)).join(" "));
  const status = statusMs.length ? { statusFirstMs: Math.round(statusMs[0]!), statusMedianMs: Math.round([...statusMs].sort((x, y) => x - y)[statusMs.length >> 1]!) } : {};
  console.log(JSON.stringify({ n, servingMs: Math.round(servingMs), upMs: Math.round(upMs), rssMiB: mib(s!.rssKb), anonMiB: mib(s!.rssAnonKb), fileMiB: mib(s!.rssFileKb), cpuMs: s!.cpuMs, userMs, sysMs, ...status }));
  if (keep) { console.log(`kept: daemon pid ${proc.pid}, dir ${dir}; press enter to clean up`); for await (const _ of console) break; }
} finally {
  // SIGTERM first: the daemon exits and leaves its services, so `--cpu-prof` writes its profile.
  proc.kill("SIGTERM");
  await Promise.race([proc.exited, sleep(15_000)]);
  proc.kill("SIGKILL");
  await proc.exited;
  masterCgroup ??= join(findCgroup2Mount(), cgroupName); // the daemon's default root here (the log names it once serving)
  if (existsSync(masterCgroup)) {
    try { writeFileSync(join(masterCgroup, "cgroup.kill"), "1"); } catch { /* empty */ }
    for (let i = 0; i < 200 && /populated 1/.test(readFileSync(join(masterCgroup, "cgroup.events"), "utf8")); i++) await sleep(20);
    const rm = (p: string) => { for (const e of readdirSync(p, { withFileTypes: true })) if (e.isDirectory()) rm(join(p, e.name)); rmdirSync(p); };
    try { rm(masterCgroup); } catch (e) { console.error(`cgroup ${masterCgroup}: ${(e as Error).message}`); }
  }
  fleet.killAll();
  const keepLog = own.find((a) => a.startsWith("--log="))?.slice(6);
  if (keepLog) writeFileSync(keepLog, readFileSync(logPath));
  rmSync(dir, { recursive: true, force: true });
}
