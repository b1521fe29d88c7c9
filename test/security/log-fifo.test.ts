/**
 * Issue 11, item 4: a FIFO at a log path must not hang the daemon. Opening a FIFO for writing
 * blocks until someone reads it, and writing to one blocks once its 64 KiB buffer is full; the
 * daemon's main thread did both. `nobody`, the service's user, plants FIFOs; root's status and
 * rotate must still be answered.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { asNobody, dailyArchiveNames, nobodysFolder, pmctlWithin } from "../helpers/attack.ts";
import { waitUntil, World } from "../helpers/harness.ts";

let world: World;
afterEach(async () => { await world?.cleanup(); });

const ANSWER_MS = 10_000;

describe("a FIFO at a log path never blocks the daemon", () => {
  test("stdout.log replaced by a FIFO and the service killed: the restart is refused, root's status is answered", async () => {
    world = new World();
    const wd = nobodysFolder(world, "victim");
    world.writeService("victim", {
      process: { command: ["sh", "-c", "echo started; exec sleep 1000"], user: "nobody", stop_grace_ms: 1000 },
      restart_policy: { policy: "always", restart_backoff_ms: 100 },
    });
    const d = await world.daemon();
    const pid = await waitUntil(async () => { const a = await world.app("victim"); return a.state === "running" && a.main_pid; }, "victim to run", 20_000);
    expect(await asNobody(wd, `rm -f stdout.log stderr.log && mkfifo stdout.log stderr.log && kill ${pid}`)).toEqual({ code: 0, out: "" });
    // Each round asks root's question with a deadline: a daemon stuck in open() fails here.
    await waitUntil(async () => {
      expect([0, 4]).toContain((await pmctlWithin(world, ["status"], ANSWER_MS)).code); // answered (4: the attacked service failed)
      return /stdout\.log is a FIFO/.test(d.output());
    }, "the daemon to refuse the FIFO (and to keep answering status)", 40_000, 200);
    expect([0, 4]).toContain((await pmctlWithin(world, ["status", "--json"], ANSWER_MS)).code); // answered (4: the attacked service failed)
  }, 90_000);

  // (Before the fix this one did not hang: the archive was opened O_RDWR, which never blocks on a
  // FIFO, and the first positioned write failed with ESPIPE. It holds the clean refusal.)
  test("an archive name that is a FIFO: pmctl rotate is answered with an error, status too", async () => {
    world = new World();
    const wd = nobodysFolder(world, "victim");
    const lines = 20_000; // ~300 KB: more than a pipe holds
    world.writeService("victim", {
      process: { command: ["sh", "-c", `i=0; while [ $i -lt ${lines} ]; do echo "service line $i"; i=$((i+1)); done; exec sleep 1000`], user: "nobody", stop_grace_ms: 1000 },
    });
    await world.daemon();
    const live = join(wd, "stdout.log");
    await waitUntil(() => existsSync(live) && readFileSync(live, "utf8").includes(`service line ${lines - 1}\n`), "the service's output", 30_000);
    expect(await asNobody(wd, `mkfifo ${dailyArchiveNames("stdout.log").join(" ")}`)).toEqual({ code: 0, out: "" });
    const r = await pmctlWithin(world, ["rotate", "victim"], ANSWER_MS);
    expect(r.stdout + r.stderr).toMatch(/is a FIFO/);
    expect([0, 4]).toContain((await pmctlWithin(world, ["status"], ANSWER_MS)).code); // answered (4: the attacked service failed)
    expect(readFileSync(live, "utf8")).toContain(`service line ${lines - 1}\n`); // nothing lost
  }, 90_000);

  test("root's pmctl logs on a log path that is a FIFO: answered with an error, not stuck in open()", async () => {
    world = new World();
    const wd = nobodysFolder(world, "victim");
    world.writeService("victim", { process: { command: ["sh", "-c", "echo started; exec sleep 1000"], user: "nobody", stop_grace_ms: 1000 } });
    await world.daemon();
    await waitUntil(() => existsSync(join(wd, "stdout.log")) && readFileSync(join(wd, "stdout.log"), "utf8").includes("started"), "the service's output", 30_000);
    expect(await asNobody(wd, "rm -f stdout.log && mkfifo stdout.log")).toEqual({ code: 0, out: "" });
    const r = await pmctlWithin(world, ["logs", "victim", "-n", "5"], ANSWER_MS);
    expect(r.stderr).toMatch(/stdout\.log is not a regular file/);
  }, 90_000);
});
