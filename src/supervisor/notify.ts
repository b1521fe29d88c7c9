/**
 * The sd_notify protocol for services with `notify: true` (readiness or liveness). Each such
 * service gets its own datagram socket in the abstract namespace (`NOTIFY_SOCKET=@…`, no file
 * to create, redirect or clean up), named after the daemon's master cgroup and the service, so
 * a service adopted after a daemon restart still reaches the new daemon. Every message carries
 * its sender's pid (SO_PASSCRED; the kernel fills it in, it cannot be forged), and only a
 * sender that is in the service's cgroup is believed: anyone on the host can send to an abstract
 * socket, and nobody outside the service may make it "ready".
 *
 * Bun has no unix datagram sockets, so the sockets are bun:ffi ones (linux/ffi.ts) read without
 * blocking: every 100 ms while a notify service waits to be ready, every second otherwise, and
 * right before the start gate's timer decides anything (a WATCHDOG=1 is never missed for being
 * read late). A sender must still be running when its message is read (as with systemd's
 * NotifyAccess=all): the main process calling sd_notify is; a short-lived `systemd-notify`
 * may not be.
 */
import { createHash } from "node:crypto";
import type { ServiceConfig } from "../config/types.ts";
import type { CgroupTree } from "../cgroup/index.ts";
import { closeFd, openCredentialedDatagramSocket, receiveWithCredentials } from "../linux/ffi.ts";
import { errorMessage } from "../util/errors.ts";
import type { Unit } from "./supervisor.ts";

/** Set once by the daemon: what makes this daemon's socket names its own (its master cgroup). */
let namespace: string | null = null;
export function setNotifyNamespace(masterCgroupPath: string): void {
  namespace = createHash("sha256").update(masterCgroupPath).digest("hex").slice(0, 16);
}

export function usesNotify(svc: ServiceConfig): boolean {
  return svc.readiness?.check.kind === "notify" || svc.liveness?.check.kind === "notify";
}

/** The abstract socket name (without the leading NUL/@). */
export function notifySocketName(service: string): string | null {
  if (namespace === null) return null;
  const name = service.length <= 64 ? service : createHash("sha256").update(service).digest("hex").slice(0, 32);
  return `processmaster/${namespace}/${name}`;
}

/** NOTIFY_SOCKET (and WATCHDOG_USEC) for the environment of a notify service; {} for others. */
export function notifyEnv(svc: ServiceConfig): Record<string, string> {
  const name = usesNotify(svc) ? notifySocketName(svc.name) : null;
  if (name === null) return {};
  const watchdogMs = svc.liveness?.check.kind === "notify" ? svc.liveness.watchdogMs : undefined;
  return { NOTIFY_SOCKET: `@${name}`, ...(watchdogMs !== undefined ? { WATCHDOG_USEC: String(watchdogMs * 1000) } : {}) };
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

  constructor(private readonly deps: NotifyHubDeps) {}

  /** Opens the unit's socket if its config uses notify (before its process starts). */
  ensure(unit: Unit): void {
    if (!usesNotify(unit.config)) { this.close(unit); return; }
    if (this.sockets.has(unit)) { this.schedule(); return; }
    const name = notifySocketName(unit.name);
    if (name === null) return;
    try { this.sockets.set(unit, openCredentialedDatagramSocket(name)); }
    catch (e) { unit.log.error(`cannot open the notify socket @${name}: ${errorMessage(e)}`); return; }
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
      if (!this.deps.cgroups.pids(unit.name).includes(m.pid)) {
        unit.log.warn(`ignored a notify message from pid ${m.pid} (uid ${m.uid}): not a process of this service (${JSON.stringify(text.slice(0, 80))})`);
        continue;
      }
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
