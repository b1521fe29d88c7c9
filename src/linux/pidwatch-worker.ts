/**
 * Worker thread of PidWatcher: blocks in poll() over the eventfd and every watched pidfd so the
 * main event loop never blocks. The main thread writes pidfds into shared slots and signals the
 * eventfd; this thread clears a slot before reporting it, so a slot it reported is never polled
 * again and the main thread may close that fd.
 */
import { eventfdDrain, pollReadable } from "./ffi.ts";

declare const self: Worker;

self.onmessage = (ev: MessageEvent) => {
  const slots = new Int32Array(ev.data.shared as SharedArrayBuffer);
  const wakeFd = ev.data.wakeFd as number;
  postMessage("ready");
  for (;;) {
    const fds = [wakeFd];
    const slotOf = new Map<number, number>();
    for (let i = 0; i < slots.length; i++) {
      const fd = Atomics.load(slots, i);
      if (fd > 0) { fds.push(fd); slotOf.set(fd, i); }
    }
    const ready = pollReadable(fds, -1);
    const fired: number[] = [];
    for (const fd of ready) {
      if (fd === wakeFd) { eventfdDrain(wakeFd); continue; }
      const slot = slotOf.get(fd)!;
      Atomics.store(slots, slot, 0);
      fired.push(slot);
    }
    if (fired.length) postMessage(fired);
  }
};
