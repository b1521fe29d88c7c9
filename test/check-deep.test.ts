/**
 * `check` finds what would fail only at run time, as the service's user would meet it, and tells
 * warnings (exit 0) from errors (exit 1). Runs as root, with `nobody` as the service user.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { closestName } from "../src/config/suggest.ts";
import { World } from "./helpers/harness.ts";

setDefaultTimeout(60_000);

let world: World;
afterEach(async () => { await world?.cleanup(); });

const asRoot = process.getuid?.() === 0;

describe("check: run-time problems", () => {
  test("a program not on PATH is an error naming the PATH searched", async () => {
    world = new World();
    world.writeService("ghost", { process: { command: ["no-such-program-pm14", "--flag"], environment: { PATH: "/usr/bin:/bin" } } });
    const r = await world.pmctl(["check"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ghost\.yaml: process\.command: cannot run 'no-such-program-pm14' as \S+.*not found on PATH \(\/usr\/bin:\/bin\)/);
  });

  test("a program found only on check's own PATH is an error: the service runs on the daemon's clean PATH", async () => {
    world = new World();
    const bin = join(world.dir, "only-here");
    mkdirSync(bin);
    writeFileSync(join(bin, "pm14-only-here"), "#!/bin/sh\nexec sleep 1000\n", { mode: 0o755 });
    world.writeService("clean", { process: { command: ["pm14-only-here"] } });
    // It is found where the service's PATH says: its own environment.PATH, or the daemon's when inherited.
    world.writeService("ownpath", { process: { command: ["pm14-only-here"], environment: { PATH: `${bin}:/usr/bin:/bin` } } });
    world.writeService("inherits", { process: { command: ["pm14-only-here"], inherit_environment: true } });
    const r = await world.pmctl(["check"], { PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}` });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/clean\.yaml: process\.command: cannot run 'pm14-only-here' as \S+.*not found on PATH \(\/usr\/local\/sbin:\/usr\/local\/bin:\/usr\/sbin:\/usr\/bin:\/sbin:\/bin\)/);
    expect(r.stderr).not.toMatch(/ownpath\.yaml|inherits\.yaml/);
  });

  test("a stop_command given as a missing path is an error", async () => {
    world = new World();
    world.writeService("svc", { process: { command: ["sleep", "1000"], stop_command: ["./bin/stop-it"] } });
    const r = await world.pmctl(["check"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/process\.stop_command: cannot run '\.\/bin\/stop-it'.*apps\/svc\/bin\/stop-it does not exist/);
  });

  test.skipIf(!asRoot)("the service's user must be able to execute the program and enter the working directory", async () => {
    world = new World();
    const secret = join(world.dir, "secret");
    mkdirSync(join(secret, "wd"), { recursive: true });
    writeFileSync(join(secret, "prog"), "#!/bin/sh\nexec sleep 1000\n", { mode: 0o755 });
    chmodSync(secret, 0o700); // only root may enter
    chmodSync(world.dir, 0o755);
    const open = join(world.dir, "open");
    mkdirSync(open, { mode: 0o755 });
    writeFileSync(join(open, "rootonly"), "#!/bin/sh\nexec sleep 1000\n", { mode: 0o744 });
    // Working directories default to a folder of each service's own (harness), open to all.
    world.writeService("hidden", { process: { command: [join(secret, "prog")], user: "nobody" } });
    world.writeService("noexec", { process: { command: [join(open, "rootonly")], user: "nobody" } });
    world.writeService("nowd", { process: { command: ["sleep", "1000"], user: "nobody", working_directory: join(secret, "wd") } });
    world.writeService("fine", { process: { command: [join(open, "rootonly")] } }); // root may run 0744
    const r = await world.pmctl(["check"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/hidden\.yaml: process\.command: cannot run '.*secret\/prog' as user nobody: .*user nobody may not enter .*secret/);
    expect(r.stderr).toMatch(/noexec\.yaml: process\.command: cannot run '.*open\/rootonly' as user nobody: .*is not executable by user nobody \(mode 0744\)/);
    expect(r.stderr).toMatch(/nowd\.yaml: process\.working_directory: .*secret\/wd cannot be entered: user nobody may not enter .*secret/);
    expect(r.stderr).not.toMatch(/fine\.yaml/);
  });

  test("a log folder that cannot be created is an error", async () => {
    world = new World();
    writeFileSync(join(world.dir, "plainfile"), "");
    world.writeService("svc", { process: { command: ["sleep", "1000"] }, logs: { stdout: join(world.dir, "plainfile", "sub", "out.log") } });
    const r = await world.pmctl(["check"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/svc\.yaml: logs\.stdout: log file .*plainfile\/sub\/out\.log .*plainfile is not a folder/);
  });
});

describe("check: warnings and suggestions", () => {
  test("a stop grace under 1 s is a warning: printed, exit 0; under --json listed apart", async () => {
    world = new World();
    world.writeService("quick", { process: { command: ["sleep", "1000"], stop_grace_ms: 200 } });
    const r = await world.pmctl(["check"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/: ok \(1 warning\)/);
    expect(r.stderr).toMatch(/^warning: .*quick\.yaml: process\.stop_grace_ms: 200 ms is shorter than 1 s/m);
    const j = JSON.parse((await world.pmctl(["check", "--json"])).stdout);
    expect(j.problems).toEqual([]);
    expect(j.warnings).toHaveLength(1);
  });

  test("an unknown key suggests the nearest known one", async () => {
    world = new World();
    world.writeRawService("typo.yaml", "process:\n  command: sleep 1\n  stop_grace: 5s\nrestart_polcy:\n  policy: always\n");
    const r = await world.pmctl(["check"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/typo\.yaml:3: process\.stop_grace: unknown key 'stop_grace'; did you mean 'stop_grace_ms'\?/);
    expect(r.stderr).toMatch(/typo\.yaml:4: restart_polcy: unknown key 'restart_polcy'; did you mean 'restart_policy'\?/);
  });

  test("closestName: near misses, case and dashes; nothing for far-off words", () => {
    const keys = ["command", "working_directory", "stop_grace_ms", "user"];
    expect(closestName("comand", keys)).toBe("command");
    expect(closestName("comamnd", keys)).toBe("command");
    expect(closestName("Working-Directory", keys)).toBe("working_directory");
    expect(closestName("usr", keys)).toBe("user");
    expect(closestName("banana", keys)).toBeNull();
  });

  test("closestName: an abbreviation, word by word, of exactly one name", () => {
    const master = ["config_directory", "sock_path", "sock_read_group", "log_directory", "cgroup_memory_max", "cgroup_memory_swap_max"];
    expect(closestName("log_dir", master)).toBe("log_directory");
    expect(closestName("cgroup_mem_max", master)).toBe("cgroup_memory_max");
    expect(closestName("sock_read", master)).toBe("sock_read_group");
    expect(closestName("cgroup_mem", master)).toBeNull(); // two names begin so: no guess
    expect(closestName("lo", master)).toBeNull();
    expect(closestName("stop", ["stop_signal", "stop_mode", "stop_command"])).toBeNull();
  });

  test("an abbreviated master key gets its suggestion from check", async () => {
    world = new World({ master: { log_dir: "./logs" } });
    const r = await world.pmctl(["check"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/config\.yaml:\d+: log_dir: unknown key 'log_dir'; did you mean 'log_directory'\?/);
  });
});
