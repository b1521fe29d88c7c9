/**
 * Chaos 3: unkillable and escaping trees. A service that ignores SIGTERM forks 100 children that
 * ignore it too; 30 of them leave through `setsid` and a double fork (new session, parent gone).
 * `stop` must leave no process behind: one SIGTERM, the grace runs out, one cgroup-wide kill
 * ends every process and the stop (how long it took is printed, not asserted).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { expectKilledAfterGrace, pidAlive, waitUntil, World } from "../helpers/harness.ts";
import { callDaemon } from "../../src/control/client.ts";
import type { AppStatus } from "../../src/supervisor/status.ts";
import { taggedProcesses, withDeadline } from "./chaos-helpers.ts";

let world: World | undefined;
afterEach(async () => { await world?.cleanup(); world = undefined; });

/** The session ID of a process (field 6 of /proc/PID/stat). */
function sessionOf(pid: number): string {
  try { const stat = readFileSync(`/proc/${pid}/stat`, "utf8"); return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[3]!; } catch { return "?"; }
}

/** Does the process ignore SIGTERM (bit 15 of SigIgn)? */
function ignoresTerm(pid: number): boolean {
  try {
    const m = /^SigIgn:\s+([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m !== null && (BigInt(`0x${m[1]}`) & (1n << 14n)) !== 0n;
  } catch { return false; }
}

// SIG_IGN survives fork and exec, and a shell cannot un-ignore what it was started with: every
// descendant ignores SIGTERM. 70 children stay in the session; 30 double-fork into new sessions.
const TREE = `
trap '' TERM
i=0; while [ $i -lt 70 ]; do sleep 1000 & i=$((i+1)); done
i=0; while [ $i -lt 30 ]; do (setsid sh -c 'sleep 1000 & exit 0' &); i=$((i+1)); done
while :; do sleep 1; done
`;

describe("chaos: unkillable and escaping trees", () => {
  test("stop of a SIGTERM-ignoring tree of 100+ processes, some setsid + double-fork, leaves nothing once the grace runs out", async () => {
    world = new World();
    const tag = world.cgroupName;
    const graceMs = 1000;
    world.writeService("escaper", { process: { command: ["sh", "-c", TREE], stop_grace_ms: graceMs, environment: { CHAOS_TAG: tag } } });
    const d = await world.daemon();
    const pids = await waitUntil(() => { const p = taggedProcesses(tag); return p.length >= 101 && p; }, "the service and its 100 children", 20_000, 50);
    const inCgroup = world.cgroupPids("escaper");
    expect(inCgroup.length).toBeGreaterThanOrEqual(101);
    // The scenario is real: they ignore SIGTERM, and some left the service's session.
    expect(pids.filter(ignoresTerm).length).toBeGreaterThanOrEqual(101);
    const sessions = new Set(pids.map(sessionOf));
    expect(sessions.size).toBeGreaterThanOrEqual(30);

    const logFrom = d.output().length;
    const t0 = performance.now();
    const res = (await withDeadline(callDaemon(world.sockPath, "stop", ["escaper"]), 30_000, "stop")) as { apps: AppStatus[] };
    console.log(`stop of the escaping tree (${pids.length} processes, ${graceMs} ms grace): ${(performance.now() - t0).toFixed(0)} ms`);
    await expectKilledAfterGrace(d, logFrom, "escaper", graceMs);
    expect(res.apps[0]!.last_exit).toBe("killed-after-grace");
    expect(res.apps[0]!.pids).toEqual([]);
    expect(world.cgroupPids("escaper")).toEqual([]);
    expect(taggedProcesses(tag)).toEqual([]);
    for (const pid of pids) expect(pidAlive(pid)).toBe(false);
  }, 40_000);

  test("a tree that keeps forking while it is stopped is gone by the one cgroup kill after the grace", async () => {
    world = new World();
    const tag = world.cgroupName;
    const graceMs = 500;
    // 10 loops fork a new short-lived child every 50 ms: new PIDs appear while stop signals the
    // ones it listed, so only a cgroup-wide kill can win.
    const respawner = "trap '' TERM; i=0; while [ $i -lt 10 ]; do (while :; do sleep 0.05; done) & i=$((i+1)); done; wait";
    world.writeService("respawner", { process: { command: ["sh", "-c", respawner], stop_grace_ms: graceMs, environment: { CHAOS_TAG: tag } } });
    const d = await world.daemon();
    await waitUntil(() => taggedProcesses(tag).length >= 15, "the respawning tree", 20_000, 50);
    const logFrom = d.output().length;
    const t0 = performance.now();
    const res = (await withDeadline(callDaemon(world.sockPath, "stop", ["respawner"]), 30_000, "stop")) as { apps: AppStatus[] };
    console.log(`stop of the respawning tree (${graceMs} ms grace): ${(performance.now() - t0).toFixed(0)} ms`);
    await expectKilledAfterGrace(d, logFrom, "respawner", graceMs);
    expect(res.apps[0]!.last_exit).toBe("killed-after-grace");
    expect(res.apps[0]!.pids).toEqual([]);
    expect(taggedProcesses(tag)).toEqual([]);
  }, 40_000);
});
