/** Parsing start_seconds, readiness:, liveness: and depends_on: of a service file. */
import { describe, expect, test } from "bun:test";
import { parseServiceText } from "../src/config/service.ts";
import { formatProblem } from "../src/config/types.ts";

const parse = (body: string) => parseServiceText("/etc/pm/web.yaml", `process:\n  command: sleep 100\n${body}`, "/tmp");
const problems = (body: string) => parse(body).problems.map(formatProblem);

describe("start_seconds", () => {
  test.each([
    ["", 1000],
    ["  start_seconds: 2\n", 2000],
    ["  start_seconds: 0.5\n", 500],
    ["  start_seconds: 250ms\n", 250],
    ["  start_seconds: 0\n", 0],
  ])("%j → %d ms", (extra, ms) => {
    expect(parse(extra).service!.process.startMs).toBe(ms);
  });
  test("default 0 with a readiness check or a schedule", () => {
    expect(parse("readiness:\n  tcp: 127.0.0.1:80\n").service!.process.startMs).toBe(0);
    expect(parse("  schedule: '0 * * * *'\n").service!.process.startMs).toBe(0);
  });
  test("a negative value is refused", () => {
    expect(problems("  start_seconds: -1\n")[0]).toContain("process.start_seconds");
  });
});

describe("readiness and liveness", () => {
  test("each check kind with its defaults", () => {
    expect(parse("readiness:\n  tcp: db.local:5432\n").service!.readiness).toEqual({ check: { kind: "tcp", host: "db.local", port: 5432 }, intervalMs: 1000, probeTimeoutMs: 2000, timeoutMs: 60_000, failOnTimeout: true });
    expect(parse("readiness:\n  tcp: '[::1]:80'\n").service!.readiness!.check).toEqual({ kind: "tcp", host: "::1", port: 80 });
    expect(parse("readiness:\n  http: http://127.0.0.1:8080/health\n").service!.readiness!.check).toEqual({ kind: "http", url: "http://127.0.0.1:8080/health" });
    expect(parse("readiness:\n  unix: run/app.sock\n").service!.readiness!.check).toEqual({ kind: "unix", path: "/tmp/run/app.sock" });
    expect(parse("readiness:\n  exec: pg_isready -q\n").service!.readiness!.check).toEqual({ kind: "exec", command: ["pg_isready", "-q"] });
    expect(parse("readiness:\n  log: 'ready to accept'\n  interval: 100ms\n  timeout: 5s\n  fail_on_timeout: false\n").service!.readiness)
      .toEqual({ check: { kind: "log", pattern: "ready to accept" }, intervalMs: 100, probeTimeoutMs: 2000, timeoutMs: 5000, failOnTimeout: false });
    expect(parse("readiness:\n  notify: true\n").service!.readiness!.check).toEqual({ kind: "notify" });
    expect(parse("liveness:\n  notify: true\n  watchdog_sec: 10\n").service!.liveness).toEqual({ check: { kind: "notify" }, intervalMs: 10_000, probeTimeoutMs: 2000, failureThreshold: 3, watchdogMs: 10_000 });
  });

  test.each([
    ["readiness:\n  tcp: localhost\n", "readiness.tcp: expected host:port"],
    ["readiness:\n  tcp: 127.0.0.1:80\n  http: http://x/\n", "only one check per probe, found tcp and http"],
    ["readiness:\n  interval: 1s\n", "readiness: needs one check: tcp, http, unix, exec, log, notify"],
    ["readiness:\n  http: ftp://x/\n", "expected an http:// or https:// URL"],
    ["readiness:\n  log: '('\n", "readiness.log: invalid regular expression"],
    ["readiness:\n  tcp: 127.0.0.1:80\n  failure_threshold: 3\n", "readiness.failure_threshold: unknown key"],
    ["liveness:\n  log: up\n", "a log line cannot tell that a service is still alive"],
    ["liveness:\n  notify: true\n", "liveness with notify needs watchdog_sec"],
    ["liveness:\n  tcp: 127.0.0.1:80\n  watchdog_sec: 5\n", "watchdog_sec applies only to notify: true"],
    ["liveness:\n  tcp: 127.0.0.1:80\n  failure_threshold: 0\n", "liveness.failure_threshold"],
  ])("%j is refused: %s", (body, message) => {
    const p = problems(body);
    expect(p.length).toBeGreaterThan(0);
    expect(p.join("\n")).toContain(message);
    expect(p[0]).toStartWith("/etc/pm/web.yaml:");
  });
});

describe("depends_on", () => {
  test("a mapping of conditions, or a list of names (started)", () => {
    expect(parse("depends_on:\n  db: ready\n  migrate: completed\n").service!.dependsOn).toEqual({ db: "ready", migrate: "completed" });
    expect(parse("depends_on: [db, cache]\n").service!.dependsOn).toEqual({ db: "started", cache: "started" });
    expect(parse("").service!.dependsOn).toBeUndefined();
  });
  test("an unknown condition is refused naming the key", () => {
    expect(problems("depends_on:\n  db: healthy\n")[0]).toBe("/etc/pm/web.yaml:4: depends_on.db: expected one of started, ready, completed, found 'healthy'");
  });
});
