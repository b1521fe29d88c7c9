/**
 * User and group lookup from /etc/passwd and /etc/group (no NSS, no FFI: users only known
 * to LDAP/sssd are not found). A name that is all digits is taken as a numeric id.
 */
import * as fs from "node:fs";

export interface UserInfo {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface GroupInfo {
  name: string;
  gid: number;
  members: string[];
}

export const PASSWD_FILE = "/etc/passwd";
export const GROUP_FILE = "/etc/group";

/** Reads a whole text file; throws when it cannot (the default of the readers below). */
export type ReadText = (file: string) => string;
const readText: ReadText = (file) => fs.readFileSync(file, "utf8");

/**
 * The parsed file, kept while it is unchanged: every spawn looks its user up (HOME, USER, the
 * supplementary groups), and reading and splitting /etc/passwd each time cost a 5000-service
 * boot ~4 system calls and a parse per start (issue 15). One stat per lookup decides: a file
 * replaced (rename, new inode) or rewritten (size, mtime, ctime in ns) is read again. A read
 * that fails after the stat (EMFILE at a big boot, ENOMEM, EINTR) finds no entries for that one
 * lookup and is not kept: the next lookup reads again.
 */
const parsed = new Map<string, { key: string; entries: unknown[] }>();
function cachedEntries<T>(file: string, parse: (lines: string[]) => T[], read: ReadText): T[] {
  let st: fs.BigIntStats;
  try { st = fs.statSync(file, { bigint: true }); } catch { parsed.delete(file); return parse([]); }
  const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  const hit = parsed.get(file);
  if (hit && hit.key === key) return hit.entries as T[];
  let text: string;
  try { text = read(file); } catch { parsed.delete(file); return parse([]); }
  const entries = parse(text.split("\n"));
  parsed.set(file, { key, entries });
  return entries;
}

function parseId(s: string | undefined): number | null {
  if (s === undefined || !/^\d+$/.test(s)) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) && n <= 0xfffffffe ? n : null;
}

/** `read`: how the file is read when it changed (tests make it fail). */
export function readPasswd(file = PASSWD_FILE, read: ReadText = readText): UserInfo[] {
  return cachedEntries(file, parsePasswd, read);
}

function parsePasswd(lines: string[]): UserInfo[] {
  const out: UserInfo[] = [];
  for (const line of lines) {
    if (line === "" || line.startsWith("#")) continue;
    const f = line.split(":");
    const uid = parseId(f[2]);
    const gid = parseId(f[3]);
    if (f.length < 7 || uid === null || gid === null) continue;
    out.push({ name: f[0]!, uid, gid, home: f[5]!, shell: f[6]! });
  }
  return out;
}

export function readGroups(file = GROUP_FILE, read: ReadText = readText): GroupInfo[] {
  return cachedEntries(file, parseGroups, read);
}

function parseGroups(lines: string[]): GroupInfo[] {
  const out: GroupInfo[] = [];
  for (const line of lines) {
    if (line === "" || line.startsWith("#")) continue;
    const f = line.split(":");
    const gid = parseId(f[2]);
    if (f.length < 4 || gid === null) continue;
    out.push({ name: f[0]!, gid, members: f[3]!.split(",").map((m) => m.trim()).filter(Boolean) });
  }
  return out;
}

/** The user by name, or by uid when `name` is all digits; null when unknown. */
export function resolveUser(name: string | number, passwdFile = PASSWD_FILE): UserInfo | null {
  const users = readPasswd(passwdFile);
  const id = typeof name === "number" ? name : parseId(name);
  if (typeof name === "string") {
    const byName = users.find((u) => u.name === name);
    if (byName) return byName;
  }
  return id === null ? null : users.find((u) => u.uid === id) ?? null;
}

/** The group by name, or by gid when `name` is all digits; null when unknown. */
export function resolveGroup(name: string | number, groupFile = GROUP_FILE): GroupInfo | null {
  const groups = readGroups(groupFile);
  const id = typeof name === "number" ? name : parseId(name);
  if (typeof name === "string") {
    const byName = groups.find((g) => g.name === name);
    if (byName) return byName;
  }
  return id === null ? null : groups.find((g) => g.gid === id) ?? null;
}

/**
 * The gids a process of this user should carry: the primary gid first, then every group that
 * lists the user as a member (like initgroups(3)), without duplicates.
 */
export function userGroups(userName: string, primaryGid: number, groupFile = GROUP_FILE): number[] {
  const out = [primaryGid];
  for (const g of readGroups(groupFile)) {
    if (g.members.includes(userName) && !out.includes(g.gid)) out.push(g.gid);
  }
  return out;
}
