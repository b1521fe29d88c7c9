/**
 * The process environment of a real daemon: limits (prlimit, seen in /proc/PID/limits), umask,
 * environment files (read at each start, checked by `check`), supplementary groups, and the
 * runtime directory (made before start, owned by the service's user, removed after stop,
 * without following symlinks).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveGroup } from "../src/config/users.ts";
import { NEW_LOG_MODE } from "../src/logs/open.ts";
import { waitUntil, World } from "./helpers/harness.ts";

let world: World;
const extraCleanup: string[] = [];
afterEach(async () => {
  await world?.cleanup();
  for (const p of extraCleanup.splice(0)) rmSync(p, { recursive: true, force: true });
});

const NOBODY = 65534;
const runName = () => `pmtest-rt-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

async function runningPid(name: string): Promise<number> {
  return waitUntil(async () => { const a = await world.app(name); return a.state === "running" && a.pids.length === 1 && a.pids[0]; }, `${name} to run`, 15_000);
}

const stdoutOf = (name: string) => { try { return readFileSync(join(world.appDir(name), "stdout.log"), "utf8"); } catch { return ""; } };

function limitsOf(pid: number, label: string): [string, string] {
  const line = readFileSync(`/proc/${pid}/limits`, "utf8").split("\n").find((l) => l.startsWith(label))!;
  const [soft, hard] = line.slice(label.length).trim().split(/\s+/);
  return [soft!, hard!];
}

describe("process setup", () => {
  test("limits, umask, environment files, supplementary groups and a runtime directory hold for a service run as nobody", async () => {
    world = new World();
    chmodSync(world.dir, 0o755);
    const rt = runName();
    const envFile = join(world.dir, "svc.env");
    writeFileSync(envFile, [
      "# a comment", "; another", "", "A=from-file", "B='single $HOME quoted'", 'C="double \\"quoted\\""', "  D = spaced  ", "E=$HOME",
    ].join("\n"));
    world.writeService("env", {
      process: {
        command: ["sh", "-c", `touch /run/${rt}/made-by-service; echo "umask=$(umask) A=$A B=$B C=$C D=$D E=$E F=$F"; exec sleep 1000`],
        user: "nobody", environment: { A: "from-yaml", F: "yaml-only" },
        environment_file: [envFile, "-" + join(world.dir, "missing.env")],
        // Every one of the 8, each unlike the daemon's own (what a service would otherwise inherit).
        limits: {
          nofile: "2048:8192", core: "unlimited", memlock: { soft: "64K", hard: "128K" }, nproc: "5000:6000",
          stack: "4M:16M", cpu: { soft: 100, hard: 200 }, fsize: "1G:unlimited", as: "8G",
        },
        umask: "0027", supplementary_groups: ["adm"], runtime_directory: rt, runtime_directory_mode: "0750",
        stop_grace_ms: 2000,
      },
    });
    extraCleanup.push(join("/run", rt));
    await world.daemon();
    const pid = await runningPid("env");
    expect({
      nofile: limitsOf(pid, "Max open files"), core: limitsOf(pid, "Max core file size"), memlock: limitsOf(pid, "Max locked memory"),
      nproc: limitsOf(pid, "Max processes"), stack: limitsOf(pid, "Max stack size"), cpu: limitsOf(pid, "Max cpu time"),
      fsize: limitsOf(pid, "Max file size"), as: limitsOf(pid, "Max address space"),
    }).toEqual({
      nofile: ["2048", "8192"], core: ["unlimited", "unlimited"], memlock: [String(64 * 1024), String(128 * 1024)],
      nproc: ["5000", "6000"], stack: [String(4 << 20), String(16 << 20)], cpu: ["100", "200"],
      fsize: [String(2 ** 30), "unlimited"], as: [String(8 * 2 ** 30), String(8 * 2 ** 30)],
    });
    await waitUntil(() => stdoutOf("env").includes("umask="), "the service's line");
    // No expansion; files override `environment`, as systemd's EnvironmentFile=.
    expect(stdoutOf("env")).toBe('umask=0027 A=from-file B=single $HOME quoted C=double "quoted" D=spaced E=$HOME F=yaml-only\n');
    const groups = (/^Groups:\s*(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? "").split(/\s+/).filter(Boolean).map(Number);
    expect(groups).toContain(resolveGroup("adm")!.gid);
    const dir = statSync(join("/run", rt));
    expect({ uid: dir.uid, gid: dir.gid, mode: dir.mode & 0o7777 }).toEqual({ uid: NOBODY, gid: NOBODY, mode: 0o750 });
    const made = statSync(join("/run", rt, "made-by-service"));
    expect({ uid: made.uid, mode: made.mode & 0o777 }).toEqual({ uid: NOBODY, mode: 0o640 }); // 0666 & ~027
    const logFile = statSync(join(world.appDir("env"), "stdout.log"));
    expect(logFile.mode & 0o777).toBe(NEW_LOG_MODE); // the daemon's file, fchmod'ed whatever the umask
    expect({ uid: logFile.uid, gid: logFile.gid }).toEqual({ uid: 0, gid: NOBODY }); // root's, readable by the service's group, umask or not

    expect((await world.pmctl(["stop", "env"])).code).toBe(0);
    expect(existsSync(join("/run", rt))).toBe(false);
  });

  test("the environment file is read at each start: a restart sees the new value", async () => {
    world = new World();
    const envFile = join(world.dir, "svc.env");
    writeFileSync(envFile, "GREETING=one\n");
    world.writeService("env", { process: { command: ["sh", "-c", 'echo "$GREETING"; exec sleep 1000'], environment_file: envFile, stop_grace_ms: 2000 } });
    await world.daemon();
    await waitUntil(() => stdoutOf("env") === "one\n", "the first value");
    writeFileSync(envFile, "GREETING=two\n");
    expect((await world.pmctl(["restart", "env"])).code).toBe(0);
    await waitUntil(() => stdoutOf("env") === "one\ntwo\n", "the second value");
  });

  test("check reports a missing environment file (not one marked with '-') and a bad line with its number", async () => {
    world = new World();
    const bad = join(world.dir, "bad.env");
    writeFileSync(bad, "OK=1\nnot a line\n");
    const file = world.writeService("env", { process: { command: ["sleep", "1"], environment_file: [join(world.dir, "nope.env"), "-" + join(world.dir, "nope2.env"), bad] } });
    const res = await world.pmctl(["check"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(
      `${file}: process.environment_file: environment_file ${join(world.dir, "nope.env")} does not exist (prefix the name with '-' to make it optional)\n` +
      `${file}: process.environment_file: environment_file ${bad}:2: expected KEY=value\n`);
  });

  test("a start that fails after the runtime directory was made removes it again", async () => {
    world = new World();
    const rt = runName();
    extraCleanup.push(join("/run", rt));
    world.writeService("gone", { process: { command: ["/nonexistent/program"], runtime_directory: rt } });
    const d = await world.daemon();
    await waitUntil(async () => (await world.app("gone")).state === "failed", "the start to fail");
    expect(d.output()).toContain("/nonexistent/program");
    expect(existsSync(join("/run", rt))).toBe(false);
  });

  test("a missing environment file fails the start and says which file", async () => {
    world = new World();
    world.writeService("env", { process: { command: ["sleep", "1000"], environment_file: join(world.dir, "nope.env") } });
    const d = await world.daemon();
    await waitUntil(async () => (await world.app("env")).state === "failed", "the start to fail");
    expect(d.output()).toContain(`environment_file ${join(world.dir, "nope.env")} does not exist`);
  });

  test("config errors name the key and the value", async () => {
    world = new World();
    const file = world.writeService("bad", {
      process: { command: ["sleep", "1"], limits: { nofile: "4096:1024", nproc: "lots", stack: { soft: 1 } }, umask: "0999", exit_type: "sometimes", runtime_directory: "../etc" },
    });
    const res = await world.pmctl(["check"]);
    expect(res.code).toBe(1);
    for (const msg of [
      "process.limits.nofile: the soft limit (4096) must not be above the hard limit (1024)",
      "process.limits.nproc: expected a whole number or 'unlimited' for nproc, found 'lots'",
      "process.limits.stack: expected both soft and hard, found no hard",
      "process.umask: expected an octal mode like 022 or 0027 (at most 0777), found '0999'",
      "process.exit_type: expected one of auto, main, cgroup; found text 'sometimes'",
      "process.runtime_directory: runtime_directory '../etc' must be a folder name under /run without '.' or '..' parts",
    ]) expect(res.stderr).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+: ${msg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
  });
});

describe("runtime directory safety (the daemon is root, the service is not)", () => {
  test("what the service leaves inside is removed without following its symlinks", async () => {
    world = new World();
    chmodSync(world.dir, 0o755);
    const rt = runName();
    const precious = mkdtempSync(join(tmpdir(), "pmtest-precious-"));
    extraCleanup.push(precious, join("/run", rt));
    writeFileSync(join(precious, "keep"), "root's\n");
    world.writeService("rt", {
      process: {
        command: ["sh", "-c", `ln -s ${precious} /run/${rt}/link && mkdir /run/${rt}/sub && ln -s ${precious}/keep /run/${rt}/sub/keep && echo ready; exec sleep 1000`],
        user: "nobody", runtime_directory: rt, stop_grace_ms: 2000,
      },
    });
    await world.daemon();
    await waitUntil(() => stdoutOf("rt").includes("ready"), "the service to plant its symlinks");
    const made = statSync(join("/run", rt)); // no runtime_directory_mode: 0755, the service's user owns it
    expect({ uid: made.uid, gid: made.gid, mode: made.mode & 0o7777 }).toEqual({ uid: NOBODY, gid: NOBODY, mode: 0o755 });
    expect((await world.pmctl(["stop", "rt"])).code).toBe(0);
    expect(existsSync(join("/run", rt))).toBe(false);
    expect(readFileSync(join(precious, "keep"), "utf8")).toBe("root's\n");
  });

  test("a symlink where the runtime directory goes is refused, and its target is left as it was", async () => {
    world = new World();
    const rt = runName();
    const target = mkdtempSync(join(tmpdir(), "pmtest-target-"));
    extraCleanup.push(target, join("/run", rt));
    symlinkSync(target, join("/run", rt));
    world.writeService("rt", { process: { command: ["sleep", "1000"], user: "nobody", runtime_directory: rt } });
    const d = await world.daemon();
    await waitUntil(async () => (await world.app("rt")).state === "failed", "the start to fail");
    expect(d.output()).toContain(`cannot make runtime_directory /run/${rt}: it is a symbolic link`);
    expect(statSync(target).uid).toBe(0);
    expect(lstatSync(join("/run", rt)).isSymbolicLink()).toBe(true);
  });

  test("nested names: a folder on the way that is not root's is refused", async () => {
    world = new World();
    const rt = runName();
    mkdirSync(join("/run", rt));
    extraCleanup.push(join("/run", rt));
    chmodSync(join("/run", rt), 0o777);
    world.writeService("rt", { process: { command: ["sleep", "1000"], user: "nobody", runtime_directory: `${rt}/inner` } });
    const d = await world.daemon();
    await waitUntil(async () => (await world.app("rt")).state === "failed", "the start to fail");
    expect(d.output()).toContain(`cannot make runtime_directory /run/${rt}: it is writable by others (mode 777)`);
    expect(existsSync(join("/run", rt, "inner"))).toBe(false);
  });
});
