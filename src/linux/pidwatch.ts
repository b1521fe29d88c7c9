/**
 * Tells when processes that are not Bun's children exit (forked service children, adopted PIDs)
 * without polling: pidfd_open + a blocking poll() in a Worker, woken through an eventfd.
 * Each watch ends only when its process exits; an exit of a process that became our child
 * without Bun (an orphan reparented to us) is reaped here with waitid(P_PIDFD).
 */
import { closeFd, ERRNO, eventfdCreate, eventfdSignal, pidfdOpen, waitPidfd } from "./ffi.ts";
import { isPmError } from "../util/errors.ts";
// In the compiled binary the worker is a second entrypoint of `bun build --compile`, addressed
// by its path from the repository root; from source it sits beside this file.
const workerUrl = import.meta.url.includes("$bunfs")
  ? "./src/linux/pidwatch-worker.ts"
  : new URL("./pidwatch-worker.ts", import.meta.url).href;

const SLOT_COUNT = 65536;

export class PidWatcher {
  private readonly slots = new Int32Array(new SharedArrayBuffer(4 * SLOT_COUNT));
  private readonly wakeFd = eventfdCreate();
  /**
   * Started on the first watch(): a daemon whose services are all its own children (the common
   * case: their exits come through proc.exited) never pays for a second JS VM, about 7 MB RSS
   * and a thread (issue 6, memory).
   */
  private worker: Worker | null = null;
  private readonly freeSlots: number[] = [];
  private nextSlot = 0;
  /** slot → what to do when that process exits. */
  private readonly waiting = new Map<number, { fd: number; pid: number; done: () => void }>();
  /** pid → the shared promise of its exit, so a PID watched twice costs one pidfd. */
  private readonly byPid = new Map<number, Promise<void>>();

  private startWorker() {
    const worker = new Worker(workerUrl);
    worker.onmessage = (ev: MessageEvent<number[]>) => this.onFired(ev.data);
    worker.postMessage({ shared: this.slots.buffer, wakeFd: this.wakeFd });
    worker.unref();
    this.worker = worker;
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
    if (!this.worker) this.startWorker();
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
    this.worker?.terminate();
    this.worker = null;
  }
}

/** Reaps an orphan that was reparented to us; ECHILD means someone else's child, which is fine. */
function reapIfOurs(pidfd: number) {
  try { waitPidfd(pidfd); } catch { /* not our child */ }
}
