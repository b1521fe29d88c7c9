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
