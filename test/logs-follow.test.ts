import { afterEach, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { followFiles, openLogFd, rotateLogFile, type Follower } from "../src/logs/index.ts";

const dirs: string[] = [];
const followers: Follower[] = [];
function tmpDir(root = os.tmpdir()): string {
  const d = fs.mkdtempSync(path.join(root, "pm-follow-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const f of followers.splice(0)) f.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Collects followed lines; `until` resolves as soon as a condition holds, or fails at a generous deadline. */
class Collector {
  readonly got: { label: string; line: string; at: number }[] = [];
  private waiters: { pred: () => boolean; resolve: () => void }[] = [];
  readonly onLine = (label: string, line: string) => {
    this.got.push({ label, line, at: performance.now() });
    this.recheck();
  };
  /** Checks the waiting conditions again: for a condition that can come true without a new line. */
  recheck() {
    this.waiters = this.waiters.filter((w) => (w.pred() ? (w.resolve(), false) : true));
  }
  lines(label?: string): string[] {
    return this.got.filter((g) => label === undefined || g.label === label).map((g) => g.line);
  }
  until(pred: () => boolean, ms = 15_000, what = "lines"): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`timed out after ${ms} ms waiting for ${what}; got ${this.got.length} lines, last: ${JSON.stringify(this.got.slice(-3))}`));
      }, ms);
      this.waiters.push({ pred, resolve: () => { clearTimeout(timer); resolve(); } });
    });
  }
  count(n: number, ms?: number) {
    return this.until(() => this.got.length >= n, ms, `${n} lines`);
  }
}

function follow(files: { path: string; label: string }[], c: Collector, pollMs = 0): Follower {
  const f = followFiles(files, c.onLine, { pollMs, onError: (label, msg) => console.error("FOLLOW ERROR", label, msg) }); // pollMs 0: inotify alone must do it
  followers.push(f);
  return f;
}

function numbered(from: number, count: number): string {
  let s = "";
  for (let i = from; i < from + count; i++) s += `${i}\n`;
  return s;
}

function expectSequence(lines: string[], n: number) {
  if (lines.length !== n) {
    const seen = new Set(lines);
    const missing: string[] = [];
    for (let i = 0; i < n && missing.length < 10; i++) if (!seen.has(String(i))) missing.push(String(i));
    throw new Error(`${lines.length} lines instead of ${n}; first missing: ${missing.join(" ")}`);
  }
  for (let i = 0; i < n; i++) if (lines[i] !== String(i)) throw new Error(`line ${i} is ${JSON.stringify(lines[i])} (around: ${JSON.stringify(lines.slice(Math.max(0, i - 2), i + 3))})`);
}

/** The number on the last whole line of a file of numbered lines; null when it has none (or no file). */
function lastWholeLine(file: string): number | null {
  let text: string;
  try { text = fs.readFileSync(file, "latin1"); } catch { return null; }
  const end = text.lastIndexOf("\n");
  if (end < 0) return null;
  return Number(text.slice(text.lastIndexOf("\n", end - 1) + 1, end));
}

/** Lets the event loop turn so watchers and timers run (not a wait for any outcome). */
const turn = () => new Promise((r) => setImmediate(r));

describe("followFiles", () => {
  test("starts at the end and sees each appended line on its inotify wake-up, labelled", async () => {
    const d = tmpDir();
    const a = path.join(d, "stdout.log");
    const b = path.join(d, "stderr.log");
    fs.writeFileSync(a, "old line\n");
    fs.writeFileSync(b, "");
    const c = new Collector();
    follow([{ path: a, label: "web/stdout.log" }, { path: b, label: "web/stderr.log" }], c); // pollMs 0: no timer looks, only inotify wakes it
    await turn();
    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      fs.appendFileSync(i % 2 ? b : a, `hello ${i}\n`);
      await c.count(i + 1); // each line before the next append: it came from this append's wake-up
      latencies.push(c.got[i]!.at - t0);
    }
    latencies.sort((x, y) => x - y);
    console.log(`followFiles: median ${latencies[2]!.toFixed(1)} ms from an append to its line (max ${latencies[4]!.toFixed(1)} ms)`);
    expect(c.lines("web/stdout.log")).toEqual(["hello 0", "hello 2", "hello 4"]);
    expect(c.lines("web/stderr.log")).toEqual(["hello 1", "hello 3"]);
  });

  test("a partial line waits for its newline", async () => {
    const d = tmpDir();
    const a = path.join(d, "out.log");
    fs.writeFileSync(a, "");
    const c = new Collector();
    follow([{ path: a, label: "a" }], c);
    await turn();
    fs.appendFileSync(a, "par");
    fs.appendFileSync(a, "tial");
    fs.appendFileSync(a, " line\nnext\n");
    await c.count(2);
    expect(c.lines()).toEqual(["partial line", "next"]);
  });

  test("a file (and folder) that does not exist yet is followed from its creation", async () => {
    const d = tmpDir();
    const a = path.join(d, "later", "deeper", "out.log");
    const c = new Collector();
    follow([{ path: a, label: "a" }], c);
    await turn();
    fs.mkdirSync(path.dirname(a), { recursive: true });
    fs.writeFileSync(a, "first\n");
    await c.count(1);
    fs.appendFileSync(a, "second\n");
    await c.count(2);
    expect(c.lines()).toEqual(["first", "second"]);
  });

  test("across truncation (copy+truncate)", async () => {
    const d = tmpDir();
    const a = path.join(d, "out.log");
    fs.writeFileSync(a, "");
    const c = new Collector();
    follow([{ path: a, label: "a" }], c);
    await turn();
    const fd = openLogFd(a);
    fs.writeSync(fd, numbered(0, 500));
    await c.count(500);
    fs.ftruncateSync(fd, 0);
    fs.writeSync(fd, numbered(500, 3));
    await c.count(503);
    fs.ftruncateSync(fd, 0);
    fs.writeSync(fd, numbered(503, 1000)); // longer than before: only the content says it changed
    await c.count(1503);
    fs.closeSync(fd);
    expectSequence(c.lines(), 1503);
  });

  test("across deletion and recreation", async () => {
    const d = tmpDir();
    const a = path.join(d, "out.log");
    fs.writeFileSync(a, "");
    const c = new Collector();
    follow([{ path: a, label: "a" }], c);
    await turn();
    fs.appendFileSync(a, "0\n1\n2");
    await c.count(2);
    fs.unlinkSync(a);
    await c.count(3); // the old file's last partial line, on its deletion
    fs.writeFileSync(a, "3\n");
    await c.count(4);
    fs.renameSync(a, `${a}.moved`);
    fs.writeFileSync(a, numbered(4, 10));
    await c.count(14);
    expectSequence(c.lines(), 14);
  });

  test("across collapse rotations, caught up or not", async () => {
    const d = tmpDir();
    const a = path.join(d, "stdout.log");
    fs.writeFileSync(a, "");
    const c = new Collector();
    follow([{ path: a, label: "a" }], c);
    await turn();
    const fd = openLogFd(a);
    let n = 0;
    let rotations = 0;
    for (let round = 0; round < 30; round++) {
      const count = 1000 + round * 97; // over one block: every rotation moves something
      fs.writeSync(fd, numbered(n, count));
      n += count;
      // Even rounds: the follower has read everything; odd rounds: it has not read the last
      // batch yet when the rotation cuts it away (it then finds it in the archive).
      if (round % 2 === 0) await c.count(n);
      if (rotateLogFile(a, `${a}.${String(round).padStart(3, "0")}`).bytesMoved > 0) rotations++;
      fs.writeSync(fd, numbered(n, 5));
      n += 5;
      await c.count(n);
    }
    fs.closeSync(fd);
    expect(rotations).toBeGreaterThanOrEqual(28);
    expectSequence(c.lines(), n);
  });

  test("a service writing fast while another process rotates it: every line exactly once", async () => {
    const d = tmpDir();
    const live = path.join(d, "stdout.log");
    const stop = path.join(d, "stop");
    fs.closeSync(openLogFd(live));
    const c = new Collector();
    follow([{ path: live, label: "a" }], c);
    await turn();
    const N = 200_000;
    const writer = Bun.spawn(["/bin/sh", "-c", `i=0; while [ $i -lt ${N} ]; do echo $i; i=$((i+1)); done >> '${live}'`]);
    // A rotation every 100 ms, as `pmctl rotate` in a loop would: the follower wakes up in
    // between (two rotations before it wakes can skip bytes it had not read, see follow.ts).
    const rotateScript = path.join(d, "rotate.ts");
    fs.writeFileSync(rotateScript, `
      import fs from "node:fs";
      import { rotateLogFile } from ${JSON.stringify(path.resolve(import.meta.dir, "../src/logs/rotate.ts"))};
      const live = ${JSON.stringify(live)};
      let moved = 0;
      for (let i = 0; i < 10 || !fs.existsSync(${JSON.stringify(stop)}); i++) {
        if (rotateLogFile(live, live + "." + String(i).padStart(4, "0")).bytesMoved > 0) moved++;
        await Bun.sleep(100);
      }
      console.log(moved);
    `);
    await c.count(100); // a follower that has read (next to) nothing has nothing to find its place by
    const rotator = Bun.spawn([process.execPath, rotateScript], { stdout: "pipe", stderr: "inherit" });
    expect(await writer.exited).toBe(0);
    fs.writeFileSync(stop, "");
    expect(await rotator.exited).toBe(0);
    // At least 10 rotations ran; the last ones may find less than a block to move once the
    // writer is done (how many moved depends on the machine's load): several must have.
    expect(Number(await new Response(rotator.stdout).text())).toBeGreaterThanOrEqual(5);
    await c.count(N, 10_000).catch(() => {}); // expectSequence says what is missing
    await turn();
    expectSequence(c.lines(), N);
  }, 30_000);

  test.skipIf(!fs.existsSync("/dev/shm"))("on tmpfs (copy+truncate): nothing twice, nothing the files still hold is missed", async () => {
    const d = tmpDir("/dev/shm");
    const live = path.join(d, "stdout.log");
    fs.closeSync(openLogFd(live));
    const c = new Collector();
    follow([{ path: live, label: "a" }], c);
    await turn();
    const N = 50_000;
    const writer = Bun.spawn(["/bin/sh", "-c", `i=0; while [ $i -lt ${N} ]; do echo $i; i=$((i+1)); done >> '${live}'`]);
    let done = false;
    writer.exited.then(() => { done = true; c.recheck(); });
    await c.count(100); // a follower that has read (next to) nothing has nothing to find its place by
    const archives: string[] = [];
    let last = -1; // the last whole line a rotation moved
    for (let i = 0; !done; i++) {
      const archive = `${live}.${String(i).padStart(4, "0")}`;
      rotateLogFile(live, archive);
      archives.push(archive);
      // The follower takes back what a rotation moved before it read it from the archive, found
      // by the bytes it read last (see resync.ts): it must have read some of the live file again
      // before the next rotation, or what that one moves is lost to it. Wait for that (an
      // event: a line that ends past the archive's last one), not for a time that a loaded
      // machine overruns. Once the writer is done there may be nothing more to read.
      const moved = lastWholeLine(archive);
      if (moved !== null) last = moved;
      const before = last;
      await c.until(() => Number(c.got.at(-1)?.line) > before || done, 20_000, `the follower to read past line ${before} after a rotation`);
    }
    let stored = "";
    for (const a of archives) if (fs.existsSync(a)) stored += fs.readFileSync(a, "latin1");
    stored += fs.readFileSync(live, "latin1");
    const kept = stored.split("\n").filter((l) => l !== "");
    const keptSet = new Set(kept.map(Number));
    const seenKept = () => c.got.reduce((k, g) => k + (keptSet.has(Number(g.line)) ? 1 : 0), 0);
    await c.until(() => seenKept() >= keptSet.size, 10_000, "every line the files hold");
    const seen = c.lines().map(Number);
    for (let i = 1; i < seen.length; i++) if (!(seen[i]! > seen[i - 1]!)) throw new Error(`out of order or repeated at ${i}: ${seen[i - 1]}, ${seen[i]}`);
    const seenSet = new Set(seen);
    const missed = kept.filter((l) => !seenSet.has(Number(l)));
    expect(missed).toEqual([]);
  }, 30_000);

  test("close() stops watching", async () => {
    const d = tmpDir();
    const a = path.join(d, "out.log");
    fs.writeFileSync(a, "");
    const c = new Collector();
    const f = follow([{ path: a, label: "a" }], c);
    await turn();
    fs.appendFileSync(a, "one\n");
    await c.count(1);
    f.close();
    f.close();
    fs.appendFileSync(a, "two\n");
    await turn();
    expect(c.lines()).toEqual(["one"]);
  });
});
