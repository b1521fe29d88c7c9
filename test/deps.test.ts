/** Dependency order and conditions (supervisor/deps.ts) and graph validation (config/deps.ts), without processes. */
import { describe, expect, test } from "bun:test";
import { conditionStatus, dependentsOf, startLevels, stopLevels, withDependencies, type DependencyGraph, type DependencyView } from "../src/supervisor/deps.ts";
import { dependencyProblems, findCycles } from "../src/config/deps.ts";
import type { DependencyCondition } from "../src/config/types.ts";

const graph = (spec: Record<string, Record<string, DependencyCondition>>): DependencyGraph => new Map(Object.entries(spec));

// web needs api (ready) and cache; api needs db (ready) and migrate (completed); migrate needs db.
const g = graph({
  db: {}, cache: {}, migrate: { db: "ready" }, api: { db: "ready", migrate: "completed" }, web: { api: "ready", cache: "started" }, lone: {},
});

describe("order", () => {
  test("start levels: each service after what it needs; independent ones together", () => {
    expect(startLevels(g, g.keys())).toEqual([["cache", "db", "lone"], ["migrate"], ["api"], ["web"]]);
  });
  test("stop levels are the reverse", () => {
    expect(stopLevels(g, g.keys())).toEqual([["web"], ["api"], ["migrate"], ["cache", "db", "lone"]]);
  });
  test("levels of a part of the graph only order within that part", () => {
    expect(startLevels(g, ["web", "db"])).toEqual([["db", "web"]]);
  });
  test("starting one reaches everything it needs", () => {
    expect([...withDependencies(g, ["web"])].sort()).toEqual(["api", "cache", "db", "migrate", "web"]);
    expect([...withDependencies(g, ["lone"])]).toEqual(["lone"]);
  });
  test("dependents of a service, transitively", () => {
    expect([...dependentsOf(g, ["db"])].sort()).toEqual(["api", "migrate", "web"]);
    expect([...dependentsOf(g, ["cache"])]).toEqual(["web"]);
    expect([...dependentsOf(g, ["web"])]).toEqual([]);
  });
});

describe("conditions", () => {
  const base: DependencyView = { phase: "running", startAfterStop: false, held: false, up: true, ready: true, readinessTimedOut: false, lastExitOk: false };
  test.each([
    ["started", {}, "met"],
    ["started", { up: false }, "pending"],
    ["ready", { ready: false }, "pending"],
    ["ready", { ready: false, readinessTimedOut: true }, "failed"],
    ["ready", {}, "met"],
    ["completed", {}, "pending"],
    ["completed", { phase: "exited", lastExitOk: true }, "met"],
    ["completed", { phase: "failed" }, "failed"],
    ["ready", { phase: "exited", lastExitOk: true }, "failed"],
    ["started", { phase: "starting" }, "pending"],
    ["started", { phase: "backoff" }, "pending"],
    ["started", { phase: "stopping" }, "failed"],
    ["started", { phase: "stopping", startAfterStop: true }, "pending"],
    ["started", { phase: "stopped" }, "failed"],
    ["started", { phase: "stopped", held: true }, "pending"],
    ["ready", { phase: "suppressed" }, "failed"],
  ] as [DependencyCondition, Partial<DependencyView>, string][])("%s with %j: %s", (cond, patch, kind) => {
    expect(conditionStatus(cond, { ...base, ...patch }).kind).toBe(kind as "met");
  });
});

describe("validation", () => {
  const node = (name: string, deps: string[] = []) => ({ name, file: `/etc/pm/${name}.yaml`, line: 4, dependsOn: Object.fromEntries(deps.map((d) => [d, "started" as const])) });

  test("a cycle is found once, listed in order, reported on each member's file", () => {
    const nodes = [node("a", ["b"]), node("b", ["c"]), node("c", ["a"]), node("d", ["a"])];
    expect(findCycles(nodes)).toEqual([["a", "b", "c"]]);
    const { problems, bad } = dependencyProblems(nodes);
    expect([...bad].sort()).toEqual(["a", "b", "c"]);
    expect(problems.map((p) => p.file)).toEqual(["/etc/pm/a.yaml", "/etc/pm/b.yaml", "/etc/pm/c.yaml"]);
    expect(problems[0]!.message).toBe("dependency cycle: a (/etc/pm/a.yaml) -> b (/etc/pm/b.yaml) -> c (/etc/pm/c.yaml) -> a");
  });

  test("unknown names and self-dependencies are problems of the file that names them", () => {
    const { problems, bad } = dependencyProblems([node("web", ["dbb"]), node("x", ["x"]), node("ok", ["web"])]);
    expect([...bad].sort()).toEqual(["web", "x"]);
    expect(problems).toEqual([
      { file: "/etc/pm/web.yaml", line: 4, key: "depends_on.dbb", message: "unknown service 'dbb' (no valid service file defines it)" },
      { file: "/etc/pm/x.yaml", line: 4, key: "depends_on.x", message: "'x' depends on itself" },
    ]);
  });

  test("an acyclic graph has no problems", () => {
    expect(dependencyProblems([node("a"), node("b", ["a"]), node("c", ["a", "b"])]).problems).toEqual([]);
  });
});
