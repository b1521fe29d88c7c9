/**
 * Dependency order. Pure: which services a request reaches, in which order they start and
 * stop, and whether a dependency's condition (`started`, `ready`, `completed`) holds. The graph
 * is acyclic and closed (config/deps.ts refused the rest); names missing here are skipped.
 */
import type { DependencyCondition } from "../config/types.ts";
import type { Phase } from "./unit.ts";

/** service → what it depends on, with the condition. */
export type DependencyGraph = ReadonlyMap<string, Readonly<Record<string, DependencyCondition>>>;

const depsOf = (g: DependencyGraph, n: string) => Object.keys(g.get(n) ?? {}).filter((d) => g.has(d));

/** `names` and everything they need, transitively. */
export function withDependencies(g: DependencyGraph, names: Iterable<string>): Set<string> {
  const out = new Set<string>();
  const visit = (n: string) => { if (out.has(n) || !g.has(n)) return; out.add(n); for (const d of depsOf(g, n)) visit(d); };
  for (const n of names) visit(n);
  return out;
}

/** Services that need `name`, directly or through others (not `name` itself). */
export function dependentsOf(g: DependencyGraph, names: Iterable<string>): Set<string> {
  const start = new Set(names);
  const out = new Set<string>();
  let grew = true;
  while (grew) {
    grew = false;
    for (const n of g.keys()) {
      if (out.has(n) || start.has(n)) continue;
      if (depsOf(g, n).some((d) => start.has(d) || out.has(d))) { out.add(n); grew = true; }
    }
  }
  return out;
}

/**
 * `names` in start order, as levels: each service comes after every service of `names` it
 * depends on; the services of one level can start together. Names sorted within a level.
 */
export function startLevels(g: DependencyGraph, names: Iterable<string>): string[][] {
  const set = new Set([...names].filter((n) => g.has(n)));
  const level = new Map<string, number>();
  const depth = (n: string, seen: Set<string>): number => {
    const known = level.get(n);
    if (known !== undefined) return known;
    if (seen.has(n)) return 0; // a cycle cannot get here; never loop if one did
    seen.add(n);
    const d = Math.max(-1, ...depsOf(g, n).filter((x) => set.has(x)).map((x) => depth(x, seen))) + 1;
    level.set(n, d);
    return d;
  };
  const levels: string[][] = [];
  for (const n of [...set].sort()) (levels[depth(n, new Set())] ??= []).push(n);
  return levels.filter(Boolean).map((l) => l.sort());
}

/** Stop order: the reverse of start order, so every service stops before what it needs. */
export function stopLevels(g: DependencyGraph, names: Iterable<string>): string[][] {
  return startLevels(g, names).reverse();
}

/** What a dependency's condition needs to know about the service it names. */
export interface DependencyView {
  phase: Phase;
  startAfterStop: boolean;
  /** Its start is being held until its own dependencies are up (boot). */
  held: boolean;
  /** The current run's start succeeded (start_seconds, readiness). */
  up: boolean;
  ready: boolean;
  /** Readiness timed out without failing the start: it may never become ready. */
  readinessTimedOut: boolean;
  /** The last run ended with code 0. */
  lastExitOk: boolean;
}

export type ConditionStatus = { kind: "met" } | { kind: "pending" } | { kind: "failed"; reason: string };

const MET: ConditionStatus = { kind: "met" };
const PENDING: ConditionStatus = { kind: "pending" };
const failed = (reason: string): ConditionStatus => ({ kind: "failed", reason });

export function conditionStatus(cond: DependencyCondition, d: DependencyView): ConditionStatus {
  if (d.held) return PENDING;
  switch (d.phase) {
    case "starting": case "backoff": return PENDING;
    case "stopping": case "killing": return d.startAfterStop ? PENDING : failed(`is ${d.phase}`);
    case "running":
      if (cond === "completed") return PENDING;
      if (!d.up) return PENDING;
      if (cond === "started") return MET;
      return d.ready ? MET : d.readinessTimedOut ? failed("is not ready (readiness timed out)") : PENDING;
    case "exited":
      if (cond === "ready") return failed("has exited");
      return d.lastExitOk ? MET : failed("exited with a failure");
    case "failed": return failed("failed");
    case "suppressed": return failed("is suppressed (restart tolerance exceeded)");
    case "stopped": case "scheduled": return failed(`is ${d.phase}`);
  }
}
