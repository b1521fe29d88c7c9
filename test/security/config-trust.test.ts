/**
 * Issue 11 item 5: a root daemon runs what its config files say as root. A local user (nobody)
 * who gets a service file of theirs read, through a file they own or a symlink an admin put in
 * config_directory, or who owns the script an interpreter runs, must not get code run as root.
 */
import { afterEach, expect, test } from "bun:test";
import { chownSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { waitUntil, World } from "../helpers/harness.ts";
import { NOBODY, openWorld, shAsNobody } from "./attacker.ts";

let world: World | undefined;
afterEach(async () => { await world?.cleanup(); world = undefined; });

/** A folder nobody owns, inside the world, where the attacker writes. */
function attackerHome(w: World): string {
  const home = join(w.dir, "home-nobody");
  mkdirSync(home, { mode: 0o755 });
  chownSync(home, NOBODY, NOBODY);
  return home;
}

const evilService = (marker: string) => JSON.stringify({ process: { command: ["/bin/sh", "-c", `id -u > ${marker}`] } });

test("service files nobody wrote (owned by them, or linked from config_directory to their home) are refused", async () => {
  world = new World();
  openWorld(world);
  const home = attackerHome(world);
  const owned = join(world.dir, "pwned-owned");
  const linked = join(world.dir, "pwned-linked");
  chownSync(world.dir, 0, 0);
  // nobody writes two service files in its home; an admin copies one in (keeping its owner) and links the other.
  expect((await shAsNobody(`printf '%s' '${evilService(owned)}' > ${home}/owned.yaml && printf '%s' '${evilService(linked)}' > ${home}/linked.yaml`)).code).toBe(0);
  writeFileSync(join(world.confDir, "owned.yaml"), evilService(owned));
  chownSync(join(world.confDir, "owned.yaml"), NOBODY, NOBODY);
  symlinkSync(join(home, "linked.yaml"), join(world.confDir, "linked.yaml"));
  world.writeService("good", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 } });

  const d = await world.daemon();
  await waitUntil(async () => (await world!.app("good")).state === "running", "the trusted service to run");
  expect((await world.status()).map((a) => a.name)).toEqual(["good"]);
  expect(d.output()).toMatch(/owned\.yaml: not trusted: .*owned\.yaml is owned by uid 65534/);
  expect(d.output()).toMatch(/linked\.yaml: not trusted: .*linked\.yaml \(-> .*home-nobody\/linked\.yaml\) is owned by uid 65534/);
  expect(existsSync(owned)).toBe(false);
  expect(existsSync(linked)).toBe(false);
});

test("a script nobody owns, run by /bin/sh for a root service, is refused", async () => {
  world = new World();
  openWorld(world);
  const home = attackerHome(world);
  const marker = join(world.dir, "pwned-script");
  expect((await shAsNobody(`printf 'id -u > ${marker}\\n' > ${home}/s.sh`)).code).toBe(0);
  world.writeService("runs-script", { process: { command: ["/bin/sh", join(home, "s.sh")] } });
  const d = await world.daemon();
  await d.waitForLog(/refusing to run \/bin\/sh for runs-script as root: the script .*s\.sh it runs: .*owned by uid 65534/);
  expect(existsSync(marker)).toBe(false);
});
