/**
 * The environment a service starts with. By default a clean one: nothing of the daemon's own
 * environment (which may hold secrets it was started with) reaches a service, only
 *   PATH (a fixed safe default), HOME/USER/LOGNAME/SHELL of the service's user (the daemon's
 *   user when the service sets none), LANG when the daemon has it, PM_SERVICE,
 * then the service's `environment`, which overrides any of them.
 * `process.inherit_environment: true` starts from the daemon's environment instead (the old
 * behaviour); the identity, PM_SERVICE and `environment` are laid over it the same way.
 */
import type { ServiceConfig } from "../config/types.ts";
import { resolveUser } from "../config/load.ts";
import { SAFE_PATH } from "../config/service-path.ts";
import { QUIET_RUNTIME_NAMES } from "../linux/quiet-runtime.ts";

/**
 * Variables of the daemon's own runtime that never reach a service, inherited or not: the quiet
 * runtime's (BUN_GC_TIMER_DISABLE, MIMALLOC_SCAVENGER), also when the operator gave them the daemon.
 */
const DAEMON_ONLY = QUIET_RUNTIME_NAMES;

export function buildServiceEnvironment(svc: ServiceConfig, daemonEnv: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  if (svc.process.inheritEnvironment) {
    for (const [k, v] of Object.entries(daemonEnv)) if (v !== undefined) env[k] = v;
    for (const k of DAEMON_ONLY) delete env[k];
  } else {
    env.PATH = SAFE_PATH;
    if (daemonEnv.LANG !== undefined) env.LANG = daemonEnv.LANG;
  }
  // resolveUser reads /etc/passwd through users.ts's cache: parsed again only when it changed.
  const user = resolveUser(svc.process.user ?? process.getuid?.() ?? 0);
  if (user) Object.assign(env, { HOME: user.home, USER: user.name, LOGNAME: user.name, SHELL: user.shell });
  env.PM_SERVICE = svc.name;
  return Object.assign(env, svc.process.environment);
}
