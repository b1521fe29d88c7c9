/**
 * A service's user must not freeze the daemon while its runtime_directory is emptied: the
 * contents are deleted by a `find` running as that user, who can SIGSTOP it. The daemon's only
 * thread must keep answering (root's `pmctl status`), and the stop must still finish and say
 * that the removal was cut short.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { asNobody, nobodysFolder, pmctlWithin } from "../helpers/attack.ts";
import { PM_CWD, pmctlCommand, waitUntil, World } from "../helpers/harness.ts";

let world: World;
const extraCleanup: string[] = [];
let stoppedFind: number | null = null;
afterEach(async () => {
  // Against a daemon that waits for the find, let it go on so the daemon can shut down.
  if (stoppedFind !== null) await asNobody("/", `kill -CONT ${stoppedFind} 2>/dev/null; true`);
  stoppedFind = null;
  await world?.cleanup();
  for (const p of extraCleanup.splice(0)) rmSync(p, { recursive: true, force: true });
});

const rtName = () => `pmtest-rt-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
const stdoutOf = (name: string) => { try { return readFileSync(join(world.appDir(name), "stdout.log"), "utf8"); } catch { return ""; } };
const procState = (pid: number) => { try { return readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "")[0]; } catch { return null; } };

describe("runtime directory removal cannot freeze the daemon", () => {
  test("nobody SIGSTOPs the find that empties its runtime folder: root's status still answers, the stop completes and says so", async () => {
    world = new World();
    nobodysFolder(world, "rt");
    const rt = rtName();
    extraCleanup.push(join("/run", rt));
    world.writeService("rt", {
      // Many files, so the find runs long enough to be caught.
      process: { command: ["sh", "-c", `cd /run/${rt} && seq 1 20000 | xargs touch && echo ready; exec sleep 1000`], user: "nobody", runtime_directory: rt, stop_grace_ms: 2000 },
    });
    const d = await world.daemon();
    await waitUntil(() => stdoutOf("rt").includes("ready"), "the service to fill its runtime folder", 60_000);
    // The attacker waits for the daemon's find (running as nobody) and stops it.
    const catcher = asNobody("/", `while ! p=$(pgrep -u 65534 -f "^/usr/bin/find /run/${rt} "); do :; done; kill -STOP $p && echo $p`);
    const stop = Bun.spawn({ cmd: pmctlCommand(["-c", world.configPath, "stop", "rt"]), cwd: PM_CWD, stdin: "ignore", stdout: "ignore", stderr: "ignore" });
    const caught = await catcher;
    expect(caught.code).toBe(0);
    stoppedFind = Number(caught.out.trim());
    const findPid = stoppedFind;
    await waitUntil(() => procState(findPid) === "T", "the find to be stopped", 10_000);
    const status = await pmctlWithin(world, ["status"], 15_000); // throws when the daemon does not answer
    expect([0, 4]).toContain(status.code);
    expect(procState(stoppedFind)).toBe("T"); // it answered while the find was still stopped
    // The find is killed after its time; the stop completes and the daemon says why the folder is left.
    await d.waitForLog(new RegExp(`runtime_directory /run/${rt}: removing its contents as uid 65534 took over \\d+ ms; killed it`), 60_000);
    expect(await stop.exited).toBe(0);
    await waitUntil(async () => (await world.app("rt")).state === "stopped", "the service to be stopped", 30_000);
    expect(procState(stoppedFind)).toBeNull();
    stoppedFind = null;
  }, 120_000);
});
