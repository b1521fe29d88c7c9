/**
 * The sd_notify protocol for services with `notify: true` (readiness or liveness). Each such
 * service gets its own datagram socket, a file in `<sock_path>.notify/` (NOTIFY_SOCKET=<path>):
 * a folder the daemon creates 0755 beside its control socket, in the folder it already
 * verified only root can write, so nobody else can create, replace or pre-empt a socket there
 * (an abstract `@name` could be bound first by any local user, who would then read the
 * service's messages and keep it from ever being ready). The sockets are 0666: anyone may send,
 * as with systemd's. A socket's path depends only on sock_path and the service, so a service
 * adopted after a daemon restart still reaches the new daemon, which replaces the stale file.
 *
 * Every message carries its sender's pid (SO_PASSCRED; the kernel fills it in, it cannot be
 * forged), and only a sender that is in the service's cgroup is believed: nobody outside the
 * service may make it "ready". What others send is logged escaped, and at most
 * IGNORED_PER_WINDOW times per sender uid per window; file descriptors passed along are closed
 * on arrival (linux/ffi.ts).
 *
 * Bun has no unix datagram sockets, so the sockets are bun:ffi ones (linux/ffi.ts) read without
 * blocking: every 100 ms while a notify service waits to be ready, every second otherwise, and
 * right before the start gate's timer decides anything (a WATCHDOG=1 is never missed for being
 * read late). A sender must still be running when its message is read (as with systemd's
 * NotifyAccess=all): the main process calling sd_notify is; a short-lived `systemd-notify`
 * may not be.
 */
import { createHash } from "node:crypto";
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import type { ServiceConfig } from "../config/types.ts";
import type { CgroupTree } from "../cgroup/index.ts";
import { closeFd, openCredentialedDatagramSocket, receiveWithCredentials } from "../linux/ffi.ts";
import { PmError, errorMessage } from "../util/errors.ts";
import { octal, selfTrusted, untrustedFolderReason } from "../util/file-trust.ts";
import { printable } from "../util/log.ts";
import { plural } from "../util/plural.ts";
import type { Unit } from "./supervisor.ts";

/** Set once by the daemon: the folder of its notify sockets, `<sock_path>.notify`. */
let folder: string | null = null;
let folderReady = false;
export function setNotifyFolder(sockPath: string): void {
  folder = `${sockPath}.notify`;
  folderReady = false;
}

/**
 * Creates the notify folder 0755 (others must reach the sockets), after checking that only
 * root (the daemon's uid) can write where it lives; checks an existing one the same way.
 */
function prepareFolder(dir: string): void {
  const why = untrustedFolderReason(dirname(dir), selfTrusted());
  if (why !== null && process.getuid?.() === 0) throw new PmError("CONFIG_INVALID", `notify sockets: ${why}`);
  try { mkdirSync(dir, { mode: 0o755 }); } catch (e) { if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e; }
  const st = lstatSync(dir);
  if (!st.isDirectory() || !selfTrusted().has(st.uid)) throw new PmError("CONFIG_INVALID", `notify sockets: ${dir} is not a folder of ours (uid ${st.uid})`);
  if ((st.mode & 0o7777) !== 0o755) chmodSync(dir, 0o755); // whatever the umask made it, or someone set
  const still = untrustedFolderReason(dir, selfTrusted());
  if (still !== null && process.getuid?.() === 0) throw new PmError("CONFIG_INVALID", `notify sockets: ${still}`);
}

/** Binds a fresh socket at `path`, replacing a stale one a previous daemon left behind. */
function bindNotifySocket(path: string): number {
  if (folder === null) throw new PmError("SYSCALL", "no notify folder");
  if (!folderReady) { prepareFolder(folder); folderReady = true; }
  try {
    const st = lstatSync(path);
    if (!st.isSocket()) throw new PmError("CONFIG_INVALID", `${path} exists and is not a socket (mode ${octal(st.mode)})`);
    unlinkSync(path);
  } catch (e) { if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e; }
  const fd = openCredentialedDatagramSocket(path);
  try { chmodSync(path, 0o666); } catch (e) { closeFd(fd); throw e; }
  return fd;
}

export function usesNotify(svc: ServiceConfig): boolean {
  return svc.readiness?.check.kind === "notify" || svc.liveness?.check.kind === "notify";
}

/** The path of the service's notify socket (service names are valid file names: config/service.ts). */
export function notifySocketPath(service: string): string | null {
  if (folder === null) return null;
  const name = service.length <= 64 ? service : createHash("sha256").update(service).digest("hex").slice(0, 32);
  return `${folder}/${name}`;
}

/** NOTIFY_SOCKET (and WATCHDOG_USEC) for the environment of a notify service; {} for others. */
export function notifyEnv(svc: ServiceConfig): Record<string, string> {
  const path = usesNotify(svc) ? notifySocketPath(svc.name) : null;
  if (path === null) return {};
  const watchdogMs = svc.liveness?.check.kind === "notify" ? svc.liveness.watchdogMs : undefined;
  return { NOTIFY_SOCKET: path, ...(watchdogMs !== undefined ? { WATCHDOG_USEC: String(watchdogMs * 1000) } : {}) };
}

/**
 * The daemon's own NOTIFY_SOCKET/WATCHDOG_* (from systemd, when it runs the daemon) are not a
 * service's: removed; a notify service gets its own.
 */
export function withNotifyEnv(env: Record<string, string>, svc: ServiceConfig): Record<string, string> {
  for (const k of ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"]) delete env[k];
  return Object.assign(env, notifyEnv(svc));
}

export interface NotifyMessage { ready?: boolean; status?: string; watchdog?: boolean; stopping?: boolean; mainPid?: number }

/** `KEY=VALUE` lines as sd_notify(3) sends them; unknown keys are ignored. */
export function parseNotify(text: string): NotifyMessage {
  const msg: NotifyMessage = {};
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === "READY" && value === "1") msg.ready = true;
    else if (key === "STATUS") msg.status = value.slice(0, 512);
    else if (key === "WATCHDOG" && value === "1") msg.watchdog = true;
    else if (key === "STOPPING" && value === "1") msg.stopping = true;
    else if (key === "MAINPID" && /^\d+$/.test(value)) msg.mainPid = Number(value);
  }
  return msg;
}

export interface NotifyHubDeps {
  cgroups: CgroupTree;
  /** A believed message. */
  deliver(unit: Unit, msg: NotifyMessage): void;
  /** Whether `unit` is waiting for READY=1 (read its socket often). */
  waitingForReady(unit: Unit): boolean;
  /** Whether `unit` is still managed (update may have removed it): its socket is closed when not. */
  managed(unit: Unit): boolean;
}

export class NotifyHub {
  private readonly sockets = new Map<Unit, number>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly ignored = new IgnoredMessageLog(() => performance.now());

  constructor(private readonly deps: NotifyHubDeps) {}

  /** Opens the unit's socket if its config uses notify (before its process starts). */
  ensure(unit: Unit): void {
    if (!usesNotify(unit.config)) { this.close(unit); return; }
    if (this.sockets.has(unit)) { this.schedule(); return; }
    const path = notifySocketPath(unit.name);
    if (path === null) return;
    try { this.sockets.set(unit, bindNotifySocket(path)); }
    catch (e) { unit.log.error(`cannot open the notify socket ${path}: ${errorMessage(e)}`); return; }
    this.schedule();
  }

  close(unit: Unit): void {
    const fd = this.sockets.get(unit);
    if (fd === undefined) return;
    closeFd(fd);
    this.sockets.delete(unit);
  }

  /** Reads every waiting message of `unit` now. */
  drain(unit: Unit): void {
    const fd = this.sockets.get(unit);
    if (fd === undefined) return;
    for (let i = 0; i < 256; i++) {
      let m;
      try { m = receiveWithCredentials(fd); } catch (e) { unit.log.warn(`notify socket: ${errorMessage(e)}`); return; }
      if (m === null) return;
      const text = m.data.toString("utf8");
      const ignore = (why: string) => this.ignored.ignored(unit, m.uid, () => `ignored a notify message from pid ${m.pid} (uid ${m.uid}): ${why} ("${printable(text, 80)}")`);
      if (!this.deps.cgroups.pids(unit.name).includes(m.pid)) { ignore("not a process of this service"); continue; }
      if (m.truncated) { ignore(`its control data did not fit (${plural(m.passedFds, "file descriptor")} passed, closed)`); continue; }
      const msg = parseNotify(text);
      if (msg.mainPid !== undefined && !this.deps.cgroups.pids(unit.name).includes(msg.mainPid)) {
        unit.log.warn(`ignored MAINPID=${msg.mainPid}: not a process of this service`);
        delete msg.mainPid;
      }
      this.deps.deliver(unit, msg);
    }
  }

  private schedule() {
    if (this.timer || this.sockets.size === 0) return;
    const fast = [...this.sockets.keys()].some((u) => this.deps.waitingForReady(u));
    this.timer = setTimeout(() => {
      this.timer = null;
      for (const unit of [...this.sockets.keys()]) {
        if (this.deps.managed(unit)) this.drain(unit); else this.close(unit);
      }
      this.schedule();
    }, fast ? 100 : 1000);
  }

  /** After a unit's run began: read often again until it is ready. */
  wake(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    this.schedule();
  }
}

export const IGNORED_PER_WINDOW = 10;
export const IGNORED_WINDOW_MS = 60_000;

/**
 * Logs ignored notify messages (which anyone on the host can send), IGNORED_PER_WINDOW per
 * sender uid per window; then one line saying how many were not logged.
 */
export class IgnoredMessageLog {
  private readonly byUid = new Map<number, { since: number; logged: number; dropped: number }>();
  constructor(private readonly now: () => number) {}

  ignored(unit: Unit, uid: number, line: () => string): void {
    const t = this.now();
    let w = this.byUid.get(uid);
    if (!w || t - w.since >= IGNORED_WINDOW_MS) {
      if (w && w.dropped > 0) unit.log.warn(`${plural(w.dropped, "more ignored notify message")} from uid ${uid} not logged`);
      w = { since: t, logged: 0, dropped: 0 };
      this.byUid.set(uid, w);
      if (this.byUid.size > 1024) this.byUid.delete(this.byUid.keys().next().value!); // bounded: oldest window goes
    }
    if (w.logged < IGNORED_PER_WINDOW) {
      w.logged++;
      unit.log.warn(`${line()}${w.logged === IGNORED_PER_WINDOW ? ` (further ignored messages from uid ${uid} are counted, not logged, for ${IGNORED_WINDOW_MS / 1000}s)` : ""}`);
    } else w.dropped++;
  }
}
