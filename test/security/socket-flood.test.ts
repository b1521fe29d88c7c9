/**
 * Issue 11 item 3: with a socket others may connect to (sock_mode 0666), a local user opens
 * thousands of connections, each holding part of a request line, before any permission check.
 * The daemon must keep its file descriptors and memory, and keep answering root and restarting
 * services (no EMFILE).
 */
import { afterEach, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { waitUntil, World } from "../helpers/harness.ts";
import { MAX_CONNECTIONS_PER_UID } from "../../src/control/admission.ts";
import { fdCount, openWorld, spawnBunAsNobody } from "./attacker.ts";

let world: World | undefined;
let attacker: ReturnType<typeof spawnBunAsNobody> | undefined;
afterEach(async () => {
  if (attacker) { attacker.proc.kill("SIGKILL"); await attacker.proc.exited; attacker = undefined; }
  await world?.cleanup(); world = undefined;
});

const CONNECTIONS = 2000;

/** Opens CONNECTIONS connections (50 at a time), writes 64 KiB of a line without its newline on each, prints "done N", holds them. */
const flood = (sockPath: string) => `
  const line = Buffer.alloc(64 * 1024, 97);
  let ok = 0;
  for (let i = 0; i < ${CONNECTIONS}; i += 50) {
    await Promise.all(Array.from({ length: 50 }, async () => {
      try {
        const s = await Bun.connect({ unix: ${JSON.stringify(sockPath)}, socket: { data() {}, close() {}, error() {}, drain() {} } });
        s.write(line);
        ok++;
      } catch {}
    }));
  }
  console.log("done " + ok);
  setInterval(() => {}, 1000);
`;

const rssKiB = (pid: number) => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);

test("a connection flood from nobody: the daemon keeps its fds and memory, and still answers and restarts for root", async () => {
  world = new World({ master: { sock_mode: "0666" } });
  world.writeService("a", { process: { command: ["sleep", "1000"], stop_grace_ms: 2000 } });
  openWorld(world);
  const d = await world.daemon();
  await waitUntil(async () => (await world!.app("a")).state === "running", "a to run");
  const fdsBefore = fdCount(d.pid);
  const rssBefore = rssKiB(d.pid);

  attacker = spawnBunAsNobody(flood(world.sockPath));
  await waitUntil(() => /done \d+/.test(attacker!.output()), "the flood to be sent", 120_000, 50);

  // Root is served while nobody holds what it could get; accept order is FIFO, so by the time
  // root's request is answered every flood connection was accepted (and, over the limit, closed).
  const status = await world.pmctl(["status", "--json"]);
  expect(status.code).toBe(0);
  const restart = await world.pmctl(["restart", "a"]);
  expect(restart.stderr).toBe("");
  expect(restart.code).toBe(0);
  expect((await world.app("a")).state).toBe("running");

  expect(fdCount(d.pid)).toBeLessThan(fdsBefore + MAX_CONNECTIONS_PER_UID + 32);
  expect(rssKiB(d.pid) - rssBefore).toBeLessThan(100 * 1024); // 2000 × 64 KiB would be 125 MiB
  expect(d.output()).toMatch(/closing a connection from uid 65534 pid \d+: uid 65534 already has 32 connections/);
}, 240_000);
