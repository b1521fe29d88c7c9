/**
 * Issue 11 item 10: a `user: nobody` service received the daemon's whole environment, secrets
 * included. By default it gets a clean one: a fixed PATH, the user's HOME/USER/LOGNAME/SHELL,
 * LANG when set, PM_SERVICE, then `environment`; `inherit_environment: true` keeps the old way.
 */
import { afterEach, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { waitUntil, World } from "../helpers/harness.ts";
import { SAFE_PATH } from "../../src/config/service-path.ts";
import { openWorld } from "./attacker.ts";

let world: World | undefined;
afterEach(async () => { await world?.cleanup(); world = undefined; });

/** A service (as nobody) that writes its environment to env.txt in its folder and stays up. */
function envService(name: string, extra: Record<string, unknown> = {}) {
  world!.writeService(name, { process: { user: "nobody", command: ["sh", "-c", "env > env.txt; exec sleep 1000"], stop_grace_ms: 1000, ...extra } });
  return async () => {
    await Bun.$`chown nobody ${world!.appDir(name)}`.quiet();
    const text = await waitUntil(() => { try { const t = readFileSync(join(world!.appDir(name), "env.txt"), "utf8"); return t.includes("PM_SERVICE=") && t; } catch { return false; } }, `${name}'s environment`);
    return Object.fromEntries(text.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
  };
}

test("a service gets a clean environment, not the daemon's secrets; inherit_environment: true keeps them", async () => {
  world = new World();
  openWorld(world);
  const clean = envService("clean", { environment: { APP_MODE: "prod" } });
  const inherits = envService("inherits", { inherit_environment: true });
  for (const n of ["clean", "inherits"]) await Bun.$`mkdir -p ${world.appDir(n)} && chown nobody ${world.appDir(n)}`.quiet();
  // The operator's quiet-runtime settings stay the daemon's (quiet-runtime.test.ts); no service inherits them.
  const d = world.startDaemon([], { PM_TEST_SECRET: "hunter2", LANG: "C.UTF-8", BUN_GC_TIMER_DISABLE: "1", MIMALLOC_SCAVENGER: "1" });
  await d.waitForLog(/serving /, 15_000);

  const env = await clean();
  expect(env.PM_TEST_SECRET).toBeUndefined();
  expect(env).toMatchObject({ PATH: SAFE_PATH, HOME: "/nonexistent", USER: "nobody", LOGNAME: "nobody", LANG: "C.UTF-8", PM_SERVICE: "clean", APP_MODE: "prod" });
  expect(Object.keys(env).filter((k) => !["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "PM_SERVICE", "APP_MODE", "PWD", "SHLVL", "_"].includes(k))).toEqual([]);

  const old = await inherits();
  expect(old.PM_TEST_SECRET).toBe("hunter2");
  expect(old.USER).toBe("nobody");
  expect(old.BUN_GC_TIMER_DISABLE).toBeUndefined();
  expect(old.MIMALLOC_SCAVENGER).toBeUndefined();
});
