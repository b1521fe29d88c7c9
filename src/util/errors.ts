/**
 * The one error class of processmaster. `code` is stable and machine-readable;
 * `message` is the one line an operator reads (which file, which key, what was expected).
 */
export type ErrorCode =
  | "CONFIG_INVALID"     // a config file is wrong: file, line, key in the message
  | "CONFIG_UNREADABLE"  // a config file or folder cannot be read
  | "UNKNOWN_SERVICE"
  | "CGROUP_UNAVAILABLE" // no cgroup2 mount, or not writable
  | "CGROUP_IO"
  | "SYSCALL"            // an errno from libc through bun:ffi
  | "DAEMON_RUNNING"     // a live daemon already owns the socket
  | "DAEMON_UNREACHABLE" // the client cannot reach the daemon
  | "SHUTTING_DOWN"      // `pmctl shutdown` is under way: no more changes
  | "PROTOCOL"           // a malformed request or reply
  | "PERMISSION"         // peer not allowed to do this
  | "USAGE"              // bad command-line use
  | "SPAWN"              // the service's command could not be started
  | "STATE_FILE"
  | "LOGS"
  | "INTERNAL";

export class PmError extends Error {
  readonly code: ErrorCode;
  readonly errno?: number;
  constructor(code: ErrorCode, message: string, opts: { errno?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "PmError";
    this.code = code;
    this.errno = opts.errno;
  }
}

export function isPmError(e: unknown, code?: ErrorCode): e is PmError {
  return e instanceof PmError && (code === undefined || e.code === code);
}

/** The message of anything thrown, for logs and replies. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
