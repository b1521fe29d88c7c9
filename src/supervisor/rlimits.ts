/**
 * `process.limits`: rlimits set in the child before exec by util-linux prlimit, which execs the
 * command in the same process (like setpriv in exec.ts), so PID, cgroup and exit status stay the
 * service's own.
 */
import * as fs from "node:fs";
import { RLIMIT_NAMES, type ServiceConfig } from "../config/types.ts";
import { PmError } from "../util/errors.ts";
import { sealEnvironment, unsafeCommandReason, type ExecPlan } from "./exec.ts";

const PRLIMIT_PATHS = ["/usr/bin/prlimit", "/bin/prlimit"];
let prlimitPath: string | null | undefined;

/** prlimit at a fixed, root-owned place (never looked up in a PATH we are given). */
function findPrlimit(): string | null {
  if (prlimitPath !== undefined) return prlimitPath;
  prlimitPath = PRLIMIT_PATHS.find((p) => {
    try { fs.accessSync(p, fs.constants.X_OK); return unsafeCommandReason(p) === null; } catch { return false; }
  }) ?? null;
  return prlimitPath;
}

/** prlimit's options for the configured limits, e.g. `--nofile=1024:65536`. */
export function prlimitOptions(svc: ServiceConfig): string[] {
  const out: string[] = [];
  for (const name of RLIMIT_NAMES) {
    const v = svc.process.limits[name];
    if (v) out.push(`--${name}=${v.soft}:${v.hard}`);
  }
  return out;
}

/**
 * The plan wrapped in prlimit when limits are configured. prlimit runs first, still as root
 * (setpriv, if any, comes after it), so hard limits can be raised above the daemon's own.
 */
export function withLimits(svc: ServiceConfig, plan: ExecPlan): ExecPlan {
  const options = prlimitOptions(svc);
  if (options.length === 0) return plan;
  const prlimit = findPrlimit();
  if (!prlimit) throw new PmError("SPAWN", `process.limits of ${svc.name} need prlimit (util-linux) at ${PRLIMIT_PATHS.join(" or ")}; not found`);
  // Behind setpriv's env -i already: prlimit gets the same clean environment. Else prlimit (run as
  // root) must not see the service's environment either.
  if (plan.sealed) return { ...plan, cmd: [prlimit, ...options, "--", ...plan.cmd], argv0: prlimit };
  return { ...plan, ...sealEnvironment([prlimit, ...options], plan.cmd, plan.env), argv0: prlimit, sealed: true };
}

