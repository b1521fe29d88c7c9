/**
 * Issue 11 item 6: what a client sends reaches the daemon's log before (and whatever) the
 * permission check says. A refused client must not forge log lines (a name with a newline), nor
 * grow the log by megabytes with huge name lists.
 */
import { afterEach, expect, test } from "bun:test";
import { World } from "../helpers/harness.ts";
import { openWorld, pmctlAsNobody, requestsAsNobody } from "./attacker.ts";

let world: World | undefined;
afterEach(async () => { await world?.cleanup(); world = undefined; });

test("a refused request cannot forge a log line, and a flood of refused requests cannot flood the log", async () => {
  world = new World({ master: { sock_mode: "0666", sock_group: "adm" } });
  world.writeService("a", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 } });
  openWorld(world);
  const d = await world.daemon();

  const forged = "2026-01-01T00:00:00.000Z INFO  [daemon] stop a by uid 0 (root) pid 1";
  const inject = await pmctlAsNobody(world, ["stop", `a\n${forged}`]);
  expect(inject.code).toBe(1);
  expect(d.output().split("\n").some((l) => l.startsWith(forged))).toBe(false);

  const before = d.output().length;
  const names = Array.from({ length: 4000 }, (_, i) => `name-${i}-${"x".repeat(90)}`);
  const replies = await requestsAsNobody(world.sockPath, Array.from({ length: 20 }, () => ({ cmd: "stop", names })));
  expect(replies.map((r) => r.code)).toEqual(Array(20).fill("PERMISSION"));
  // 20 × 4000 names of ~100 bytes would be 8 MB of log: a refusal line shows 8 names, and 10 a minute per uid are logged.
  expect(d.output().length - before).toBeLessThan(32 * 1024);
  expect(d.output()).toMatch(/refused stop name-0-x+…\(97 chars\) .* \(\+3992 more\) from uid 65534/);
  // Ten refusals a minute per uid are logged (the injection attempt was refused before the check, unlogged).
  expect(d.output().match(/refused stop name-0/g)).toHaveLength(10);
  expect(d.output()).toContain("further refusals for uid 65534 are counted, not logged, for 60s");
  expect((await world.pmctl(["status"])).code).toBe(0);
});
