/**
 * LogSizes (one folder open per status reply, issue 15) answers exactly what logFileSize answers
 * file by file: the size of a regular file, null for a missing file or folder, a symlink (never
 * followed: status must not tell the size of any file a service's user points it at) or a
 * folder; and it holds no fd after close().
 */
import { afterEach, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LogSizes, logFileSize } from "../src/logs/index.ts";

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

test("same answers as logFileSize, file by file, and no fd left after close", () => {
  const root = mkdtempSync(join(tmpdir(), "pm-log-sizes-"));
  dirs.push(root);
  const logs = join(root, "logs");
  mkdirSync(logs);
  writeFileSync(join(logs, "a.out"), "hello\n");
  writeFileSync(join(logs, "empty.err"), "");
  writeFileSync(join(root, "secret"), "x".repeat(1234));
  symlinkSync(join(root, "secret"), join(logs, "link.out"));
  mkdirSync(join(logs, "dir.out"));
  const files = ["a.out", "empty.err", "missing.out", "link.out", "dir.out"].map((f) => join(logs, f)).concat(join(root, "nofolder", "x.out"));
  const fdsBefore = readdirSync("/proc/self/fd").length;
  const sizes = new LogSizes();
  const got = files.map((f) => sizes.size(f));
  sizes.close();
  expect(got).toEqual(files.map((f) => logFileSize(f)));
  expect(got).toEqual([6, 0, null, null, null, null]);
  expect(readdirSync("/proc/self/fd").length).toBe(fdsBefore);
});
