/** The daemon re-executes itself with Bun's GC timer off (an idle daemon sleeps); services do not inherit that. */
import { afterEach, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { waitUntil, World } from "./helpers/harness.ts";

let world: World;
afterEach(async () => { await world?.cleanup(); });

const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");

test("the daemon keeps its PID and runs with BUN_GC_TIMER_DISABLE=1; its services do not see it", async () => {
  world = new World();
  world.writeService("env", { process: { command: ["sh", "-c", "env > env.txt; exec sleep 1000"] } });
  const d = await world.daemon();
  expect(environ(d.pid)).toContain("BUN_GC_TIMER_DISABLE=1");
  const [app] = await world.status();
  expect(app!.state).toBe("running");
  const serviceEnv = await waitUntil(() => { try { const t = readFileSync(`${world.appDir("env")}/env.txt`, "utf8"); return t.includes("PM_SERVICE=env") && t; } catch { return false; } }, "the service's environment");
  expect(serviceEnv).not.toContain("BUN_GC_TIMER_DISABLE");
  expect(serviceEnv).not.toContain("PM_QUIET_RUNTIME");
});
