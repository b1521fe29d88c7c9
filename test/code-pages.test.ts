/**
 * The daemon gives back its executable's pages after boot (src/daemon/code-pages.ts): only
 * private, read-only mappings of the executable that hold no private copy, so nothing is lost.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { releasableRegions, releaseExecutablePages } from "../src/daemon/code-pages.ts";

const EXE = "/opt/pm/processmaster";
const entry = (range: string, perms: string, path: string, anonKb: number) =>
  `${range} ${perms} 00001000 fd:01 1234                       ${path}\nSize:               4096 kB\nRss:                 100 kB\nAnonymous:        ${anonKb} kB\nAnonHugePages:         0 kB\n`;

describe("which mappings are released", () => {
  test("read-only private mappings of the executable without private pages; nothing else", () => {
    const smaps = [
      entry("00200000-01a39000", "r--p", EXE, 0),
      entry("01a40000-0684a000", "r-xp", EXE, 0),
      entry("0685f000-06867000", "r--p", EXE, 8), // relocated (RELRO): a private copy
      entry("06867000-06900000", "rw-p", EXE, 0), // writable: data
      entry("07000000-07100000", "r--s", EXE, 0), // shared mapping: not ours to drop
      entry("7f0000000000-7f0000100000", "r-xp", "/usr/lib/x86_64-linux-gnu/libc.so.6", 0),
      entry("7f0000200000-7f0000300000", "r-xp", `${EXE} (deleted)`, 0),
      entry("7f0000400000-7f0000500000", "rw-p", "", 0),
    ].join("");
    expect(releasableRegions(smaps, EXE)).toEqual([
      { start: 0x200000, end: 0x1a39000 },
      { start: 0x1a40000, end: 0x684a000 },
    ]);
  });
});

describe("releasing", () => {
  const rssFileKb = () => Number(/^RssFile:\s+(\d+)/m.exec(readFileSync("/proc/self/status", "utf8"))![1]);

  test("this process's file-backed RSS drops, and its code keeps running (pages come back on use)", () => {
    const before = rssFileKb();
    expect(releaseExecutablePages()).toBeGreaterThan(0);
    const after = rssFileKb();
    expect(after).toBeLessThan(before);
    // The runtime's code is still there: parse, spawn, compile.
    expect(JSON.parse(JSON.stringify({ a: [1, 2] }))).toEqual({ a: [1, 2] });
    expect(Bun.spawnSync(["/bin/echo", "ok"]).stdout.toString()).toBe("ok\n");
    expect(new Function("x", "return x * 2")(21)).toBe(42);
  });
});

describe("JIT policy", () => {
  test("the policy the daemon returns to after boot is the one the binary is built with", async () => {
    const { BUILT_JIT_POLICY } = await import("../src/daemon/daemon.ts");
    const { COMPILE_FLAGS } = await import("../scripts/compile-flags.ts");
    expect(COMPILE_FLAGS).toContain(`--compile-jit-policy=${BUILT_JIT_POLICY}`);
  });
});
