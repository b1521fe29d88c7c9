import { afterEach, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { LogsConfig } from "../src/config/types.ts";
import { LogRotator } from "../src/logs/index.ts";
import { probeCollapse } from "../src/logs/move.ts";
import { ManualClock } from "../src/util/clock.ts";
import type { Logger } from "../src/util/log.ts";

// probeModes, as the daemon calls it at start: each file's own answer, one line per mode.

const dirs: string[] = [];
function tmpDir(root: string): string {
  const d = fs.mkdtempSync(path.join(root, "pm-probe-"));
  dirs.push(d);
  return d;
}
afterEach(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });

function logsConfig(): LogsConfig {
  return { rotationMode: "time", rotationFrequency: "daily", rotationMaxAgeMs: 7 * 86_400_000, rotationBackups: 5 } as LogsConfig;
}

function capture(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (msg: string) => { lines.push(`${level} ${msg}`); };
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

function collapseIn(dir: string): boolean {
  const f = path.join(dir, "probe");
  fs.writeFileSync(f, "x");
  const fd = fs.openSync(f, "r+");
  try { return probeCollapse(fd, fs.fstatSync(fd).blksize); } finally { fs.closeSync(fd); fs.unlinkSync(f); }
}

const shm = "/dev/shm";
const mixed = fs.existsSync(shm) && collapseIn(os.tmpdir()) && !collapseIn(shm);

test.skipIf(!mixed)("each file gets its own file system's answer; one line per mode; no fd left open", () => {
  const ext = tmpDir(os.tmpdir());
  const mem = tmpDir(shm);
  const files = [path.join(ext, "a.log"), path.join(mem, "b.log"), path.join(ext, "c.log"), path.join(mem, "d.log")];
  for (const f of files) fs.writeFileSync(f, "line\n");
  const missing = path.join(ext, "gone.log");
  const link = path.join(ext, "link.log");
  fs.symlinkSync(files[0]!, link); // never followed: its mode stays unknown
  const log = capture();
  const rot = new LogRotator({ clock: new ManualClock(), log });
  rot.setFiles([...files, missing, link].map((p, i) => ({ app: `s${i}`, path: p, config: logsConfig() })));
  const fds = fs.readdirSync("/proc/self/fd").length;
  rot.probeModes();
  expect(fs.readdirSync("/proc/self/fd").length).toBe(fds);
  expect(files.map((f) => rot.modeOf(f))).toEqual(["collapse", "copy-truncate", "collapse", "copy-truncate"]);
  expect(rot.modeOf(missing)).toBe("unknown");
  expect(rot.modeOf(link)).toBe("unknown");
  expect(log.lines).toHaveLength(2);
  expect(log.lines[0]).toBe("info 2 log files: rotation by fallocate collapse (lossless)");
  expect(log.lines[1]).toStartWith("warn 2 log files on a file system that does not support FALLOC_FL_COLLAPSE_RANGE; rotation by copy+truncate");
  expect(log.lines[1]).toEndWith(`: ${files[1]}, ${files[3]}`);
  // Known modes are not probed or logged again (a reload calls probeModes once more).
  rot.probeModes();
  expect(log.lines).toHaveLength(2);
});
