/**
 * Test harness: a private world per test — temp dir, master config, its own cgroup_name and
 * socket — with a daemon run from source, a pmctl runner, and cleanup that removes every
 * process and cgroup it made, even when the test failed.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, rmdirSync, symlinkSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "bun:test";
import type { Subprocess } from "bun";
import { defaultCgroupRoot } from "../../src/cgroup/mount.ts";
import { DAEMON_LEAF } from "../../src/cgroup/names.ts";
import { callDaemon } from "../../src/control/client.ts";
import type { Command } from "../../src/control/protocol.ts";
import type { AppStatus } from "../../src/supervisor/status.ts";

export const REPO = join(import.meta.dir, "..", "..");
export const MAIN = join(REPO, "src", "main.ts");

/**
 * What the end-to-end tests run: `source` (`bun src/main.ts`, from the repository root) or
 * `binary` (PM_TEST_TARGET=binary: dist/processmaster copied into a temp folder outside the
 * repository, the daemon started with cwd `/`, the client reached through a `pmctl` symlink in
 * another folder), as users run it. `bun run test` runs both lanes.
 */
export const TARGET: "source" | "binary" = process.env.PM_TEST_TARGET === "binary" ? "binary" : "source";
/** The working directory every processmaster process of a test starts in. */
export const PM_CWD = TARGET === "binary" ? "/" : REPO;

let installed: { daemon: string; pmctl: string } | null = null;
/**
 * The binary lane's copy of dist/processmaster, made once per test process in
 * `$TMPDIR/pmbin-<pid>`. bun test fires no process "exit" event, so each new copy first removes
 * those of test processes that are gone (scripts/test-lanes.ts sweeps after each lane too).
 */
export function installedBinary(): { daemon: string; pmctl: string } {
  if (installed) return installed;
  const built = join(REPO, "dist", "processmaster");
  if (!existsSync(built)) throw new Error("PM_TEST_TARGET=binary needs dist/processmaster: run `bun run build` first");
  sweepInstalledBinaries();
  const top = join(tmpdir(), `pmbin-${process.pid}`);
  rmSync(top, { recursive: true, force: true });
  mkdirSync(join(top, "sbin"), { recursive: true }); mkdirSync(join(top, "bin"));
  const daemon = join(top, "sbin", "processmaster");
  copyFileSync(built, daemon);
  const pmctl = join(top, "bin", "pmctl");
  symlinkSync(daemon, pmctl);
  installed = { daemon, pmctl };
  return installed;
}

/** Removes the binary copies of test processes that no longer run. */
export function sweepInstalledBinaries() {
  for (const name of readdirSync(tmpdir())) {
    const pid = /^pmbin-(\d+)$/.exec(name)?.[1];
    if (pid && !pidAlive(Number(pid))) rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

/** argv for `processmaster <args>` (daemon, check, --version, or a client command). */
export function pmCommand(args: string[]): string[] {
  return TARGET === "binary" ? [installedBinary().daemon, ...args] : ["bun", MAIN, ...args];
}

/** argv for `pmctl <args>`: through the symlink in the binary lane. */
export function pmctlCommand(args: string[]): string[] {
  return TARGET === "binary" ? [installedBinary().pmctl, ...args] : ["bun", MAIN, "ctl", ...args];
}

/** Runs a processmaster/pmctl argv (from pmCommand/pmctlCommand) to the end from PM_CWD. */
export async function runPm(cmd: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn({ cmd, cwd: PM_CWD, stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/**
 * What the daemon logged about service `name` in `log` (a slice of DaemonProc.output()), in
 * order, without timestamp, level and prefix; DEBUG lines (state transitions) left out.
 */
function serviceLog(log: string, name: string): string[] {
  const prefix = `[${name}] `;
  return log.split("\n").filter((l) => l.includes(prefix) && !/ DEBUG /.test(l)).map((l) => l.slice(l.indexOf(prefix) + prefix.length));
}

/**
 * A stop of a SIGTERM-ignoring service, proven by the order of what daemon `d` logged about it
 * since offset `from` of its output (taken before the stop was asked for), not by how long it
 * took: one SIGTERM, the grace runs out, the cgroup is killed, and that kill ends the stop -
 * nothing else (no second round of signals, no waiting on a process that escaped them). The
 * stop's answer can come before the log's last line is through the pipe: that line is awaited.
 */
export async function expectKilledAfterGrace(d: DaemonProc, from: number, name: string, graceMs: number): Promise<void> {
  await d.waitForLog(new RegExp(`\\[${name}\\] stopped \\(`), 15_000, from);
  const steps = serviceLog(d.output().slice(from), name);
  expect(steps, steps.join("\n")).toEqual([
    expect.stringMatching(/^sent SIGTERM to \d+ processes?$/),
    `still running after ${graceMs}ms grace, killing the cgroup`,
    "stopped (killed after grace)",
  ]);
}

/** What a truthy check result can be: `cond && value` gives `false | value`, and only the value comes back. */
export type Truthy<T> = Exclude<T, false | null | undefined | 0 | "">;

/** Waits until `check` returns a truthy value, re-checking every `everyMs`, failing at the deadline. */
export async function waitUntil<T>(check: () => T | Promise<T>, what: string, timeoutMs = 30_000, everyMs = 20): Promise<Truthy<Awaited<T>>> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as Truthy<Awaited<T>>;
    } catch (e) { last = e; }
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${last ? ` (last error: ${last})` : ""}`);
    await Bun.sleep(everyMs);
  }
}

/** A free TCP port on 127.0.0.1: bind port 0, read what the kernel chose, close. */
export function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

export function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); } catch { return false; }
  // A zombie is dead for our purposes.
  try { return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8")); } catch { return false; }
}

export interface DaemonProc {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  pid: number;
  /** Everything the daemon logged so far. */
  output(): string;
  /** Resolves when the daemon's log matches `re` (counting from offset `from` of its output, default its start). */
  waitForLog(re: RegExp, timeoutMs?: number, from?: number): Promise<string>;
  exited: Promise<number>;
}

export interface ServiceSpec { [key: string]: unknown }

export interface DaemonOptions { binary?: boolean; cwd?: string; noConfigFlag?: boolean; cgroup?: string }

export class World {
  readonly dir: string;
  readonly configPath: string;
  readonly confDir: string;
  readonly sockPath: string;
  readonly cgroupName: string;
  readonly cgroupRoot: string;
  readonly masterCgroup: string;
  private daemons: DaemonProc[] = [];

  /** `cgroupRoot`: where the daemon will put the master cgroup when not where this process's default says (a daemon started in another cgroup, or cgroup_root set). */
  constructor(opts: { master?: Record<string, unknown>; cgroupRoot?: string } = {}) {
    this.dir = mkdtempSync(join(tmpdir(), "pmtest-"));
    this.confDir = join(this.dir, "config.d");
    mkdirSync(this.confDir);
    this.sockPath = join(this.dir, "pm.sock");
    this.cgroupName = `pmtest-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    this.cgroupRoot = opts.cgroupRoot ?? defaultCgroupRoot(this.cgroupName, DAEMON_LEAF).path; // where the daemon puts it
    this.masterCgroup = join(this.cgroupRoot, this.cgroupName);
    this.configPath = join(this.dir, "config.yaml");
    this.writeMaster(opts.master ?? {});
  }

  writeMaster(extra: Record<string, unknown>) {
    const master = { config_directory: "./config.d", sock_path: this.sockPath, state_file: "./state.json", cgroup_name: this.cgroupName, ...extra };
    writeFileSync(this.configPath, toYaml(master));
  }

  /** A service file; `working_directory` defaults to a folder of its own inside the world. */
  writeService(name: string, spec: ServiceSpec): string {
    const proc = { ...(spec.process as Record<string, unknown> | undefined) };
    if (proc.working_directory === undefined) {
      const wd = join(this.dir, "apps", name);
      mkdirSync(wd, { recursive: true });
      proc.working_directory = wd;
    }
    const file = join(this.confDir, `${name}.yaml`);
    writeFileSync(file, toYaml({ ...spec, process: proc }));
    return file;
  }

  writeRawService(fileName: string, text: string): string {
    const file = join(this.confDir, fileName);
    writeFileSync(file, text);
    return file;
  }

  removeService(name: string) { rmSync(join(this.confDir, `${name}.yaml`), { force: true }); }

  appDir(name: string) { return join(this.dir, "apps", name); }

  serviceCgroup(name: string) { return join(this.masterCgroup, name); }

  cgroupPids(name: string): number[] {
    try { return readFileSync(join(this.serviceCgroup(name), "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number); } catch { return []; }
  }

  /**
   * `opts.binary`: the installed binary whatever the lane; `opts.cwd`: the daemon's working
   * directory; `opts.noConfigFlag`: no `-c` (the config is found as discoverConfig says);
   * `opts.cgroup`: start it in this cgroup, as systemd starts a unit's process.
   */
  startDaemon(extraArgs: string[] = [], env: Record<string, string> = {}, opts: DaemonOptions = {}): DaemonProc {
    const args = ["daemon", ...(opts.noConfigFlag ? [] : ["-c", this.configPath]), ...extraArgs];
    const proc = Bun.spawn({
      cmd: opts.binary ? [installedBinary().daemon, ...args] : pmCommand(args),
      cwd: opts.cwd ?? (opts.binary ? "/" : PM_CWD), stdin: "ignore", ...(opts.cgroup ? { cgroup: opts.cgroup } : {}), stdout: "pipe", stderr: "pipe",
      env: { ...process.env, PM_LOG_LEVEL: "debug", ...env },
    });
    let text = "";
    const waiters = new Set<() => void>();
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) { text += decoder.decode(chunk, { stream: true }); for (const w of [...waiters]) w(); }
    };
    void pump(proc.stdout);
    void pump(proc.stderr);
    const d: DaemonProc = {
      proc, pid: proc.pid, output: () => text,
      exited: proc.exited,
      waitForLog(re, timeoutMs = 10_000, from = 0) {
        return new Promise((resolve, reject) => {
          const check = () => {
            const m = re.exec(from > 0 ? text.slice(from) : text);
            if (m) { waiters.delete(check); clearTimeout(timer); resolve(m[0]); }
          };
          const timer = setTimeout(() => { waiters.delete(check); reject(new Error(`daemon log never matched ${re} within ${timeoutMs}ms; log:\n${text}`)); }, timeoutMs);
          waiters.add(check);
          check();
        });
      },
    };
    this.daemons.push(d);
    return d;
  }

  /** Starts a daemon and waits until it serves. */
  async daemon(extraArgs: string[] = [], opts: DaemonOptions = {}): Promise<DaemonProc> {
    const d = this.startDaemon(extraArgs, {}, opts);
    await Promise.race([
      d.waitForLog(/serving /, 15_000),
      d.exited.then((code) => { throw new Error(`daemon exited with ${code} before serving:\n${d.output()}`); }),
    ]);
    return d;
  }

  call(cmd: Command, names: string[] = []): Promise<unknown> {
    return callDaemon(this.sockPath, cmd, names);
  }

  async status(name?: string): Promise<AppStatus[]> {
    const data = (await this.call("status", name ? [name] : [])) as { apps: AppStatus[] };
    return data.apps;
  }

  async app(name: string): Promise<AppStatus> {
    return (await this.status(name))[0]!;
  }

  /** Runs pmctl (source or the binary's symlink, see TARGET) against this world. */
  pmctl(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    return runPm(pmctlCommand(["-c", this.configPath, ...args]), env);
  }

  /** Kills every daemon and service of this world, removes its cgroups and files. */
  async cleanup(): Promise<void> {
    for (const d of this.daemons) { try { d.proc.kill("SIGKILL"); } catch { /* gone */ } }
    await Promise.all(this.daemons.map((d) => d.exited));
    if (existsSync(this.masterCgroup)) {
      try { writeFileSync(join(this.masterCgroup, "cgroup.kill"), "1"); } catch { /* already empty */ }
      await waitUntil(() => !/populated 1/.test(readFileSync(join(this.masterCgroup, "cgroup.events"), "utf8")), "test cgroup to empty", 10_000, 10);
      removeCgroupTree(this.masterCgroup);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function removeCgroupTree(path: string) {
  for (const e of readdirSync(path, { withFileTypes: true })) if (e.isDirectory()) removeCgroupTree(join(path, e.name));
  rmdirSync(path);
}

/** JSON is valid YAML: good enough for generated test configs. */
function toYaml(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}
