/** ChangeWatch (src/linux/inotify.ts): which changes count, read without blocking. */
import { afterEach, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChangeWatch } from "../src/linux/inotify.ts";

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

test("in a watched folder only the named entries count; the folder's own mode and a watched file's always do", () => {
  const dir = mkdtempSync(join(tmpdir(), "pminotify-"));
  dirs.push(dir);
  writeFileSync(join(dir, "file"), "x");
  const w = ChangeWatch.open()!;
  expect(w.watch(dir, ["app"])).toBe(true);
  expect(w.watch(join(dir, "file"), [])).toBe(true);
  expect(w.changed()).toBe(false);
  writeFileSync(join(dir, "noise"), "x"); // another name: a busy folder
  rmSync(join(dir, "noise"));
  expect(w.changed()).toBe(false);
  writeFileSync(join(dir, "app"), "x"); // the name on a watched path appears
  expect(w.changed()).toBe(true);
  expect(w.changed()).toBe(false); // read once
  renameSync(join(dir, "app"), join(dir, "gone"));
  expect(w.changed()).toBe(true);
  chmodSync(dir, 0o777);
  expect(w.changed()).toBe(true);
  chmodSync(join(dir, "file"), 0o600);
  expect(w.changed()).toBe(true);
  expect(w.watch(join(dir, "missing"), [])).toBe(false);
});
