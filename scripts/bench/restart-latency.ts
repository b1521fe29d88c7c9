/**
 * Restart latency: a daemon supervises one `policy: always` service with `restart_backoff_ms: 0`;
 * 50 times we SIGKILL the service's PID and measure, from outside the daemon, the time until a
 * new PID is in the service's cgroup.
 *
 *   bun scripts/bench/restart-latency.ts [--kills N] [--daemon path/to/processmaster] [--spin]
 *
 * What is measured, per kill:
 * - t0: just before kill(pid, SIGKILL) in this process.
 * - "in cgroup": a loop re-reads the service's cgroup.procs until it lists a PID other than
 *   the killed one. CLONE_INTO_CGROUP puts the child there at clone time, so this is the moment
 *   the new process exists in its cgroup (the daemon removes and re-creates the empty cgroup
 *   before each start, so the file is briefly absent; the loop keeps reading).
 * - "exec'd": the loop then reads /proc/PID/comm until it is the service's program (`sleep`):
 *   the new process is running the service's code.
 * The loop reads, then blocks 50 µs (Atomics.wait; with the kernel's timer slack one round takes
 * about 0.12 ms): that is the resolution, and it uses under a tenth of a core. A tight loop
 * (`--spin`) has microsecond resolution but takes a whole core of this 2-core machine away from
 * the daemon and the new child, which makes the restart itself slower (p95 roughly doubles).
 *
 * For comparison, the same clock around a bare fork+exec from this process: Bun.spawn of
 * /bin/true (spawn call → returned, and → exited), and Bun.spawn of `sleep` into a fresh
 * cgroup until its PID is listed in cgroup.procs and then until /proc/PID/comm says `sleep`.
 *
 * Everything runs in a temp dir and its own cgroup, removed at the end (set BENCH_DAEMON_LOG to
 * keep the daemon's log somewhere else).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findCgroup2Mount } from "../../src/cgroup/mount.ts";
import { callDaemon } from "../../src/control/client.ts";

const args = process.argv.slice(2);
const opt = (name: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const KILLS = Number(opt("--kills") ?? 50);
const DAEMON = opt("--daemon");
const SPIN = args.includes("--spin");
const pause = new Int32Array(new SharedArrayBuffer(4));
const REPO = join(import.meta.dir, "..", "..");

const dir = mkdtempSync(join(tmpdir(), "pmbench-restart-"));
const cgroupName = `pmbench-restart-${process.pid}`;
const masterCgroup = join(findCgroup2Mount(), cgroupName);
const serviceCgroup = join(masterCgroup, "svc");
const sock = join(dir, "pm.sock");

mkdirSync(join(dir, "config.d"));
writeFileSync(join(dir, "config.yaml"), JSON.stringify({ config_directory: "./config.d", sock_path: sock, state_file: "./state.json", cgroup_name: cgroupName }));
writeFileSync(join(dir, "config.d", "svc.yaml"), JSON.stringify({
  process: { command: ["sleep", "100000"], working_directory: dir, stop_grace_ms: 1000 },
  // A high tolerance so 50 kills inside a minute are all restarted.
  restart_policy: { policy: "always", restart_backoff_ms: 0, tolerance: { max_restarts: 100000, duration: "1m" } },
}));

function readPids(cgroup: string): number[] {
  try { return readFileSync(join(cgroup, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number); } catch { return []; }
}
function comm(pid: number): string | null {
  try { return readFileSync(`/proc/${pid}/comm`, "utf8").trim(); } catch { return null; }
}
/** Re-checks every ~0.12 ms (or in a tight loop with --spin) until `check` returns a value. */
function spin<T>(check: () => T | null | undefined, limitMs: number, what: string): T {
  const deadline = performance.now() + limitMs;
  for (;;) {
    const v = check();
    if (v !== null && v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`gave up after ${limitMs}ms waiting for ${what}`);
    if (!SPIN) Atomics.wait(pause, 0, 0, 0.05);
  }
}
async function waitFor<T>(check: () => Promise<T | null | undefined> | T | null | undefined, limitMs: number, what: string): Promise<T> {
  const deadline = performance.now() + limitMs;
  for (;;) {
    try { const v = await check(); if (v !== null && v !== undefined) return v; } catch { /* not yet */ }
    if (performance.now() > deadline) throw new Error(`gave up after ${limitMs}ms waiting for ${what}`);
    await Bun.sleep(5);
  }
}

function summary(label: string, xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
  return `${label.padEnd(44)} median ${at(0.5).toFixed(2).padStart(7)} ms   p95 ${at(0.95).toFixed(2).padStart(7)} ms   min ${s[0]!.toFixed(2)}  max ${s[s.length - 1]!.toFixed(2)}  (n=${s.length})`;
}

type AppStatus = { state: string; main_pid: number | null; pids: number[]; restarts: number };
async function app(): Promise<AppStatus> {
  return ((await callDaemon(sock, "status", ["svc"])) as { apps: AppStatus[] }).apps[0]!;
}

const daemonCmd = DAEMON ? [DAEMON, "daemon", "-c", join(dir, "config.yaml")] : ["bun", join(REPO, "src", "main.ts"), "daemon", "-c", join(dir, "config.yaml")];
const daemonLog = process.env.BENCH_DAEMON_LOG ?? join(dir, "daemon.log");
const daemon = Bun.spawn({ cmd: daemonCmd, stdin: "ignore", stdout: Bun.file(daemonLog), stderr: Bun.file(daemonLog) });

async function cleanup() {
  try { process.kill(daemon.pid, "SIGKILL"); } catch { /* gone */ }
  await daemon.exited;
  if (existsSync(masterCgroup)) {
    try { writeFileSync(join(masterCgroup, "cgroup.kill"), "1"); } catch { /* empty */ }
    await waitFor(() => (/populated 0/.test(readFileSync(join(masterCgroup, "cgroup.events"), "utf8")) ? true : null), 5000, "the bench cgroup to empty");
    const removeTree = (p: string) => { for (const e of readdirSync(p, { withFileTypes: true })) if (e.isDirectory()) removeTree(join(p, e.name)); rmdirSync(p); };
    removeTree(masterCgroup);
  }
  rmSync(dir, { recursive: true, force: true });
}

try {
  await waitFor(async () => { const a = await app(); return a.state === "running" && a.main_pid ? a : null; }, 15_000, "the daemon to serve and start the service");

  // ---- restart latency through the daemon ----------------------------------------------
  const inCgroup: number[] = [];
  const execd: number[] = [];
  for (let i = 0; i < KILLS; i++) {
    // Settle: the daemon reports the current run as running (its restart work is finished).
    const cur = await waitFor(async () => { const a = await app(); return a.state === "running" && a.main_pid && a.pids.length === 1 ? a : null; }, 5000, "a running service");
    const old = cur.main_pid!;
    await Bun.sleep(20); // let the daemon's state-file write after the last start finish
    const t0 = performance.now();
    process.kill(old, "SIGKILL");
    const pid = spin(() => readPids(serviceCgroup).find((p) => p !== old), 5000, "a new pid in the cgroup");
    const t1 = performance.now();
    spin(() => (comm(pid) === "sleep" ? true : null), 5000, "the new pid to exec sleep");
    const t2 = performance.now();
    inCgroup.push(t1 - t0);
    execd.push(t2 - t0);
  }
  const final = await app();

  // ---- bare fork+exec from this process, for comparison -----------------------------------
  const spawnReturn: number[] = [];
  const spawnExit: number[] = [];
  for (let i = 0; i < KILLS; i++) {
    const t0 = performance.now();
    const p = Bun.spawn({ cmd: ["/bin/true"], stdin: "ignore", stdout: "ignore", stderr: "ignore" });
    spawnReturn.push(performance.now() - t0);
    await p.exited;
    spawnExit.push(performance.now() - t0);
  }
  const bareCgroup = join(masterCgroup, "bare");
  const bareInCgroup: number[] = [];
  const bareExecd: number[] = [];
  for (let i = 0; i < KILLS; i++) {
    mkdirSync(bareCgroup);
    const t0 = performance.now();
    const p = Bun.spawn({ cmd: ["sleep", "100000"], cgroup: bareCgroup, detached: true, stdin: "ignore", stdout: "ignore", stderr: "ignore" });
    spin(() => (readPids(bareCgroup).includes(p.pid) ? true : null), 5000, "the bare child in its cgroup");
    const t1 = performance.now();
    spin(() => (comm(p.pid) === "sleep" ? true : null), 5000, "the bare child to exec sleep");
    bareInCgroup.push(t1 - t0);
    bareExecd.push(performance.now() - t0);
    p.kill("SIGKILL");
    await p.exited;
    await waitFor(() => (/populated 0/.test(readFileSync(join(bareCgroup, "cgroup.events"), "utf8")) ? true : null), 5000, "bare cgroup to empty");
    rmdirSync(bareCgroup);
  }

  console.log(`restart latency, ${KILLS} kills, restart_backoff_ms 0, daemon: ${DAEMON ?? "bun src/main.ts (from source)"}, detection: ${SPIN ? "tight loop" : "poll every ~0.12 ms"}`);
  console.log(summary("kill -9 → new PID in the service cgroup", inCgroup));
  console.log(summary("kill -9 → new PID has exec'd sleep", execd));
  console.log(summary("bare Bun.spawn(/bin/true): call returned", spawnReturn));
  console.log(summary("bare Bun.spawn(/bin/true): exited", spawnExit));
  console.log(summary("bare Bun.spawn(sleep, cgroup) → in cgroup.procs", bareInCgroup));
  console.log(summary("bare Bun.spawn(sleep, cgroup) → exec'd sleep", bareExecd));
  console.log(`service restarts counted by the daemon: ${final.restarts}; state ${final.state}`);
  const median = [...inCgroup].sort((a, b) => a - b)[Math.ceil(inCgroup.length / 2) - 1]!;
  console.log(median < 5 ? `target met: median ${median.toFixed(2)} ms < 5 ms` : `TARGET MISSED: median ${median.toFixed(2)} ms >= 5 ms`);
} catch (e) {
  console.error(`bench failed: ${e instanceof Error ? e.message : String(e)}`);
  try { console.error(readFileSync(daemonLog, "utf8").split("\n").slice(-30).join("\n")); } catch { /* no log */ }
  process.exitCode = 1;
} finally {
  await cleanup();
}
