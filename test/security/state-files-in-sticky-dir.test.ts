/**
 * Issue 11 item 7: sock_path and state_file in a world-writable sticky folder (like /tmp). There
 * another user can create the names the daemon uses first: hold `<sock>.lock`, link it (or the
 * state file's temporary) to a root file, plant a state file. A root daemon refuses such a
 * folder, so none of it can happen; and a state file it does not own is never obeyed.
 */
import { afterEach, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { waitUntil, World } from "../helpers/harness.ts";
import { NOBODY, openWorld, shAsNobody } from "./attacker.ts";

let world: World | undefined;
afterEach(async () => { await world?.cleanup(); world = undefined; });

test("a root daemon refuses a sock_path/state_file folder others can write; their planted files are never used", async () => {
  world = new World();
  openWorld(world);
  const shared = join(world.dir, "shared");
  mkdirSync(shared);
  await Bun.$`chmod 1777 ${shared}`;
  const secretDir = join(world.dir, "root-only");
  mkdirSync(secretDir, { mode: 0o700 });
  const secret = join(secretDir, "secret");
  writeFileSync(secret, "root's data\n", { mode: 0o600 });
  // nobody links the lock to a file root would create, the state file to the root file, and
  // links temporaries for the next PIDs to the secret.
  const planted = [
    `ln -s ${join(secretDir, "created-by-daemon")} ${shared}/pm.sock.lock`,
    `printf '%s' '{"version":1,"units":{"a":{"operatorStopped":true,"phase":"stopped","history":[],"restarts":0,"lastExit":null,"startedAtWallMs":null,"suppressedReason":null}}}' > ${shared}/state.json`,
    `for p in $(seq $(($$ + 1)) $(($$ + 400))); do ln -s ${secret} ${shared}/state.json.tmp-$p; done`,
  ];
  expect((await shAsNobody(planted.join(" && "))).code).toBe(0);
  world.writeMaster({ sock_path: join(shared, "pm.sock"), state_file: join(shared, "state.json") });
  world.writeService("a", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 } });

  const d = world.startDaemon();
  // It exits, or (a daemon that took the folder) serves: either way, the planted files come first.
  const outcome = await Promise.race([d.exited.then((code) => `exited with ${code}`), d.waitForLog(/serving /, 30_000).then(() => "serving", () => "neither")]);
  expect(existsSync(join(secretDir, "created-by-daemon"))).toBe(false);
  expect(readFileSync(secret, "utf8")).toBe("root's data\n");
  expect(outcome).toMatch(/^exited with [1-9]/);
  expect(d.output()).toMatch(/(sock_path|state_file): the folder .*shared is writable by everyone \(mode 1777\)/);
});

test("a state file the daemon does not own (planted while the folder was open) is not obeyed", async () => {
  world = new World();
  // nobody writes it while the folder is open to all (0777), then root closes the folder again.
  chmodSync(world.dir, 0o777);
  const planted = JSON.stringify({ version: 1, units: { a: { operatorStopped: true, phase: "stopped", history: [], restarts: 0, lastExit: null, startedAtWallMs: null, suppressedReason: null } } });
  expect((await shAsNobody(`printf '%s' '${planted}' > ${join(world.dir, "state.json")}`)).code).toBe(0);
  chmodSync(world.dir, 0o755);
  expect(statSync(join(world.dir, "state.json")).uid).toBe(NOBODY);
  world.writeService("a", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 } });
  const d = await world.daemon();
  await waitUntil(async () => (await world!.app("a")).state === "running", "a to start despite the planted 'operator stopped'");
  expect(d.output()).toMatch(/state file .*state\.json is not used \(owned by uid 65534/);
});
