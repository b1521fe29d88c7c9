/**
 * redis and postgres from Debian packages (redis-server, postgresql), run as their own users
 * with the settings the README shows: exit_type main, a runtime directory under /run, limits,
 * umask, stop_mode main with postgres's own stop signals, reload. Each test skips, saying so,
 * where its package is not installed.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { resolveUser } from "../src/config/users.ts";
import { waitUntil, World, freePort } from "./helpers/harness.ts";

const REDIS = existsSync("/usr/bin/redis-server") && existsSync("/usr/bin/redis-cli") && resolveUser("redis") ? "/usr/bin/redis-server" : null;
const PG_BIN = ["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"].find((d) => existsSync(join(d, "postgres")));
const POSTGRES = PG_BIN && resolveUser("postgres") && existsSync("/usr/bin/psql") ? PG_BIN : null;
if (!REDIS) console.warn("servers.test.ts: redis SKIPPED — redis-server is not installed (apt-get install -y redis-server)");
if (!POSTGRES) console.warn("servers.test.ts: postgres SKIPPED — postgresql is not installed (apt-get install -y postgresql)");

let world: World;
const runDirs: string[] = [];
/** Clients a test started (killed by PID if a failure left them waiting on their input). */
const sessions: Subprocess[] = [];
afterEach(async () => {
  for (const p of sessions.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  await world?.cleanup();
  for (const d of runDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const runName = (what: string) => `pmtest-${what}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

async function run(cmd: string[]): Promise<{ code: number; out: string }> {
  const p = Bun.spawn({ cmd, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out: out + err };
}

/** A folder inside the world owned by `user`, mode 0700. */
function dataDir(name: string, user: string): string {
  const u = resolveUser(user)!;
  const dir = join(world.dir, name);
  mkdirSync(dir, { mode: 0o700 });
  chownSync(dir, u.uid, u.gid);
  return dir;
}

describe.skipIf(!REDIS)("redis", () => {
  test("runs as redis with its runtime directory, nofile and umask; stops cleanly and the directory goes", async () => {
    world = new World();
    chmodSync(world.dir, 0o755);
    const rt = runName("redis");
    runDirs.push(join("/run", rt));
    const port = freePort();
    const data = dataDir("redis", "redis");
    world.writeService("redis", {
      process: {
        command: `${REDIS} --port ${port} --bind 127.0.0.1 --daemonize no --dir ${data} --unixsocket /run/${rt}/redis.sock --save "" --appendonly no`,
        user: "redis", exit_type: "main", runtime_directory: rt, limits: { nofile: 10032 }, umask: "0077", stop_grace_ms: 10_000,
      },
      restart_policy: { policy: "on-failure" },
    });
    await world.daemon();
    const sock = join("/run", rt, "redis.sock");
    await waitUntil(async () => (await run(["/usr/bin/redis-cli", "-s", sock, "ping"])).out.trim() === "PONG", "redis to answer on its socket", 20_000);
    const a = await world.app("redis");
    expect(a.state).toBe("running");
    expect(readFileSync(`/proc/${a.main_pid}/limits`, "utf8")).toMatch(/^Max open files\s+10032\s+10032\s+files/m);
    const dir = statSync(join("/run", rt));
    expect({ uid: dir.uid, mode: dir.mode & 0o7777 }).toEqual({ uid: resolveUser("redis")!.uid, mode: 0o755 }); // the default mode
    expect(statSync(sock).mode & 0o077).toBe(0); // made under umask 0077
    expect((await world.pmctl(["stop", "redis"])).code).toBe(0);
    expect(await world.app("redis")).toMatchObject({ state: "stopped", last_exit: "exit", exit_code: 0 });
    expect(existsSync(join("/run", rt))).toBe(false);
  });
});

describe.skipIf(!POSTGRES)("postgres", () => {
  /** An initdb'd cluster run as the service `postgres` with these process keys; resolves once it answers. */
  async function startPostgres(process: Record<string, unknown>) {
    world = new World();
    chmodSync(world.dir, 0o755);
    const data = dataDir("pgdata", "postgres");
    const init = await run(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", join(POSTGRES!, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
    expect(init.code, init.out).toBe(0);
    const rt = runName("pg");
    runDirs.push(join("/run", rt));
    const port = freePort();
    world.writeService("postgres", {
      process: {
        command: [join(POSTGRES!, "postgres"), "-D", data, "-k", `/run/${rt}`, "-p", String(port), "-c", "listen_addresses="],
        user: "postgres", exit_type: "main", stop_mode: "main", runtime_directory: rt, stop_grace_ms: 60_000, ...process,
      },
      restart_policy: { policy: "on-failure" },
    });
    const d = await world.daemon();
    const psqlArgs = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "/usr/bin/psql", "-h", `/run/${rt}`, "-p", String(port), "-U", "postgres", "-At"];
    const psql = (sql: string) => run([...psqlArgs, "-c", sql]);
    await waitUntil(async () => (await psql("select 1")).out.trim() === "1", "postgres to answer", 30_000);
    const up = await world.app("postgres");
    expect(up.state).toBe("running");
    expect(up.pids.length).toBeGreaterThan(1); // postmaster, checkpointer, background writer, …
    const pgLog = () => readFileSync(join(world.appDir("postgres"), "stderr.log"), "utf8");
    return { d, rt, up, psqlArgs, psql, pgLog };
  }

  test("the postmaster as main: SIGHUP reload, SIGINT to it alone stops every backend, a clean exit", async () => {
    const { d, rt, up, pgLog } = await startPostgres({ stop_signal: "SIGINT", reload_signal: "SIGHUP", runtime_directory_mode: "2775", umask: "0077" });
    expect(statSync(join("/run", rt)).mode & 0o7777).toBe(0o2775);

    expect(await world.pmctl(["reload", "postgres"])).toMatchObject({ code: 0, stdout: `postgres: SIGHUP to the main process ${up.main_pid}\n` });
    await waitUntil(() => pgLog().includes("received SIGHUP, reloading configuration files"), "postgres to reload");

    expect((await world.pmctl(["stop", "postgres"])).code).toBe(0);
    expect(await world.app("postgres")).toMatchObject({ state: "stopped", last_exit: "exit", exit_code: 0, pids: [] });
    expect(d.output()).toContain(`sent SIGINT to the main process ${up.main_pid} (stop_mode main)`);
    expect(pgLog()).toContain("received fast shutdown request");
    expect(existsSync(join("/run", rt))).toBe(false);
  });

  test("smart shutdown (SIGTERM to the postmaster alone): the stop waits for an open session, which ends its work normally", async () => {
    const { d, up, psqlArgs, pgLog } = await startPostgres({ stop_signal: "SIGTERM" });
    // A session that lasts until the test ends it: psql reading its queries from a pipe.
    const session = Bun.spawn({ cmd: psqlArgs, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    sessions.push(session);
    const out = { text: "" };
    const reading = (async () => { for await (const chunk of session.stdout) out.text += new TextDecoder().decode(chunk); })();
    const stderr = new Response(session.stderr).text();
    session.stdin.write("select 'connected';\n");
    session.stdin.flush();
    await waitUntil(() => out.text.includes("connected"), "the session to be open");

    const stop = world.pmctl(["stop", "postgres"]);
    await waitUntil(() => pgLog().includes("received smart shutdown request"), "postgres to get the smart shutdown request");
    // Only the postmaster got SIGTERM: it waits for the session, and the service is still there.
    expect(await world.app("postgres")).toMatchObject({ state: "stopping", main_pid: up.main_pid });
    session.stdin.write("select 'work done after the stop request';\n");
    session.stdin.end();
    expect(await session.exited).toBe(0);
    await reading;
    expect(out.text).toBe("connected\nwork done after the stop request\n");
    expect(await stderr).toBe("");

    expect((await stop).code).toBe(0);
    expect(await world.app("postgres")).toMatchObject({ state: "stopped", last_exit: "exit", exit_code: 0, pids: [] });
    expect(d.output()).toContain(`sent SIGTERM to the main process ${up.main_pid} (stop_mode main)`);
    expect(pgLog()).toContain("database system is shut down");
    expect(pgLog()).not.toContain("terminating connection due to administrator command");
  });
});
