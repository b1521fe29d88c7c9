/**
 * The daemon's own log: one line per event on stderr, `time level [scope] message`.
 * Tests and operators grep it, so the format stays plain.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

const order: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
let threshold: LogLevel = (process.env.PM_LOG_LEVEL as LogLevel) in order ? (process.env.PM_LOG_LEVEL as LogLevel) : "info";
let sink: (line: string) => void = (line) => process.stderr.write(line + "\n");

export function setLogLevel(level: LogLevel) { threshold = level; }
export function setLogSink(fn: (line: string) => void) { sink = fn; }

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export function logger(scope: string): Logger {
  const emit = (level: LogLevel, msg: string) => {
    if (order[level] < order[threshold]) return;
    sink(`${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} [${scope}] ${msg}`);
  };
  return {
    debug: (m) => emit("debug", m),
    info: (m) => emit("info", m),
    warn: (m) => emit("warn", m),
    error: (m) => emit("error", m),
  };
}

/**
 * `text` safe for one log line: control characters (newlines above all: a client could forge
 * whole log lines) and the Unicode line separators are written as escapes, and it is cut to
 * `max` characters. For anything a client or a service chose.
 */
export function printable(text: string, max = 200): string {
  const cut = text.length > max ? `${text.slice(0, max)}…(${text.length} chars)` : text;
  // eslint-disable-next-line no-control-regex
  return cut.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029\\]/g, (c) => (c === "\\" ? "\\\\" : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`));
}
