/**
 * The start gate and health of one run. Pure: (state, event, now) → (state, effects); the runner
 * (start-gate.ts) runs the probes and the one timer and feeds results back.
 *
 * A start succeeds ("up") once the run has stayed up `start_seconds` AND, when `readiness:` is
 * set, a readiness check has passed (or the readiness timeout passed with fail_on_timeout
 * false). It fails when the run ends first with a failure (an exit with code 0 is a completed
 * one-shot, not a failed start), or when readiness times out with fail_on_timeout true (the run
 * is then stopped). "ready" is the readiness check passing (without `readiness:`, the start
 * succeeding). Liveness checks begin once ready; `failure_threshold` failures in a row (or a
 * missed notify watchdog) make the run unhealthy: the runner stops it and the restart policy decides.
 */
import { plural } from "../util/plural.ts";

export interface GateConfig {
  startMs: number;
  readiness?: { intervalMs: number; timeoutMs: number; failOnTimeout: boolean; notify: boolean; what: string };
  liveness?: { intervalMs: number; failureThreshold: number; watchdogMs?: number; notify: boolean; what: string };
}

export type Outcome = "up" | "failed";

export interface GateState {
  beganAtMs: number;
  /** null while the start is pending. */
  outcome: Outcome | null;
  /** false once the run is stopping, ended or unhealthy: no more probes or timers. */
  active: boolean;
  ready: boolean;
  readyAtMs: number | null;
  /** The readiness timeout passed without failing the start (fail_on_timeout: false). */
  readinessTimedOut: boolean;
  /** Last readiness result text (why not ready). */
  readinessDetail: string | null;
  probing: "readiness" | "liveness" | null;
  nextProbeAtMs: number | null;
  livenessFailures: number;
  livenessDetail: string | null;
  lastWatchdogAtMs: number | null;
  /** Why the start failed, or why the run was found unhealthy. */
  failure: string | null;
  /** STATUS= from sd_notify. */
  status: string | null;
}

export type GateEvent =
  | { type: "timer" }
  | { type: "probeResult"; probe: "readiness" | "liveness"; ok: boolean; detail: string }
  | { type: "notify"; ready?: boolean; status?: string; watchdog?: boolean; stopping?: boolean }
  | { type: "stopping" }
  /** The run ended; `exitText` says how (`exited with code 7`), `failure` whether it failed. */
  | { type: "ended"; exitText: string; failure: boolean };

export type GateEffect =
  | { type: "probe"; probe: "readiness" | "liveness" }
  | { type: "arm"; atMs: number }
  | { type: "disarm" }
  | { type: "up" }
  | { type: "ready" }
  /** `stop`: the run still runs and must be stopped (readiness timeout). */
  | { type: "startFailed"; reason: string; stop: boolean }
  | { type: "unhealthy"; reason: string }
  | { type: "log"; level: "info" | "warn"; message: string };

export interface GateTransition { state: GateState; effects: GateEffect[] }

const secs = (ms: number) => `${Math.round(ms / 100) / 10}s`;

/** A new run: spawned now, or adopted (already up; a readiness check, if any, is run but cannot fail it). */
export function beginGate(cfg: GateConfig, nowMs: number, adopted = false): GateTransition {
  const state: GateState = {
    beganAtMs: nowMs, outcome: adopted ? "up" : null, active: true, ready: false, readyAtMs: null,
    readinessTimedOut: adopted, readinessDetail: null, probing: null,
    nextProbeAtMs: cfg.readiness && !cfg.readiness.notify ? nowMs : null,
    livenessFailures: 0, livenessDetail: null, lastWatchdogAtMs: null, failure: null, status: null,
  };
  const effects: GateEffect[] = [];
  if (adopted && !cfg.readiness) Object.assign(state, becomeReady(state, cfg, nowMs, effects));
  return settle(state, cfg, nowMs, effects);
}

export function gateStep(s: GateState, ev: GateEvent, cfg: GateConfig, nowMs: number): GateTransition {
  const effects: GateEffect[] = [];
  let st: GateState = { ...s };
  if (!st.active && ev.type !== "ended") return { state: s, effects: [] };
  switch (ev.type) {
    case "timer": break;
    case "probeResult":
      st.probing = null;
      if (ev.probe === "readiness") {
        if (st.ready) break;
        st.readinessDetail = ev.detail;
        if (ev.ok) st = becomeReady(st, cfg, nowMs, effects);
        else st.nextProbeAtMs = nowMs + cfg.readiness!.intervalMs;
      } else if (cfg.liveness) {
        st.nextProbeAtMs = nowMs + cfg.liveness.intervalMs;
        if (ev.ok) { st.livenessFailures = 0; st.livenessDetail = null; }
        else st = livenessFailed(st, cfg, ev.detail, effects);
      }
      break;
    case "notify":
      if (ev.status !== undefined) st.status = ev.status;
      if (ev.ready && cfg.readiness?.notify && !st.ready) { st.readinessDetail = "READY=1"; st = becomeReady(st, cfg, nowMs, effects); }
      if (ev.watchdog) { st.lastWatchdogAtMs = nowMs; st.livenessFailures = 0; st.livenessDetail = null; }
      if (ev.stopping) {
        // STOPPING=1: the service is shutting down on its own; no more checks, not ready. Its
        // exit is then judged as any exit (a pending start is failed by it).
        st.ready = false;
        st.active = st.outcome === null; // a pending start still waits for its outcome (the exit)
        st.probing = null;
        st.nextProbeAtMs = null;
        st.lastWatchdogAtMs = null;
        effects.push({ type: "log", level: "info", message: "the service says it is stopping (STOPPING=1)" });
        if (!st.active) { effects.push({ type: "disarm" }); return { state: st, effects }; }
      }
      break;
    case "stopping":
      st.active = false;
      st.probing = null;
      if (st.outcome === null) { st.outcome = "failed"; st.failure ??= "stopped before the start completed"; }
      effects.push({ type: "disarm" });
      return { state: st, effects };
    case "ended": {
      const wasActive = st.active;
      st.active = false;
      st.probing = null;
      effects.push({ type: "disarm" });
      if (st.outcome === null && wasActive) {
        const after = secs(nowMs - st.beganAtMs);
        if (!ev.failure) {
          // A one-shot job that finished its work: the start did what was asked.
          st.outcome = "up";
          effects.push({ type: "up" });
        } else {
          st.outcome = "failed";
          const waitingFor = st.ready || !cfg.readiness ? `before start_seconds (${secs(cfg.startMs)})` : "before it was ready";
          st.failure = `${ev.exitText} after ${after}, ${waitingFor}`;
          effects.push({ type: "startFailed", reason: st.failure, stop: false }, { type: "log", level: "warn", message: `start failed: ${st.failure}` });
        }
      }
      return { state: st, effects };
    }
  }
  return settle(st, cfg, nowMs, effects);
}

function becomeReady(s: GateState, cfg: GateConfig, nowMs: number, effects: GateEffect[]): GateState {
  effects.push({ type: "ready" });
  if (cfg.readiness) effects.push({ type: "log", level: "info", message: `ready after ${secs(nowMs - s.beganAtMs)} (${cfg.readiness.what})` });
  const live = cfg.liveness;
  return {
    ...s, ready: true, readyAtMs: nowMs,
    nextProbeAtMs: live && !live.notify ? nowMs + live.intervalMs : null,
    lastWatchdogAtMs: live?.watchdogMs !== undefined ? nowMs : null,
  };
}

function livenessFailed(s: GateState, cfg: GateConfig, detail: string, effects: GateEffect[]): GateState {
  const live = cfg.liveness!;
  const failures = s.livenessFailures + 1;
  const st = { ...s, livenessFailures: failures, livenessDetail: detail };
  effects.push({ type: "log", level: "warn", message: `liveness check failed (${failures}/${live.failureThreshold}): ${live.what}: ${detail}` });
  if (failures < live.failureThreshold) return st;
  const reason = `liveness failed ${plural(failures, "time")} in a row: ${detail}`;
  effects.push({ type: "unhealthy", reason }, { type: "disarm" });
  return { ...st, active: false, probing: null, failure: reason };
}

/** Applies what is due at `nowMs`, starts a probe if one is due, and arms the next wake. */
function settle(s: GateState, cfg: GateConfig, nowMs: number, effects: GateEffect[]): GateTransition {
  let st = s;
  const r = cfg.readiness;
  if (st.active && st.outcome === null) {
    if (r && !st.ready && !st.readinessTimedOut && nowMs >= st.beganAtMs + r.timeoutMs) {
      const why = `not ready within ${secs(r.timeoutMs)} (${r.what}${st.readinessDetail ? `: ${st.readinessDetail}` : ""})`;
      if (r.failOnTimeout) {
        st = { ...st, outcome: "failed", active: false, probing: null, failure: why };
        effects.push({ type: "startFailed", reason: why, stop: true }, { type: "log", level: "warn", message: `start failed: ${why}; stopping it` }, { type: "disarm" });
        return { state: st, effects };
      }
      st = { ...st, readinessTimedOut: true };
      effects.push({ type: "log", level: "warn", message: `${why}; counted as started (fail_on_timeout: false), still checking` });
    }
    if (nowMs >= st.beganAtMs + cfg.startMs && (st.ready || !r || st.readinessTimedOut)) {
      st = { ...st, outcome: "up" };
      effects.push({ type: "up" });
      if (!r) st = becomeReady(st, cfg, nowMs, effects);
    }
  }
  if (!st.active) return { state: st, effects };
  const live = cfg.liveness;
  if (live?.watchdogMs !== undefined && st.ready && st.lastWatchdogAtMs !== null && nowMs >= st.lastWatchdogAtMs + live.watchdogMs) {
    st = livenessFailed({ ...st, lastWatchdogAtMs: nowMs }, cfg, `no WATCHDOG=1 within ${secs(live.watchdogMs)}`, effects);
    if (!st.active) return { state: st, effects };
  }
  if (st.probing === null && st.nextProbeAtMs !== null && nowMs >= st.nextProbeAtMs) {
    const probe = !st.ready && r && !r.notify ? "readiness" : st.ready && live && !live.notify ? "liveness" : null;
    if (probe) { st = { ...st, probing: probe, nextProbeAtMs: null }; effects.push({ type: "probe", probe }); }
    else st = { ...st, nextProbeAtMs: null };
  }
  const wakes: number[] = [];
  if (st.outcome === null) {
    if (nowMs < st.beganAtMs + cfg.startMs) wakes.push(st.beganAtMs + cfg.startMs);
    if (r && !st.ready && !st.readinessTimedOut) wakes.push(st.beganAtMs + r.timeoutMs);
  }
  if (st.probing === null && st.nextProbeAtMs !== null) wakes.push(st.nextProbeAtMs);
  if (live?.watchdogMs !== undefined && st.ready && st.lastWatchdogAtMs !== null) wakes.push(st.lastWatchdogAtMs + live.watchdogMs);
  effects.push(wakes.length ? { type: "arm", atMs: Math.min(...wakes) } : { type: "disarm" });
  return { state: st, effects };
}
