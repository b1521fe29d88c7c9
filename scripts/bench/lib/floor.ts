/** Builds lib/floor-client.ts the way scripts/build.ts builds dist/processmaster. */
import { closeSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import type { Fleet } from "./fleet.ts";
import { COMPILE_FLAGS } from "../../compile-flags.ts";
import { log, must } from "./util.ts";

export async function buildFloorClient(dir: string): Promise<string> {
  const out = join(dir, "floor-client");
  await must(["bun", "build", ...COMPILE_FLAGS, join(import.meta.dir, "floor-client.ts"), "--outfile", out], { timeoutMs: 300_000 });
  log(`built the floor client ${out}`);
  return out;
}

/**
 * The floor of booting a fleet: what any supervisor must do per service, with nothing else: a
 * fresh cgroup under `cg`, both log files opened, one Bun.spawn into the cgroup (CLONE_INTO_CGROUP).
 * Pushes each child onto `procs` as it goes (the caller kills them, even after a throw).
 */
export function spawnBareFleet(fleet: Fleet, cg: string, procs: ReturnType<typeof Bun.spawn>[]): void {
  for (const name of fleet.names) {
    const path = join(cg, name);
    mkdirSync(path);
    const out = openSync(fleet.stdoutLog(name), "a"), err = openSync(fleet.stderrLog(name), "a");
    procs.push(Bun.spawn({ cmd: fleet.argv(name), cwd: fleet.dir, cgroup: path, detached: true, stdin: "ignore", stdout: out, stderr: err } as unknown as Parameters<typeof Bun.spawn>[1] & { cmd: string[] }));
    closeSync(out); closeSync(err);
  }
}
