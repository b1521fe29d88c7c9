/**
 * users.ts keeps /etc/passwd and /etc/group parsed while they are unchanged (one stat per
 * lookup). A read that fails after the stat must spoil only that one lookup, not stay cached as
 * "no users" until the file is rewritten.
 */
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readGroups, readPasswd } from "../src/config/users.ts";

let dir: string | undefined;
afterEach(() => { if (dir) rmSync(dir, { recursive: true, force: true }); dir = undefined; });

/** A reader that fails the first time (as EMFILE would) and reads the file after that. */
function failingOnce(): (file: string) => string {
  let calls = 0;
  return (file) => {
    if (calls++ === 0) throw Object.assign(new Error("EMFILE: too many open files"), { code: "EMFILE" });
    return readFileSync(file, "utf8");
  };
}

const cases: { name: string; text: string; lookup: (file: string, read: (file: string) => string) => unknown[]; entries: unknown[] }[] = [
  { name: "passwd", text: "svc:x:1234:1234::/home/svc:/bin/sh\n", lookup: readPasswd, entries: [{ name: "svc", uid: 1234, gid: 1234, home: "/home/svc", shell: "/bin/sh" }] },
  { name: "group", text: "staff:x:50:svc,other\n", lookup: readGroups, entries: [{ name: "staff", gid: 50, members: ["svc", "other"] }] },
];

test.each(cases)("a failed read of an unchanged $name file is read again by the next lookup", ({ name, text, lookup, entries }) => {
  dir = mkdtempSync(join(tmpdir(), "pm-users-"));
  const file = join(dir, name);
  writeFileSync(file, text);
  const read = failingOnce();
  expect(lookup(file, read)).toEqual([]);
  expect(lookup(file, read)).toEqual(entries);
});

test("a good read is kept while the file is unchanged, and read again once it changes", () => {
  dir = mkdtempSync(join(tmpdir(), "pm-users-"));
  const file = join(dir, "passwd");
  writeFileSync(file, "a:x:1:1::/a:/bin/sh\n");
  let reads = 0;
  const read = (f: string) => { reads++; return readFileSync(f, "utf8"); };
  expect(readPasswd(file, read).map((u) => u.name)).toEqual(["a"]);
  expect(readPasswd(file, read).map((u) => u.name)).toEqual(["a"]);
  expect(reads).toBe(1);
  writeFileSync(file, "a:x:1:1::/a:/bin/sh\nbb:x:2:2::/b:/bin/sh\n");
  expect(readPasswd(file, read).map((u) => u.name)).toEqual(["a", "bb"]);
  expect(reads).toBe(2);
});
