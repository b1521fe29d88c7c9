/** Liveness checks with real processes: a failing check leads to a restart through the restart policy. */
import { afterEach, describe, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { World, waitUntil } from "./helpers/harness.ts";

let world: World;
afterEach(async () => { await world?.cleanup(); });

describe("liveness", () => {
  test("a liveness check that starts failing: the run is stopped and restarted by on-failure; status and log say why", async () => {
    world = new World();
    const healthy = join(world.dir, "healthy");
    writeFileSync(healthy, "");
    world.writeService("svc", {
      process: { command: ["sleep", "1000"], stop_grace_ms: 2000, start_seconds: 0 },
      liveness: { exec: ["test", "-e", healthy], interval: "100ms", failure_threshold: 3 },
      restart_policy: { policy: "on-failure", restart_backoff_ms: 100 },
    });
    const d = await world.daemon();
    const first = await waitUntil(async () => { const a = await world.app("svc"); return a.ready && a.pids.length === 1 && a; }, "svc ready");
    rmSync(healthy);
    await d.waitForLog(/\[svc\] liveness failed 3 times in a row: exit 1; stopping it/, 15_000);
    writeFileSync(healthy, "");
    const after = await waitUntil(async () => { const a = await world.app("svc"); return a.state === "running" && a.restarts === 1 && a.pids[0] !== first.pids[0] && a; }, "svc restarted", 15_000);
    expect(after.last_unhealthy).toBe("liveness failed 3 times in a row: exit 1");
    expect(d.output()).toContain("[svc] liveness check failed (1/3): exec test -e");
    expect(d.output()).toMatch(/\[svc\] liveness failed 3 times in a row: exit 1; killed by SIGTERM; restart 1 of 3 in 1m, in 100ms/);
  });

  test("with policy never the unhealthy run ends failed and stays down", async () => {
    world = new World();
    world.writeService("svc", {
      process: { command: ["sleep", "1000"], stop_grace_ms: 2000, start_seconds: 0 },
      liveness: { exec: ["false"], interval: "100ms", failure_threshold: 2 },
    });
    await world.daemon();
    const a = await waitUntil(async () => { const x = await world.app("svc"); return x.state === "failed" && x; }, "svc failed", 15_000);
    expect(a.pids).toEqual([]);
    expect(a.restarts).toBe(0);
    expect(a.last_unhealthy).toBe("liveness failed 2 times in a row: exit 1");
  });
});
