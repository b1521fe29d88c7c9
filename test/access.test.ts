/**
 * Who may do what over the control socket: the socket's mode, owner and group, and the checks
 * on every request (SO_PEERCRED/SO_PEERGROUPS). Clients run as `nobody` through setpriv.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, statSync } from "node:fs";
import { join } from "node:path";
import { PM_CWD, pmctlCommand, waitUntil, World } from "./helpers/harness.ts";
import { resolveGroup } from "../src/config/users.ts";

let world: World;
afterEach(async () => { await world?.cleanup(); });

const NOBODY = 65534;
const gidOf = (name: string) => resolveGroup(name)!.gid;
// Groups every Debian-like system has; the daemon only needs them to exist.
const WRITERS = "adm";
const READERS = "bin";

/** Runs pmctl as uid/gid nobody with exactly `groups` as supplementary groups. */
async function pmctlAs(groups: number[], args: string[]) {
  const ids = [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, groups.length ? `--groups=${groups.join(",")}` : "--clear-groups"];
  const proc = Bun.spawn({
    cmd: ["setpriv", ...ids, ...pmctlCommand(["-c", world.configPath, ...args])], cwd: PM_CWD,
    stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, HOME: "/tmp" },
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/** The world's folder is private (mkdtemp): let nobody read the master config to find the socket. */
function openWorldToOthers() { chmodSync(world.dir, 0o755); }

const sleeper = { process: { command: ["sleep", "1000"], stop_grace_ms: 2000 } };

describe("the socket's permissions", () => {
  test("the socket has exactly the configured mode, owner and group", async () => {
    world = new World({ master: { sock_mode: 660, sock_owner: "nobody", sock_group: "daemon" } });
    await world.daemon();
    const st = statSync(world.sockPath);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o7777).toBe(0o660);
    expect(st.uid).toBe(NOBODY);
    expect(st.gid).toBe(gidOf("daemon"));
  });

  test("0o640 and 0660 spellings; a missing socket folder is created 0755 whatever the umask", async () => {
    world = new World();
    const sock = join(world.dir, "run", "pm", "pm.sock");
    world.writeMaster({ sock_path: sock, sock_mode: "0o640" });
    const oldMask = process.umask(0o077); // the daemon inherits it
    let d;
    try { d = world.startDaemon([], {}); } finally { process.umask(oldMask); }
    await d.waitForLog(/serving /, 15_000);
    expect(statSync(sock).mode & 0o7777).toBe(0o640);
    for (const dir of [join(world.dir, "run"), join(world.dir, "run", "pm")]) expect(statSync(dir).mode & 0o7777).toBe(0o755);
    d.proc.kill("SIGTERM");
    await d.exited;
    world.writeMaster({ sock_path: sock, sock_mode: "0660" });
    await world.daemon();
    expect(statSync(sock).mode & 0o7777).toBe(0o660);
  });

  test("the default socket mode is 0600", async () => {
    world = new World();
    await world.daemon();
    expect(statSync(world.sockPath).mode & 0o7777).toBe(0o600);
  });
});

describe("who may change things", () => {
  test("a user outside sock_group may read but not start or stop; the refusal is one clear line and logged", async () => {
    world = new World({ master: { sock_mode: "0666", sock_group: WRITERS } });
    world.writeService("a", sleeper);
    openWorldToOthers();
    const d = await world.daemon();
    const pid = await waitUntil(async () => (await world.app("a")).pids[0], "a to run");

    const status = await pmctlAs([], ["status", "--json"]);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).apps[0]).toMatchObject({ name: "a", state: "running" });

    for (const cmd of ["stop", "start", "restart"]) {
      const res = await pmctlAs([], [cmd, "a"]);
      expect(res.code).toBe(1);
      expect(res.stderr).toBe(`pmctl: ${cmd} refused for uid ${NOBODY}: changing services needs root or membership of group '${WRITERS}'\n`);
      expect(d.output()).toMatch(new RegExp(`WARN .*refused ${cmd} a from uid ${NOBODY} \\(nobody\\) pid \\d+`));
    }
    const update = await pmctlAs([], ["update"]);
    expect(update.code).toBe(1);
    expect((await world.app("a")).pids).toEqual([pid]); // untouched
  });

  test("a member of sock_group may stop and start; the daemon logs who did it", async () => {
    world = new World({ master: { sock_mode: "0666", sock_group: WRITERS } });
    world.writeService("a", sleeper);
    openWorldToOthers();
    const d = await world.daemon();
    await waitUntil(async () => (await world.app("a")).state === "running", "a to run");

    const stop = await pmctlAs([gidOf(WRITERS)], ["stop", "a"]);
    expect(stop.code).toBe(0);
    expect(stop.stdout).toContain("a: stopped");
    expect(d.output()).toMatch(new RegExp(`INFO .*stop a by uid ${NOBODY} \\(nobody\\) pid \\d+`));
    const start = await pmctlAs([gidOf(WRITERS)], ["start", "a"]);
    expect(start.code).toBe(0);
    expect((await world.app("a")).state).toBe("running");

    // root too, logged with its uid.
    expect((await world.pmctl(["restart", "a"])).code).toBe(0);
    expect(d.output()).toMatch(/INFO .*restart a by uid 0 \(root\) pid \d+/);
  });

  test("sock_read_group: its members may read, others may not even read", async () => {
    world = new World({ master: { sock_mode: "0666", sock_group: WRITERS, sock_read_group: READERS } });
    world.writeService("a", sleeper);
    openWorldToOthers();
    await world.daemon();
    await waitUntil(async () => (await world.app("a")).state === "running", "a to run");

    const outsider = await pmctlAs([], ["status"]);
    expect(outsider.code).toBe(1);
    expect(outsider.stderr).toBe(`pmctl: status refused for uid ${NOBODY}: reading needs root or membership of group '${READERS}' or '${WRITERS}'\n`);

    const reader = await pmctlAs([gidOf(READERS)], ["status", "--json"]);
    expect(reader.code).toBe(0);
    expect(JSON.parse(reader.stdout).apps[0].name).toBe("a");
    expect((await pmctlAs([gidOf(READERS)], ["stop", "a"])).code).toBe(1);

    const writer = await pmctlAs([gidOf(WRITERS)], ["status"]);
    expect(writer.code).toBe(0);
    expect((await world.app("a")).state).toBe("running");
  });

  test("sock_read_group with a mode its members cannot connect through is warned about", async () => {
    world = new World({ master: { sock_mode: "0660", sock_group: WRITERS, sock_read_group: READERS } });
    const d = await world.daemon();
    expect(d.output()).toContain(`sock_read_group '${READERS}': members outside sock_group cannot connect with sock_mode 0660`);
  });
});
