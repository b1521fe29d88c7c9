/**
 * Issue 11 item 12: what `check` passed and the daemon then failed on, or choked on: a NUL in an
 * environment value, variable names with spaces, and YAML aliases that expand a 1 MiB file into
 * hundreds of MB of argv. Each is a config error naming the file and key, found by `check`,
 * and the service is left out while the others run.
 */
import { afterEach, expect, test } from "bun:test";
import { waitUntil, World, pmCommand, runPm } from "../helpers/harness.ts";

let world: World | undefined;
afterEach(async () => { await world?.cleanup(); world = undefined; });

test("NUL in a value, a bad variable name and an alias bomb are config errors; the good service runs", async () => {
  world = new World();
  world.writeRawService("nul.yaml", 'process:\n  command: ["sleep", "1000"]\n  environment:\n    TOKEN: "abc\\0def"\n');
  world.writeRawService("space.yaml", 'process:\n  command: ["sleep", "1000"]\n  environment:\n    "MY VAR": "x"\n');
  const chunk = "a".repeat(100_000);
  world.writeRawService("bomb.yaml", `x-s: &s "${chunk}"\nprocess:\n  command: [${Array(5000).fill("*s").join(", ")}]\n`);
  world.writeService("good", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 } });

  const check = await runPm(pmCommand(["check", "-c", world.configPath]));
  expect(check.code).toBe(1);
  expect(check.stderr + check.stdout).toMatch(/nul\.yaml:4: process\.environment\.TOKEN: an environment value must not contain NUL characters/);
  expect(check.stderr + check.stdout).toMatch(/space\.yaml:4: process\.environment\.MY VAR: an environment variable name must be letters, digits and '_'/);
  expect(check.stderr + check.stdout).toMatch(/bomb\.yaml:3: process\.command\[\d+\]: YAML aliases expand to more than 1048576 bytes/);

  await world.daemon();
  await waitUntil(async () => (await world!.app("good")).state === "running", "the good service to run");
  expect((await world.status()).map((a) => a.name)).toEqual(["good"]);
});
