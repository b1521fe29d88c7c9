import { afterAll, describe, expect, spyOn, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  ConfigError, checkConfig, loadConfig, loadMasterConfig, normalizeSignal, parseCpuMax, parseSockMode,
  resolveGroup, resolveUser, splitCommand, userGroups,
} from "../src/config/load.ts";
import { defaultLogDirectory } from "../src/config/master.ts";
import { formatProblem } from "../src/config/types.ts";
import type { ConfigProblem } from "../src/config/types.ts";
import { isPmError } from "../src/util/errors.ts";

const tmpDirs: string[] = [];
afterAll(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A temp folder with `config.yaml` (master) and service files under `config.d/`. */
function tree(master: string, services: Record<string, string> = {}): { dir: string; master: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pm-config-"));
  tmpDirs.push(dir);
  fs.writeFileSync(path.join(dir, "config.yaml"), master);
  fs.mkdirSync(path.join(dir, "config.d"));
  for (const [name, text] of Object.entries(services)) fs.writeFileSync(path.join(dir, "config.d", name), text);
  return { dir, master: path.join(dir, "config.yaml") };
}

function masterError(text: string): ConfigError {
  const t = tree(text);
  try {
    loadMasterConfig(t.master);
  } catch (e) {
    expect(isPmError(e, "CONFIG_INVALID")).toBe(true);
    return e as ConfigError;
  }
  throw new Error("expected loadMasterConfig to throw");
}

/** The problems of one service file (master is empty). */
function serviceProblems(text: string, fileName = "svc.yaml"): ConfigProblem[] {
  const t = tree("", { [fileName]: text });
  return checkConfig(t.master);
}

function loadOne(text: string, fileName = "svc.yaml") {
  const t = tree("", { [fileName]: text });
  const c = loadConfig(t.master);
  expect(c.serviceErrors).toEqual([]);
  return { ...t, svc: [...c.services.values()][0]!, config: c };
}

describe("master config", () => {
  test("an empty master file gives all defaults, paths relative to its folder", () => {
    const t = tree("# nothing here\n");
    const m = loadMasterConfig(t.master);
    expect(m.file).toBe(t.master);
    expect(m.configDirectory).toBe(path.join(t.dir, "config.d"));
    expect(m.sockPath).toBe(path.join(t.dir, "processmaster.sock"));
    expect(m.stateFile).toBe(path.join(t.dir, "processmaster.state.json"));
    expect(m.sockMode).toBe(0o600);
    expect(m.cgroupName).toBe("processmaster");
    expect(m.cgroupRoot).toBeUndefined();
    expect(m.cgroupCpuMax).toBeUndefined();
  });

  test("all keys are read, relative paths resolved against the master file's folder", () => {
    const t = tree([
      "config_directory: services", "sock_path: run/pm.sock", "sock_owner: root", "sock_group: root", "sock_read_group: root",
      "sock_mode: 0660", "state_file: /var/lib/pm/state.json", "cgroup_root: /sys/fs/cgroup/", "cgroup_name: pm-test",
      "cgroup_cpu_max: 150%", "cgroup_memory_max: 512M", "cgroup_memory_swap_max: max", "",
    ].join("\n"));
    const m = loadMasterConfig(t.master);
    expect(m.configDirectory).toBe(path.join(t.dir, "services"));
    expect(m.sockPath).toBe(path.join(t.dir, "run/pm.sock"));
    expect(m.sockOwner).toBe("root");
    expect(m.sockGroup).toBe("root");
    expect(m.sockReadGroup).toBe("root");
    expect(m.sockMode).toBe(0o660);
    expect(m.stateFile).toBe("/var/lib/pm/state.json");
    expect(m.cgroupRoot).toBe("/sys/fs/cgroup");
    expect(m.cgroupName).toBe("pm-test");
    expect(m.cgroupCpuMax).toBe("150000 100000");
    expect(m.cgroupMemoryMax).toBe(String(512 * 1024 * 1024));
    expect(m.cgroupMemorySwapMax).toBe("max");
  });

  test("sock_mode: every written form of 660 means 0o660", () => {
    for (const form of ["660", "0660", '"0660"', '"660"', "0o660", '"0o660"', "'0o660'"]) {
      const t = tree(`sock_mode: ${form}\n`);
      expect(loadMasterConfig(t.master).sockMode).toBe(0o660);
    }
    expect(loadMasterConfig(tree("sock_mode: 755\n").master).sockMode).toBe(0o755);
    expect(loadMasterConfig(tree("sock_mode: 0\n").master).sockMode).toBe(0);
  });

  test("sock_mode: digits 8/9, more than 0777 and words are errors with line and key", () => {
    expect(masterError("\nsock_mode: 0680\n").message).toMatch(/config\.yaml:2: sock_mode: expected octal digits 0-7.*'0680'/);
    expect(masterError("sock_mode: 1777\n").message).toMatch(/sock_mode: a socket mode must be at most 0777/);
    expect(masterError("sock_mode: rw-rw----\n").message).toMatch(/sock_mode: expected an octal file mode/);
    expect(masterError("sock_mode: [6, 6, 0]\n").message).toMatch(/sock_mode: expected an octal file mode.*found a list/);
    expect(parseSockMode("0o999")).toBeString();
  });

  test("unknown master key names the key, its line and the expected keys", () => {
    const e = masterError("sock_path: x\nsocket_mode: 660\n");
    expect(e.message).toMatch(/config\.yaml:2: socket_mode: unknown key 'socket_mode'; did you mean 'sock_mode'\? expected one of: config_directory, sock_path/);
    expect(e.problems).toHaveLength(1);
  });

  test("every master problem is listed, one per line", () => {
    const e = masterError("sock_mode: 999\ncgroup_name: cpu.x\ncgroup_root: relative/path\ncgroup_memory_max: lots\n");
    const lines = e.message.split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/:1: sock_mode:/);
    expect(lines[1]).toMatch(/:2: cgroup_name: must not start with 'cpu\.'/);
    expect(lines[2]).toMatch(/:3: cgroup_root: expected an absolute path/);
    expect(lines[3]).toMatch(/:4: cgroup_memory_max: expected a size in bytes.*or max/);
  });

  test("cgroup_name must be a safe single folder name", () => {
    for (const bad of ["cgroup.procs", "memory.high", "io.max", "pids.x", "a/b", "..", ".", ".hidden", "with space"]) {
      expect(masterError(`cgroup_name: "${bad}"\n`).message).toMatch(/cgroup_name: /);
    }
    expect(loadMasterConfig(tree("cgroup_name: my.pm@1\n").master).cgroupName).toBe("my.pm@1");
  });

  test("cgroup_cpu_max accepts the kernel forms and percentages", () => {
    const cases: Record<string, string> = {
      '"50000 100000"': "50000 100000", '"max 100000"': "max 100000", "max": "max 100000", "150%": "150000 100000",
      "20%": "20000 100000", "50000": "50000 100000", '"2.5%"': "2500 100000", '"max 50000"': "max 50000",
    };
    for (const [form, kernel] of Object.entries(cases)) {
      expect(loadMasterConfig(tree(`cgroup_cpu_max: ${form}\n`).master).cgroupCpuMax).toBe(kernel);
    }
  });

  test("cgroup_cpu_max rejects zero, tiny quotas, bad periods and words", () => {
    for (const bad of ["0%", "0.5%", "500 100000", "50000 10", "50000 2000000", "fast", "-5%", "50000 100000 1"]) {
      expect(parseCpuMax(bad).ok).toBe(false);
    }
    expect(masterError("cgroup_cpu_max: 0%\n").message).toMatch(/:1: cgroup_cpu_max: a CPU percentage must be more than 0%/);
  });

  test("a missing master file is CONFIG_UNREADABLE", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pm-config-"));
    tmpDirs.push(dir);
    try {
      loadMasterConfig(path.join(dir, "nope.yaml"));
      throw new Error("no throw");
    } catch (e) {
      expect(isPmError(e, "CONFIG_UNREADABLE")).toBe(true);
      expect((e as Error).message).toContain("nope.yaml: cannot open: no such file or directory");
    }
  });

  test("a master file that is a list is CONFIG_INVALID", () => {
    expect(masterError("- a\n- b\n").message).toMatch(/config\.yaml:1: expected a mapping/);
  });

  test("unknown sock_owner / sock_group are errors", () => {
    expect(masterError("sock_owner: no-such-user-pm\n").message).toMatch(/sock_owner: unknown user 'no-such-user-pm'/);
    expect(masterError("sock_group: no-such-group-pm\n").message).toMatch(/sock_group: unknown group/);
  });

  test("a missing config_directory is a master error on that key", () => {
    const t = tree("sock_mode: 600\nconfig_directory: ./missing\n");
    try {
      loadConfig(t.master);
      throw new Error("no throw");
    } catch (e) {
      expect(isPmError(e, "CONFIG_INVALID")).toBe(true);
      expect((e as Error).message).toMatch(/config\.yaml:2: config_directory: cannot read the service folder .*missing: no such file/);
    }
    expect(checkConfig(t.master).map(formatProblem)).toEqual([expect.stringMatching(/:2: config_directory: /)]);
  });
});

describe("service files", () => {
  test("defaults: name from the file, enabled, cwd = master folder, logs, policy, no limits", () => {
    const { dir, svc } = loadOne("process:\n  command: sleep 100\n", "web.yaml");
    expect(svc.name).toBe("web");
    expect(svc.file).toBe(path.join(dir, "config.d", "web.yaml"));
    expect(svc.enabled).toBe(true);
    expect(svc.process).toEqual({
      command: ["sleep", "100"], workingDirectory: dir, user: undefined, group: undefined, uid: undefined, gid: undefined,
      environment: {}, stopCommand: undefined, stopSignal: "SIGTERM", stopGraceMs: 30_000, schedule: undefined,
      scheduleTimezone: undefined, allowWritableCommand: false, exitType: "auto", stopMode: "all", reloadSignal: undefined,
      reloadCommand: undefined, limits: {}, umask: undefined, environmentFiles: [], supplementaryGroups: [], runtimeDirectories: [],
      runtimeDirectoryMode: 0o755, startMs: 1000,
    });
    expect(svc.logs).toEqual({
      stdout: path.join(dir, "logs", "web", "stdout.log"), stderr: path.join(dir, "logs", "web", "stderr.log"), stopCommandStdout: undefined,
      stopCommandStderr: undefined, hints: [], rotationMode: "time", rotationFrequency: "daily",
      rotationMaxAgeMs: 30 * 86_400_000, rotationSizeBytes: undefined, rotationBackups: 10,
    });
    expect(svc.restartPolicy).toEqual({ policy: "never", restartBackoffMs: 1000, restartBackoffMaxMs: undefined, maxRestarts: 3, toleranceWindowMs: 60_000 });
    expect(Object.values(svc.resources).every((v) => v === undefined)).toBe(true);
  });

  test("a full service file is read into the typed shape", () => {
    const t = tree("", {});
    fs.mkdirSync(path.join(t.dir, "app"));
    fs.writeFileSync(path.join(t.dir, "config.d", "x.yml"), `
name: api@1
enabled: false
process:
  command: ["/usr/bin/env", "A=1", 42]
  working_directory: app
  user: root
  environment: { VERSION: 1.10, DEBUG: true, PORT: 8080, NAME: api }
  stop_command: "kill -TERM 'my app'"
  stop_signal: int
  stop_grace_ms: 1m30s
  schedule: "*/5 * * * *"
  schedule_timezone: Europe/Berlin
  allow_writable_command: true
logs:
  stdout: out.log
  stderr: /var/log/api.err
  stop_command_stdout: stop.out
  hints: [other.log, /var/log/syslog]
  rotation_mode: size
  rotation_size: 10M
  rotation_backups: 0
restart_policy:
  policy: on-failure
  restart_backoff_ms: 500ms
  restart_backoff_max_ms: 1m
  tolerance: { max_restarts: 5, duration: 10m }
resources:
  cpu_max: 20%
  cpu_weight: 200
  memory_max: 1G
  memory_high: 800M
  memory_swap_max: 0
  pids_max: 64
`);
    const c = loadConfig(t.master);
    expect(c.serviceErrors).toEqual([]);
    const s = c.services.get("api@1")!;
    const app = path.join(t.dir, "app");
    expect(s.enabled).toBe(false);
    expect(s.process.command).toEqual(["/usr/bin/env", "A=1", "42"]);
    expect(s.process.workingDirectory).toBe(app);
    expect(s.process.uid).toBe(0);
    expect(s.process.gid).toBe(0);
    expect(s.process.environment).toEqual({ VERSION: "1.10", DEBUG: "true", PORT: "8080", NAME: "api" });
    expect(s.process.stopCommand).toEqual(["kill", "-TERM", "my app"]);
    expect(s.process.stopSignal).toBe("SIGINT");
    expect(s.process.stopGraceMs).toBe(90_000);
    expect(s.process.schedule).toBe("*/5 * * * *");
    expect(s.process.scheduleTimezone).toBe("Europe/Berlin");
    expect(s.process.allowWritableCommand).toBe(true);
    expect(s.logs.stdout).toBe(path.join(app, "out.log"));
    expect(s.logs.stderr).toBe("/var/log/api.err");
    expect(s.logs.stopCommandStdout).toBe(path.join(app, "stop.out"));
    expect(s.logs.hints).toEqual([path.join(app, "other.log"), "/var/log/syslog"]);
    expect(s.logs.rotationMode).toBe("size");
    expect(s.logs.rotationSizeBytes).toBe(10 * 1024 * 1024);
    expect(s.logs.rotationBackups).toBe(0);
    expect(s.restartPolicy).toEqual({ policy: "on-failure", restartBackoffMs: 500, restartBackoffMaxMs: 60_000, maxRestarts: 5, toleranceWindowMs: 600_000 });
    expect(s.resources).toEqual({ cpuMax: "20000 100000", cpuWeight: 200, memoryMax: String(1024 ** 3), memoryHigh: String(800 * 1024 ** 2), memorySwapMax: "0", pidsMax: "64" });
  });

  test("group defaults to the user's primary group; an explicit group wins", () => {
    expect(loadOne("process:\n  command: x\n  user: root\n").svc.process.gid).toBe(0);
    const daemon = resolveGroup("daemon");
    if (daemon) expect(loadOne("process:\n  command: x\n  user: root\n  group: daemon\n").svc.process.gid).toBe(daemon.gid);
  });

  test("a missing working_directory is an error naming the folder", () => {
    const p = serviceProblems("process:\n  command: x\n  working_directory: ./nowhere\n");
    expect(p.map(formatProblem)).toEqual([expect.stringMatching(/svc\.yaml:3: process\.working_directory: the folder .*nowhere does not exist/)]);
  });

  test("stop_signal accepts names, short names, lower case and numbers", () => {
    expect(normalizeSignal("SIGTERM")).toBe("SIGTERM");
    expect(normalizeSignal("term")).toBe("SIGTERM");
    expect(normalizeSignal("sigint")).toBe("SIGINT");
    expect(normalizeSignal(9)).toBe("SIGKILL");
    expect(normalizeSignal("1")).toBe("SIGHUP");
    expect(normalizeSignal("SIGNOPE")).toBeNull();
    expect(normalizeSignal(99)).toBeNull();
    expect(loadOne("process:\n  command: x\n  stop_signal: 15\n").svc.process.stopSignal).toBe("SIGTERM");
  });

  test("durations: integers are ms, texts have units; negative and fractional ms are errors", () => {
    expect(loadOne("process:\n  command: x\n  stop_grace_ms: 2500\n").svc.process.stopGraceMs).toBe(2500);
    expect(loadOne("process:\n  command: x\n  stop_grace_ms: 2s\n").svc.process.stopGraceMs).toBe(2000);
    expect(formatProblem(serviceProblems("process:\n  command: x\n  stop_grace_ms: 1.5\n")[0]!)).toMatch(/:3: process\.stop_grace_ms: expected a duration.*found a number '1\.5'/);
    expect(formatProblem(serviceProblems("process:\n  command: x\n  stop_grace_ms: 30 seconds\n")[0]!)).toMatch(/:3: process\.stop_grace_ms: expected a duration/);
    expect(formatProblem(serviceProblems("process:\n  command: x\n  stop_grace_ms: 100d\n")[0]!)).toMatch(/must be at most 2147483647 ms/);
  });

  test("a 400-digit number does not crash: a clear 'too large' error", () => {
    const big = "9".repeat(400);
    for (const [key, text] of [["process.stop_grace_ms", `process:\n  command: x\n  stop_grace_ms: ${big}\n`],
      ["logs.rotation_size", `process:\n  command: x\nlogs:\n  rotation_size: ${big}\n`],
      ["restart_policy.tolerance.max_restarts", `process:\n  command: x\nrestart_policy:\n  tolerance:\n    max_restarts: ${big}\n`],
      ["resources.pids_max", `process:\n  command: x\nresources:\n  pids_max: ${big}\n`],
      ["resources.memory_max", `process:\n  command: x\nresources:\n  memory_max: ${big}M\n`]] as const) {
      const p = serviceProblems(text);
      expect(p).toHaveLength(1);
      expect(p[0]!.key).toBe(key);
      expect(p[0]!.message).toMatch(/too large|expected/);
      expect(p[0]!.message.length).toBeLessThan(300);
    }
  });

  test("wrong types say what was expected and what was found", () => {
    const p = serviceProblems("enabled: 1\nprocess:\n  command: x\n  environment: [A=1]\nlogs: hello\n");
    expect(p.map(formatProblem)).toEqual([
      expect.stringMatching(/:1: enabled: expected true or false, found a number '1'/),
      expect.stringMatching(/:4: process\.environment: expected a mapping of NAME: value, found a list/),
      expect.stringMatching(/:5: logs: expected a mapping \(key: value lines\), found text 'hello'/),
    ]);
  });

  test("unknown keys inside groups list the expected keys", () => {
    const p = serviceProblems("process:\n  command: x\nlogs:\n  rotate: daily\n");
    expect(formatProblem(p[0]!)).toMatch(/:4: logs\.rotate: unknown key 'rotate'; expected one of: stdout, stderr, .*rotation_backups/);
  });

  test("a file with no process: group is one clear error", () => {
    const p = serviceProblems("enabled: true\n");
    expect(p.map(formatProblem)).toEqual([expect.stringMatching(/svc\.yaml: process: missing process\.command/)]);
  });

  test("an empty service file is an error", () => {
    expect(serviceProblems("# only a comment\n")[0]!.message).toMatch(/the file is empty/);
  });

  test("a file name that is not a valid service name needs name:", () => {
    expect(formatProblem(serviceProblems("process:\n  command: x\n", "bad name.yaml")[0]!)).toMatch(/bad name\.yaml: name: the file name 'bad name' gives the service name/);
    expect(loadOne("name: good\nprocess:\n  command: x\n", "bad name.yaml").svc.name).toBe("good");
  });

  test("the name 'all' is reserved; kernel-like names such as cgroup.procs are allowed", () => {
    expect(serviceProblems("name: all\nprocess:\n  command: x\n")[0]!.message).toMatch(/reserved/);
    expect(loadOne("name: cgroup.procs\nprocess:\n  command: x\n").svc.name).toBe("cgroup.procs");
  });

  test("a schedule that never fires is an error", () => {
    expect(serviceProblems("process:\n  command: x\n  schedule: '0 0 30 2 *'\n")[0]!.message).toMatch(/never fires/);
  });

  test("6-field schedules are accepted; 7-field ones (years) are rejected, as the daemon's scheduler does", () => {
    expect(loadOne("process:\n  command: x\n  schedule: '30 0 3 * * *'\n").svc.process.schedule).toBe("30 0 3 * * *");
    expect(serviceProblems("process:\n  command: x\n  schedule: '0 0 3 * * * *'\n")[0]!.message).toMatch(/7 parts/);
  });

  test("schedule_timezone without schedule is an error", () => {
    expect(serviceProblems("process:\n  command: x\n  schedule_timezone: UTC\n")[0]!.key).toBe("process.schedule_timezone");
  });

  test("files over 1 MiB are refused without reading them", () => {
    const t = tree("", { "ok.yaml": "process:\n  command: x\n" });
    const big = path.join(t.dir, "config.d", "big.yaml");
    fs.writeFileSync(big, "");
    fs.truncateSync(big, 10 * 1024 * 1024);
    const c = loadConfig(t.master);
    expect([...c.services.keys()]).toEqual(["ok"]);
    expect(c.serviceErrors).toHaveLength(1);
    expect(formatProblem(c.serviceErrors[0]!)).toMatch(/big\.yaml: file is too large \(10485760 bytes\); config files may be at most 1048576 bytes/);
  });

  test("a symlink loop is reported for that file, the others load", () => {
    const t = tree("", { "ok.yaml": "process:\n  command: x\n" });
    fs.symlinkSync("loop.yaml", path.join(t.dir, "config.d", "loop.yaml"));
    const c = loadConfig(t.master);
    expect([...c.services.keys()]).toEqual(["ok"]);
    expect(c.serviceErrors.map(formatProblem)).toEqual([expect.stringMatching(/loop\.yaml: cannot open: too many levels of symbolic links/)]);
  });

  test("a directory named like a service file is reported, not a crash", () => {
    const t = tree("", { "ok.yaml": "process:\n  command: x\n" });
    fs.mkdirSync(path.join(t.dir, "config.d", "dir.yaml"));
    expect(checkConfig(t.master).map(formatProblem)).toEqual([expect.stringMatching(/dir\.yaml: is a directory/)]);
  });

  test.skipIf(process.getuid?.() === 0)("an unreadable file is reported, the others load", () => {
    const t = tree("", { "ok.yaml": "process:\n  command: x\n", "secret.yaml": "process:\n  command: x\n" });
    fs.chmodSync(path.join(t.dir, "config.d", "secret.yaml"), 0o000);
    const c = loadConfig(t.master);
    expect(c.serviceErrors.map(formatProblem)).toEqual([expect.stringMatching(/secret\.yaml: cannot open: permission denied/)]);
  });

  test("only *.yaml and *.yml files count, dotfiles are skipped, order is by file name", () => {
    const t = tree("", {
      "b.yml": "process:\n  command: x\nlogs: { stdout: b.out, stderr: b.err }\n",
      "a.yaml": "process:\n  command: x\nlogs: { stdout: a.out, stderr: a.err }\n",
      "notes.txt": "not yaml", ".hidden.yaml": "junk: [",
    });
    expect([...loadConfig(t.master).services.keys()]).toEqual(["a", "b"]);
  });

  test("a bad service file is left out and the other services load", () => {
    const t = tree("", { "good.yaml": "process:\n  command: x\n", "bad.yaml": "process:\n  command: 5\n" });
    const c = loadConfig(t.master);
    expect([...c.services.keys()]).toEqual(["good"]);
    expect(c.serviceErrors.map(formatProblem)).toEqual([expect.stringMatching(/bad\.yaml:2: process\.command: expected a command/)]);
  });

  test("duplicate service names: the second file is reported, the first kept", () => {
    const t = tree("", {
      "a.yaml": "name: web\nprocess:\n  command: x\nlogs: { stdout: a.out, stderr: a.err }\n",
      "b.yaml": "\nname: web\nprocess:\n  command: y\nlogs: { stdout: b.out, stderr: b.err }\n",
    });
    const c = loadConfig(t.master);
    expect(c.services.get("web")!.file).toEndWith("a.yaml");
    expect(c.serviceErrors.map(formatProblem)).toEqual([expect.stringMatching(/b\.yaml:2: name: duplicate service name 'web': already defined by .*a\.yaml/)]);
  });

  test("two services without working_directory get default log files of their own under log_directory", () => {
    const t = tree("", { "one.yaml": "process:\n  command: x\n", "two.yaml": "process:\n  command: y\n" });
    const c = loadConfig(t.master);
    expect(c.serviceErrors).toEqual([]);
    expect(c.master.logDirectory).toBe(path.join(t.dir, "logs"));
    expect(c.services.get("one")!.logs.stdout).toBe(path.join(t.dir, "logs", "one", "stdout.log"));
    expect(c.services.get("two")!.logs.stderr).toBe(path.join(t.dir, "logs", "two", "stderr.log"));
  });

  test("log_directory sets where default log files go; an explicit working_directory keeps ./stdout.log there", () => {
    const t = tree("log_directory: ./var/log\n", { "one.yaml": "process:\n  command: x\n", "two.yaml": "process:\n  command: y\n  working_directory: .\n" });
    const c = loadConfig(t.master);
    expect(c.services.get("one")!.logs.stdout).toBe(path.join(t.dir, "var", "log", "one", "stdout.log"));
    expect(c.services.get("two")!.logs.stdout).toBe(path.join(t.dir, "stdout.log"));
  });

  test("the default log_directory is /var/log/processmaster for a master config under /etc", () => {
    expect(defaultLogDirectory("/etc/processmaster/config.yaml")).toBe("/var/log/processmaster");
    expect(defaultLogDirectory("/srv/pm/config.yaml")).toBe("/srv/pm/logs");
  });

  test("two services writing the same log file explicitly: the later one is reported with a hint", () => {
    const t = tree("", { "one.yaml": "process:\n  command: x\nlogs: { stdout: /tmp/shared.log }\n", "two.yaml": "process:\n  command: y\nlogs:\n  stdout: /tmp/shared.log\n" });
    const c = loadConfig(t.master);
    expect([...c.services.keys()]).toEqual(["one"]);
    expect(c.serviceErrors).toHaveLength(1);
    expect(formatProblem(c.serviceErrors[0]!)).toMatch(/two\.yaml:4: logs\.stdout: \/tmp\/shared\.log is already written by service 'one' .*one\.yaml.*setting logs\.stdout/);
  });

  test("a service may send stdout and stderr to the same file", () => {
    expect(loadOne("process:\n  command: x\nlogs: { stdout: all.log, stderr: all.log }\n").svc.logs.stderr).toEndWith("all.log");
  });

  test("top-level x- keys are ignored, so they can hold YAML anchors", () => {
    const { svc } = loadOne("x-cmd: &cmd [sleep, '5']\nprocess:\n  command: *cmd\n");
    expect(svc.process.command).toEqual(["sleep", "5"]);
  });

  test("an unknown alias is one problem on its line", () => {
    expect(serviceProblems("process:\n  command: *nope\n").map(formatProblem)).toEqual([expect.stringMatching(/:2: process\.command: unknown alias '\*nope'/)]);
  });

  test("several YAML documents in one file are an error", () => {
    expect(serviceProblems("process:\n  command: x\n---\nb: 1\n")[0]!.message).toMatch(/exactly one YAML document/);
  });

  test("deeply nested YAML is an error, not a crash", () => {
    const p = serviceProblems(`process:\n  command: ${"[".repeat(20_000)}\n`);
    expect(p.length).toBeGreaterThanOrEqual(1);
    expect(p.length).toBeLessThanOrEqual(6);
    expect(p[0]!.message).toMatch(/YAML/);
  });

  test("a FIFO named like a service file is reported without blocking", () => {
    const t = tree("", { "ok.yaml": "process:\n  command: x\n" });
    const fifo = path.join(t.dir, "config.d", "pipe.yaml");
    if (Bun.spawnSync(["mkfifo", fifo]).exitCode !== 0) return;
    expect(checkConfig(t.master).map(formatProblem)).toEqual([expect.stringMatching(/pipe\.yaml: is not a regular file/)]);
  });

  test("checkConfig reports master and service problems together, empty when all is good", () => {
    const t = tree("sock_mode: 9\n", { "s.yaml": "process:\n  command: x\n  stop_signal: NOPE\n" });
    expect(checkConfig(t.master).map((p) => p.key)).toEqual(["sock_mode", "process.stop_signal"]);
    expect(checkConfig(tree("", { "s.yaml": "process:\n  command: x\n" }).master)).toEqual([]);
  });
});

describe("bad-config corpus: one clear problem naming the file", () => {
  const corpus = path.join(import.meta.dir, "fixtures", "bad-config");
  const cases: [file: string, line: number | undefined, key: string | undefined, message: RegExp][] = [
    ["unknown-key.yaml", 4, "restart", /unknown key 'restart'; did you mean 'restart_policy'\? expected one of: name, enabled, process, logs, restart_policy, resources/],
    ["missing-command.yaml", 1, "process.command", /missing command/],
    ["negative-duration.yaml", 3, "process.stop_grace_ms", /negative value '-5'/],
    ["bad-signal.yaml", 3, "process.stop_signal", /expected a signal name .*found text 'SIGFOO'/],
    ["bad-cron.yaml", 3, "process.schedule", /invalid cron schedule '61 \* \* \* \*'/],
    ["bad-timezone.yaml", 4, "process.schedule_timezone", /unknown timezone 'Mars\/Olympus_Mons'/],
    ["schedule-always.yaml", 5, "restart_policy.policy", /a scheduled job is re-run by its schedule; use policy: never or on-failure/],
    ["max-restarts-zero.yaml", 6, "restart_policy.tolerance.max_restarts", /use restart_policy\.policy: never/],
    ["yaml-syntax.yaml", 3, undefined, /YAML syntax error/],
    ["not-a-mapping.yaml", 1, undefined, /expected a mapping at the top level .*found a list/],
    ["unterminated-quote.yaml", 2, "process.command", /unterminated single quote/],
    ["wrong-type.yaml", 1, "enabled", /expected true or false, found text 'yes'/],
    ["huge-number.yaml", 4, "resources.cpu_weight", /expected a whole number from 1 to 10000, found a number too large to use/],
    ["binary-junk.yaml", 3, undefined, /not valid UTF-8/],
    ["bad-cpu-max.yaml", 4, "resources.cpu_max", /expected a CPU limit.*found 'fast'/],
    ["backoff-max-too-small.yaml", 6, "restart_policy.restart_backoff_max_ms", /must be at least restart_backoff_ms \(5000 ms\)/],
    ["shell-operator.yaml", 2, "process.command", /'>' is a shell operator/],
    ["bad-name.yaml", 1, "name", /may contain only letters, digits/],
    ["size-rotation-without-size.yaml", 4, "logs.rotation_mode", /needs logs\.rotation_size/],
    ["duplicate-key.yaml", 3, undefined, /Map keys must be unique/],
    ["nested-environment.yaml", 6, "process.environment.NESTED", /expected a text, number or boolean value .*found a mapping/],
    ["empty-command.yaml", 2, "process.command", /found an empty command/],
    ["unknown-user.yaml", 3, "process.user", /unknown user 'no-such-user-pm-test'/],
  ];

  test("every fixture file has a case", () => {
    expect(fs.readdirSync(corpus).sort()).toEqual(cases.map((c) => c[0]).sort());
  });

  for (const [file, line, key, message] of cases) {
    test(file, () => {
      const t = tree("");
      fs.copyFileSync(path.join(corpus, file), path.join(t.dir, "config.d", file));
      const problems = checkConfig(t.master);
      expect(problems).toHaveLength(1);
      const p = problems[0]!;
      expect(p.file).toBe(path.join(t.dir, "config.d", file));
      expect(p.line).toBe(line);
      expect(p.key).toBe(key);
      expect(p.message).toMatch(message);
    });
  }
});

describe("splitCommand", () => {
  test("plain words split on spaces, tabs and newlines", () => {
    expect(splitCommand("  ls  -la\t/tmp\n x ")).toEqual(["ls", "-la", "/tmp", "x"]);
    expect(splitCommand("")).toEqual([]);
  });

  test("single quotes keep everything literally", () => {
    expect(splitCommand(`echo 'a  b' 'it\\s' '"q"'`)).toEqual(["echo", "a  b", "it\\s", '"q"']);
  });

  test("double quotes: only \\\" \\\\ \\$ \\` are escapes", () => {
    expect(splitCommand(`echo "a \\"b\\" \\\\ \\$x \\n"`)).toEqual(["echo", 'a "b" \\ $x \\n']);
  });

  test("unquoted backslash escapes the next character; backslash-newline joins lines", () => {
    expect(splitCommand("a\\ b c\\\nd \\'x")).toEqual(["a b", "cd", "'x"]);
  });

  test("adjacent quoted parts make one word; empty quotes make an empty word", () => {
    expect(splitCommand(`a'b'"c"d '' ""`)).toEqual(["abcd", "", ""]);
  });

  test("no expansion of variables, globs, tildes or comments", () => {
    expect(splitCommand("echo $HOME *.txt ~ #x")).toEqual(["echo", "$HOME", "*.txt", "~", "#x"]);
  });

  test("unterminated quotes and a trailing backslash throw CONFIG_INVALID", () => {
    for (const bad of [`echo 'abc`, `echo "abc`, `echo "a\\"`, "echo \\"]) {
      expect(() => splitCommand(bad)).toThrow();
      try { splitCommand(bad); } catch (e) { expect(isPmError(e, "CONFIG_INVALID")).toBe(true); }
    }
  });

  test("a string command with quoted shell operators is fine", () => {
    expect(loadOne(`process:\n  command: "grep '>' file"\n`).svc.process.command).toEqual(["grep", ">", "file"]);
  });
});

describe("users and groups", () => {
  test("resolveUser by name and by number", () => {
    expect(resolveUser("root")).toMatchObject({ name: "root", uid: 0, gid: 0 });
    expect(resolveUser("0")?.name).toBe("root");
    expect(resolveUser("no-such-user-pm-test")).toBeNull();
  });

  test("resolveGroup and userGroups read the group file", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pm-users-"));
    tmpDirs.push(dir);
    const passwd = path.join(dir, "passwd");
    const group = path.join(dir, "group");
    fs.writeFileSync(passwd, "# comment\nalice:x:1000:1000:Alice:/home/alice:/bin/zsh\nbroken line\n");
    fs.writeFileSync(group, "alice:x:1000:\nwheel:x:10:bob,alice\naudio:x:29:alice\nvideo:x:44:bob\n");
    expect(resolveUser("alice", passwd)).toEqual({ name: "alice", uid: 1000, gid: 1000, home: "/home/alice", shell: "/bin/zsh" });
    expect(resolveGroup("wheel", group)).toEqual({ name: "wheel", gid: 10, members: ["bob", "alice"] });
    expect(resolveGroup("44", group)?.name).toBe("video");
    expect(userGroups("alice", 1000, group)).toEqual([1000, 10, 29]);
    expect(userGroups("carol", 5, group)).toEqual([5]);
  });

  test("an unchanged passwd file is parsed once; any change to it is seen at the next lookup", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pm-users-"));
    tmpDirs.push(dir);
    const passwd = path.join(dir, "passwd");
    fs.writeFileSync(passwd, "alice:x:1000:1000::/home/alice:/bin/sh\n");
    const reads = spyOn(fs, "readFileSync");
    try {
      expect(resolveUser("alice", passwd)?.uid).toBe(1000);
      expect(resolveUser("alice", passwd)?.uid).toBe(1000);
      expect(reads.mock.calls.filter((c) => c[0] === passwd)).toHaveLength(1);
      // Same size, rewritten in place: the mtime/ctime change says so.
      fs.writeFileSync(passwd, "alice:x:1001:1000::/home/alice:/bin/sh\n");
      const st = fs.statSync(passwd);
      fs.utimesSync(passwd, st.atime, new Date(st.mtimeMs - 60_000)); // even with an older mtime
      expect(resolveUser("alice", passwd)?.uid).toBe(1001);
      // Replaced by rename (vipw): a new inode.
      fs.writeFileSync(`${passwd}.new`, "alice:x:1002:1000::/home/alice:/bin/sh\n");
      fs.renameSync(`${passwd}.new`, passwd);
      expect(resolveUser("alice", passwd)?.uid).toBe(1002);
      fs.rmSync(passwd);
      expect(resolveUser("alice", passwd)).toBeNull();
    } finally { reads.mockRestore(); }
  });
});

describe("scanning many service files", () => {
  test("each log folder is resolved once per scan", () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 30; i++) files[`s${i}.yaml`] = `process: { command: ["/bin/true"] }\nlogs: { stdout: logs/s${i}.out, stderr: logs/s${i}.err }\n`;
    const t = tree("", files);
    fs.mkdirSync(path.join(t.dir, "logs"));
    const realpaths = spyOn(fs, "realpathSync");
    try {
      const c = loadConfig(t.master);
      expect(c.serviceErrors).toEqual([]);
      expect(c.services.size).toBe(30);
      expect(realpaths.mock.calls.filter((a) => a[0] === path.join(t.dir, "logs"))).toHaveLength(1);
    } finally { realpaths.mockRestore(); }
  });
});
