/**
 * The PATH a service's command is found on, decided in one place for the daemon
 * (supervisor/service-env.ts builds the environment with it) and for `check`
 * (config/runtime-check.ts resolves the program on it). Pure.
 */
import type { ProcessConfig } from "./types.ts";

/** The PATH a service gets unless its `environment` sets one; root-owned folders only. */
export const SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** What execvp searches when the environment has no PATH at all (glibc's default, less the cwd). */
export const NO_PATH_DEFAULT = "/bin:/usr/bin";

/**
 * The service's PATH: its environment files' PATH, else its `environment.PATH`, else the
 * daemon's own PATH with `inherit_environment: true`, else SAFE_PATH.
 */
export function servicePath(p: Pick<ProcessConfig, "environment" | "inheritEnvironment">, daemonEnv: NodeJS.ProcessEnv, fromFiles: Record<string, string> = {}): string {
  return fromFiles.PATH ?? p.environment.PATH ?? (p.inheritEnvironment ? daemonEnv.PATH ?? NO_PATH_DEFAULT : SAFE_PATH);
}
