/** Builds lib/floor-client.ts the way scripts/build.ts builds dist/processmaster. */
import { join } from "node:path";
import { COMPILE_FLAGS } from "../../compile-flags.ts";
import { log, must } from "./util.ts";

export async function buildFloorClient(dir: string): Promise<string> {
  const out = join(dir, "floor-client");
  await must(["bun", "build", ...COMPILE_FLAGS, join(import.meta.dir, "floor-client.ts"), "--outfile", out], { timeoutMs: 300_000 });
  log(`built the floor client ${out}`);
  return out;
}
