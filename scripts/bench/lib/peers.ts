/**
 * Installs the peers the benchmark compares against, from the script, never into the repo:
 * - supervisord: the Debian package `supervisor` (apt-get). Its Debian service must not start:
 *   a temporary policy-rc.d forbids it during the install, and a system supervisord that the
 *   install started anyway is stopped right after.
 * - PM2: `npm install pm2` into a cache folder under the system temp dir (not the repo), reused
 *   by later runs so a run does not hit the registry each time. PMBENCH_CACHE moves it;
 *   PMBENCH_PM2_VERSION pins a version (default: whatever npm calls latest at first install).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { log, pidAlive, readText, run } from "./util.ts";

export const CACHE = process.env.PMBENCH_CACHE ?? join(tmpdir(), "processmaster-bench-cache");

export interface Peers {
  supervisord: { bin: string; ctl: string; version: string } | null;
  pm2: { node: string; bin: string; version: string; nodeVersion: string } | null;
  problems: string[];
}

async function which(cmd: string): Promise<string | null> {
  const r = await run(["sh", "-c", `command -v ${cmd}`]);
  return r.code === 0 ? r.stdout.trim() : null;
}

async function installSupervisor(): Promise<void> {
  const policy = "/usr/sbin/policy-rc.d";
  let madePolicy = false;
  if (!existsSync(policy)) {
    writeFileSync(policy, "#!/bin/sh\n# temporary, written by processmaster scripts/bench: do not start services during install\nexit 101\n");
    chmodSync(policy, 0o755);
    madePolicy = true;
  }
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    let r = await run(["apt-get", "install", "-y", "--no-install-recommends", "supervisor"], { env, timeoutMs: 300_000 });
    if (r.code !== 0) {
      log("apt-get install failed; running apt-get update and trying again");
      await run(["apt-get", "update"], { env, timeoutMs: 300_000 });
      r = await run(["apt-get", "install", "-y", "--no-install-recommends", "supervisor"], { env, timeoutMs: 300_000 });
    }
    if (r.code !== 0) throw new Error(`apt-get install supervisor failed: ${r.stderr.trim().slice(-400)}`);
  } finally {
    if (madePolicy) rmSync(policy, { force: true });
  }
  // The package's own service must not stay running system-wide.
  if (existsSync("/run/systemd/system")) await run(["systemctl", "disable", "--now", "supervisor"]);
  for (const f of ["/run/supervisord.pid", "/var/run/supervisord.pid"]) {
    const pid = Number(readText(f)?.trim());
    if (pid > 0 && pidAlive(pid) && (readText(`/proc/${pid}/cmdline`) ?? "").includes("supervisord")) {
      log(`stopping the system supervisord (pid ${pid}) that the package install started`);
      await run(["/etc/init.d/supervisor", "stop"], { timeoutMs: 30_000 });
      if (pidAlive(pid)) process.kill(pid, "SIGTERM");
    }
  }
}

async function installPm2(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const version = process.env.PMBENCH_PM2_VERSION ?? "latest";
  log(`installing pm2@${version} into ${dir} (npm)`);
  const r = await run(["npm", "install", "--prefix", dir, "--no-audit", "--no-fund", "--loglevel=error", `pm2@${version}`], { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`npm install pm2 failed: ${r.stderr.trim().slice(-400)}`);
}

export async function ensurePeers(want: { supervisord: boolean; pm2: boolean }): Promise<Peers> {
  const peers: Peers = { supervisord: null, pm2: null, problems: [] };
  if (want.supervisord) {
    try {
      if (!(await which("supervisord"))) { log("installing supervisor (apt-get)"); await installSupervisor(); }
      const bin = (await which("supervisord"))!;
      const ctl = (await which("supervisorctl"))!;
      const version = (await run([bin, "--version"])).stdout.trim();
      peers.supervisord = { bin, ctl, version };
    } catch (e) { peers.problems.push(`supervisord unavailable: ${(e as Error).message}`); }
  }
  if (want.pm2) {
    try {
      const node = await which("node");
      if (!node) throw new Error("node is not installed (PM2 needs it)");
      const dir = join(CACHE, "pm2");
      const bin = join(dir, "node_modules", "pm2", "bin", "pm2");
      if (!existsSync(bin)) await installPm2(dir);
      const version = JSON.parse(readFileSync(join(dir, "node_modules", "pm2", "package.json"), "utf8")).version as string;
      const nodeVersion = (await run([node, "--version"])).stdout.trim();
      peers.pm2 = { node, bin, version, nodeVersion };
    } catch (e) { peers.problems.push(`pm2 unavailable: ${(e as Error).message}`); }
  }
  for (const p of peers.problems) log(p);
  return peers;
}

/** A supervisord we did not start (e.g. the Debian service) would skew the numbers: say so. */
export function foreignSupervisord(): number[] {
  const r = Bun.spawnSync(["pgrep", "-x", "supervisord"]);
  return r.stdout.toString().split("\n").filter(Boolean).map(Number);
}
