/**
 * What exactly the daemon executes for a service: the command resolved through PATH as
 * execvp(3) does, refused when a root daemon would run a file that someone else can change, and
 * wrapped in setpriv when the service runs as a user with supplementary groups.
 */
import { accessSync, constants, statSync } from "node:fs";
import { delimiter } from "node:path";
import { scriptArguments } from "./script-args.ts";
import { untrustedFileReason } from "../util/file-trust.ts";
import { kernelPath } from "../util/path-walk.ts";
import type { ServiceConfig } from "../config/types.ts";
import { NO_PATH_DEFAULT } from "../config/service-path.ts";
import { resolveUser, userGroups } from "../config/load.ts";
import { noNewPrivilegesOf } from "../config/service.ts";
import { PmError, errorMessage } from "../util/errors.ts";
import { logger } from "../util/log.ts";

/**
 * What Bun.spawn gets: `cmd[0]` is an absolute path, `argv0` what the program sees as argv[0],
 * `env` its environment. When root-run wrappers (setpriv, prlimit) come first, `env` is a fixed
 * clean one and the service's environment is set by `env -i` after them (see sealEnvironment).
 */
export interface ExecPlan {
  cmd: string[];
  argv0: string;
  env: Record<string, string>;
  /** The service's environment is set by `env -i` after the wrappers; `env` is WRAPPER_ENV. */
  sealed?: boolean;
  uid?: number;
  gid?: number;
}

/**
 * The file execvp would run for `word`: a word with a `/` is a path (relative to `cwd`), any
 * other word is looked up in each PATH entry in order (an empty entry means `cwd`). A `..` stays
 * in the path (kernelPath): after a symlinked folder it is not what path.resolve would make it.
 */
export function resolveCommand(word: string, opts: { PATH?: string; cwd: string }): string {
  if (word.includes("/")) {
    const file = kernelPath(opts.cwd, word);
    const why = notRunnable(file);
    if (why) throw new PmError("SPAWN", `cannot run ${file}: ${why}`);
    return file;
  }
  const path = opts.PATH ?? NO_PATH_DEFAULT; // execvp's search path when PATH is unset
  let denied: string | null = null;
  for (const dir of path.split(delimiter)) {
    const file = kernelPath(opts.cwd, `${dir || "."}/${word}`);
    const why = notRunnable(file);
    if (why === null) return file;
    if (why !== "not found") denied ??= `${file}: ${why}`;
  }
  throw new PmError("SPAWN", denied ? `cannot run '${word}': ${denied}` : `command '${word}' not found in PATH (${path})`);
}

function notRunnable(file: string): string | null {
  try {
    if (!statSync(file).isFile()) return "not a regular file";
    accessSync(file, constants.X_OK);
    return null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === "ENOENT" || code === "ENOTDIR" ? "not found" : code === "EACCES" ? "not executable" : errorMessage(e);
  }
}

/**
 * Why a root daemon should not run `file` for a service whose own uid is `serviceUid` (root
 * when undefined), or null when only root or that user can change what runs. Someone who can
 * write the file, or any folder on the way to it (or rename it, in a folder without the sticky
 * bit), could make the daemon run their code with the service's identity.
 */
export function unsafeCommandReason(file: string, serviceUid?: number, opts: { missing?: "judge-folder" } = {}): string | null {
  return untrustedFileReason(file, new Set([0, serviceUid ?? 0]), nameOfUid, opts);
}

const nameOfUid = (uid: number) => { const name = resolveUser(uid)?.name; return `uid ${uid}${name ? ` (${name})` : ""}`; };

/**
 * Why a script an interpreter in `argv` would run (script-args.ts) could be changed by someone
 * other than root or the service's user, or null. A script that does not exist yet (or a symlink
 * to nothing yet) is judged by the folder the kernel would find it in: whoever can create it there
 * decides what runs. The interpreter opens `word` from `cwd`, so `..` is the kernel's, not lexical.
 */
export function unsafeScriptReason(argv: readonly string[], cwd: string, serviceUid?: number): string | null {
  for (const word of scriptArguments(argv)) {
    const file = kernelPath(cwd, word);
    const why = unsafeCommandReason(file, serviceUid, { missing: "judge-folder" });
    if (why) return `the script ${file} it runs: ${why}`;
  }
  return null;
}

const SETPRIV_PATHS = ["/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv", "/sbin/setpriv"];
const ENV_PATHS = ["/usr/bin/env", "/bin/env"];
/** The whole environment of root-run wrappers: nothing a service's user wrote reaches them. */
export const WRAPPER_ENV: Readonly<Record<string, string>> = Object.freeze({ PATH: "/usr/sbin:/usr/bin:/sbin:/bin" });
let envPath: string | null | undefined;
let setprivPath: string | null | undefined;
let warnedNoSetpriv = false;
const log = logger("spawn");

/** setpriv from util-linux at a fixed, root-owned place (never looked up in a PATH we are given). */
function findSetpriv(): string | null {
  if (setprivPath !== undefined) return setprivPath;
  setprivPath = SETPRIV_PATHS.find((p) => notRunnable(p) === null && unsafeCommandReason(p) === null) ?? null;
  return setprivPath;
}

/** env(1) at a fixed, root-owned place. */
function findEnv(): string {
  if (envPath === undefined) envPath = ENV_PATHS.find((p) => notRunnable(p) === null && unsafeCommandReason(p) === null) ?? null;
  if (!envPath) throw new PmError("SPAWN", `env (coreutils) not found at ${ENV_PATHS.join(" or ")}: needed to start a service through setpriv or prlimit`);
  return envPath;
}

/**
 * `wrapper` (setpriv, prlimit: run as root before they drop privileges or exec) with the service's
 * `target` argv and environment. The wrappers run with WRAPPER_ENV only; `env -i K=V… FILE ARGS`,
 * exec'd by them in the same process after the switch to the service's user, gives FILE exactly
 * the service's environment. Otherwise a variable the service's user controls (an
 * environment_file it owns: LD_PRELOAD, GCONV_PATH, …) would be honoured by the dynamic loader of
 * a program still running as root.
 */
export function sealEnvironment(wrapper: string[], target: string[], env: Record<string, string>): { cmd: string[]; env: Record<string, string> } {
  const file = target[0]!;
  if (file.includes("=")) throw new PmError("SPAWN", `cannot start ${file} through ${wrapper[0]}: a program path with '=' in it cannot follow env -i`);
  const pairs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  return { cmd: [...wrapper, "--", findEnv(), "-i", ...pairs, ...target], env: { ...WRAPPER_ENV } };
}

/**
 * The exec plan for `argv` (a service's command or stop_command) with environment `env`.
 *
 * Identity: Bun.spawn's uid/gid options clear the supplementary groups and Bun has no option to
 * set them, and the group list must be set between fork and exec, where no JavaScript runs. So
 * for a service with a `user`, the daemon (root) runs `setpriv --reuid=U --regid=G --groups=G,…
 * -- FILE ARGS` (util-linux; initgroups(3)'s list, as systemd and su give): setpriv sets the groups,
 * gid and uid, then execs FILE in the same process, so the PID, the cgroup (Bun.spawn still
 * places the child with clone3(CLONE_INTO_CGROUP)) and the exit status are the service's own.
 * The groups come from /etc/group like the user itself (config/users.ts), so the config check and
 * the run agree. The one visible difference: the program's argv[0] is then its absolute path.
 */
export function execPlan(svc: ServiceConfig, argv: string[], env: Record<string, string>): ExecPlan {
  const word = argv[0]!;
  const file = resolveCommand(word, { PATH: env.PATH, cwd: svc.process.workingDirectory });
  const asRoot = process.getuid?.() === 0;
  const { uid, gid, user } = svc.process;
  if (asRoot && !svc.process.allowWritableCommand) {
    const why = unsafeCommandReason(file, uid) ?? unsafeScriptReason(argv, svc.process.workingDirectory, uid);
    if (why) {
      throw new PmError("SPAWN", `refusing to run ${file} for ${svc.name} as ${uid === undefined ? "root" : `uid ${uid}`}: ${why}; ` +
        "make it changeable only by root (or the service's user), or set process.allow_writable_command: true in " + svc.file);
    }
  }
  const direct: ExecPlan = { cmd: [file, ...argv.slice(1)], argv0: word, env, ...(uid !== undefined ? { uid } : {}), ...(gid !== undefined ? { gid } : {}) };
  if (!asRoot) return direct;
  // A service run as another user loses every capability for good (an empty bounding set: no
  // setuid-root binary or file capability gives one back) and, unless it says otherwise, may
  // not gain privileges through exec at all (NoNewPrivs: setuid bits are ignored).
  const asUser = uid !== undefined && uid !== 0;
  const noNewPrivs = noNewPrivilegesOf(svc.process);
  const hardening = [...(noNewPrivs ? ["--no-new-privs"] : []), ...(asUser ? ["--bounding-set=-all"] : [])];
  const switchUser = uid !== undefined && gid !== undefined && user !== undefined;
  if (!switchUser && hardening.length === 0) return direct;
  const setpriv = findSetpriv();
  if (!setpriv) {
    // Bun's uid/gid still give the right uid and gid; the extra groups and the hardening are lost.
    if (!warnedNoSetpriv) {
      log.warn(`setpriv (util-linux) not found in ${SETPRIV_PATHS.join(", ")}: services run as users get only their primary group, keep the capability bounding set, and no_new_privileges is not applied`);
      warnedNoSetpriv = true;
    }
    return direct;
  }
  const groups = switchUser ? [...new Set([...userGroups(resolveUser(user)?.name ?? user, gid), ...svc.process.supplementaryGroups])] : [];
  const identity = switchUser ? [`--reuid=${uid}`, `--regid=${gid}`, `--groups=${groups.join(",")}`] : [];
  return { ...sealEnvironment([setpriv, ...identity, ...hardening], [file, ...argv.slice(1)], env), argv0: setpriv, sealed: true };
}
