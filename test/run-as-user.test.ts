/**
 * Services run as users: uid, gid, the user's supplementary groups (initgroups(3)'s list, set
 * through setpriv), HOME/USER/LOGNAME from passwd unless `environment` overrides them.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { waitUntil, World } from "./helpers/harness.ts";
import { readGroups, readPasswd, resolveGroup, userGroups } from "../src/config/users.ts";

let world: World;
afterEach(async () => { await world?.cleanup(); });

/** Uid, Gid (real, effective, saved, fs) and Groups of a live process. */
function credentials(pid: number) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const ids = (key: string) => (new RegExp(`^${key}:\\s*(.*)$`, "m").exec(status)?.[1] ?? "").split(/\s+/).filter(Boolean).map(Number);
  return { uid: ids("Uid"), gid: ids("Gid"), groups: ids("Groups").sort((a, b) => a - b) };
}

/** A service that prints its identity once and then sleeps in the same process (exec). */
const identityService = (process: Record<string, unknown>) => ({
  process: { command: ["sh", "-c", 'echo "HOME=$HOME USER=$USER LOGNAME=$LOGNAME"; exec sleep 1000'], stop_grace_ms: 2000, ...process },
});

async function runningPid(name: string): Promise<number> {
  return waitUntil(async () => { const a = await world.app(name); return a.state === "running" && a.pids.length === 1 && a.pids[0]; }, `${name} to run`);
}

/** A user listed as a member of some group in /etc/group other than its primary one, if any. */
function userWithSupplementaryGroups() {
  const members = new Set(readGroups().flatMap((g) => g.members));
  return readPasswd().find((u) => members.has(u.name) && userGroups(u.name, u.gid).length > 1) ?? null;
}

describe("services as users", () => {
  test("user: nobody runs with uid and gid 65534, its groups, and HOME/USER/LOGNAME from passwd", async () => {
    world = new World();
    chmodSync(world.dir, 0o755); // the service's working directory must be reachable for nobody
    world.writeService("who", identityService({ user: "nobody" }));
    await world.daemon();
    const pid = await runningPid("who");
    expect((await world.app("who")).main_pid).toBe(pid); // setpriv exec'd the command in the spawned process
    const cred = credentials(pid);
    expect(cred.uid).toEqual([65534, 65534, 65534, 65534]);
    expect(cred.gid).toEqual([65534, 65534, 65534, 65534]);
    expect(cred.groups).toEqual(userGroups("nobody", 65534).sort((a, b) => a - b));
    const home = readPasswd().find((u) => u.name === "nobody")!.home;
    await waitUntil(() => readFileSync(join(world.appDir("who"), "stdout.log"), "utf8").includes(`HOME=${home} USER=nobody LOGNAME=nobody`), "the identity line");
  });

  test("environment overrides HOME; group: overrides the primary group", async () => {
    world = new World();
    chmodSync(world.dir, 0o755);
    world.writeService("who", identityService({ user: "nobody", group: "daemon", environment: { HOME: "/srv/who" } }));
    await world.daemon();
    const pid = await runningPid("who");
    const daemonGid = resolveGroup("daemon")!.gid;
    const cred = credentials(pid);
    expect(cred.uid[0]).toBe(65534);
    expect(cred.gid).toEqual([daemonGid, daemonGid, daemonGid, daemonGid]);
    expect(cred.groups).toContain(daemonGid);
    await waitUntil(() => readFileSync(join(world.appDir("who"), "stdout.log"), "utf8").includes("HOME=/srv/who USER=nobody LOGNAME=nobody"), "the identity line");
  });

  const member = userWithSupplementaryGroups();
  test.skipIf(member === null)(`a user's supplementary groups from /etc/group are set (${member?.name ?? "no such user here"})`, async () => {
    world = new World();
    chmodSync(world.dir, 0o755);
    world.writeService("member", identityService({ user: member!.name }));
    await world.daemon();
    const pid = await runningPid("member");
    const cred = credentials(pid);
    expect(cred.uid[1]).toBe(member!.uid);
    expect(cred.gid[1]).toBe(member!.gid);
    expect(cred.groups).toEqual(userGroups(member!.name, member!.gid).sort((a, b) => a - b));
    expect(cred.groups.length).toBeGreaterThan(1);
  });

  test("the exit code of a service run as a user is its own", async () => {
    world = new World();
    chmodSync(world.dir, 0o755);
    world.writeService("quits", { process: { command: ["sh", "-c", "exit 3"], user: "nobody" } });
    await world.daemon();
    const a = await waitUntil(async () => { const s = await world.app("quits"); return s.state === "failed" && s; }, "quits to fail");
    expect(a.exit_code).toBe(3);
    expect(a.last_exit).toBe("exit");
  });
});
