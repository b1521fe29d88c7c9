/**
 * Issue 11, item 8b: a service that floods its log must not stall the daemon when the log is
 * rotated. Copying, fsyncing and collapsing hundreds of MiB takes seconds; on the daemon's
 * thread it kept root's `pmctl status` waiting for all of it (21.7 s for 1 GiB in the review).
 * Here `nobody`'s service writes 512 MiB, root runs `pmctl rotate`, and while that rotation is
 * in progress root asks for status: the answer must come before the rotation ends, that is
 * while the archive is still staged (size mode renames it to `.1` last). An order of events,
 * not a timing: a daemon that rotates on its event loop cannot answer before.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { nobodysFolder } from "../helpers/attack.ts";
import { waitUntil, World } from "../helpers/harness.ts";

let world: World;
afterEach(async () => { await world?.cleanup(); });

const SIZE = 512 << 20;

describe("rotation of a big log runs off the daemon's event loop", () => {
  test("root's status is answered while a 512 MiB log is being rotated; the rotation is byte-exact", async () => {
    world = new World();
    const wd = nobodysFolder(world, "flood");
    world.writeService("flood", {
      process: { command: ["sh", "-c", `head -c ${SIZE} /dev/zero; exec sleep 1000`], user: "nobody", stop_grace_ms: 1000 },
      logs: { rotation_mode: "size", rotation_size: "1G", rotation_backups: 1 },
    });
    await world.daemon();
    const live = join(wd, "stdout.log");
    await waitUntil(() => existsSync(live) && statSync(live).size === SIZE, "the service to write 512 MiB", 120_000, 100);
    const staging = join(wd, "stdout.log.rotating");

    const rotated = join(wd, "stdout.log.1");
    let rotateAnswered = false;
    const rotate = world.pmctl(["rotate", "flood"]).finally(() => { rotateAnswered = true; });
    // The rotation is under way once its staging archive exists.
    await waitUntil(() => existsSync(staging) || rotateAnswered, "the rotation to begin", 60_000, 2);
    expect(existsSync(rotated)).toBe(false); // else the rotation was too quick to tell anything
    const status = await world.call("status");
    const duringRotation = existsSync(staging) && !existsSync(rotated) && !rotateAnswered;
    expect((status as { apps: unknown[] }).apps).toHaveLength(1);
    const r = await rotate;
    expect(duringRotation).toBe(true);
    expect(r.code).toBe(0);
    // Nothing lost, nothing doubled: archive + live file hold every byte the service wrote.
    const files = readdirSync(wd).filter((n) => n.startsWith("stdout.log"));
    const total = files.reduce((sum, n) => sum + statSync(join(wd, n)).size, 0);
    expect(files.sort()).toEqual(["stdout.log", "stdout.log.1"]);
    expect(total).toBe(SIZE);
    expect(statSync(join(wd, "stdout.log.1")).size).toBeGreaterThan(SIZE - 65536);
  }, 240_000);
});
