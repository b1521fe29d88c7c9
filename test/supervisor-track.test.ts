/**
 * Supervisor.track with a fake cgroup tree and watcher: how it waits for a cgroup to empty,
 * checked where a real service would take hours (reactions piling up on long-lived promises)
 * or needs a broken kernel (a watch that throws).
 */
import { expect, test } from "bun:test";
import type { CgroupTree } from "../src/cgroup/index.ts";
import type { Config } from "../src/config/types.ts";
import type { PidWatcher } from "../src/linux/pidwatch.ts";
import { Supervisor, type Unit } from "../src/supervisor/supervisor.ts";
import type { StateStore } from "../src/supervisor/state-store.ts";
import { systemClock } from "../src/util/clock.ts";
import { logger } from "../src/util/log.ts";
import { waitUntil } from "./helpers/harness.ts";

/** A promise that counts the reactions attached to it (Promise.race and friends call `then`). */
function countedPromise(): { promise: Promise<number>; resolve: () => void; thens: () => number } {
  let resolve!: (v: number) => void;
  const promise = new Promise<number>((r) => { resolve = r; });
  let n = 0;
  const then = promise.then.bind(promise);
  promise.then = ((a?: never, b?: never) => { n++; return then(a, b); }) as typeof promise.then;
  return { promise, resolve: () => resolve(0), thens: () => n };
}

function world() {
  let pids: number[] = [];
  const exits = new Map<number, () => void>();
  const cgroups = { pids: () => [...pids], populated: () => pids.length > 0, oomKills: () => null } as unknown as CgroupTree;
  let failWatches = 0;
  const watcher = {
    watch(pid: number) {
      if (failWatches > 0) { failWatches--; throw new Error("pidfd_open failed: errno 24"); }
      return new Promise<void>((r) => exits.set(pid, r));
    },
  } as unknown as PidWatcher;
  const sup = new Supervisor({ config: { services: new Map() } as unknown as Config, cgroups, watcher, store: {} as StateStore, clock: systemClock });
  const unit = { name: "t", proc: null, tracking: false, oomKillsAtStart: null, log: logger("t"), listeners: new Set() } as unknown as Unit;
  return {
    sup, unit,
    setPids(p: number[]) { pids = p; },
    exit(pid: number) { pids = pids.filter((x) => x !== pid); exits.get(pid)?.(); },
    failNextWatches(n: number) { failWatches = n; },
    watching(pid: number) { return exits.has(pid); },
    track() { (sup as unknown as { track(u: Unit): void }).track(unit); },
  };
}

const turn = () => new Promise((r) => setImmediate(r));

test("a long run that forks short-lived helpers adds no reactions to its main process's exit", async () => {
  const w = world();
  const main = countedPromise();
  (w.unit as { proc: unknown }).proc = { pid: 100, exited: main.promise, exitCode: 0, signalCode: null };
  w.setPids([100, 1000]);
  w.track();
  for (let i = 0; i < 200; i++) {
    w.setPids([100, 1001 + i]);
    w.exit(1000 + i);
    await turn();
  }
  expect(main.thens()).toBeLessThanOrEqual(2);
  w.exit(1200);
  w.setPids([]);
  main.resolve();
  await waitUntil(() => !w.unit.tracking, "tracking to end", 15_000, 5);
});

test("a watch that throws does not end tracking while the cgroup is populated", async () => {
  const w = world();
  w.setPids([200]);
  w.failNextWatches(1);
  w.track();
  await Bun.sleep(50);
  expect(w.unit.tracking).toBe(true); // no exit reported: the service still runs
  await waitUntil(() => w.watching(200), "the retry (after a second) to watch the process", 15_000, 10);
  w.exit(200);
  await waitUntil(() => !w.unit.tracking, "tracking to end after the real exit", 15_000, 5);
});
