/**
 * Issue 11 item 11: a service run as a user kept a full capability bounding set and could gain
 * privileges through exec (NoNewPrivs 0). It now runs with NoNewPrivs 1 and an empty bounding
 * set: a setuid-root program it runs does not make it root.
 */
import { afterEach, expect, test } from "bun:test";
import { copyFileSync, chmodSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { waitUntil, World } from "../helpers/harness.ts";
import { openWorld, procStatus } from "./attacker.ts";

let world: World | undefined;
afterEach(async () => { await world?.cleanup(); world = undefined; });

test("a user's service has NoNewPrivs 1 and no bounding set; a setuid-root program does not give it root", async () => {
  world = new World();
  openWorld(world);
  // A setuid-root `id` in a root-owned folder: what a service would find on a host (su, sudo, …).
  const suidId = join(world.dir, "suid-id");
  copyFileSync("/usr/bin/id", suidId);
  chmodSync(suidId, 0o4755);
  world.writeService("svc", { process: { user: "nobody", command: ["sh", "-c", `${suidId} -u > euid.txt; exec sleep 1000`], stop_grace_ms: 1000 } });
  world.writeService("opted-out", { process: { user: "nobody", no_new_privileges: false, command: ["sleep", "1000"], stop_grace_ms: 1000 } });
  await Bun.$`chown nobody ${world.appDir("svc")}`.quiet();
  await world.daemon();

  const pid = await waitUntil(async () => { const a = await world!.app("svc"); return a.state === "running" && a.pids[0]; }, "svc to run");
  const euid = await waitUntil(() => { try { return readFileSync(join(world!.appDir("svc"), "euid.txt"), "utf8").trim(); } catch { return ""; } }, "the setuid program's answer");
  expect(euid).toBe("65534");
  expect(procStatus(pid, "NoNewPrivs")).toBe("1");
  expect(procStatus(pid, "CapBnd")).toBe("0000000000000000");
  expect(procStatus(pid, "CapEff")).toBe("0000000000000000");

  const other = await waitUntil(async () => { const a = await world!.app("opted-out"); return a.state === "running" && a.pids[0]; }, "opted-out to run");
  expect(procStatus(other, "NoNewPrivs")).toBe("0");
  expect(procStatus(other, "CapBnd")).toBe("0000000000000000");
});
