/**
 * An idle `pmctl logs -f` (followFiles) wakes only when a followed file or its folder changes
 * (issue 15): no periodic re-check by default, and once the files and their folder are deleted,
 * activity elsewhere in the ancestor folder does not wake it, while the folder's return does.
 * `checks` counts how often the follower looked at a file.
 */
import { afterEach, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { followFiles, type Follower } from "../src/logs/index.ts";

const dirs: string[] = [];
const followers: Follower[] = [];
afterEach(() => {
  for (const f of followers.splice(0)) f.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "pm-follow-idle-"));
  dirs.push(d);
  return d;
}

/** Lines as they come; `until` resolves when a line arrives, or fails at a generous deadline. */
function collector() {
  const lines: string[] = [];
  let waiting: { line: string; resolve: () => void } | null = null;
  return {
    lines,
    onLine: (_label: string, line: string) => {
      lines.push(line);
      if (waiting && line === waiting.line) { waiting.resolve(); waiting = null; }
    },
    until(line: string, ms = 10_000): Promise<void> {
      if (lines.includes(line)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no line ${JSON.stringify(line)} within ${ms} ms; got ${JSON.stringify(lines)}`)), ms);
        waiting = { line, resolve: () => { clearTimeout(t); resolve(); } };
      });
    },
  };
}

test("an idle follower with default options runs no periodic re-check", async () => {
  const dir = tmpDir();
  const file = path.join(dir, "app.log");
  fs.writeFileSync(file, "");
  const c = collector();
  const f = followFiles([{ path: file, label: "app" }], c.onLine); // the options pmctl uses
  followers.push(f);
  fs.appendFileSync(file, "one\n");
  await c.until("one");
  await Bun.sleep(100); // the one trailing look after the event (15 ms)
  const before = f.checks;
  // Absence of a timer can only be seen by letting time pass: longer than the old 1 s re-check.
  await Bun.sleep(2500);
  expect(f.checks).toBe(before);
  fs.appendFileSync(file, "two\n");
  await c.until("two");
});

test("files and folder deleted: other activity in the ancestor does not wake it; the folder's return does", async () => {
  const root = tmpDir();
  const logDir = path.join(root, "a", "b", "logs");
  fs.mkdirSync(logDir, { recursive: true });
  const file = path.join(logDir, "app.log");
  fs.writeFileSync(file, "");
  const c = collector();
  const f = followFiles([{ path: file, label: "app" }], c.onLine, { pollMs: 0 });
  followers.push(f);
  fs.appendFileSync(file, "before\n");
  await c.until("before");

  fs.rmSync(path.join(root, "a"), { recursive: true });
  const afterDelete = f.checks;
  // Busy neighbours: 60 files written beside the deleted folder, paced (Bun's fs.watch folds
  // events that come within ~2 ms of each other into one).
  for (let i = 0; i < 60; i++) { fs.writeFileSync(path.join(root, `other-${i}`), "x"); await Bun.sleep(5); }
  // inotify delivers in order: once the recreated file's line arrives, every event above was seen.
  fs.mkdirSync(logDir, { recursive: true });
  fs.writeFileSync(file, "back\n");
  await c.until("back");
  // Reacting to the neighbours would cost a look per event (60 and more); the deletion and the
  // folder's return cost a handful.
  expect(f.checks - afterDelete).toBeLessThan(20);
  expect(c.lines).toEqual(["before", "back"]);
});
