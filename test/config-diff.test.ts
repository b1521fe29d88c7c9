import { afterAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { diffConfigs, loadConfig } from "../src/config/load.ts";
import type { Config } from "../src/config/types.ts";

const tmpDirs: string[] = [];
afterAll(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

/** One folder all services of all trees run in, so only the intended differences differ. */
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "pm-diff-work-"));
tmpDirs.push(workDir);

/** Load a config whose services are given as `name → extra YAML` (added below a standard body). */
function cfg(services: Record<string, string>): Config {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pm-diff-"));
  tmpDirs.push(dir);
  fs.writeFileSync(path.join(dir, "config.yaml"), "");
  fs.mkdirSync(path.join(dir, "config.d"));
  for (const [name, extra] of Object.entries(services)) {
    const body = [
      "process:", "  command: sleep 100", `  working_directory: ${workDir}`,
      "logs:", `  stdout: ${name}.out`, `  stderr: ${name}.err`, extra,
    ].join("\n");
    fs.writeFileSync(path.join(dir, "config.d", `${name}.yaml`), body + "\n");
  }
  const c = loadConfig(path.join(dir, "config.yaml"));
  expect(c.serviceErrors).toEqual([]);
  return c;
}

/** Diff of two configs with one service `s`, its standard body followed by `before` / `after` (top-level YAML). */
function diffOne(before: string, after: string) {
  return diffConfigs(cfg({ s: before }), cfg({ s: after }));
}

test("identical configs (loaded from different files) are unchanged", () => {
  const d = diffConfigs(cfg({ a: "", b: "" }), cfg({ a: "", b: "" }));
  expect(d).toEqual({ added: [], removed: [], changed: [], unchanged: ["a", "b"], resourcesOnly: [] });
});

test("added and removed services", () => {
  const d = diffConfigs(cfg({ a: "", b: "" }), cfg({ b: "", c: "" }));
  expect(d.added).toEqual(["c"]);
  expect(d.removed).toEqual(["a"]);
  expect(d.unchanged).toEqual(["b"]);
});

test("a different command is changed", () => {
  const old = cfg({ a: "" });
  const next = cfg({ a: "" });
  next.services.get("a")!.process.command = ["sleep", "200"];
  expect(diffConfigs(old, next).changed).toEqual(["a"]);
});

test("environment, user and stdout changes need a restart", () => {
  expect(diffOne("", "resources: {}\nenabled: true").unchanged).toEqual(["s"]);
  const envOld = cfg({ s: "" });
  const envNew = cfg({ s: "" });
  envNew.services.get("s")!.process.environment = { A: "1" };
  expect(diffConfigs(envOld, envNew).changed).toEqual(["s"]);
  const logOld = cfg({ s: "" });
  const logNew = cfg({ s: "" });
  logNew.services.get("s")!.logs.stdout = "/elsewhere.log";
  expect(diffConfigs(logOld, logNew).changed).toEqual(["s"]);
});

test("enabled flipping counts as changed", () => {
  expect(diffOne("enabled: true", "enabled: false").changed).toEqual(["s"]);
});

test("a schedule change counts as changed", () => {
  const old = cfg({ s: "" });
  const next = cfg({ s: "" });
  next.services.get("s")!.process.schedule = "0 * * * *";
  expect(diffConfigs(old, next).changed).toEqual(["s"]);
});

test("only resources differ: resourcesOnly", () => {
  const d = diffOne("resources:\n  memory_max: 512M", "resources:\n  memory_max: 1G\n  cpu_max: 50%");
  expect(d).toEqual({ added: [], removed: [], changed: [], unchanged: [], resourcesOnly: ["s"] });
});

test("restart_policy, log rotation and stop settings are applied live: resourcesOnly", () => {
  expect(diffOne("", "restart_policy:\n  policy: always\n  tolerance: { max_restarts: 9 }").resourcesOnly).toEqual(["s"]);
  const old = cfg({ s: "" });
  const next = cfg({ s: "" });
  const s = next.services.get("s")!;
  s.logs.rotationFrequency = "hourly";
  s.logs.rotationBackups = 3;
  s.logs.hints = ["/var/log/x"];
  s.process.stopSignal = "SIGINT";
  s.process.stopGraceMs = 5000;
  expect(diffConfigs(old, next).resourcesOnly).toEqual(["s"]);
});

test("a restart-worthy change wins over a resources change", () => {
  const old = cfg({ s: "resources:\n  pids_max: 10" });
  const next = cfg({ s: "resources:\n  pids_max: 20" });
  next.services.get("s")!.process.workingDirectory = "/";
  expect(diffConfigs(old, next).changed).toEqual(["s"]);
});

test("real-daemon keys: stop_mode and reload_* apply in place; exit_type, limits, umask, environment_file, groups, runtime_directory restart", () => {
  const withProcess = (lines: string) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pm-diff-"));
    tmpDirs.push(dir);
    fs.writeFileSync(path.join(dir, "config.yaml"), "");
    fs.mkdirSync(path.join(dir, "config.d"));
    fs.writeFileSync(path.join(dir, "config.d", "s.yaml"), ["process:", "  command: sleep 100", `  working_directory: ${workDir}`, "  user: nobody", lines,
      "logs:", "  stdout: s.out", "  stderr: s.err"].join("\n") + "\n");
    const c = loadConfig(path.join(dir, "config.yaml"));
    expect(c.serviceErrors).toEqual([]);
    return c;
  };
  const base = withProcess("");
  for (const live of ["  stop_mode: main", "  reload_signal: SIGHUP", "  reload_command: [kill, -HUP, x]"]) {
    expect(diffConfigs(base, withProcess(live)).resourcesOnly, live).toEqual(["s"]);
  }
  for (const restart of ["  exit_type: main", "  limits: { nofile: 4096 }", "  umask: \"0027\"", "  environment_file: -/nonexistent.env",
    "  supplementary_groups: [adm]", "  runtime_directory: x", "  runtime_directory_mode: \"0700\""]) {
    expect(diffConfigs(base, withProcess(restart)).changed, restart).toEqual(["s"]);
  }
});
