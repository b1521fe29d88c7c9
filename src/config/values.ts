/**
 * Typed readers for config values: each reads one key of a MapView, records a problem that
 * says what was expected and what was found, and returns undefined when the value is bad.
 * Also the pure parsers for cgroup limit forms (cpu.max, memory sizes, pids) and signals.
 */
import { isScalar, isSeq } from "./yaml.ts";
import type { Node, Scalar } from "./yaml.ts";
import { parseDurationMs, parseSizeBytes } from "../util/units.ts";
import { MapView, clip, deref, describe, scalarText } from "./source.ts";
import type { Entry } from "./source.ts";

/** Largest delay a JS timer handles (setTimeout overflows above 2^31-1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(error: string): Parsed<T> => ({ ok: false, error });

function scalarOf(node: Node | null): Scalar | null {
  return node && isScalar(node) ? node : null;
}

/** Text value; numbers and booleans are rejected unless `loose` (then their source text is used). */
export function readString(view: MapView, name: string, opts: { loose?: boolean; allowEmpty?: boolean } = {}): string | undefined {
  const e = view.get(name);
  if (!e) return undefined;
  const s = scalarOf(e.node);
  const v = s?.value;
  if (s && (typeof v === "string" || (opts.loose && (typeof v === "number" || typeof v === "bigint")))) {
    const text = typeof v === "string" ? v : scalarText(s);
    if (!opts.allowEmpty && text.trim() === "") {
      view.add(e, "expected non-empty text, found an empty string");
      return undefined;
    }
    return text;
  }
  view.add(e, `expected text, found ${describe(e.node)}`);
  return undefined;
}

export function readBool(view: MapView, name: string): boolean | undefined {
  const e = view.get(name);
  if (!e) return undefined;
  const v = scalarOf(e.node)?.value;
  if (typeof v === "boolean") return v;
  view.add(e, `expected true or false, found ${describe(e.node)}`);
  return undefined;
}

/** A whole number in [min, max]; huge values give a clear error, never Infinity. */
export function readInt(view: MapView, name: string, min: number, max: number, hint = ""): number | undefined {
  const e = view.get(name);
  if (!e) return undefined;
  const r = parseIntValue(e.node, min, max);
  if (r.ok) return r.value;
  view.add(e, r.error + hint);
  return undefined;
}

function parseIntValue(node: Node | null, min: number, max: number): Parsed<number> {
  const s = scalarOf(node);
  const v = s?.value;
  const range = max === Number.MAX_SAFE_INTEGER ? `a whole number ≥ ${min}` : `a whole number from ${min} to ${max}`;
  if (typeof v !== "number" && typeof v !== "bigint") return bad(`expected ${range}, found ${describe(node)}`);
  if (!Number.isSafeInteger(Number(v)) || (typeof v === "number" && !Number.isInteger(v))) {
    return bad(Number.isFinite(Number(v)) && !Number.isInteger(Number(v))
      ? `expected ${range}, found ${describe(node)}`
      : `expected ${range}, found a number too large to use: '${clip(scalarText(s!))}'`);
  }
  const n = Number(v);
  if (n < min || n > max) return bad(`expected ${range}, found ${n}`);
  return ok(n);
}

/** A duration: whole milliseconds (`1500`) or text like `500ms`, `30s`, `1m`, `2h`, `1d`, `1m30s`. */
export function readDuration(view: MapView, name: string, opts: { min?: number; max?: number } = {}): number | undefined {
  const e = view.get(name);
  if (!e) return undefined;
  const r = parseDurationValue(e.node, opts.min ?? 0, opts.max ?? Number.MAX_SAFE_INTEGER);
  if (r.ok) return r.value;
  view.add(e, r.error);
  return undefined;
}

const DURATION_EXPECTED = "a duration: whole milliseconds (e.g. 1500) or text like 500ms, 30s, 1m, 2h, 1d";

function parseDurationValue(node: Node | null, min: number, max: number): Parsed<number> {
  const s = scalarOf(node);
  const v = s?.value;
  if (!s || (typeof v !== "number" && typeof v !== "string" && typeof v !== "bigint")) return bad(`expected ${DURATION_EXPECTED}, found ${describe(node)}`);
  const text = scalarText(s).trim();
  if (/^-/.test(text)) return bad(`expected ${DURATION_EXPECTED}, found a negative value '${clip(text)}'`);
  if (typeof v === "number" && (!Number.isFinite(v) || (Number.isInteger(v) && !Number.isSafeInteger(v)))) {
    return bad(`expected ${DURATION_EXPECTED}, found a value too large to use: '${clip(text)}'`);
  }
  const ms = parseDurationMs(typeof v === "number" ? v : text);
  if (ms === null) return bad(`expected ${DURATION_EXPECTED}, found ${describe(node)}`);
  if (!Number.isSafeInteger(ms)) return bad(`expected ${DURATION_EXPECTED}, found a value too large to use: '${clip(text)}'`);
  if (ms < min) return bad(`must be at least ${min} ms, found ${ms} ms ('${clip(text)}')`);
  if (ms > max) return bad(`must be at most ${max} ms (about ${Math.floor(max / 86_400_000)} days), found ${ms} ms ('${clip(text)}')`);
  return ok(ms);
}

/** A byte size: `1024`, `10K`, `512M`, `2G`, `1T`. */
export function readSize(view: MapView, name: string, min = 0): number | undefined {
  const e = view.get(name);
  if (!e) return undefined;
  const r = parseSizeValue(e.node, min);
  if (r.ok) return r.value;
  view.add(e, r.error);
  return undefined;
}

const SIZE_EXPECTED = "a size in bytes like 1024, 10K, 512M, 2G, 1T";

function parseSizeValue(node: Node | null, min: number): Parsed<number> {
  const s = scalarOf(node);
  const v = s?.value;
  if (!s || (typeof v !== "number" && typeof v !== "string" && typeof v !== "bigint")) return bad(`expected ${SIZE_EXPECTED}, found ${describe(node)}`);
  const text = scalarText(s).trim();
  if (/^-/.test(text)) return bad(`expected ${SIZE_EXPECTED}, found a negative value '${clip(text)}'`);
  if (typeof v === "number" && !Number.isSafeInteger(v)) {
    return bad(Number.isInteger(v) || !Number.isFinite(v) ? `expected ${SIZE_EXPECTED}, found a value too large to use: '${clip(text)}'` : `expected ${SIZE_EXPECTED} (whole bytes), found '${clip(text)}'`);
  }
  const bytes = parseSizeBytes(typeof v === "string" ? text : Number(v));
  if (bytes === null) {
    const big = /^\s*\d{16,}/.test(text);
    return bad(`expected ${SIZE_EXPECTED}, found ${big ? `a value too large to use: '${clip(text)}'` : describe(node)}`);
  }
  if (bytes < min) return bad(`must be at least ${min} bytes, found '${clip(text)}'`);
  return ok(bytes);
}

/** One of a fixed set of words. */
export function readEnum<T extends string>(view: MapView, name: string, values: readonly T[]): T | undefined {
  const e = view.get(name);
  if (!e) return undefined;
  const v = scalarOf(e.node)?.value;
  if (typeof v === "string" && (values as readonly string[]).includes(v)) return v as T;
  view.add(e, `expected one of ${values.join(", ")}; found ${describe(e.node)}`);
  return undefined;
}

/** A list of non-empty texts (numbers allowed and kept as written). */
export function readStringList(view: MapView, name: string): string[] | undefined {
  const e = view.get(name);
  if (!e) return undefined;
  return readStringListNode(view, e);
}

export function readStringListNode(view: MapView, e: Entry): string[] | undefined {
  if (!e.node || !isSeq(e.node)) {
    view.add(e, `expected a list of texts, found ${describe(e.node)}`);
    return undefined;
  }
  const out: string[] = [];
  let good = true;
  e.node.items.forEach((item, i) => {
    const n = deref(view.ctx, item, `${e.key}[${i}]`);
    if (n === undefined) { good = false; return; }
    const s = scalarOf(n);
    const v = s?.value;
    if (!s || (typeof v !== "string" && typeof v !== "number" && typeof v !== "bigint")) {
      view.ctx.add(n ?? e.node, `${e.key}[${i}]`, `expected text, found ${describe(n)}`);
      good = false;
      return;
    }
    out.push(typeof v === "string" ? v : scalarText(s));
  });
  return good ? out : undefined;
}

/** Size or `max`, as cgroup memory files want it: decimal bytes text or "max". */
export function readMemoryLimit(view: MapView, name: string, min = 0): string | undefined {
  const e = view.get(name);
  if (!e) return undefined;
  const s = scalarOf(e.node);
  if (s && typeof s.value === "string" && s.value.trim() === "max") return "max";
  const r = parseSizeValue(e.node, min);
  if (r.ok) return String(r.value);
  view.add(e, r.error.replace(SIZE_EXPECTED, `${SIZE_EXPECTED}, or max`));
  return undefined;
}

/** `pids.max`: a whole number ≥ 1 or `max`. */
export function readPidsMax(view: MapView, name: string): string | undefined {
  const e = view.get(name);
  if (!e) return undefined;
  const s = scalarOf(e.node);
  if (s && typeof s.value === "string" && s.value.trim() === "max") return "max";
  const r = parseIntValue(e.node, 1, 4_194_304);
  if (r.ok) return String(r.value);
  view.add(e, `${r.error.replace(/^expected /, "expected max or ")}`);
  return undefined;
}

export function readCpuMax(view: MapView, name: string): string | undefined {
  const e = view.get(name);
  if (!e) return undefined;
  const s = scalarOf(e.node);
  const v = s?.value;
  if (!s || (typeof v !== "string" && typeof v !== "number" && typeof v !== "bigint")) {
    view.add(e, `expected ${CPU_EXPECTED}, found ${describe(e.node)}`);
    return undefined;
  }
  const r = parseCpuMax(typeof v === "string" ? v : scalarText(s));
  if (r.ok) return r.value;
  view.add(e, r.error);
  return undefined;
}

const CPU_EXPECTED = `a CPU limit: a percentage of one CPU like "50%" or "150%" (1.5 CPUs), the kernel form "QUOTA PERIOD" in microseconds like "50000 100000", "max 100000", or "max"`;
const DEFAULT_CPU_PERIOD = 100_000;
/** Kernel limits: quota ≥ 1 ms, period 1 ms..1 s, quota ≤ 2^44-1 µs. */
const MIN_QUOTA = 1000;
const MIN_PERIOD = 1000;
const MAX_PERIOD = 1_000_000;
const MAX_QUOTA = 2 ** 44 - 1;

/**
 * cpu.max forms → kernel form "QUOTA PERIOD" / "max PERIOD":
 * `"150%"` → `"150000 100000"`, `"max"` → `"max 100000"`, `"50000"` → `"50000 100000"`,
 * `"50000 100000"` and `"max 100000"` kept.
 */
export function parseCpuMax(input: string): Parsed<string> {
  const text = input.trim();
  const found = `found '${clip(text)}'`;
  const pct = /^(\d+(?:\.\d+)?)\s*%$/.exec(text);
  if (pct) {
    const p = Number(pct[1]);
    const quota = Math.round((p / 100) * DEFAULT_CPU_PERIOD);
    if (!Number.isFinite(p) || p <= 0) return bad(`a CPU percentage must be more than 0%, ${found}`);
    if (quota < MIN_QUOTA) return bad(`a CPU percentage must be at least 1% (the kernel's minimum quota is 1 ms per 100 ms), ${found}`);
    if (quota > MAX_QUOTA) return bad(`CPU percentage is too large, ${found}`);
    return ok(`${quota} ${DEFAULT_CPU_PERIOD}`);
  }
  const m = /^(max|\d+)(?:\s+(\d+))?$/.exec(text);
  if (!m) return bad(`expected ${CPU_EXPECTED}; ${found}`);
  const period = m[2] === undefined ? DEFAULT_CPU_PERIOD : Number(m[2]);
  if (!Number.isSafeInteger(period) || period < MIN_PERIOD || period > MAX_PERIOD) {
    return bad(`the cpu period must be from ${MIN_PERIOD} to ${MAX_PERIOD} microseconds, ${found}`);
  }
  if (m[1] === "max") return ok(`max ${period}`);
  const quota = Number(m[1]);
  if (!Number.isSafeInteger(quota) || quota > MAX_QUOTA) return bad(`the cpu quota is too large, ${found}`);
  if (quota < MIN_QUOTA) return bad(`the cpu quota must be at least ${MIN_QUOTA} microseconds, ${found}`);
  return ok(`${quota} ${period}`);
}

/** Linux signal numbers (x86-64/arm64 numbering). */
export const SIGNALS: Readonly<Record<string, number>> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8,
  SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15,
  SIGSTKFLT: 16, SIGCHLD: 17, SIGCONT: 18, SIGSTOP: 19, SIGTSTP: 20, SIGTTIN: 21, SIGTTOU: 22,
  SIGURG: 23, SIGXCPU: 24, SIGXFSZ: 25, SIGVTALRM: 26, SIGPROF: 27, SIGWINCH: 28, SIGIO: 29,
  SIGPWR: 30, SIGSYS: 31,
};
const SIGNAL_ALIASES: Readonly<Record<string, string>> = { SIGIOT: "SIGABRT", SIGPOLL: "SIGIO", SIGCLD: "SIGCHLD" };

/** `SIGTERM`, `TERM`, `sigint`, `15` → `"SIGTERM"`-style name; null when unknown. */
export function normalizeSignal(input: string | number): string | null {
  if (typeof input === "number" || /^\s*\d+\s*$/.test(input)) {
    const n = Number(input);
    for (const [name, num] of Object.entries(SIGNALS)) if (num === n) return name;
    return null;
  }
  let name = input.trim().toUpperCase();
  if (!name.startsWith("SIG")) name = `SIG${name}`;
  name = SIGNAL_ALIASES[name] ?? name;
  return name in SIGNALS ? name : null;
}

export function readSignal(view: MapView, name: string): string | undefined {
  const e = view.get(name);
  if (!e) return undefined;
  const s = scalarOf(e.node);
  const v = s?.value;
  const sig = typeof v === "string" || (typeof v === "number" && Number.isSafeInteger(v)) ? normalizeSignal(v) : null;
  if (sig) return sig;
  view.add(e, `expected a signal name like SIGTERM, TERM, SIGINT or a number like 15; found ${describe(e.node)}`);
  return undefined;
}
