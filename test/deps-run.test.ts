/** depends_on with real processes: start order, stop order, dependents, cycles, update. */
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { World, waitUntil } from "./helpers/harness.ts";

let world: World;
afterEach(async () => { await world?.cleanup(); });

/**
 * A service that writes `start <ns>` when it starts and `stop <ns>` when SIGTERM arrives, to
 * its own file, and keeps the file `<file>.up` while it runs; with a second argument it prints
 * that line 0.3 s after start (for a log check).
 */
const SCRIPT = `#!/bin/sh
echo "start $(date +%s%N)" >> "$1"
touch "$1.up"
trap 'rm -f "$1.up"; echo "stop $(date +%s%N)" >> "$1"; exit 0' TERM
if [ -n "$2" ]; then sleep 0.3; echo "ready $(date +%s%N)" >> "$1"; echo "$2"; fi
while :; do sleep 0.05; done
`;

/** A one-shot job: writes `start <ns>`, works for $2 seconds, writes `end <ns>`, exits with $3. */
const JOB = `#!/bin/sh
echo "start $(date +%s%N)" >> "$1"
sleep "$2"
echo "end $(date +%s%N)" >> "$1"
exit "$3"
`;

function stamps(world: World, name: string): Record<string, bigint[]> {
  const out: Record<string, bigint[]> = {};
  let text = "";
  try { text = readFileSync(join(world.dir, `${name}.ts`), "utf8"); } catch { return out; }
  for (const line of text.split("\n").filter(Boolean)) {
    const [what, ns] = line.split(" ");
    (out[what!] ??= []).push(BigInt(ns!));
  }
  return out;
}

/** db (ready by a log line) ← api (needs db ready) ← web (needs api started). */
function threeLevels(world: World, enabled = true) {
  const script = join(world.dir, "svc.sh");
  writeFileSync(script, SCRIPT, { mode: 0o755 });
  const svc = (name: string, extra: Record<string, unknown>, arg?: string) => world.writeService(name, {
    enabled, process: { command: ["sh", script, join(world.dir, `${name}.ts`), ...(arg ? [arg] : [])], stop_grace_ms: 5000, start_seconds: "200ms" }, ...extra,
  });
  svc("db", { readiness: { log: "accepting connections", interval: "50ms" } }, "accepting connections");
  svc("api", { depends_on: { db: "ready" } });
  svc("web", { depends_on: { api: "started" } });
}

const last = (xs: bigint[] | undefined) => xs![xs!.length - 1]!;

/** Writes the scripts; `svc(name, spec, args)` runs SCRIPT and `job(name, seconds, code, spec)` runs JOB, each stamping `<dir>/<name>.ts`. */
function scripts(world: World) {
  const script = join(world.dir, "svc.sh"), job = join(world.dir, "job.sh");
  writeFileSync(script, SCRIPT, { mode: 0o755 });
  writeFileSync(job, JOB, { mode: 0o755 });
  const stampFile = (name: string) => join(world.dir, `${name}.ts`);
  return {
    stampFile,
    svc: (name: string, spec: Record<string, unknown> = {}) => world.writeService(name, {
      ...spec, process: { command: ["sh", script, stampFile(name)], stop_grace_ms: 5000, start_seconds: "200ms", ...(spec.process as object) },
    }),
    job: (name: string, seconds: number, code: number, spec: Record<string, unknown> = {}) => world.writeService(name, {
      ...spec, process: { command: ["sh", job, stampFile(name), String(seconds), String(code)], start_seconds: "200ms", ...(spec.process as object) },
    }),
  };
}

describe("depends_on", () => {
  test("boot starts a three-level graph in order; stop all stops it in reverse; start web starts what it needs first", async () => {
    world = new World();
    threeLevels(world);
    await world.daemon();
    await waitUntil(async () => (await world.status()).every((a) => a.state === "running" && a.start === "up"), "all three up", 20_000);
    let db = stamps(world, "db"), api = stamps(world, "api"), web = stamps(world, "web");
    expect(last(db.ready)).toBeLessThan(last(api.start)); // api waited for db to be ready, not just started
    expect(last(api.start)).toBeLessThan(last(web.start));

    const stopped = await world.pmctl(["stop", "all"]);
    expect(stopped.code).toBe(0);
    db = stamps(world, "db"); api = stamps(world, "api"); web = stamps(world, "web");
    expect(last(web.stop)).toBeLessThan(last(api.stop));
    expect(last(api.stop)).toBeLessThan(last(db.stop));

    const started = await world.pmctl(["start", "web"]);
    expect(started.code).toBe(0);
    for (const a of await world.status()) expect(a.state).toBe("running");
    db = stamps(world, "db"); api = stamps(world, "api"); web = stamps(world, "web");
    expect(db.start).toHaveLength(2);
    expect(last(db.ready)).toBeLessThan(last(api.start));
    expect(last(api.start)).toBeLessThan(last(web.start));
  });

  test("stopping a needed service warns; --with-dependents stops the dependents first", async () => {
    world = new World();
    threeLevels(world);
    await world.daemon();
    await waitUntil(async () => (await world.status()).every((a) => a.start === "up"), "all three up", 20_000);

    const res = await world.pmctl(["stop", "api"]);
    expect(res.code).toBe(0);
    expect(res.stderr).toContain("warning: web (running) depends on api and keeps running; stop it too with --with-dependents");
    expect((await world.app("web")).state).toBe("running");

    expect((await world.pmctl(["start", "api"])).code).toBe(0);
    const both = await world.pmctl(["stop", "db", "--with-dependents"]);
    expect(both.code).toBe(0);
    expect(both.stderr).not.toContain("warning");
    for (const a of await world.status()) expect(a.state).toBe("stopped");
    const db = stamps(world, "db"), api = stamps(world, "api"), web = stamps(world, "web");
    expect(last(web.stop)).toBeLessThan(last(api.stop));
    expect(last(api.stop)).toBeLessThan(last(db.stop));
  });

  test("a dependency that fails: the dependent is not started and start names why", async () => {
    world = new World();
    world.writeService("db", { enabled: false, process: { command: ["sh", "-c", "echo 'no data dir' >&2; exit 3"] } });
    world.writeService("app", { enabled: false, process: { command: ["sleep", "1000"] }, depends_on: { db: "ready" } });
    await world.daemon();
    const res = await world.pmctl(["start", "app"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("db: start failed: exited with code 3");
    expect(res.stderr).toContain("no data dir");
    expect(res.stderr).toContain("app: start failed: not started: dependency 'db' failed (needed: ready)");
    expect((await world.app("app")).state).toBe("stopped");
  });

  test("completed: the dependent starts after the one-shot ended with 0, and not after one that failed; restart all keeps the order", async () => {
    world = new World();
    const { svc, job } = scripts(world);
    // migrate works 1 s, longer than its start_seconds (200ms): `completed` is more than its start succeeding.
    svc("db");
    job("migrate", 1, 0, { depends_on: { db: "started" } });
    svc("web", { depends_on: { db: "started", migrate: "completed" } });
    job("bad", 0.5, 3);
    svc("app", { depends_on: { bad: "completed" } });
    const d = await world.daemon();
    await waitUntil(async () => (await world.app("web")).start === "up", "web up", 20_000);
    let db = stamps(world, "db"), migrate = stamps(world, "migrate"), web = stamps(world, "web");
    expect(last(db.start)).toBeLessThan(last(migrate.start));
    expect(last(migrate.end)).toBeLessThan(last(web.start));
    expect((await world.app("migrate")).state).toBe("exited");

    await d.waitForLog(/\[app\] not started: dependency 'bad' failed \(needed: completed\)/, 20_000);
    expect(await world.app("app")).toMatchObject({ state: "stopped", start_failure: "not started: dependency 'bad' failed (needed: completed)" });
    expect(stamps(world, "app")).toEqual({}); // never ran
    const res = await world.pmctl(["start", "app"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("app: start failed: not started: dependency 'bad' failed (needed: completed)");
    expect(stamps(world, "bad").end).toHaveLength(2); // it ran again for this start, and failed again
    expect(stamps(world, "app")).toEqual({});

    // restart all: the running db and web; migrate (exited) runs again before web, since web needs it completed.
    const restarted = await world.pmctl(["restart", "all"]);
    expect(restarted.stderr).toBe("");
    expect(restarted.code).toBe(0);
    db = stamps(world, "db"); migrate = stamps(world, "migrate"); web = stamps(world, "web");
    expect([db.start, migrate.end, web.start].map((x) => x!.length)).toEqual([2, 2, 2]);
    expect(last(db.start)).toBeLessThan(last(migrate.start));
    expect(last(migrate.end)).toBeLessThan(last(web.start));
    expect(stamps(world, "app")).toEqual({});
  });

  test("independent services start together, a service starts as soon as what it needs is up (not a level later); start all after stop all keeps this order", async () => {
    world = new World();
    const { svc, stampFile } = scripts(world);
    const up = (name: string) => `test -e ${stampFile(name)}.up`;
    const readyWhen = (...names: string[]) => (name: string) => ({
      exec: ["sh", "-c", `${names.map(up).join(" && ")} && echo "ready $(date +%s%N)" >> ${stampFile(name)}`], interval: "50ms", timeout: "20s",
    });
    // a and b need nothing, but each is ready only once the other runs: started one after the
    // other's readiness, neither would ever be ready (the start fails at the readiness timeout).
    // c needs a; b is ready only once c runs too, so c must start before b (a's level-mate in a
    // level-by-level start) is ready. d needs a and b.
    svc("a", { readiness: readyWhen("b")("a") });
    svc("b", { readiness: readyWhen("a", "c")("b") });
    svc("c", { depends_on: { a: "ready" } });
    svc("d", { depends_on: { a: "ready", b: "ready" } });
    // That all four come up at all shows a, b and c were started without waiting for each
    // other; the order of the dependents' starts is what depends_on promises.
    const order = () => {
      const [a, b, c, d] = ["a", "b", "c", "d"].map((n) => stamps(world, n));
      for (const x of [a, b]) expect(x!.ready).toHaveLength(x!.start!.length); // ready in this round
      expect(last(a!.ready)).toBeLessThan(last(c!.start));
      expect(last(a!.ready)).toBeLessThan(last(d!.start));
      expect(last(b!.ready)).toBeLessThan(last(d!.start));
      // By the checks' construction (each needs the other's `.up` file): stamps are sane.
      expect(last(b!.start)).toBeLessThan(last(a!.ready));
      expect(last(c!.start)).toBeLessThan(last(b!.ready));
    };
    await world.daemon();
    await waitUntil(async () => (await world.status()).every((x) => x.start === "up"), "all four up", 30_000);
    order();

    expect((await world.pmctl(["stop", "all"])).code).toBe(0);
    const [a, b, c, d] = ["a", "b", "c", "d"].map((n) => stamps(world, n));
    expect(last(d!.stop)).toBeLessThan(last(a!.stop));
    expect(last(d!.stop)).toBeLessThan(last(b!.stop));
    expect(last(c!.stop)).toBeLessThan(last(a!.stop));
    const started = await world.pmctl(["start", "all"]);
    expect(started.stderr).toBe("");
    expect(started.code).toBe(0);
    expect(stamps(world, "d").start).toHaveLength(2);
    order();
  });

  test("an unknown dependency is refused by check, naming the file, and so is a dependent of the service left out", async () => {
    world = new World();
    const web = world.writeService("web", { process: { command: ["sleep", "1000"] }, depends_on: { dbb: "ready" } });
    const api = world.writeService("api", { process: { command: ["sleep", "1000"] }, depends_on: ["web"] });
    const check = await world.pmctl(["check"]);
    expect(check.code).toBe(1);
    expect(check.stderr).toMatch(new RegExp(`${web}:\\d+: depends_on\\.dbb: unknown service 'dbb' \\(no valid service file defines it\\)`));
    expect(check.stderr).toMatch(new RegExp(`${api}:\\d+: depends_on\\.web: unknown service 'web'`));
  });

  test("a cycle is refused by check, naming the files; update applies a dependency change without a restart", async () => {
    world = new World();
    const a = world.writeService("a", { process: { command: ["sleep", "1000"] }, depends_on: { b: "started" } });
    const b = world.writeService("b", { process: { command: ["sleep", "1000"] }, depends_on: ["a"] });
    const check = await world.pmctl(["check"]);
    expect(check.code).toBe(1);
    expect(check.stderr).toContain(`dependency cycle: a (${a}) -> b (${b}) -> a`);
    expect(check.stderr).toContain(`${b}:`);

    world.writeService("b", { process: { command: ["sleep", "1000"], stop_grace_ms: 2000 } });
    world.writeService("a", { process: { command: ["sleep", "1000"], stop_grace_ms: 2000 }, depends_on: { b: "started" } });
    expect((await world.pmctl(["check"])).code).toBe(0);
    await world.daemon();
    await waitUntil(async () => (await world.status()).every((x) => x.start === "up"), "both up");
    const before = (await world.status()).map((x) => x.pids[0]);
    world.writeService("a", { process: { command: ["sleep", "1000"], stop_grace_ms: 2000 } });
    world.writeService("c", { process: { command: ["sleep", "1000"], stop_grace_ms: 2000 }, depends_on: { a: "started", b: "started" } });
    const upd = await world.pmctl(["update", "--json"]);
    expect(upd.code).toBe(0);
    expect(JSON.parse(upd.stdout)).toMatchObject({ added: ["c"], changed: [], resources_only: ["a"] });
    const after = await world.status();
    expect(after.filter((x) => x.name !== "c").map((x) => x.pids[0])).toEqual(before);
    await waitUntil(async () => (await world.app("c")).start === "up", "c up after its dependencies");
  });
});
