/**
 * A service's user makes its own log file sparse (`truncate -s 200M stdout.log` after deleting
 * it, then kills its process so the daemon reopens the new file). A rotation by root must not
 * turn the hole into real zeros: the archive keeps the hole, so root writes no more than the
 * file's data (1 TiB would otherwise fill the disk, past any quota of that user).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { asNobody, nobodysFolder, pmctlWithin } from "../helpers/attack.ts";
import { waitUntil, World } from "../helpers/harness.ts";

let world: World;
afterEach(async () => { await world?.cleanup(); });

const HOLE = 200 * 1024 * 1024;
const LINE = "started by the daemon\n";

describe("rotation of a sparse log file", () => {
  test("nobody's 200 MiB sparse stdout.log: the archive keeps the hole, archive + live file are exact, status answers", async () => {
    world = new World();
    const wd = nobodysFolder(world, "victim");
    world.writeService("victim", {
      process: { command: ["sh", "-c", `printf '${LINE.trim()}\\n'; exec sleep 1000`], user: "nobody", stop_grace_ms: 1000 },
      restart_policy: { policy: "always", restart_backoff_ms: 100 },
    });
    await world.daemon();
    const live = join(wd, "stdout.log");
    const pid = await waitUntil(async () => { const a = await world.app("victim"); return a.state === "running" && a.main_pid; }, "the service to run", 20_000);
    await waitUntil(() => { try { return readFileSync(live, "utf8") === LINE; } catch { return false; } }, "the first line");
    expect(await asNobody(wd, `rm -f stdout.log && truncate -s ${HOLE} stdout.log && kill ${pid}`)).toEqual({ code: 0, out: "" });
    // The daemon reopens the sparse file for the new run, which appends its line after the hole.
    await waitUntil(() => statSync(live).size === HOLE + LINE.length, "the restarted service's line after the hole", 30_000);
    const r = await pmctlWithin(world, ["rotate", "victim"], 60_000);
    expect(r.code).toBe(0);
    const archives = readdirSync(wd).filter((n) => n.startsWith("stdout.log."));
    expect(archives.length).toBeGreaterThan(0);
    let logical = statSync(live).size;
    let allocated = statSync(live).blocks * 512;
    for (const a of archives) {
      const st = statSync(join(wd, a));
      logical += st.size;
      allocated += st.blocks * 512;
    }
    expect(logical).toBe(HOLE + LINE.length); // lossless: archive + live file hold every byte
    expect(allocated).toBeLessThan(16 * 1024 * 1024); // the hole was not written as zeros
    const tail = Buffer.concat([...archives.map((a) => readFileSync(join(wd, a))), readFileSync(live)]).subarray(-LINE.length).toString();
    expect(tail).toBe(LINE);
    expect([0, 4]).toContain((await pmctlWithin(world, ["status"], 10_000)).code);
  }, 120_000);
});
