/** The process exit codes of pmctl and of the daemon (a daemon that cannot run exits `failed`). */
export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3, unhealthy: 4 } as const;

/** Every exit code pmctl uses and what it means: printed by `--help`, copied in the README. */
export const EXIT_CODE_TABLE: readonly [number, string][] = [
  [EXIT.ok, "success"],
  [EXIT.failed, "the request failed (unknown service, invalid config, a service that did not reach the wanted state, permission refused)"],
  [EXIT.usage, "usage error (unknown command or option, missing argument)"],
  [EXIT.unreachable, "the daemon is not reachable"],
  [EXIT.unhealthy, "status: a listed service (or, with none listed, any service) is failed, suppressed or in backoff"],
];
