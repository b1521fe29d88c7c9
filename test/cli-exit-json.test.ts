/**
 * What scripts rely on: `status` exits 4 when a service is unhealthy, every `--json` output is
 * one JSON document with snake_case keys (errors too, with the same exit code), `logs --json`
 * gives one object a line, and `show` prints the effective config.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { waitUntil, World } from "./helpers/harness.ts";

setDefaultTimeout(60_000);

let world: World;
afterEach(async () => { await world?.cleanup(); });

const sleeper = { process: { command: ["sleep", "1000"], stop_grace_ms: 2000 } };
const failing = { process: { command: ["sh", "-c", "exit 3"] } };

/** Every object key anywhere in a JSON value. */
function keysOf(v: unknown): string[] {
  if (Array.isArray(v)) return v.flatMap(keysOf);
  if (v === null || typeof v !== "object") return [];
  return Object.entries(v).flatMap(([k, x]) => [k, ...keysOf(x)]);
}
const notSnake = (v: unknown) => keysOf(v).filter((k) => !/^[a-z0-9_]+$/.test(k));

describe("status exit codes", () => {
  test("0 when all listed services are healthy, 4 when one is failed; the table prints either way", async () => {
    world = new World();
    world.writeService("up", sleeper);
    world.writeService("broken", failing);
    await world.daemon();
    await waitUntil(async () => (await world.app("broken")).state === "failed", "broken to fail");
    await waitUntil(async () => (await world.app("up")).state === "running", "up to run");

    const all = await world.pmctl(["status"]);
    expect(all.code).toBe(4);
    expect(all.stdout).toMatch(/broken\s+failed/);
    expect(all.stdout).toMatch(/up\s+running/);

    const upOnly = await world.pmctl(["status", "up"]);
    expect(upOnly.code).toBe(0);
    const brokenJson = await world.pmctl(["status", "broken", "--json"]);
    expect(brokenJson.code).toBe(4);
    expect(JSON.parse(brokenJson.stdout).apps[0].state).toBe("failed");

    // Stopping the failed service (operator stop) makes it healthy: exit 0 again.
    expect((await world.pmctl(["stop", "broken"])).code).toBe(0);
    expect((await world.pmctl(["status"])).code).toBe(0);
  });

  test("a service in backoff counts as unhealthy", async () => {
    world = new World();
    world.writeService("flappy", { process: { command: ["sh", "-c", "exit 1"] }, restart_policy: { policy: "always", restart_backoff_ms: "1h" } });
    await world.daemon();
    await waitUntil(async () => (await world.app("flappy")).state === "backoff", "flappy in backoff");
    const r = await world.pmctl(["status"]);
    expect(r.code).toBe(4);
    expect(r.stdout).toMatch(/next attempt \S+ \(in (59m|1h)/); // local time, then how far ahead
    const json = JSON.parse((await world.pmctl(["status", "--json"])).stdout);
    expect(json.apps[0].next_attempt_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/); // JSON keeps ISO UTC
  });

  test("a suppressed service counts as unhealthy", async () => {
    world = new World();
    world.writeService("crashy", { process: { command: ["sh", "-c", "exit 1"] }, restart_policy: { policy: "always", restart_backoff_ms: 100, tolerance: { max_restarts: 1, duration: "1h" } } });
    world.writeService("up", sleeper);
    await world.daemon();
    await waitUntil(async () => (await world.app("crashy")).state === "suppressed", "crashy suppressed");
    const r = await world.pmctl(["status"]);
    expect(r.code).toBe(4);
    expect(r.stdout).toMatch(/crashy\s+suppressed\s.*1 restart in 1h/);
    expect((await world.pmctl(["status", "up"])).code).toBe(0);
  });

  test("--help lists every exit code", async () => {
    world = new World();
    const help = await world.pmctl(["--help"]);
    expect(help.code).toBe(0);
    for (const code of [0, 1, 2, 3, 4]) expect(help.stdout).toMatch(new RegExp(`^  ${code}  \\S`, "m"));
  });
});

describe("--json everywhere", () => {
  test("errors are one JSON document on stdout with the same exit code as without --json", async () => {
    world = new World();
    world.writeService("up", sleeper);
    // Daemon down: 3.
    const down = await world.pmctl(["status", "--json"]);
    expect(down.code).toBe(3);
    expect(JSON.parse(down.stdout)).toEqual({ error: { code: "DAEMON_UNREACHABLE", message: expect.stringContaining(world.sockPath) } });
    expect((await world.pmctl(["status"])).code).toBe(3);

    await world.daemon();
    const unknown = await world.pmctl(["start", "nope", "--json"]);
    expect(unknown.code).toBe(1);
    expect(JSON.parse(unknown.stdout).error).toEqual({ code: "UNKNOWN_SERVICE", message: expect.stringContaining("'nope'") });

    const usage = await world.pmctl(["--json", "frobnicate"]);
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stdout).error.code).toBe("USAGE");
    const badFlag = await world.pmctl(["status", "--json", "--bogus"]);
    expect(badFlag.code).toBe(2);
    expect(JSON.parse(badFlag.stdout).error.message).toContain("--bogus");
  });

  test("update, rotate, status, start and check print snake_case keys only", async () => {
    world = new World();
    world.writeService("web", { ...sleeper, resources: { pids_max: 100 } });
    await world.daemon();
    await waitUntil(async () => (await world.app("web")).state === "running", "web to run");
    world.writeService("web", { ...sleeper, resources: { pids_max: 200 } });
    const update = await world.pmctl(["update", "--json"]);
    expect(update.code).toBe(0);
    const report = JSON.parse(update.stdout);
    expect(report.resources_only).toEqual(["web"]);
    for (const args of [["update"], ["rotate"], ["status"], ["start", "web"], ["check"], ["show", "web"]]) {
      const r = await world.pmctl([...args, "--json"]);
      expect(r.stdout.trim().split("\n")).toHaveLength(1);
      expect(notSnake(JSON.parse(r.stdout)), `${args.join(" ")} --json`).toEqual([]);
    }
  });

  test("logs --json prints one {app, file, line} object per line", async () => {
    world = new World();
    world.writeService("talker", { process: { command: ["sh", "-c", "echo one; echo two; echo oops >&2; exec sleep 1000"], stop_grace_ms: 1000 } });
    await world.daemon();
    const stdoutLog = join(world.appDir("talker"), "stdout.log");
    await waitUntil(async () => (await Bun.file(stdoutLog).text().catch(() => "")).includes("two"), "talker's output");
    const r = await world.pmctl(["logs", "talker", "--json", "-n", "5"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(lines).toContainEqual({ app: "talker", file: stdoutLog, line: "one" });
    expect(lines).toContainEqual({ app: "talker", file: stdoutLog, line: "two" });
    expect(lines).toContainEqual({ app: "talker", file: join(world.appDir("talker"), "stderr.log"), line: "oops" });
  });
});

describe("show", () => {
  test("prints the effective config with defaults and its file; an unknown name is exit 1", async () => {
    world = new World();
    const file = world.writeService("web", { process: { command: "sleep 1000" } });
    const text = await world.pmctl(["show", "web"]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`effective config from ${file}`);
    expect(text.stdout).toMatch(/stop_grace_ms: 30000/);
    expect(text.stdout).toMatch(/rotation_frequency: daily/);
    const json = JSON.parse((await world.pmctl(["show", "web", "--json"])).stdout);
    expect(json.file).toBe(file);
    expect(json.config.process.command).toEqual(["sleep", "1000"]);
    expect(json.config.restart_policy).toEqual({ policy: "never", restart_backoff_ms: 1000, restart_backoff_max_ms: null, tolerance: { max_restarts: 3, duration: 60000 } });
    expect(json.config.logs.rotation_max_age_ms).toBe(30 * 86_400_000);
    expect(json.config.process).toMatchObject({ start_seconds: 1, inherit_environment: false, exit_type: "auto", stop_mode: "all", limits: {}, umask: null, runtime_directory_mode: "0755" });
    expect([json.config.readiness, json.config.liveness, json.config.depends_on]).toEqual([null, null, {}]);
    const unknown = await world.pmctl(["show", "nope"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown service 'nope' \(known: web\)/);
    writeFileSync(join(world.confDir, "bad.yaml"), "process:\n  comand: x\n");
    const bad = await world.pmctl(["show", "bad"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/bad\.yaml:2: process\.comand: unknown key 'comand'; did you mean 'command'\?/);
  });
});
