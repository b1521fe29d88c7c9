/**
 * The control socket under abuse: whatever a client sends, the daemon answers what it can,
 * closes what it must, keeps its memory bounded and goes on serving everyone else.
 * Talks to the socket with Bun.connect directly, below pmctl.
 */
import { afterEach, beforeEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { waitUntil, World, type DaemonProc } from "./helpers/harness.ts";
import { MAX_REQUEST_BYTES } from "../src/control/protocol.ts";

// bunfig's [test] timeout is not read by Bun 1.4.5 (the default stays 5 s): set it here.
setDefaultTimeout(30_000);

let world: World;
let daemon: DaemonProc;

beforeEach(async () => {
  world = new World();
  world.writeService("a", { process: { command: ["sleep", "1000"], stop_grace_ms: 2000 } });
  daemon = await world.daemon();
});
afterEach(async () => { await world?.cleanup(); });

interface Reply { type: string; code?: string; message?: string; data?: unknown }

/** A raw connection: write bytes (respecting backpressure), read reply lines, see when the daemon closes. */
class RawClient {
  private text = "";
  /** The daemon closed (end, close or error event): everything it sent has been received. */
  private isClosed = false;
  /** A write failed: the daemon stopped reading; its reply may still be on the way. */
  private writeFailed = false;
  private readonly waiters = new Set<() => void>();
  private outbox: Uint8Array[] = [];
  private drained: (() => void) | null = null;
  private sock!: Awaited<ReturnType<typeof Bun.connect>>;

  static async open(path: string): Promise<RawClient> {
    const c = new RawClient();
    const notify = () => { for (const w of [...c.waiters]) w(); };
    c.sock = await Bun.connect({
      unix: path,
      allowHalfOpen: true, // we may shut down our side and still read the answer
      socket: {
        data(_s, chunk) { c.text += Buffer.from(chunk).toString("utf8"); notify(); },
        drain() { c.flush(); },
        end() { c.isClosed = true; notify(); },
        close() { c.isClosed = true; c.drained?.(); notify(); },
        error() { c.isClosed = true; c.drained?.(); notify(); },
      },
    });
    return c;
  }

  get closed(): boolean { return this.isClosed; }
  get refused(): boolean { return this.isClosed || this.writeFailed; }
  get received(): string { return this.text; }
  replies(): Reply[] { return this.text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Reply); }

  /** Writes everything, waiting for the socket to drain; stops early if the daemon closes. */
  write(data: string | Uint8Array): Promise<void> {
    this.outbox.push(typeof data === "string" ? Buffer.from(data) : data);
    return new Promise((resolve) => { this.drained = resolve; this.flush(); });
  }

  private flush() {
    while (this.outbox.length > 0 && !this.isClosed && !this.writeFailed) {
      const head = this.outbox[0]!;
      const n = this.sock.write(head);
      if (n < 0) { this.writeFailed = true; break; }
      if (n < head.length) { this.outbox[0] = head.subarray(n); return; }
      this.outbox.shift();
    }
    const done = this.drained;
    this.drained = null;
    done?.();
  }

  /** Half-closes: no more requests from us. */
  shutdown() { this.sock.shutdown(); }
  close() { this.sock.end(); }

  until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const test = () => { if (check()) { this.waiters.delete(test); clearTimeout(timer); resolve(); } };
      const timer = setTimeout(() => { this.waiters.delete(test); reject(new Error(`timed out waiting for ${what}; received: ${this.text.slice(0, 500)}`)); }, timeoutMs);
      this.waiters.add(test);
      test();
    });
  }

  waitForReplies(n: number): Promise<Reply[]> {
    return this.until(`${n} reply line(s)`, () => this.text.split("\n").length > n).then(() => this.replies());
  }
  waitForClose(): Promise<void> { return this.until("the daemon to close the connection", () => this.isClosed); }
}

/** One request on a fresh connection, the final reply back. */
async function ask(line: string | Uint8Array): Promise<Reply> {
  const c = await RawClient.open(world.sockPath);
  await c.write(line);
  const [reply] = await c.waitForReplies(1);
  c.close();
  return reply!;
}

/** The daemon still answers a normal status request, from a fresh connection. */
async function stillServing() {
  const apps = await world.status();
  expect(apps.map((a) => a.name)).toEqual(["a"]);
  expect(apps[0]!.state).toBe("running");
  expect(daemon.proc.exitCode).toBeNull();
}

/** Open fds of a process, less a state file's temporary: open only while a write is fsynced (slow on a loaded disk). */
const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).filter((f) => { try { return !readlinkSync(`/proc/${pid}/fd/${f}`).includes(".tmp-"); } catch { return false; } }).length;
const rssKiB = (pid: number) => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);

describe("control socket", () => {
  test("a line that is not JSON gets an error reply; the same connection then serves a good request", async () => {
    const c = await RawClient.open(world.sockPath);
    await c.write("this is not json\n");
    const [bad] = await c.waitForReplies(1);
    expect(bad).toMatchObject({ type: "error", code: "PROTOCOL", message: expect.stringContaining("not valid JSON") });
    expect(c.closed).toBe(false);
    await c.write(JSON.stringify({ cmd: "status" }) + "\n");
    const [, good] = await c.waitForReplies(2);
    expect(good!.type).toBe("result");
    c.close();
    await stillServing();
  });

  test("requests that are JSON but not a request get an error each", async () => {
    const cases: [string, RegExp][] = [
      ["[]", /must be a JSON object/],
      ["null", /must be a JSON object/],
      ['"status"', /must be a JSON object/],
      ["{}", /unknown command undefined/],
      ['{"cmd":"frobnicate"}', /unknown command "frobnicate"; expected one of ping, status/],
      ['{"cmd":"status","names":"a"}', /names must be a list/],
      ['{"cmd":"status","names":[1]}', /names must be a list/],
      ['{"cmd":"status","names":["nosuch"]}', /unknown service 'nosuch'/],
    ];
    const replies = await Promise.all(cases.map(([line]) => ask(line + "\n")));
    replies.forEach((r, i) => {
      expect(r.type).toBe("error");
      expect(r.message).toMatch(cases[i]![1]);
    });
    expect(await ask(Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x0a]))).toMatchObject({ type: "error", code: "PROTOCOL" }); // not UTF-8
    await stillServing();
  });

  test("several requests on one connection are answered in order; blank lines are skipped", async () => {
    const c = await RawClient.open(world.sockPath);
    await c.write('{"cmd":"ping"}\n\n   \n{"cmd":"nope"}\n{"cmd":"status","names":["a"]}\n');
    const replies = await c.waitForReplies(3);
    expect(replies.map((r) => r.type)).toEqual(["result", "error", "result"]);
    expect(replies[0]!.data).toMatchObject({ pid: daemon.pid });
    expect((replies[2]!.data as { apps: { name: string }[] }).apps[0]!.name).toBe("a");
    c.close();
  });

  test("a request split across many writes is put back together", async () => {
    const c = await RawClient.open(world.sockPath);
    for (const ch of '{"cmd":"status"}\n') await c.write(ch);
    const [r] = await c.waitForReplies(1);
    expect(r!.type).toBe("result");
    c.close();
  });

  test("a 10 MB line without newline: error reply, connection closed, memory bounded", async () => {
    await stillServing();
    const before = rssKiB(daemon.pid);
    const c = await RawClient.open(world.sockPath);
    const mib = Buffer.alloc(1 << 20, "x".charCodeAt(0));
    for (let i = 0; i < 10 && !c.refused; i++) await c.write(mib);
    await c.waitForClose();
    c.close();
    const [reply] = c.replies();
    expect(reply).toMatchObject({ type: "error", code: "PROTOCOL", message: `request line longer than ${MAX_REQUEST_BYTES} bytes` });
    await stillServing();
    // The daemon kept at most one request's worth (1 MiB) of it; allow for allocator slack.
    const grownMiB = (rssKiB(daemon.pid) - before) / 1024;
    expect(grownMiB).toBeLessThan(8);
  });

  test("half a request, then the client shuts down its side: an error reply, then the daemon closes", async () => {
    const c = await RawClient.open(world.sockPath);
    await c.write('{"cmd":"sta');
    c.shutdown();
    await c.waitForClose();
    expect(c.replies()).toEqual([{ type: "error", code: "PROTOCOL", message: "request is not valid JSON (syntax error)" }]);
    await stillServing();
  });

  test("a slow request, then the client shuts down its side: it still gets the answer (nc -N)", async () => {
    const before = (await world.app("a")).pids;
    const c = await RawClient.open(world.sockPath);
    await c.write('{"cmd":"ping"}\n{"cmd":"restart","names":["a"]}'); // the last one without newline
    c.shutdown();
    await c.waitForClose();
    const replies = c.replies();
    expect(replies.map((r) => r.type)).toEqual(["result", "result"]);
    const after = (replies[1]!.data as { apps: { pids: number[]; state: string }[] }).apps[0]!;
    expect(after.state).toBe("running");
    expect(after.pids).not.toEqual(before);
    await stillServing();
  });

  test("a client that is gone before its answers are ready does not hurt the daemon", async () => {
    const c = await RawClient.open(world.sockPath);
    await c.write('{"cmd":"restart","names":["a"]}\n{"cmd":"status"}\n');
    c.close();
    await waitUntil(() => /\[a\] started, pid \d+[\s\S]*\[a\] started, pid/.test(daemon.output()), "the restart to complete");
    await stillServing();
  });

  test("a client that vanishes while its request is answered does not hurt the daemon", async () => {
    for (let i = 0; i < 20; i++) {
      const c = await RawClient.open(world.sockPath);
      await c.write('{"cmd":"status"}\n{"cmd":"status"}\n');
      c.close();
    }
    await stillServing();
  });

  test("deeply nested JSON is refused with an error reply", async () => {
    const open = "[".repeat(100_000);
    expect(await ask(open + "\n")).toMatchObject({ type: "error", code: "PROTOCOL" });
    const balanced = `{"cmd":"status","names":${"[".repeat(100_000)}${"]".repeat(100_000)}}`;
    expect(await ask(balanced + "\n")).toMatchObject({ type: "error", code: "PROTOCOL" });
    const objects = `${'{"a":'.repeat(100_000)}1${"}".repeat(100_000)}`;
    expect(await ask(objects + "\n")).toMatchObject({ type: "error", code: "PROTOCOL" });
    await stillServing();
  });

  test("200 concurrent clients asking for status all get an answer, and no connection is left open", async () => {
    // The first status opens the files the daemon keeps per service (cgroup.procs, cpu.stat:
    // src/cgroup/live-files.ts); count after it, so only connections are compared.
    await world.status();
    const fdsBefore = fdCount(daemon.pid);
    const results = await Promise.allSettled(Array.from({ length: 200 }, () => world.status()));
    const failed = results.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason));
    expect(failed).toEqual([]);
    for (const r of results) expect((r as PromiseFulfilledResult<{ name: string }[]>).value.map((a) => a.name)).toEqual(["a"]);
    await stillServing();
    await waitUntil(() => fdCount(daemon.pid) <= fdsBefore, `the daemon's open fds to return to ${fdsBefore}`);
  });

  test("200 raw connections left open do not stop the daemon from serving", async () => {
    await world.status(); // opens the per-service files the daemon keeps (see above)
    // The count at rest: a state write (its temp file open during fsync) or a connection being
    // closed right at the first read would be counted, and the count never come back down to it.
    const fdsBefore = await waitUntil(async () => {
      const first = fdCount(daemon.pid);
      await Bun.sleep(100);
      return fdCount(daemon.pid) === first && first;
    }, "the daemon's fd count to be at rest");
    const idle = await Promise.all(Array.from({ length: 200 }, () => RawClient.open(world.sockPath)));
    await stillServing();
    await waitUntil(() => fdCount(daemon.pid) >= fdsBefore + 200, "the daemon to hold the 200 connections");
    for (const c of idle) c.close();
    await waitUntil(() => fdCount(daemon.pid) <= fdsBefore, `the daemon's open fds to return to ${fdsBefore}`);
    await stillServing();
  });
});
