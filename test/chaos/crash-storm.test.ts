/**
 * Chaos 2: crash storms. 20 services crash at once, in a loop, with `policy: always` and no
 * backoff. The daemon must stay responsive throughout and end every one `suppressed` with
 * exactly `max_restarts` restarts.
 *
 * Responsiveness: every status call during the storm is answered (callDaemon round trips, no
 * pmctl start-up cost); the round-trip times are printed for the record, not asserted (a test
 * must pass on a machine 5x slower; speed is measured by scripts/bench).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { waitUntil, World } from "../helpers/harness.ts";
import { callDaemon } from "../../src/control/client.ts";
import type { AppStatus } from "../../src/supervisor/status.ts";
import { fmtStats, latencyStats, LONG } from "./chaos-helpers.ts";

let world: World | undefined;
afterEach(async () => { await world?.cleanup(); world = undefined; });

const SERVICES = 20;
const MAX_RESTARTS = LONG ? 50 : 15;

describe("chaos: crash storms", () => {
  test(`${SERVICES} services crashing in a loop: status answers throughout, all end suppressed after ${MAX_RESTARTS} restarts`, async () => {
    world = new World();
    const names = Array.from({ length: SERVICES }, (_, i) => `crasher${String(i).padStart(2, "0")}`);
    for (const name of names) {
      world.writeService(name, {
        process: { command: ["sh", "-c", "echo up; exit 3"] },
        restart_policy: { policy: "always", restart_backoff_ms: 0, tolerance: { max_restarts: MAX_RESTARTS, duration: "10m" } },
      });
    }
    // A calm service beside the storm must not be disturbed by it.
    world.writeService("calm", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 } });
    const d = await world.daemon();

    const samples: number[] = [];
    let apps: AppStatus[] = [];
    const stormDeadline = performance.now() + 60_000;
    for (;;) {
      const t0 = performance.now();
      apps = ((await callDaemon(world.sockPath, "status")) as { apps: AppStatus[] }).apps;
      samples.push(performance.now() - t0);
      if (apps.filter((a) => a.name !== "calm").every((a) => a.state === "suppressed")) break;
      if (performance.now() > stormDeadline) throw new Error(`storm did not end: ${apps.map((a) => `${a.name}=${a.state}/${a.restarts}`).join(" ")}`);
      await Bun.sleep(5);
    }
    const stats = latencyStats(samples);
    // Printed, not asserted: how fast is the bench's business (no timed assertions in tests).
    console.log(`crash-storm: ${SERVICES}×${MAX_RESTARTS + 1} crashes; status round trips during the storm: ${fmtStats(stats)}`);
    expect(samples.length).toBeGreaterThan(5); // the storm lasted long enough to be answered many times

    for (const a of apps) {
      if (a.name === "calm") { expect(a.state).toBe("running"); expect(a.restarts).toBe(0); continue; }
      expect(a.state).toBe("suppressed");
      expect(a.restarts).toBe(MAX_RESTARTS);
      expect(a.exit_code).toBe(3);
      expect(a.pids).toEqual([]);
      expect(a.suppressed_reason).toContain(`${MAX_RESTARTS} restarts in 10m`);
    }
    // Each crash was started exactly once more than it was restarted: no double spawns.
    for (const name of names) {
      const starts = (d.output().match(new RegExp(`\\[${name}\\] started, pid`, "g")) ?? []).length;
      expect(starts).toBe(MAX_RESTARTS + 1);
    }
    // A manual start clears the suppression and the count. It answers with the outcome of the
    // start it made (failed: exit 3 before start_seconds), whose restart is then the first of the new count.
    const restarted = (await callDaemon(world.sockPath, "start", [names[0]!])) as { apps: AppStatus[]; results: { ok: boolean; reason: string }[] };
    expect(restarted.results[0]!.ok).toBe(false);
    expect(restarted.results[0]!.reason).toContain("exited with code 3");
    expect(restarted.apps[0]!.restarts).toBe(1);
  }, 90_000);
});
