/**
 * withSharedLogFolders (the daemon's boot): each log folder is walked to once and its verified
 * fd kept for every start of the boot. The fd pins the folder: a folder swapped for a symlink
 * behind it redirects nothing, a folder removed behind it is walked to (and made) afresh, and
 * each file is still checked as without sharing.
 */
import { afterEach, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openLogFd, openLogFds, withSharedLogFolders } from "../src/logs/index.ts";

const dirs: string[] = [];
/** A folder anyone may write to, like a service user's home: a symlink in it is never followed. */
function openDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "pm-shared-"));
  fs.chmodSync(d, 0o777);
  dirs.push(d);
  return d;
}
afterEach(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });

const fdCount = () => fs.readdirSync("/proc/self/fd").length;

test("one folder fd for every open of the scope, closed after it", () => {
  const logs = path.join(openDir(), "logs");
  const before = fdCount();
  withSharedLogFolders(() => {
    for (let i = 0; i < 5; i++) {
      for (const fd of openLogFds([path.join(logs, `s${i}.out`), path.join(logs, `s${i}.err`)])) fs.closeSync(fd);
      expect(fdCount()).toBe(before + 1); // the kept folder fd, no more
    }
  });
  expect(fdCount()).toBe(before);
  expect(fs.readdirSync(logs).length).toBe(10);
});

test("a folder swapped for a symlink during the scope: opens stay in the verified folder", () => {
  const home = openDir();
  const logs = path.join(home, "logs");
  const target = openDir(); // where an attacker would like root to create files
  withSharedLogFolders(() => {
    fs.closeSync(openLogFd(path.join(logs, "a.out")));
    fs.renameSync(logs, path.join(home, "moved"));
    fs.symlinkSync(target, logs);
    fs.closeSync(openLogFd(path.join(logs, "b.out")));
  });
  expect(fs.readdirSync(target)).toEqual([]);
  expect(fs.readdirSync(path.join(home, "moved")).sort()).toEqual(["a.out", "b.out"]);
  // Without the kept fd the walk refuses the link, as before.
  expect(() => openLogFd(path.join(logs, "c.out"))).toThrow(/symbolic link/);
  expect(fs.readdirSync(target)).toEqual([]);
});

test("a folder removed during the scope is walked to and made again; a symlinked file is still refused", () => {
  const logs = path.join(openDir(), "logs");
  withSharedLogFolders(() => {
    fs.closeSync(openLogFd(path.join(logs, "a.out")));
    fs.rmSync(logs, { recursive: true });
    fs.closeSync(openLogFd(path.join(logs, "b.out")));
    expect(fs.readdirSync(logs)).toEqual(["b.out"]);
    fs.symlinkSync("/etc/passwd", path.join(logs, "c.out"));
    expect(() => openLogFd(path.join(logs, "c.out"))).toThrow(/symbolic link/);
  });
});

test("a file made after its folder was listed is opened as it is and checked (a symlink is refused)", () => {
  const logs = path.join(openDir(), "logs");
  withSharedLogFolders(() => {
    fs.closeSync(openLogFd(path.join(logs, "a.out"))); // the folder is listed now
    fs.writeFileSync(path.join(logs, "b.out"), "kept\n");
    const fd = openLogFd(path.join(logs, "b.out"));
    fs.writeSync(fd, "more\n");
    fs.closeSync(fd);
    expect(fs.readFileSync(path.join(logs, "b.out"), "utf8")).toBe("kept\nmore\n");
    fs.symlinkSync("/etc/passwd", path.join(logs, "c.out"));
    expect(() => openLogFd(path.join(logs, "c.out"))).toThrow(/symbolic link/);
  });
});
