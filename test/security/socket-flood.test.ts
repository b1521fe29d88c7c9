/**
 * Issue 11 item 3: with a socket others may connect to (sock_mode 0666), a local user opens
 * thousands of connections, each holding part of a request line, before any permission check.
 * The daemon must keep its file descriptors and memory, and keep answering root and restarting
 * services (no EMFILE).
 */
import { afterEach, expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { waitUntil, World } from "../helpers/harness.ts";
import { MAX_CONNECTIONS, MAX_CONNECTIONS_PER_UID } from "../../src/control/admission.ts";
import { fdCount, openWorld, spawnBunAs, spawnBunAsNobody } from "./attacker.ts";

let world: World | undefined;
let attacker: ReturnType<typeof spawnBunAsNobody> | undefined;
const attackers: ReturnType<typeof spawnBunAs>[] = [];
afterEach(async () => {
  if (attacker) { attacker.proc.kill("SIGKILL"); await attacker.proc.exited; attacker = undefined; }
  for (const a of attackers.splice(0)) { a.proc.kill("SIGKILL"); await a.proc.exited; }
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

/** A daemon whose socket everyone may connect to (0666), running `a`; its fds and RSS before any attack. */
async function servingToAll() {
  world = new World({ master: { sock_mode: "0666" } });
  world.writeService("a", { process: { command: ["sleep", "1000"], stop_grace_ms: 2000 } });
  openWorld(world);
  const d = await world.daemon();
  await waitUntil(async () => (await world!.app("a")).state === "running", "a to run");
  return { w: world, d, fdsBefore: fdCount(d.pid), rssBefore: rssKiB(d.pid) };
}

test("a connection flood from nobody: the daemon keeps its fds and memory, and still answers and restarts for root", async () => {
  const { w, d, fdsBefore, rssBefore } = await servingToAll();

  attacker = spawnBunAsNobody(flood(w.sockPath));
  await waitUntil(() => /done \d+/.test(attacker!.output()), "the flood to be sent", 120_000, 50);

  // Root is served while nobody holds what it could get; accept order is FIFO, so by the time
  // root's request is answered every flood connection was accepted (and, over the limit, closed).
  const status = await w.pmctl(["status", "--json"]);
  expect(status.code).toBe(0);
  const restart = await w.pmctl(["restart", "a"]);
  expect(restart.stderr).toBe("");
  expect(restart.code).toBe(0);
  expect((await w.app("a")).state).toBe("running");

  expect(fdCount(d.pid)).toBeLessThan(fdsBefore + MAX_CONNECTIONS_PER_UID + 32);
  expect(rssKiB(d.pid) - rssBefore).toBeLessThan(100 * 1024); // 2000 × 64 KiB would be 125 MiB
  expect(d.output()).toMatch(/closing a connection from uid 65534 pid \d+: uid 65534 already has 32 connections/);
}, 240_000);

/**
 * Opens `n` connections at once, then writes `lineBytes` of an unfinished line on each, all of it
 * (a socket write takes what the buffer holds: the rest is written as it drains) until written or
 * closed by the daemon (none: holds them idle); prints "done N" (connections, then lines sent whole).
 */
const holder = (sockPath: string, n: number, lineBytes: number) => `
  const line = Buffer.alloc(${lineBytes}, 97);
  const closed = new WeakSet();
  const socks = (await Promise.all(Array.from({ length: ${n} }, () =>
    Bun.connect({ unix: ${JSON.stringify(sockPath)}, socket: { data() {}, close(s) { closed.add(s); }, error(s) { closed.add(s); }, drain() {} } }).catch(() => null)))).filter(Boolean);
  let whole = 0;
  await Promise.all(socks.map(async (s) => {
    for (let off = 0; off < line.length && !closed.has(s);) {
      const w = s.write(line.subarray(off));
      if (w > 0) off += w; else await Bun.sleep(2);
      if (off === line.length) whole++;
    }
  }));
  console.log("done " + socks.length + " " + whole);
  setInterval(() => {}, 1000);
`;

test("lines near 1 MiB from 4 uids, then idle connections from 10 more: the global cap and the line budget hold; root is answered and the state file still written", async () => {
  const { w, d, fdsBefore, rssBefore } = await servingToAll();
  const launch = async (uids: number[], n: number, lineBytes: number) => {
    const group = uids.map((uid) => spawnBunAs(uid, holder(w.sockPath, n, lineBytes)));
    attackers.push(...group);
    for (const a of group) await waitUntil(() => /done \d+/.test(a.output()), "an attacker to connect and send", 120_000, 50);
  };
  // 4 uids × 32 connections × (1 MiB - 64 bytes): 128 MiB of unfinished lines against a 16 MiB budget.
  await launch([65531, 65532, 65533, 65534], MAX_CONNECTIONS_PER_UID, (1 << 20) - 64);
  // 10 more uids × 40 idle connections: 320 within the per-uid caps, more than the 256 of all non-root clients.
  await launch(Array.from({ length: 10 }, (_, i) => 65521 + i), 40, 0);

  const t0 = performance.now();
  const status = await w.pmctl(["status", "--json"]);
  const statusMs = performance.now() - t0;
  expect(status.code).toBe(0);
  const stateFile = join(w.dir, "state.json");
  const stateBefore = statSync(stateFile).mtimeMs;
  const t1 = performance.now();
  const restart = await w.pmctl(["restart", "a"]);
  const restartMs = performance.now() - t1;
  expect(restart.stderr).toBe("");
  expect(restart.code).toBe(0);
  await waitUntil(() => statSync(stateFile).mtimeMs > stateBefore, "the state file to be written after the restart", 30_000);
  const fds = fdCount(d.pid) - fdsBefore, rss = rssKiB(d.pid) - rssBefore;
  console.log(`measured under the flood: root's status ${statusMs.toFixed(0)} ms, restart ${restartMs.toFixed(0)} ms (round trips of pmctl); daemon +${fds} fds, +${(rss / 1024).toFixed(0)} MiB RSS`);

  expect(fds).toBeLessThan(MAX_CONNECTIONS + 16); // 128 + 400 attempted
  expect(rss).toBeLessThan(80 * 1024); // 128 MiB of lines were sent (16 MiB may be held)
  expect(d.output()).toMatch(/closing a connection from uid 655\d\d/);
}, 240_000);
