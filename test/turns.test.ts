/** OnePerTurn: a lone caller goes at once; callers that come together go one per event-loop turn. */
import { expect, test } from "bun:test";
import { OnePerTurn } from "../src/util/turns.ts";

/** Resolves after `n` setImmediate hops (a hop scheduled from an immediate runs in the next turn). */
const turns = (n: number) => new Promise<void>((r) => { const hop = (k: number) => (k === 0 ? r() : setImmediate(() => hop(k - 1))); hop(n); });

test("a lone caller goes in the same turn, before any setImmediate", async () => {
  const t = new OnePerTurn();
  const order: string[] = [];
  setImmediate(() => order.push("immediate"));
  await t.next();
  order.push("released");
  expect(order).toEqual(["released"]);
});

test("callers that come together go one per turn, in order", async () => {
  const t = new OnePerTurn();
  const released: number[] = [];
  const all = [0, 1, 2, 3].map((i) => t.next().then(() => released.push(i)));
  await Promise.resolve();
  expect(released).toEqual([0]);
  let seen = 1;
  while (released.length < 4) {
    await turns(1);
    expect(released.length).toBeLessThanOrEqual(seen + 1); // never two in one turn
    seen = released.length;
  }
  await Promise.all(all);
  expect(released).toEqual([0, 1, 2, 3]);
  // Quiet again: the next lone caller goes at once.
  await turns(2);
  let now = false;
  void t.next().then(() => { now = true; });
  await Promise.resolve();
  expect(now).toBe(true);
});
