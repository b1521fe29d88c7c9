/**
 * Attacks on the sd_notify sockets by a local user (nobody), who finds a notify service's
 * socket in /proc/net/unix (readable by everyone, abstract names and paths alike):
 * - passing file descriptors (SCM_RIGHTS) with every message, to fill the daemon's fd table;
 * - a flood of messages, each of which the daemon logs as ignored;
 * - binding the socket's address while the daemon is down (killed, upgraded), so the adopted
 *   service's messages go to the attacker and never to the new daemon.
 */
import { afterEach, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { waitUntil, World } from "../helpers/harness.ts";
import { IGNORED_PER_WINDOW } from "../../src/supervisor/notify.ts";
import { fdCount, openWorld, spawnBunAsNobody } from "./attacker.ts";

let world: World | undefined;
let attacker: ReturnType<typeof spawnBunAsNobody> | undefined;
afterEach(async () => {
  if (attacker) { attacker.proc.kill("SIGKILL"); await attacker.proc.exited; attacker = undefined; }
  await world?.cleanup(); world = undefined;
});

/** Shared by the service and the attacker: libc, and the sockaddr_un of a NOTIFY_SOCKET value ("@name" or a path). */
const prelude = `
import { dlopen, ptr } from "bun:ffi";
import { readFileSync, writeSync } from "node:fs";
const libc = dlopen("libc.so.6", {
  socket: { args: ["i32", "i32", "i32"], returns: "i32" }, bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  sendto: { args: ["i32", "ptr", "u64", "i32", "ptr", "u32"], returns: "i64" }, sendmsg: { args: ["i32", "ptr", "i32"], returns: "i64" },
  recv: { args: ["i32", "ptr", "u64", "i32"], returns: "i64" },
}).symbols;
const address = (target) => {
  const abstract = target.startsWith("@");
  const name = Buffer.from(abstract ? target.slice(1) : target);
  const addr = Buffer.alloc(110); addr.writeUInt16LE(1, 0); name.copy(addr, abstract ? 3 : 2);
  return { addr, len: 3 + name.length };
};
const say = (text) => writeSync(1, text + "\\n");
`;

/** The service: READY=1, then WATCHDOG=1 every 100 ms and STATUS=<the file's text> whenever it changes. */
const service = (statusFile: string) => `${prelude}
const { addr, len } = address(process.env.NOTIFY_SOCKET);
const fd = libc.socket(1, 2, 0);
const send = (text) => { const b = Buffer.from(text); libc.sendto(fd, ptr(b), b.length, 0, ptr(addr), len); };
send("READY=1");
let last = "";
for (;;) {
  let s = ""; try { s = readFileSync(${JSON.stringify(statusFile)}, "utf8"); } catch {}
  if (s !== last) { last = s; send("STATUS=" + s); }
  send("WATCHDOG=1");
  await Bun.sleep(100);
}`;

/** Attacker code that finds the notify socket of `svc` in /proc/net/unix (its last column). */
const findSocket = (svc: string) => `
const target = readFileSync("/proc/net/unix", "utf8").split("\\n").map((l) => l.trim().split(/\\s+/)[7]).find((p) => p && p.endsWith("/" + ${JSON.stringify(svc)}));
if (!target) { say("no socket found"); process.exit(1); }
say("found " + target);
const { addr, len } = address(target);`;

/** Sends `count` datagrams of `text`, each passing `fdsPer` copies of an open fd when fdsPer > 0; blocks while the queue is full. */
const flood = (svc: string, count: number, text: string, fdsPer: number) => `${prelude}${findSocket(svc)}
const fd = libc.socket(1, 2, 0);
const data = Buffer.from(${JSON.stringify(text)});
const iov = new BigUint64Array([BigInt(ptr(data)), BigInt(data.length)]);
const space = 16 + ((${fdsPer} * 4 + 7) & ~7);
const control = Buffer.alloc(${fdsPer} > 0 ? space : 8);
if (${fdsPer} > 0) {
  const passed = require("node:fs").openSync("/dev/null", "r");
  control.writeBigUInt64LE(BigInt(16 + ${fdsPer} * 4), 0); control.writeInt32LE(1, 8); control.writeInt32LE(1, 12); // SOL_SOCKET, SCM_RIGHTS
  for (let i = 0; i < ${fdsPer}; i++) control.writeInt32LE(passed, 16 + 4 * i);
}
const msg = new BigUint64Array([BigInt(ptr(addr)), BigInt(len), BigInt(ptr(iov)), 1n, ${fdsPer} > 0 ? BigInt(ptr(control)) : 0n, BigInt(${fdsPer} > 0 ? space : 0), 0n]);
let sent = 0;
for (let i = 0; i < ${count}; i++) if (Number(libc.sendmsg(fd, ptr(msg), 0)) >= 0) sent++;
say("sent " + sent);
setInterval(() => {}, 1e6);`;

const SVC = `victim-${Math.random().toString(36).slice(2, 8)}`; // unique on a host where other tests run

async function notifyWorld() {
  world = new World();
  const statusFile = join(world.dir, "status");
  world.writeService(SVC, {
    process: { command: [process.execPath, "-e", service(statusFile)], stop_grace_ms: 2000 },
    readiness: { notify: true, timeout: "1m" },
    liveness: { notify: true, watchdog_sec: 3, failure_threshold: 3 },
  });
  openWorld(world);
  const d = await world.daemon();
  const app = await waitUntil(async () => { const a = await world!.app(SVC); return a.ready && a; }, `${SVC} ready`, 60_000);
  /** Has the service send STATUS=`text` and waits until the daemon read it: everything queued before it was read too. */
  const mark = async (text: string) => {
    writeFileSync(statusFile, text);
    return waitUntil(async () => { const a = await world!.app(SVC); return a.notify_status === text && a; }, `STATUS=${text} to be read`, 60_000);
  };
  return { d, app, mark };
}

test("file descriptors passed with notify messages by nobody are closed: the daemon's fd table does not grow", async () => {
  const { d, mark } = await notifyWorld();
  await mark("before");
  const fdsBefore = fdCount(d.pid);

  attacker = spawnBunAsNobody(flood(SVC, 300, "STATUS=fds", 253));
  await waitUntil(() => /sent \d+|no socket found/.test(attacker!.output()), "the messages to be sent", 120_000, 50);
  expect(attacker.output()).toContain("sent 300");
  await mark("after");

  expect(fdCount(d.pid)).toBeLessThan(fdsBefore + 32); // leaking would keep hundreds (old code: 4 or more a message)
  expect((await world!.pmctl(["status", "--json"])).code).toBe(0);
}, 240_000);

test("a flood of notify messages from nobody is logged 10 times a minute, escaped, then counted", async () => {
  const { d, mark } = await notifyWorld();
  attacker = spawnBunAsNobody(flood(SVC, 500, "READY=1\n[x] FORGED line\u001b[31m", 0));
  await waitUntil(() => /sent \d+|no socket found/.test(attacker!.output()), "the messages to be sent", 120_000, 50);
  expect(attacker.output()).toContain("sent 500");
  await mark("after");

  const lines = d.output().split("\n");
  const ignored = lines.filter((l) => l.includes("ignored a notify message from pid"));
  expect(ignored.length).toBe(IGNORED_PER_WINDOW);
  expect(ignored[0]).toContain("(uid 65534): not a process of this service");
  expect(ignored.at(-1)).toContain("further ignored messages from uid 65534 are counted, not logged");
  expect(lines.some((l) => l.startsWith("[x] FORGED"))).toBe(false);
  expect(d.output()).not.toContain("\u001b");
}, 240_000);

test("nobody cannot take a notify socket's address while the daemon is down: the adopted service still reaches the next daemon", async () => {
  const { d, app, mark } = await notifyWorld();
  const go = join(world!.dir, "daemon-gone");
  // nobody learns the address while the daemon runs, and tries to bind it until told the daemon is gone.
  attacker = spawnBunAsNobody(`${prelude}${findSocket(SVC)}
const fd = libc.socket(1, 2, 0);
const { existsSync } = require("node:fs");
for (;;) {
  const gone = existsSync(${JSON.stringify(go)});
  if (libc.bind(fd, ptr(addr), len) === 0) break;
  if (gone) { say("bind refused"); setInterval(() => {}, 1e6); await new Promise(() => {}); }
  await Bun.sleep(5);
}
say("bound");
const buf = Buffer.alloc(4096);
for (;;) { const n = Number(libc.recv(fd, ptr(buf), buf.length, 0)); if (n > 0) say("got: " + JSON.stringify(buf.subarray(0, n).toString())); }`);
  await waitUntil(() => /found|no socket found/.test(attacker!.output()), "the attacker to find the socket", 60_000, 50);
  d.proc.kill("SIGKILL");
  await d.exited;
  writeFileSync(go, "");
  await waitUntil(() => /bind refused|bound|no socket found/.test(attacker!.output()), "the attacker's bind", 60_000, 50);

  const d2 = await world!.daemon();
  const after = await mark("after-restart");
  expect(after.pids).toEqual(app.pids); // adopted, not restarted
  expect(d2.output()).not.toContain("cannot open the notify socket");
  expect(attacker.output()).toContain("bind refused");
  expect(attacker.output()).not.toContain("got:");
}, 240_000);
