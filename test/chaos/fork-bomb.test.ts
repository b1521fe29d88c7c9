/**
 * Chaos 4: a (bounded) fork bomb inside a service's cgroup. Every node ignores SIGTERM and
 * re-forks a child that dies, so stopping it PID by PID can never win; `stop` must still leave
 * nothing. With a pids controller, `pids_max` caps the bomb before it is stopped.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { waitUntil, World } from "../helpers/harness.ts";
import { findCgroup2Mount } from "../../src/cgroup/mount.ts";
import { callDaemon } from "../../src/control/client.ts";
import type { AppStatus } from "../../src/supervisor/status.ts";
import { LONG, taggedProcesses, withDeadline } from "./chaos-helpers.ts";

let world: World | undefined;
afterEach(async () => { await world?.cleanup(); world = undefined; });

/**
 * A binary tree of depth D: each inner node runs two loops that start the subtree again
 * whenever it exits; the leaves sleep. Depth 6 is 253 processes, depth 7 is 509.
 */
const BOMB = `trap '' TERM
d=$1
if [ "$d" -gt 0 ]; then
  (while :; do sh "$0" $((d-1)); done) &
  (while :; do sh "$0" $((d-1)); done) &
  wait
else
  exec sleep 1000
fi
`;
const treeSize = (depth: number): number => (depth === 0 ? 1 : 3 + 2 * treeSize(depth - 1));

const rootControllers = (() => { try { return readFileSync(join(findCgroup2Mount(), "cgroup.controllers"), "utf8"); } catch { return ""; } })();
const hasPidsController = /\bpids\b/.test(rootControllers);

describe("chaos: fork bomb in a service cgroup", () => {
  test("stop cleans up a respawning fork bomb, and the daemon answers throughout", async () => {
    world = new World();
    const tag = world.cgroupName;
    const depth = LONG ? 7 : 6;
    const script = join(world.dir, "bomb.sh");
    writeFileSync(script, BOMB);
    world.writeService("bomb", { process: { command: ["sh", script, String(depth)], stop_grace_ms: 500, environment: { CHAOS_TAG: tag } } });
    await world.daemon();
    const full = treeSize(depth);
    // The daemon answers throughout: every status call is answered (a generous deadline, no timing).
    await waitUntil(async () => {
      await withDeadline(callDaemon(world!.sockPath, "status"), 20_000, "status during the bomb");
      return world!.cgroupPids("bomb").length >= full;
    }, `the bomb to reach ${full} processes`, 60_000, 50);

    const res = (await withDeadline(callDaemon(world.sockPath, "stop", ["bomb"]), 60_000, "stop")) as { apps: AppStatus[] };
    expect(res.apps[0]!.state).toBe("stopped");
    expect(res.apps[0]!.pids).toEqual([]);
    expect(world.cgroupPids("bomb")).toEqual([]);
    expect(taggedProcesses(tag)).toEqual([]);
  }, 60_000);

  if (!hasPidsController) {
    console.warn(`fork-bomb: skipping the pids_max case: no pids controller in the cgroup2 root (cgroup.controllers: ${rootControllers.trim() || "none"})`);
  }
  test.skipIf(!hasPidsController)("with pids_max the bomb is capped, and stop still cleans up", async () => {
    world = new World();
    const tag = world.cgroupName;
    const script = join(world.dir, "bomb.sh");
    writeFileSync(script, BOMB);
    // An unbounded depth: only pids.max stops it. Failed forks make the loops spin; stop ends that too.
    world.writeService("bomb", { process: { command: ["sh", script, "20"], stop_grace_ms: 500, environment: { CHAOS_TAG: tag } }, resources: { pids_max: 64 } });
    await world.daemon();
    const pidsCurrent = () => Number(readFileSync(join(world!.serviceCgroup("bomb"), "pids.current"), "utf8"));
    await waitUntil(() => readFileSync(join(world!.serviceCgroup("bomb"), "pids.events"), "utf8").match(/^max (\d+)$/m)?.[1] !== "0", "fork failures at pids.max", 20_000, 50);
    expect(pidsCurrent()).toBeLessThanOrEqual(64);
    const res = (await callDaemon(world.sockPath, "stop", ["bomb"])) as { apps: AppStatus[] };
    expect(res.apps[0]!.pids).toEqual([]);
    expect(taggedProcesses(tag)).toEqual([]);
  }, 60_000);
});
