/**
 * environment_file as a service's user attacks it: the daemon (root) reads the file at each
 * start, so `nobody` swaps the folder on the path for a symlink to a root-only folder and kills
 * its own process to get a restart. Nothing of the root file may reach the service's
 * environment, the daemon log or `pmctl status`; and the bytes of nobody's own file (terminal
 * escapes) never reach root's terminal through the status table or the daemon log.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chownSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { asNobody, NOBODY, nobodysFolder, pmctlWithin, RootFiles } from "../helpers/attack.ts";
import { waitUntil, World } from "../helpers/harness.ts";

let world: World;
let root: RootFiles;
afterEach(async () => {
  await world?.cleanup();
  root?.cleanup();
});

/** A nobody service that prints TOKEN at each start, restarted quickly when it dies. */
function printsToken(envFile: string) {
  return {
    process: { command: ["sh", "-c", 'echo "TOKEN=$TOKEN"; exec sleep 1000'], user: "nobody", environment_file: envFile, stop_grace_ms: 1000 },
    restart_policy: { policy: "always", restart_backoff_ms: 100 },
  };
}

/** A file nobody owns, in a folder nobody owns. */
function nobodysFile(file: string, content: string) {
  writeFileSync(file, content);
  chownSync(file, NOBODY, NOBODY);
}

const stdoutOf = (name: string) => { try { return readFileSync(join(world.appDir(name), "stdout.log"), "utf8"); } catch { return ""; } };

async function runningPid(name: string): Promise<number> {
  return waitUntil(async () => { const a = await world.app(name); return a.state === "running" && a.main_pid; }, `${name} to run`, 20_000);
}

/** Runs `script` as nobody in the service's folder, then kills its process: the daemon starts it again (or fails to). */
async function attackAndKill(name: string, script: string): Promise<void> {
  const pid = await runningPid(name);
  expect(await asNobody(world.appDir(name), `${script} && kill ${pid}`)).toEqual({ code: 0, out: "" });
}

describe("environment files cannot be used to read root's files or to write to root's terminal", () => {
  test("the env folder swapped for a symlink to a root-only folder: no root variable and no root line reach the service, the log or status", async () => {
    world = new World();
    root = new RootFiles();
    root.add("a.env", "TOKEN=root-only-token\n");
    root.add("b.env", "root-only-line-not-key-value\n");
    const wdA = nobodysFolder(world, "a");
    const wdB = nobodysFolder(world, "b");
    for (const [wd, file] of [[wdA, "a.env"], [wdB, "b.env"]] as const) {
      mkdirSync(join(wd, "conf"));
      chownSync(join(wd, "conf"), NOBODY, NOBODY);
      nobodysFile(join(wd, "conf", file), "TOKEN=public\n");
    }
    world.writeService("a", printsToken(join(wdA, "conf", "a.env")));
    world.writeService("b", printsToken(join(wdB, "conf", "b.env")));
    const d = await world.daemon();
    await waitUntil(() => stdoutOf("a").includes("TOKEN=public") && stdoutOf("b").includes("TOKEN=public"), "the first starts");
    for (const name of ["a", "b"]) {
      await attackAndKill(name, `mv conf conf.old && ln -s ${root.dir} conf`);
      // The daemon either refuses the file (logged) or starts the service again (a second line).
      await waitUntil(() => new RegExp(`\\[${name}\\] .*environment_file`).test(d.output()) || stdoutOf(name).split("TOKEN=").length > 2,
        `${name}: the daemon to refuse the file or start the service again`, 30_000);
    }
    const status = await pmctlWithin(world, ["status"], 10_000);
    const json = await pmctlWithin(world, ["status", "--json"], 10_000);
    for (const seen of [stdoutOf("a"), stdoutOf("b"), d.output(), status.stdout + status.stderr, json.stdout]) {
      expect(seen).not.toContain("root-only");
    }
    expect(d.output()).toMatch(/environment_file .*conf is a symbolic link/);
  }, 90_000);

  test("a root-owned file of mode 0600 in the service user's folder (as a link would put it there) is refused", async () => {
    world = new World();
    const wd = nobodysFolder(world, "a");
    writeFileSync(join(wd, "a.env"), "TOKEN=root-only-token\n", { mode: 0o600 });
    world.writeService("a", printsToken(join(wd, "a.env")));
    const d = await world.daemon();
    await d.waitForLog(/a\.env belongs to root, is not readable by the service's user/, 20_000);
    expect(stdoutOf("a")).not.toContain("root-only");
  }, 60_000);

  test("terminal escapes in nobody's own env file reach neither root's status table nor the daemon log", async () => {
    world = new World();
    const wd = nobodysFolder(world, "a");
    const envFile = join(wd, "a.env");
    nobodysFile(envFile, "TOKEN=public\n");
    world.writeService("a", printsToken(envFile));
    const d = await world.daemon();
    await waitUntil(() => stdoutOf("a").includes("TOKEN=public"), "the first start");
    // ESC ] 0 ; … BEL sets the terminal's title; a real attack would rewrite the screen.
    await attackAndKill("a", `printf '\\033]0;pwned\\007\\033[2J evil\\n' > a.env`);
    await waitUntil(async () => (await world.app("a")).start_failure !== null, "the start to fail", 30_000);
    await d.waitForLog(/a\.env:1/, 20_000);
    const status = await pmctlWithin(world, ["status"], 10_000);
    expect(status.stdout).toContain("a.env:1");
    // eslint-disable-next-line no-control-regex
    const control = /[\x00-\x08\x0b-\x1f\x7f]/;
    expect(status.stdout).not.toMatch(control);
    expect(d.output()).not.toMatch(control);
  }, 60_000);
});
