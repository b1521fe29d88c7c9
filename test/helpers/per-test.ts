/** What a test makes for itself, removed after each test, even a failed one. */
import { afterEach } from "bun:test";
import { rmSync } from "node:fs";
import type { World } from "./harness.ts";

/** A World and temp folders per test: set `world`, push to `dirs`; both go after each test. */
export function perTest(): { world: World | undefined; dirs: string[] } {
  const made: { world: World | undefined; dirs: string[] } = { world: undefined, dirs: [] };
  afterEach(async () => {
    await made.world?.cleanup();
    made.world = undefined;
    for (const d of made.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  return made;
}
