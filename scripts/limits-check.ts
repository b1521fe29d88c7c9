#!/usr/bin/env bun
/**
 * Enforcement of cgroup limits on a real host with a full cgroup v2 tree (cpu, memory and pids
 * controllers in the cgroup2 root's cgroup.controllers). Run as root from the repository:
 *
 *   bun scripts/limits-check.ts [--binary dist/processmaster]
 *
 * It starts a daemon (from source, or the compiled binary given with --binary, started from `/`)
 * in a temp folder with its own master cgroup and checks:
 *  - master limits (cgroup_cpu_max, cgroup_memory_max, cgroup_memory_swap_max) are in the
 *    master cgroup's files;
 *  - `memory_max: 64M` (no swap) with a process that allocates 200 MB: OOM-killed, reported
 *    as `oom-kill`;
 *  - `pids_max: 32` with a bounded fork bomb whose processes ignore SIGTERM: forks fail,
 *    at most 32 tasks, and `pmctl stop` still empties the cgroup (cgroup.kill);
 *  - `cpu_max: 20%` with a busy loop: about 20 % of one CPU over 3 s (15 % to 25 % passes).
 * One PASS/FAIL line per check. Exit 0 when all pass, 1 when any fails, 77 (SKIP) when this host
 * cannot run the checks (not root, or a controller is missing, e.g. a hybrid v1/v2 host);
 * `--force` goes on anyway, to see the script itself work on such a host.
 * It removes everything it made, also after a failure.
 */
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { defaultCgroupRoot } from "../src/cgroup/mount.ts";
import { DAEMON_LEAF } from "../src/cgroup/names.ts";

const MAIN = join(import.meta.dir, "..", "src", "main.ts");
const binaryAt = process.argv.indexOf("--binary");
const binary = binaryAt > 0 && process.argv[binaryAt + 1] ? resolve(process.argv[binaryAt + 1]!) : undefined;
/** argv for processmaster: the compiled binary when given, else the source through this bun. */
const processmaster = (args: string[]) => (binary ? [binary, ...args] : [process.execPath, MAIN, ...args]);
const pmCwd = binary ? "/" : process.cwd();
const NEEDED = ["cpu", "memory", "pids"];
const MiB = 1 << 20;

// --force runs the checks even where the preflight says they cannot pass (to see the plumbing work).
const force = process.argv.includes("--force");
function skip(why: string): never {
  if (force) { console.log(`(--force: going on although ${why})`); return undefined as never; }
  console.log(`SKIP: ${why}`);
  process.exit(77);
}

if (process.getuid?.() !== 0) skip("run as root: the daemon creates cgroups and enables controllers");
let cgroupRoot: string;
const cgroupName = `pm-limits-check-${process.pid}`;
try { cgroupRoot = defaultCgroupRoot(cgroupName, DAEMON_LEAF).path; } catch (e) { console.log(`SKIP: ${(e as Error).message}`); process.exit(77); }
const inTree = readFileSync(join(cgroupRoot, "cgroup.controllers"), "utf8").split(/\s+/).filter(Boolean);
const missing = NEEDED.filter((c) => !inTree.includes(c));
if (missing.length > 0) {
  skip(`the cgroup2 tree at ${cgroupRoot} lacks the ${missing.join(", ")} controller(s) (its cgroup.controllers: ${inTree.join(" ") || "none"}); ` +
    "run this on a host with a full cgroup v2 tree (e.g. systemd with systemd.unified_cgroup_hierarchy=1)");
}

// ---- the world -------------------------------------------------------------------------
const dir = mkdtempSync(join(tmpdir(), "pm-limits-check-"));
const master = join(cgroupRoot, cgroupName);
const configPath = join(dir, "config.yaml");
const sockPath = join(dir, "pm.sock");
mkdirSync(join(dir, "config.d"));
const yaml = (v: unknown) => JSON.stringify(v, null, 2) + "\n"; // JSON is YAML
writeFileSync(configPath, yaml({
  config_directory: "./config.d", sock_path: sockPath, state_file: "./state.json", cgroup_name: cgroupName,
  cgroup_cpu_max: "150%", cgroup_memory_max: "1G", cgroup_memory_swap_max: "512M",
}));
function service(name: string, spec: Record<string, unknown>) {
  const wd = join(dir, "apps", name);
  mkdirSync(wd, { recursive: true });
  const proc = spec.process as Record<string, unknown>;
  writeFileSync(join(dir, "config.d", `${name}.yaml`), yaml({ ...spec, process: { working_directory: wd, ...proc }, restart_policy: { policy: "never" } }));
}
// Allocates and touches 200 MB in 1 MB steps, then would sleep: only the OOM killer ends it early.
// process.execPath is the bun running this script; it may live in a user's home, which the daemon's
// writable-command check (not what this script tests) would refuse, hence allow_writable_command.
service("oom", {
  process: { command: [process.execPath, "-e", "const keep = []; for (let i = 0; i < 200; i++) keep.push(Buffer.alloc(1 << 20, 7)); console.log('allocated', keep.length, 'MB'); await Bun.sleep(60000);"], allow_writable_command: true },
  resources: { memory_max: "64M", memory_swap_max: 0 },
});
// At most 200 sleepers, each ignoring SIGTERM (inherited), so stop has to escalate to cgroup.kill.
service("forkbomb", {
  // exit_type cgroup: the shell exits when a fork fails, and the sleepers that got in are what is checked.
  process: { command: ["sh", "-c", "trap '' TERM; i=0; while [ $i -lt 200 ]; do sleep 300 & i=$((i+1)); done; wait"], stop_grace_ms: 1000, exit_type: "cgroup" },
  resources: { pids_max: 32 },
});
service("busy", { process: { command: ["sh", "-c", "while :; do :; done"], stop_grace_ms: 1000 }, resources: { cpu_max: "20%" } });

// ---- helpers ---------------------------------------------------------------------------
let failures = 0;
function check(ok: boolean, what: string, detail: string) {
  if (!ok) failures++;
  console.log(`${ok ? "PASS" : "FAIL"} ${what}: ${detail}`);
}

async function pmctl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = Bun.spawn({ cmd: processmaster(["ctl", "-c", configPath, ...args]), cwd: pmCwd, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

interface App { name: string; state: string; pids: number[]; last_exit: string | null; exit_signal: string | null; cpu_usage_usec: number | null; memory_peak: number | null; limits_not_in_force: { file: string; reason: string }[] }
interface Status { apps: App[]; master?: { limits_not_in_force: { file: string; reason: string }[] } }

async function status(): Promise<Status> {
  const r = await pmctl("status", "--json");
  // 4: answered, and some service has failed (the OOM-killed one, by design of this check).
  if (r.code !== 0 && r.code !== 4) throw new Error(`pmctl status failed (${r.code}): ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as Status;
}
const app = async (name: string) => (await status()).apps.find((a) => a.name === name)!;

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | null | undefined | false>): Promise<T | null> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try { const v = await probe(); if (v) return v; } catch { /* not yet */ }
    if (performance.now() > deadline) { console.log(`  (gave up waiting for ${what} after ${timeoutMs} ms)`); return null; }
    await Bun.sleep(100);
  }
}

const readCg = (path: string, file: string) => { try { return readFileSync(join(path, file), "utf8").trim(); } catch { return null; } };
const keyed = (text: string | null, key: string) => Number(new RegExp(`^${key} (\\d+)$`, "m").exec(text ?? "")?.[1] ?? NaN);

function removeTree(path: string) {
  if (!existsSync(path)) return;
  for (const e of readdirSync(path, { withFileTypes: true })) if (e.isDirectory()) removeTree(join(path, e.name));
  rmdirSync(path);
}

// ---- the run ---------------------------------------------------------------------------
const daemonLog = join(dir, "daemon.log");
const daemonLogFd = openSync(daemonLog, "a");
const daemon = Bun.spawn({
  cmd: processmaster(["daemon", "-c", configPath]), cwd: pmCwd, stdin: "ignore",
  stdout: daemonLogFd, stderr: daemonLogFd, env: { ...process.env, PM_LOG_LEVEL: "info" },
});
closeSync(daemonLogFd);
try {
  const up = await waitFor("the daemon to serve", 20_000, async () => daemon.exitCode !== null || (await status()).apps.length === 3);
  if (!up || daemon.exitCode !== null) throw new Error(daemon.exitCode !== null ? `the daemon exited with ${daemon.exitCode}` : "the daemon did not come up");

  // Master limits: in the master cgroup's files, none reported as not in force.
  const s0 = await status();
  check(readCg(master, "cpu.max") === "150000 100000", "master cpu.max", `${readCg(master, "cpu.max")} (want 150000 100000 from cgroup_cpu_max: 150%)`);
  check(readCg(master, "memory.max") === String(1024 * MiB), "master memory.max", `${readCg(master, "memory.max")} (want ${1024 * MiB} from cgroup_memory_max: 1G)`);
  // Kernels without swap accounting have no memory.swap.max: nothing to check, nothing to swap to.
  const swapAccounting = existsSync(join(master, "memory.swap.max")) || !existsSync(join(master, "memory.max"));
  if (swapAccounting) check(readCg(master, "memory.swap.max") === String(512 * MiB), "master memory.swap.max", `${readCg(master, "memory.swap.max")} (want ${512 * MiB})`);
  else console.log("SKIP master memory.swap.max: this kernel has no swap accounting (no memory.swap.max)");
  const notInForce = [...(s0.master?.limits_not_in_force ?? []), ...s0.apps.flatMap((a) => a.limits_not_in_force)]
    .filter((l) => swapAccounting || l.file !== "memory.swap.max");
  check(notInForce.length === 0, "every limit in force", notInForce.length ? notInForce.map((l) => `${l.file}: ${l.reason}`).join("; ") : "status --json lists none as not in force");

  // memory_max 64M vs 200 MB.
  const oom = await waitFor("oom to end", 30_000, async () => { const a = await app("oom"); return a.state !== "running" && a.state !== "starting" && a.last_exit !== null && a; });
  const oomEvents = keyed(readCg(join(master, "oom"), "memory.events"), "oom_kill");
  check(oom?.last_exit === "oom-kill", "memory_max 64M: 200 MB allocation is OOM-killed",
    oom ? `last_exit ${oom.last_exit} (signal ${oom.exit_signal}), memory.events oom_kill ${oomEvents}, memory_peak ${oom.memory_peak}` : "still running after 30 s: the limit is not enforced");

  // pids_max 32 vs 200 sleepers.
  const fb = join(master, "forkbomb");
  const capped = await waitFor("the fork bomb to hit pids.max", 15_000, async () => keyed(readCg(fb, "pids.events"), "max") > 0);
  const tasks = readCg(fb, "pids.current");
  check(capped !== null && tasks !== null && Number(tasks) <= 32, "pids_max 32: the fork bomb's forks fail",
    `pids.events max ${keyed(readCg(fb, "pids.events"), "max")}, pids.current ${tasks}, ${(await app("forkbomb")).pids.length} pids listed`);
  const t0 = performance.now();
  const stop = await pmctl("stop", "forkbomb");
  const after = await app("forkbomb");
  check(stop.code === 0 && after.pids.length === 0 && readCg(fb, "cgroup.procs") === "", "pids_max 32: stop cleans up",
    `pmctl stop exit ${stop.code} in ${Math.round(performance.now() - t0)} ms, last_exit ${after.last_exit}, ${after.pids.length} pids left`);

  // cpu_max 20% vs a busy loop, over 3 s after 1 s of warm-up.
  await Bun.sleep(1000);
  const u0 = (await app("busy")).cpu_usage_usec ?? NaN;
  const w0 = performance.now();
  await Bun.sleep(3000);
  const u1 = (await app("busy")).cpu_usage_usec ?? NaN;
  const share = (u1 - u0) / ((performance.now() - w0) * 1000);
  check(share >= 0.15 && share <= 0.25, "cpu_max 20%: a busy loop stays near 20 % of one CPU",
    `${(share * 100).toFixed(1)} % (usage_usec ${u0} -> ${u1}; cpu.max ${readCg(join(master, "busy"), "cpu.max")})`);

  await pmctl("stop", "all");
} catch (e) {
  check(false, "run", String((e as Error).message));
} finally {
  daemon.kill("SIGTERM");
  await daemon.exited;
  if (existsSync(master)) {
    try { writeFileSync(join(master, "cgroup.kill"), "1"); } catch { /* empty already */ }
    await waitFor("the master cgroup to empty", 10_000, async () => /populated 0/.test(readCg(master, "cgroup.events") ?? "populated 0"));
    try { removeTree(master); } catch (e) { console.log(`  (could not remove ${master}: ${(e as Error).message})`); }
  }
  if (failures > 0) console.log(`daemon log:\n${readFileSync(daemonLog, "utf8")}`);
  rmSync(dir, { recursive: true, force: true });
}
console.log(failures === 0 ? "all limit checks passed" : `${failures} check(s) failed`);
process.exit(failures === 0 ? 0 : 1);
