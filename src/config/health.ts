/**
 * The keys that say when a service is up and well, and what it needs first: `process.start_seconds`,
 * `readiness:`, `liveness:` and `depends_on:` of one service file. Problems across files
 * (unknown names, cycles) are found by config/load.ts with supervisor-free graph code.
 */
import * as path from "node:path";
import { isMap, isScalar, isSeq } from "./yaml.ts";
import type { DependencyCondition, LivenessConfig, ProbeCheck, ReadinessConfig } from "./types.ts";
import { Ctx, MapView, clip, describe, isNullish } from "./source.ts";
import type { Entry } from "./source.ts";
import { MAX_TIMER_MS, readBool, readDuration, readInt, readString, readStringListNode } from "./values.ts";
import { splitCommandWords } from "./command.ts";
import { errorMessage } from "../util/errors.ts";

export const PROBE_KINDS = ["tcp", "http", "unix", "exec", "log", "notify"] as const;
export const READINESS_KEYS = [...PROBE_KINDS, "interval", "probe_timeout", "timeout", "fail_on_timeout"] as const;
export const LIVENESS_KEYS = [...PROBE_KINDS, "interval", "probe_timeout", "failure_threshold", "watchdog_sec"] as const;
export const CONDITIONS: readonly DependencyCondition[] = ["started", "ready", "completed"];

/** `process.start_seconds`; the default depends on whether readiness is configured. */
export function readStartMs(p: MapView): number | undefined {
  return readSeconds(p, "start_seconds", 0);
}

/**
 * A `*_sec`/`*_seconds` key: a plain number is seconds (`1`, `0.5`), as in supervisord and
 * systemd; text takes units (`500ms`, `2s`, `1m`).
 */
function readSeconds(v: MapView, name: string, min: number): number | undefined {
  const e = v.get(name);
  if (!e) return undefined;
  const n = e.node && isScalar(e.node) ? e.node.value : undefined;
  if (typeof n === "number") {
    const ms = Math.round(n * 1000);
    if (!Number.isFinite(n) || ms < min || ms > MAX_TIMER_MS) { v.add(e, `expected seconds from ${min / 1000} to ${Math.floor(MAX_TIMER_MS / 1000)}, found ${n}`); return undefined; }
    return ms;
  }
  return readDuration(v, name, { min, max: MAX_TIMER_MS });
}

export function parseReadiness(ctx: Ctx, top: MapView, workingDirectory: string): ReadinessConfig | undefined | null {
  const section = openProbeSection(ctx, top, "readiness", READINESS_KEYS, workingDirectory, 1000);
  if (!section) return section;
  const { view: r, check, intervalMs, probeTimeoutMs } = section;
  const timeoutMs = readDuration(r, "timeout", { min: 1, max: MAX_TIMER_MS }) ?? 60_000;
  const failOnTimeout = readBool(r, "fail_on_timeout") ?? true;
  if (!check) return null;
  return { check, intervalMs, probeTimeoutMs, timeoutMs, failOnTimeout };
}

export function parseLiveness(ctx: Ctx, top: MapView, workingDirectory: string): LivenessConfig | undefined | null {
  const section = openProbeSection(ctx, top, "liveness", LIVENESS_KEYS, workingDirectory, 10_000);
  if (!section) return section;
  const { view: l, check, intervalMs, probeTimeoutMs } = section;
  const failureThreshold = readInt(l, "failure_threshold", 1, 1000) ?? 3;
  const watchdogMs = readSeconds(l, "watchdog_sec", 10);
  if (check?.kind === "log") l.add(l.get("log"), "a log line cannot tell that a service is still alive; use tcp, http, unix, exec or notify for liveness");
  if (check?.kind === "notify" && watchdogMs === undefined) l.add(l.get("notify"), "liveness with notify needs watchdog_sec: how often the service sends WATCHDOG=1", "notify");
  if (check && check.kind !== "notify" && watchdogMs !== undefined) l.add(l.get("watchdog_sec"), "watchdog_sec applies only to notify: true");
  if (!check || (check.kind === "log") || (check.kind === "notify" && watchdogMs === undefined)) return null;
  return { check, intervalMs, probeTimeoutMs, failureThreshold, ...(watchdogMs !== undefined ? { watchdogMs } : {}) };
}

/** What readiness and liveness share: the section, its one check, interval and probe timeout. */
function openProbeSection(ctx: Ctx, top: MapView, key: "readiness" | "liveness", keys: readonly string[], workingDirectory: string, defaultIntervalMs: number) {
  const e = top.get(key);
  if (!e || isNullish(e.node)) return undefined;
  const view = MapView.open(ctx, e.node, key, keys, e.keyNode);
  if (!view) return null;
  const check = readCheck(view, workingDirectory);
  const intervalMs = readDuration(view, "interval", { min: 10, max: MAX_TIMER_MS }) ?? defaultIntervalMs;
  const probeTimeoutMs = readDuration(view, "probe_timeout", { min: 10, max: MAX_TIMER_MS }) ?? 2000;
  return { view, check, intervalMs, probeTimeoutMs };
}

/** Exactly one of tcp/http/unix/exec/log/notify. */
function readCheck(v: MapView, workingDirectory: string): ProbeCheck | undefined {
  const present = PROBE_KINDS.filter((k) => v.has(k));
  if (present.length !== 1) {
    v.add(present.length ? v.get(present[1]!) : undefined,
      present.length === 0 ? `needs one check: ${PROBE_KINDS.join(", ")}` : `only one check per probe, found ${present.join(" and ")}`);
    return undefined;
  }
  const kind = present[0]!;
  const e = v.get(kind);
  if (!e) return undefined; // a broken alias, reported
  switch (kind) {
    case "tcp": {
      const text = readString(v, "tcp", { loose: true });
      if (text === undefined) return undefined;
      const m = /^(?:\[([^\]]+)\]|([^:\s]*)):(\d{1,5})$/.exec(text);
      const port = m ? Number(m[3]) : NaN;
      if (!m || port < 1 || port > 65535) { v.add(e, `expected host:port (e.g. 127.0.0.1:5432 or [::1]:80), found '${clip(text)}'`); return undefined; }
      return { kind, host: m[1] ?? (m[2] || "127.0.0.1"), port };
    }
    case "http": {
      const text = readString(v, "http");
      if (text === undefined) return undefined;
      let url: URL;
      try { url = new URL(text); } catch { v.add(e, `expected a URL like http://127.0.0.1:8080/health, found '${clip(text)}'`); return undefined; }
      if (url.protocol !== "http:" && url.protocol !== "https:") { v.add(e, `expected an http:// or https:// URL, found '${clip(text)}'`); return undefined; }
      return { kind, url: url.href };
    }
    case "unix": {
      const text = readString(v, "unix");
      if (text === undefined) return undefined;
      return { kind, path: path.resolve(workingDirectory, text) };
    }
    case "exec": {
      const command = readProbeCommand(v, e);
      return command ? { kind, command } : undefined;
    }
    case "log": {
      const text = readString(v, "log");
      if (text === undefined) return undefined;
      try { new RegExp(text); } catch (err) { v.add(e, `invalid regular expression: ${errorMessage(err)}`); return undefined; }
      return { kind, pattern: text };
    }
    case "notify": {
      const on = readBool(v, "notify");
      if (on === undefined) return undefined;
      if (!on) { v.add(e, "notify: false is no check; remove it or use another check"); return undefined; }
      return { kind };
    }
  }
}

function readProbeCommand(v: MapView, e: Entry): string[] | undefined {
  let argv: string[] | undefined;
  if (e.node && isScalar(e.node) && typeof e.node.value === "string") {
    try { argv = splitCommandWords(e.node.value).map((w) => w.word); } catch (err) { v.add(e, `cannot split the command: ${errorMessage(err)}`); return undefined; }
  } else if (e.node && isSeq(e.node)) argv = readStringListNode(v, e);
  else { v.add(e, `expected a command: a list like ["pg_isready", "-q"] or a string, found ${describe(e.node)}`); return undefined; }
  if (!argv || argv.length === 0 || argv[0] === "") { if (argv) v.add(e, "expected a command, found an empty one"); return undefined; }
  return argv;
}

/**
 * `depends_on:` as a mapping `{ db: ready, migrate: completed }`, or a list of names (each
 * `started`). Whether the names exist is checked across files.
 */
export function parseDependsOn(ctx: Ctx, top: MapView): Record<string, DependencyCondition> | undefined | null {
  const e = top.get("depends_on");
  if (!e || isNullish(e.node)) return undefined;
  const out: Record<string, DependencyCondition> = {};
  if (isSeq(e.node)) {
    const names = readStringListNode(top, e);
    if (!names) return null;
    for (const n of names) out[n] = "started";
    return out;
  }
  if (!isMap(e.node!)) { top.add(e, `expected a mapping of service: condition (${CONDITIONS.join(", ")}), or a list of service names, found ${describe(e.node)}`); return null; }
  const d = MapView.open(ctx, e.node, "depends_on", [...e.node.items.map((p) => (isScalar(p.key) ? String(p.key.value) : ""))], e.keyNode);
  if (!d) return null;
  let ok = true;
  for (const pair of e.node.items) {
    if (!isScalar(pair.key)) continue;
    const name = String(pair.key.value);
    const c = readString(d, name);
    if (c === undefined) { ok = false; continue; }
    if (!(CONDITIONS as readonly string[]).includes(c)) { d.add(d.get(name), `expected one of ${CONDITIONS.join(", ")}, found '${clip(c)}'`); ok = false; continue; }
    out[name] = c as DependencyCondition;
  }
  return ok ? out : null;
}
