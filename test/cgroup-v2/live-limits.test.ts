/**
 * `update` changes a running service's limits in place (same PID) and resets a removed limit to
 * the kernel default, on a cgroup2 tree with the controllers.
 */
import { afterEach, expect, test } from "bun:test";
import { waitUntil, World } from "../helpers/harness.ts";
import { FULL_TREE, readCg } from "./v2-host.ts";

let world: World | undefined;
afterEach(async () => { await world?.cleanup(); world = undefined; });

const MiB = 1 << 20;

test.skipIf(!FULL_TREE)("a changed limit is written live, a removed one goes back to max, the service keeps its PID", async () => {
  world = new World();
  const spec = (resources: Record<string, unknown>) => ({ process: { command: ["sleep", "1000"], stop_grace_ms: 1000 }, resources });
  world.writeService("capped", spec({ memory_max: "64M", pids_max: 32, cpu_max: "20%" }));
  await world.daemon();
  const [pid] = await waitUntil(() => { const p = world!.cgroupPids("capped"); return p.length === 1 && p; }, "capped to run", 30_000);
  const cg = world.serviceCgroup("capped");
  expect([readCg(cg, "memory.max"), readCg(cg, "pids.max"), readCg(cg, "cpu.max")]).toEqual([String(64 * MiB), "32", "20000 100000"]);

  world.writeService("capped", spec({ memory_max: "128M", cpu_max: "50%" })); // pids_max removed
  const r = await world.pmctl(["update"]);
  expect(r.code, r.stderr).toBe(0);
  expect([readCg(cg, "memory.max"), readCg(cg, "pids.max"), readCg(cg, "cpu.max")]).toEqual([String(128 * MiB), "max", "50000 100000"]);
  expect(world.cgroupPids("capped")).toEqual([pid!]);
  const st = await world.app("capped");
  expect(st.limits_not_in_force).toEqual([]);
}, 120_000);
