/**
 * What exactly the daemon executes for a service: the command resolved through PATH as
 * execvp(3) does, refused when a root daemon would run a file that someone else can change, and
 * wrapped in setpriv when the service runs as a user with supplementary groups.
 */
import { accessSync, constants, realpathSync, statSync } from "node:fs";
import { delimiter, dirname, resolve } from "node:path";
import type { ServiceConfig } from "../config/types.ts";
import { resolveUser, userGroups } from "../config/load.ts";
import { PmError, errorMessage } from "../util/errors.ts";
import { logger } from "../util/log.ts";

/** What Bun.spawn gets: `cmd[0]` is an absolute path, `argv0` what the program sees as argv[0]. */
export interface ExecPlan {
  cmd: string[];
  argv0: string;
  uid?: number;
  gid?: number;
}

/** glibc's execvp search path when PATH is unset. */
const DEFAULT_PATH = "/bin:/usr/bin";

/**
 * The file execvp would run for `word`: a word with a `/` is a path (relative to `cwd`), any
 * other word is looked up in each PATH entry in order (an empty entry means `cwd`).
 */
export function resolveCommand(word: string, opts: { PATH?: string; cwd: string }): string {
  if (word.includes("/")) {
    const file = resolve(opts.cwd, word);
    const why = notRunnable(file);
    if (why) throw new PmError("SPAWN", `cannot run ${file}: ${why}`);
    return file;
  }
  const path = opts.PATH ?? DEFAULT_PATH;
  let denied: string | null = null;
  for (const dir of path.split(delimiter)) {
    const file = resolve(opts.cwd, dir || ".", word);
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
export function unsafeCommandReason(file: string, serviceUid?: number): string | null {
  const trusted = new Set([0, serviceUid ?? 0]);
  const owner = (uid: number) => { const name = resolveUser(uid)?.name; return `uid ${uid}${name ? ` (${name})` : ""}`; };
  let real: string;
  try { real = realpathSync(file); } catch (e) { return `cannot be resolved: ${errorMessage(e)}`; }
  const st = statSync(real);
  const what = real === file ? file : `${file} (-> ${real})`;
  if (!trusted.has(st.uid)) return `${what} is owned by ${owner(st.uid)}`;
  if (st.mode & 0o002) return `${what} is writable by everyone (mode ${octal(st.mode)})`;
  if (st.mode & 0o020) return `${what} is writable by its group, gid ${st.gid} (mode ${octal(st.mode)})`;
  const folders = new Set([...ancestors(file), ...ancestors(real)]);
  for (const dir of folders) {
    let ds;
    try { ds = statSync(dir); } catch { continue; }
    if (!trusted.has(ds.uid)) return `its folder ${dir} is owned by ${owner(ds.uid)}`;
    const sticky = (ds.mode & 0o1000) !== 0; // in /tmp others cannot rename or delete our file
    if (!sticky && ds.mode & 0o002) return `its folder ${dir} is writable by everyone (mode ${octal(ds.mode)})`;
    if (!sticky && ds.mode & 0o020) return `its folder ${dir} is writable by its group, gid ${ds.gid} (mode ${octal(ds.mode)})`;
  }
  return null;
}

function ancestors(file: string): string[] {
  const out: string[] = [];
  for (let d = dirname(file); ; d = dirname(d)) { out.push(d); if (d === dirname(d)) break; }
  return out;
}

const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, "0");

const SETPRIV_PATHS = ["/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv", "/sbin/setpriv"];
let setprivPath: string | null | undefined;
let warnedNoSetpriv = false;
const log = logger("spawn");

/** setpriv from util-linux at a fixed, root-owned place (never looked up in a PATH we are given). */
function findSetpriv(): string | null {
  if (setprivPath !== undefined) return setprivPath;
  setprivPath = SETPRIV_PATHS.find((p) => notRunnable(p) === null && unsafeCommandReason(p) === null) ?? null;
  return setprivPath;
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
    const why = unsafeCommandReason(file, uid);
    if (why) {
      throw new PmError("SPAWN", `refusing to run ${file} for ${svc.name} as ${uid === undefined ? "root" : `uid ${uid}`}: ${why}; ` +
        "make it changeable only by root (or the service's user), or set process.allow_writable_command: true in " + svc.file);
    }
  }
  const direct: ExecPlan = { cmd: [file, ...argv.slice(1)], argv0: word, ...(uid !== undefined ? { uid } : {}), ...(gid !== undefined ? { gid } : {}) };
  if (!asRoot || uid === undefined || gid === undefined || user === undefined) return direct;
  const name = resolveUser(user)?.name ?? user;
  const groups = [...new Set([...userGroups(name, gid), ...svc.process.supplementaryGroups])];
  const setpriv = findSetpriv();
  if (!setpriv) {
    // Bun's uid/gid still give the right uid and gid; only the extra groups are lost.
    if (groups.length > 1 && !warnedNoSetpriv) {
      log.warn(`setpriv (util-linux) not found in ${SETPRIV_PATHS.join(", ")}: services run as users get only their primary group, not ${groups.slice(1).join(",")}`);
      warnedNoSetpriv = true;
    }
    return direct;
  }
  return { cmd: [setpriv, `--reuid=${uid}`, `--regid=${gid}`, `--groups=${groups.join(",")}`, "--", file, ...argv.slice(1)], argv0: setpriv };
}
