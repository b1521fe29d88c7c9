/**
 * A service's user controls its environment_file. What it sets must reach the service only, never
 * the programs that still run as root before the switch to the user (setpriv, prlimit): their
 * dynamic loader would honour LD_PRELOAD, LD_DEBUG, GCONV_PATH… as root (found by an attacker's
 * review: an LD_PRELOAD library ran with uid 0).
 * LD_DEBUG=files makes every loader that honours it name its program on stderr (the service's
 * stderr.log): root's wrappers must not appear there, the service's own programs must.
 */
import { afterEach, expect, test } from "bun:test";
import { chownSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NOBODY, nobodysFolder, asNobody } from "../helpers/attack.ts";
import { waitUntil, World } from "../helpers/harness.ts";

let world: World | undefined;
afterEach(async () => { await world?.cleanup(); world = undefined; });

test("loader variables from the service user's environment_file reach the service, not root's setpriv/prlimit", async () => {
  world = new World();
  const wd = nobodysFolder(world, "victim");
  const envFile = join(wd, "app.env");
  writeFileSync(envFile, "LD_DEBUG=files\nGREETING=hello\n");
  chownSync(envFile, NOBODY, NOBODY);
  world.writeService("victim", {
    process: {
      command: ["sh", "-c", "echo \"greeting=$GREETING uid=$(id -u)\"; exec sleep 1000"],
      working_directory: wd, user: "nobody", group: "nogroup",
      environment_file: [envFile], limits: { nofile: "1024:2048" }, stop_grace_ms: 2000,
    },
    restart_policy: { policy: "always", restart_backoff_ms: 0 },
  });
  await world.daemon();
  const out = join(wd, "stdout.log");
  await waitUntil(() => readFileSync(out, "utf8").includes("greeting=hello uid=65534"), "the service's line", 30_000);
  const stderr = () => readFileSync(join(wd, "stderr.log"), "utf8");
  await waitUntil(() => /needed by .*sleep/.test(stderr()), "the service's own loader to honour LD_DEBUG", 30_000);
  expect(stderr()).not.toMatch(/needed by \S*(setpriv|prlimit)/);

  // The attack as the review ran it: the user rewrites the file and kills its own process.
  const pid = (await world.app("victim")).main_pid!;
  await asNobody(wd, `printf 'LD_DEBUG=files\\nGREETING=again\\n' > app.env; kill -9 ${pid}`);
  await waitUntil(() => readFileSync(out, "utf8").includes("greeting=again"), "the restarted service's line", 30_000);
  expect(stderr()).not.toMatch(/needed by \S*(setpriv|prlimit)/);
}, 90_000);
