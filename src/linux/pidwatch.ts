/**
 * Tells when processes that are not Bun's children exit (forked service children, adopted PIDs)
 * without polling: pidfd_open + a blocking poll() in a Worker, woken through an eventfd.
 * Each watch ends only when its process exits; an exit of a process that became our child
 * without Bun (an orphan reparented to us) is reaped here with waitid(P_PIDFD).
 */
import { closeFd, ERRNO, eventfdCreate, eventfdSignal, pidfdOpen, waitPidfd } from "./ffi.ts";
import { isPmError, PmError } from "../util/errors.ts";

/**
 * In the compiled binary the worker is a second entrypoint of `bun build --compile`, embedded
 * under `/$bunfs/root/` by its path relative to the entrypoints' common folder (`src/`), with a
 * `.js` suffix. The address is absolute: a relative one is resolved against the working
 * directory first, so a root daemon started in a folder others can write would run their file
 * (issue 10). From source the worker sits beside this file.
 */
export const PIDWATCH_WORKER_URL = import.meta.url.includes("$bunfs")
  ? "/$bunfs/root/linux/pidwatch-worker.js"
  : new URL("./pidwatch-worker.ts", import.meta.url).href;

const SLOT_COUNT = 65536;

export class PidWatcher {
  private readonly slots = new Int32Array(new SharedArrayBuffer(4 * SLOT_COUNT));
  private readonly wakeFd = eventfdCreate();
  private worker: Worker | null = null;
  private failure: ((e: Error) => void) | null = null;
  private readonly freeSlots: number[] = [];
  private nextSlot = 0;
  /** slot → what to do when that process exits. */
  private readonly waiting = new Map<number, { fd: number; pid: number; done: () => void }>();
  /** pid → the shared promise of its exit, so a PID watched twice costs one pidfd. */
  private readonly byPid = new Map<number, Promise<void>>();

  /**
   * Starts the worker and resolves once it runs its poll loop. Exit detection is not optional:
   * the daemon awaits this at boot and refuses to run when it rejects, and `onFailure` is called
   * if the worker dies later (the daemon then exits and leaves the services to the next one),
   * so services are never left untracked in silence.
   */
  start(onFailure: (e: Error) => void, timeoutMs = 30_000, workerUrl = PIDWATCH_WORKER_URL): Promise<void> {
    this.failure = onFailure;
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      const fail = (why: string) => {
        const err = new PmError("INTERNAL", `exit detection is not available: the pid-watch worker (${workerUrl}) ${why}`);
        if (!ready) { clearTimeout(timer); reject(err); } else this.failure?.(err);
      };
      const timer = setTimeout(() => fail(`did not start within ${timeoutMs / 1000}s`), timeoutMs);
      let worker: Worker;
      try { worker = new Worker(workerUrl); }
      catch (e) { fail(`could not be loaded: ${e instanceof Error ? e.message : String(e)}`); return; }
      worker.onmessage = (ev: MessageEvent<number[] | "ready">) => {
        if (ev.data === "ready") { ready = true; clearTimeout(timer); resolve(); return; }
        this.onFired(ev.data);
      };
      worker.onerror = (ev: ErrorEvent) => fail(`failed: ${ev.message}`);
      worker.addEventListener("close", () => { if (this.worker === worker) fail("stopped"); });
      worker.postMessage({ shared: this.slots.buffer, wakeFd: this.wakeFd });
      worker.unref();
      this.worker = worker;
    });
  }

  /** Resolves once `pid` has exited (at once when it is already gone). */
  watch(pid: number): Promise<void> {
    const known = this.byPid.get(pid);
    if (known) return known;
    let fd: number;
    try {
      fd = pidfdOpen(pid);
    } catch (e) {
      if (isPmError(e) && e.errno === ERRNO.ESRCH) return Promise.resolve();
      throw e;
    }
    if (!this.worker) { closeFd(fd); throw new PmError("INTERNAL", "PidWatcher.watch() before start()"); }
    const slot = this.freeSlots.pop() ?? this.nextSlot++;
    if (slot >= SLOT_COUNT) { closeFd(fd); throw new Error(`PidWatcher: more than ${SLOT_COUNT} processes watched`); }
    const promise = new Promise<void>((done) => this.waiting.set(slot, { fd, pid, done }));
    this.byPid.set(pid, promise);
    Atomics.store(this.slots, slot, fd);
    eventfdSignal(this.wakeFd);
    return promise;
  }

  private onFired(slots: number[]) {
    for (const slot of slots) {
      const w = this.waiting.get(slot);
      if (!w) continue;
      this.waiting.delete(slot);
      this.byPid.delete(w.pid);
      reapIfOurs(w.fd);
      closeFd(w.fd);
      this.freeSlots.push(slot);
      w.done();
    }
  }

  close() {
    const worker = this.worker;
    this.worker = null;
    worker?.terminate();
  }
}

/** Reaps an orphan that was reparented to us; ECHILD means someone else's child, which is fine. */
function reapIfOurs(pidfd: number) {
  try { waitPidfd(pidfd); } catch { /* not our child */ }
}
