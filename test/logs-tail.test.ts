import { afterAll, afterEach, beforeAll, describe, expect, spyOn, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { tailLines } from "../src/logs/index.ts";

const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "pm-tail-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/**
 * Runs `tailLines` while counting what it reads through fs.readSync (a pass-through spy): how
 * many bytes, and the lowest file offset read. The cost of a tail is what it reads, so this, not
 * a stopwatch, shows that a huge file costs what a small one does (the time is printed).
 */
function tailCounted(file: string, n: number): { lines: string[]; bytes: number; lowest: number; ms: number } {
  const spy = spyOn(fs, "readSync");
  try {
    const t0 = performance.now();
    const lines = tailLines(file, n);
    const ms = performance.now() - t0;
    const bytes = spy.mock.results.reduce((sum, r) => sum + (r.type === "return" ? (r.value as number) : 0), 0);
    // readSync(fd, buffer, offset, length, position): the position is the fifth argument.
    const lowest = Math.min(...spy.mock.calls.map((c) => Number((c as unknown[])[4])));
    return { lines, bytes, lowest, ms };
  } finally {
    spy.mockRestore();
  }
}

/** At most this much is read for a tail of a few KB, whatever the file's size (one or two read chunks). */
const TAIL_READ_BOUND = 128 * 1024;

function write(content: string | Buffer): string {
  const f = path.join(tmpDir(), "out.log");
  fs.writeFileSync(f, content);
  return f;
}

describe("tailLines", () => {
  test("the last n lines, without newlines", () => {
    const f = write("a\nb\nc\nd\n");
    expect(tailLines(f, 2)).toEqual(["c", "d"]);
    expect(tailLines(f, 4)).toEqual(["a", "b", "c", "d"]);
  });

  test("a last line without a newline is a line", () => {
    const f = write("a\nb\nc");
    expect(tailLines(f, 1)).toEqual(["c"]);
    expect(tailLines(f, 2)).toEqual(["b", "c"]);
  });

  test("n larger than the file gives every line", () => {
    expect(tailLines(write("one\ntwo\n"), 50)).toEqual(["one", "two"]);
    expect(tailLines(write("only"), 50)).toEqual(["only"]);
  });

  test("empty lines count like tail -n", () => {
    expect(tailLines(write("\n"), 5)).toEqual([""]);
    expect(tailLines(write("a\n\n"), 5)).toEqual(["a", ""]);
    expect(tailLines(write("a\n\nb\n"), 2)).toEqual(["", "b"]);
  });

  test("missing file, empty file, n <= 0", () => {
    const d = tmpDir();
    expect(tailLines(path.join(d, "nope.log"), 10)).toEqual([]);
    expect(tailLines(path.join(d, "no-dir", "nope.log"), 10)).toEqual([]);
    expect(tailLines(write(""), 10)).toEqual([]);
    expect(tailLines(write("a\n"), 0)).toEqual([]);
  });

  test("lines longer than a read chunk, and UTF-8 split across chunks", () => {
    const long = "é".repeat(100_000); // 200 KB of two-byte characters
    const f = write(`first\n${long}\nx${long}\nlast\n`);
    expect(tailLines(f, 3)).toEqual([long, `x${long}`, "last"]);
    expect(tailLines(f, 10)).toEqual(["first", long, `x${long}`, "last"]);
  });
});

describe("tailLines on a 50 MB file", () => {
  let big = "";
  const lineCount = 1_000_000;
  let bigDir = "";
  beforeAll(() => {
    bigDir = fs.mkdtempSync(path.join(os.tmpdir(), "pm-tail-big-"));
    big = path.join(bigDir, "big.log");
    const fd = fs.openSync(big, "w");
    const per = 50_000;
    for (let start = 0; start < lineCount; start += per) {
      let s = "";
      for (let i = start; i < start + per; i++) s += `${String(i).padStart(8, "0")} ${"x".repeat(40)}\n`;
      fs.writeSync(fd, s);
    }
    fs.closeSync(fd);
  });
  afterAll(() => fs.rmSync(bigDir, { recursive: true, force: true }));

  test("answers from the end: reads only its last few KB, as on a small file", () => {
    const size = fs.statSync(big).size;
    expect(size).toBeGreaterThanOrEqual(50_000_000);
    const { lines: got, bytes, lowest, ms } = tailCounted(big, 50);
    console.log(`tail -n 50 of a ${(size / 1e6).toFixed(0)} MB file: read ${bytes} bytes from offset ${lowest} on, ${ms.toFixed(1)} ms`);
    expect(got.length).toBe(50);
    expect(got[0]).toBe(`${String(lineCount - 50).padStart(8, "0")} ${"x".repeat(40)}`);
    expect(got[49]).toBe(`${String(lineCount - 1).padStart(8, "0")} ${"x".repeat(40)}`);
    expect(bytes).toBeGreaterThanOrEqual(50 * 50); // the 50 lines were read (through readSync: the count sees the reads)
    expect(bytes).toBeLessThanOrEqual(TAIL_READ_BOUND);
    expect(lowest).toBeGreaterThanOrEqual(size - TAIL_READ_BOUND);
  });

  test("many lines across many chunks", () => {
    const got = tailLines(big, 100_000);
    expect(got.length).toBe(100_000);
    for (let i = 0; i < got.length; i += 9973) {
      expect(got[i]!.slice(0, 8)).toBe(String(lineCount - 100_000 + i).padStart(8, "0"));
    }
  });
});

test("a 10 GiB (sparse) file: only its end is read, as for a small one", () => {
  const f = path.join(tmpDir(), "huge.log");
  const fd = fs.openSync(f, "w");
  fs.ftruncateSync(fd, 10 * 1024 ** 3); // a hole: no disk used, but reading it all would take seconds
  let s = "";
  for (let i = 0; i < 1000; i++) s += `tail line ${i}\n`;
  fs.writeSync(fd, s, 10 * 1024 ** 3);
  fs.closeSync(fd);
  const size = fs.statSync(f).size;
  const { lines: got, bytes, lowest, ms } = tailCounted(f, 100);
  console.log(`tail -n 100 of a 10 GiB sparse file: read ${bytes} bytes from offset ${lowest} on, ${ms.toFixed(1)} ms`);
  expect(got.length).toBe(100);
  expect(got[0]).toBe("tail line 900");
  expect(got[99]).toBe("tail line 999");
  expect(bytes).toBeGreaterThanOrEqual(100 * "tail line 999\n".length);
  expect(bytes).toBeLessThanOrEqual(TAIL_READ_BOUND);
  expect(lowest).toBeGreaterThanOrEqual(size - TAIL_READ_BOUND);
});
