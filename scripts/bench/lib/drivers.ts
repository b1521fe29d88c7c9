/**
 * One driver per supervisor: write its config for a fleet, start its daemon, run its CLI, and
 * tear everything down (daemon, services, cgroups, files) whatever state it is in.
 *
 * Every supervisor is set up the same way: services restart on any exit with no delay, no
 * restart limit that a benchmark could hit, stdout/stderr to one file each, no log rotation
 * during a run, TERM to stop.
 */
import { existsSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import type { Fleet } from "./fleet.ts";
import type { Peers } from "./peers.ts";
import { appendedMatcher, log, must, now, pidAlive, readText, run, sleep, waitUntil, type RunResult } from "./util.ts";

export type DriverId = "processmaster" | "supervisord" | "pm2";
export const DRIVER_IDS: DriverId[] = ["processmaster", "supervisord", "pm2"];

export interface Driver {
  readonly id: DriverId;
  readonly version: string;
  /** Writes the config and starts the daemon; services start too when `autostart`. */
  up(fleet: Fleet, opts: { autostart: boolean }): Promise<void>;
  daemonPid(): number;
  /** argv of a cold CLI call, e.g. ["status"] → pmctl -c … status. */
  cliArgv(args: string[]): string[];
  cliEnv(): Record<string, string | undefined>;
  /** `status` for the CLI latency workload. */
  statusArgs(): string[];
  cli(args: string[], timeoutMs?: number): Promise<RunResult>;
  startOne(name: string): Promise<RunResult>;
  stopOne(name: string): Promise<RunResult>;
  startAll(): Promise<RunResult>;
  stopAll(): Promise<RunResult>;
  /** Everything gone: daemon, services, cgroups, temp files of the driver. */
  down(): Promise<void>;
}

function daemonOutput(path: string) {
  return openSync(path, "a");
}

async function killDaemon(proc: Subprocess | null, pid: number | null) {
  if (proc) {
    try { proc.kill("SIGKILL"); } catch { /* gone */ }
    await Promise.race([proc.exited, sleep(5000)]);
  } else if (pid && pidAlive(pid)) {
    try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
    await waitUntil(() => !pidAlive(pid), `pid ${pid} to die`, 5000, 10).catch(() => {});
  }
}

/** Kills what is left of a fleet (after its daemon is gone) and waits until it is dead. */
async function killFleet(fleet: Fleet) {
  await sleep(30); // a service forked just before the daemon died has written its pid file by now
  fleet.killAll();
  await waitUntil(() => fleet.livePids().length === 0, "fleet processes to die", 10_000, 20).catch((e) => log(String(e)));
}

/**
 * What every supervisor's command-line client does alike: `<client> start|stop <name|all>`.
 * Each driver says how its client is invoked (`cliArgv`) and overrides what differs.
 */
abstract class CliDriver {
  abstract cliArgv(args: string[]): string[];
  cliEnv(): Record<string, string | undefined> { return { ...process.env }; }
  statusArgs() { return ["status"]; }
  cli(args: string[], timeoutMs = 120_000) { return run(this.cliArgv(args), { env: this.cliEnv(), timeoutMs }); }
  startOne(name: string) { return this.cli(["start", name]); }
  stopOne(name: string) { return this.cli(["stop", name]); }
  startAll() { return this.cli(["start", "all"]); }
  stopAll() { return this.cli(["stop", "all"]); }
}

// ---- processmaster ----------------------------------------------------------------------------

/** The master file and one service file per fleet member under `dir` (also boot-profile.ts); returns the master's path. */
export function writeProcessmasterConfig(dir: string, fleet: Fleet, cgroupName: string, autostart: boolean): string {
  const confDir = join(dir, "config.d");
  mkdirSync(confDir, { recursive: true });
  const config = join(dir, "config.yaml");
  writeFileSync(config, JSON.stringify({
    config_directory: "./config.d", sock_path: join(dir, "pm.sock"), state_file: "./state.json", cgroup_name: cgroupName,
  }, null, 2));
  for (const name of fleet.names) {
    writeFileSync(join(confDir, `${name}.yaml`), JSON.stringify({
      name, enabled: autostart,
      // start_seconds 0: a start counts at once, as supervisord's startsecs=0 and PM2 here (the
      // default of 1 s makes `start` wait a second for each service to stay up).
      process: { command: fleet.argv(name), working_directory: fleet.dir, stop_signal: "SIGTERM", stop_grace_ms: 10_000, start_seconds: 0 },
      logs: { stdout: fleet.stdoutLog(name), stderr: fleet.stderrLog(name), rotation_mode: "time", rotation_frequency: "daily" },
      restart_policy: { policy: "always", restart_backoff_ms: 0, tolerance: { max_restarts: 1_000_000_000, duration: "1m" } },
    }, null, 2));
  }
  return config;
}

export class ProcessmasterDriver extends CliDriver implements Driver {
  readonly id = "processmaster" as const;
  private dir = "";
  private config = "";
  private proc: Subprocess | null = null;
  private fleet: Fleet | null = null;
  readonly cgroupName = `pmbench-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  private masterCgroup = "";

  constructor(readonly bin: string, readonly version: string, private readonly cgroupRoot: string) { super(); }

  async up(fleet: Fleet, { autostart }: { autostart: boolean }) {
    this.fleet = fleet;
    this.dir = join(fleet.dir, "processmaster");
    this.masterCgroup = join(this.cgroupRoot, this.cgroupName);
    this.config = writeProcessmasterConfig(this.dir, fleet, this.cgroupName, autostart);
    const out = daemonOutput(join(this.dir, "daemon.log"));
    this.proc = Bun.spawn({ cmd: [this.bin, "daemon", "-c", this.config], stdin: "ignore", stdout: out, stderr: out });
    closeSync(out);
    const proc = this.proc;
    const serving = appendedMatcher(join(this.dir, "daemon.log"), /serving /);
    await waitUntil(() => {
      if (proc.exitCode !== null) throw new Error(`processmaster exited with ${proc.exitCode}: ${readText(join(this.dir, "daemon.log"))?.slice(-800)}`);
      return serving();
    }, "processmaster to serve", 60_000 + fleet.n * 20, 10);
  }

  daemonPid() { return this.proc!.pid; }
  sockPath() { return join(this.dir, "pm.sock"); }
  cliArgv(args: string[]) { return [join(this.bin, "..", "pmctl"), "-c", this.config, ...args]; }

  async down() {
    await killDaemon(this.proc, null);
    this.proc = null;
    // The documented way to end everything: cgroup.kill on the master cgroup, then remove it.
    if (this.masterCgroup && existsSync(this.masterCgroup)) {
      try { writeFileSync(join(this.masterCgroup, "cgroup.kill"), "1"); } catch { /* empty */ }
      await waitUntil(() => !/populated 1/.test(readText(join(this.masterCgroup, "cgroup.events")) ?? ""), "bench cgroup to empty", 10_000, 10).catch((e) => log(String(e)));
      removeCgroupTree(this.masterCgroup);
    }
    if (this.fleet) await killFleet(this.fleet);
  }
}

function removeCgroupTree(path: string) {
  try {
    for (const e of readdirSync(path, { withFileTypes: true })) if (e.isDirectory()) removeCgroupTree(join(path, e.name));
    rmdirSync(path);
  } catch (e) { log(`could not remove cgroup ${path}: ${(e as Error).message}`); }
}

// ---- supervisord --------------------------------------------------------------------------------

export class SupervisordDriver extends CliDriver implements Driver {
  readonly id = "supervisord" as const;
  private dir = "";
  private conf = "";
  private proc: Subprocess | null = null;
  private fleet: Fleet | null = null;

  constructor(private readonly bins: NonNullable<Peers["supervisord"]>) { super(); }
  get version() { return this.bins.version; }

  async up(fleet: Fleet, { autostart }: { autostart: boolean }) {
    this.fleet = fleet;
    this.dir = join(fleet.dir, "supervisord");
    mkdirSync(join(this.dir, "childlogs"), { recursive: true });
    this.conf = join(this.dir, "supervisord.conf");
    const sock = join(this.dir, "supervisor.sock");
    const lines = [
      "[unix_http_server]", `file=${sock}`, "chmod=0700", "",
      "[supervisord]", `logfile=${join(this.dir, "supervisord.log")}`, `pidfile=${join(this.dir, "supervisord.pid")}`,
      `childlogdir=${join(this.dir, "childlogs")}`, "nodaemon=true", `minfds=${Math.max(1024, fleet.n * 4 + 256)}`, "minprocs=200", "loglevel=warn", "",
      "[rpcinterface:supervisor]", "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
      "[supervisorctl]", `serverurl=unix://${sock}`, "",
    ];
    for (const name of fleet.names) {
      lines.push(
        `[program:${name}]`, `command=${fleet.commandLine(name).replace(/%/g, "%%")}`, `directory=${fleet.dir}`,
        `autostart=${autostart}`, "autorestart=true", "startsecs=0", "startretries=1000000", "stopsignal=TERM", "stopwaitsecs=10",
        `stdout_logfile=${fleet.stdoutLog(name)}`, "stdout_logfile_maxbytes=0", "stdout_logfile_backups=0",
        `stderr_logfile=${fleet.stderrLog(name)}`, "stderr_logfile_maxbytes=0", "stderr_logfile_backups=0", "",
      );
    }
    writeFileSync(this.conf, lines.join("\n"));
    const out = daemonOutput(join(this.dir, "daemon.out"));
    this.proc = Bun.spawn({ cmd: [this.bins.bin, "-n", "-c", this.conf], stdin: "ignore", stdout: out, stderr: out });
    closeSync(out);
    const proc = this.proc;
    await waitUntil(async () => {
      if (proc.exitCode !== null) throw new Error(`supervisord exited with ${proc.exitCode}: ${readText(join(this.dir, "daemon.out"))?.slice(-800)}`);
      if (!existsSync(sock)) return false;
      const r = await this.cli(["pid"], 30_000);
      return r.code === 0 && Number(r.stdout.trim()) === proc.pid;
    }, "supervisord to serve", 120_000, 50);
  }

  daemonPid() { return this.proc!.pid; }
  cliArgv(args: string[]) { return [this.bins.ctl, "-c", this.conf, ...args]; }

  async down() {
    const proc = this.proc;
    if (proc && proc.exitCode === null) {
      // Its own way first (stops every program, then exits); hard kill if that takes too long.
      await this.cli(["shutdown"], 30_000).catch(() => null);
      await Promise.race([proc.exited, sleep(30_000)]);
    }
    await killDaemon(proc, null);
    this.proc = null;
    if (this.fleet) await killFleet(this.fleet);
  }
}

// ---- PM2 -----------------------------------------------------------------------------------------

export class Pm2Driver extends CliDriver implements Driver {
  readonly id = "pm2" as const;
  private dir = "";
  private home = "";
  private eco = "";
  private fleet: Fleet | null = null;
  private pid = 0;

  constructor(private readonly bins: NonNullable<Peers["pm2"]>) { super(); }
  get version() { return this.bins.version; }

  async up(fleet: Fleet, { autostart }: { autostart: boolean }) {
    this.fleet = fleet;
    this.dir = join(fleet.dir, "pm2");
    this.home = join(this.dir, "home");
    mkdirSync(this.home, { recursive: true });
    this.eco = join(this.dir, "ecosystem.json");
    writeFileSync(this.eco, JSON.stringify({
      apps: fleet.names.map((name) => {
        const [script, ...args] = fleet.argv(name);
        return {
          name, script, args, interpreter: "none", exec_mode: "fork", cwd: fleet.dir,
          autorestart: true, restart_delay: 0, min_uptime: 100, // PM2 refuses less than 100
          max_restarts: 1_000_000_000, kill_timeout: 10_000, watch: false,
          out_file: fleet.stdoutLog(name), error_file: fleet.stderrLog(name), pid_file: join(this.dir, `${name}.pid`), merge_logs: true, time: false,
        };
      }),
    }, null, 2));
    // PM2 never starts an app declared `autostart: false`, not even on `pm2 start NAME`; so
    // without autostart the daemon alone is started here and startOne() registers the app.
    const r = await this.cli(autostart ? ["start", this.eco] : ["ping"], 600_000);
    if (r.code !== 0) throw new Error(`pm2 ${autostart ? "start" : "ping"} failed (${r.code}): ${(r.stderr || r.stdout).slice(-800)}`);
    this.pid = Number(readText(join(this.home, "pm2.pid"))?.trim());
    if (!(this.pid > 0) || !pidAlive(this.pid)) throw new Error(`pm2 daemon not found (${join(this.home, "pm2.pid")})`);
  }

  daemonPid() { return this.pid; }
  cliArgv(args: string[]) { return [this.bins.node, this.bins.bin, ...args]; }
  override cliEnv() { return { ...process.env, PM2_HOME: this.home }; }
  override statusArgs() { return ["jlist"]; }
  override startOne(name: string) { return this.cli(["start", this.eco, "--only", name]); }

  async down() {
    if (this.home && existsSync(join(this.home, "pm2.pid"))) await this.cli(["kill"], 60_000).catch(() => null);
    await killDaemon(null, this.pid || null);
    if (this.fleet) await killFleet(this.fleet);
  }
}

// ---- a bare supervisor: the floor ---------------------------------------------------------------

/** Respawns a command as soon as it exits (lib/bare-respawn.ts, its own process): the floor. */
export class BareRespawner {
  private proc: Subprocess | null = null;
  constructor(private readonly argv: string[], private readonly cwd: string) {}
  start() {
    this.proc = Bun.spawn({
      cmd: ["bun", join(import.meta.dir, "bare-respawn.ts")], cwd: this.cwd, env: { ...process.env, PMBENCH_ARGV: JSON.stringify(this.argv) },
      stdin: "ignore", stdout: "ignore", stderr: "inherit",
    });
  }
  async stop() {
    const p = this.proc;
    if (p) { try { p.kill("SIGKILL"); } catch { /* gone */ } await p.exited; }
  }
}

export function makeDriver(id: DriverId, peers: Peers, pm: { bin: string; version: string; cgroupRoot: string }): Driver | null {
  if (id === "processmaster") return new ProcessmasterDriver(pm.bin, pm.version, pm.cgroupRoot);
  if (id === "supervisord") return peers.supervisord ? new SupervisordDriver(peers.supervisord) : null;
  return peers.pm2 ? new Pm2Driver(peers.pm2) : null;
}

export { must, now };
