/**
 * Issue 11 item 8a: one request naming the same service 120,000 times made the daemon build
 * 120,000 answers (seconds of stall, tens of MB). Names are deduplicated, and more distinct
 * names than any host has are refused before any work.
 */
import { afterEach, expect, test } from "bun:test";
import { World } from "../helpers/harness.ts";
import { MAX_NAMES_PER_REQUEST } from "../../src/control/protocol.ts";
import { openWorld, requestsAsNobody } from "./attacker.ts";

let world: World | undefined;
afterEach(async () => { await world?.cleanup(); world = undefined; });

test("status with 120,000 copies of one name answers once; too many distinct names are refused", async () => {
  world = new World({ master: { sock_mode: "0666" } });
  world.writeService("a", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 } });
  openWorld(world);
  await world.daemon();

  const copies = Array(120_000).fill("a");
  const distinct = Array.from({ length: MAX_NAMES_PER_REQUEST + 1 }, (_, i) => `s${i}`);
  const [dup, many] = await requestsAsNobody(world.sockPath, [{ cmd: "status", names: copies }, { cmd: "status", names: distinct }]);
  expect(dup!.type).toBe("result");
  expect((dup!.data as { apps: unknown[] }).apps).toHaveLength(1);
  expect(many!.type).toBe("error");
  expect(many!.message).toBe(`a request may name at most ${MAX_NAMES_PER_REQUEST} services, found ${MAX_NAMES_PER_REQUEST + 1}`);
  expect((await world.pmctl(["status"])).code).toBe(0);
});

test("a request larger than the socket buffer is sent whole by pmctl (it used to hang)", async () => {
  world = new World();
  world.writeService("a", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 } });
  await world.daemon();
  const names = Array.from({ length: 4000 }, (_, i) => `missing-${i}-${"x".repeat(90)}`); // ~400 KB of request
  const r = await world.pmctl(["status", "a", ...names]);
  expect(r.code).toBe(1);
  expect(r.stderr).toStartWith("pmctl: unknown service 'missing-0-");
});
