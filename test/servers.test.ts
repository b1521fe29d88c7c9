/**
 * redis and postgres from Debian packages (redis-server, postgresql), run from README.md's
 * `config.d/redis.yaml` and `config.d/postgres.yaml` blocks as they are but for paths, the port
 * and the runtime folder's name: their own users, exit_type main, a runtime directory under
 * /run, limits, umask, stop_mode main with postgres's own stop signals, reload. Each server's
 * tests skip, saying so, where its package is not installed; the checks of the README blocks do not.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { resolveUser } from "../src/config/users.ts";
import { waitUntil, World, freePort } from "./helpers/harness.ts";
import { keyPaths, readmeBlock, readmeService } from "./helpers/readme-services.ts";

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

/** Every key of README's redis and postgres blocks, and where these tests show what it does. */
const COVERED: Record<"redis" | "postgres", Record<string, string>> = {
  redis: {
    "process.command": "redis answers on the README's --unixsocket in its runtime folder; its --dir gets dump.rdb at the stop",
    "process.user": "the main process runs as redis; the runtime folder is redis's",
    "process.exit_type": "kill -9 of redis: its exit is the service's (SIGKILL, restarted); the stop reports its exit 0",
    "process.runtime_directory": "made before the start (name per test), mode 0755, gone after the stop",
    "process.limits.nofile": "/proc/PID/limits",
    "process.umask": "the socket redis makes has no group or other bits",
    "restart_policy.policy": "on-failure: restarted after kill -9",
  },
  postgres: {
    "process.command": "postgres answers on its socket in the runtime folder (-k); the README's -D reads Debian's cluster (postgres -C)",
    "process.user": "the postmaster runs as postgres",
    "process.exit_type": "the stop reports the postmaster's exit: exit 0",
    "process.stop_signal": "SIGINT: fast shutdown; its variant SIGTERM: smart shutdown",
    "process.stop_mode": "the stop signal to the postmaster alone; an open session finishes its work",
    "process.reload_signal": "pmctl reload: SIGHUP to the postmaster, which reloads",
    "process.runtime_directory": "made before the start (name per test), gone after the stop",
    "process.runtime_directory_mode": "2775 on the runtime folder",
    "process.stop_grace_ms": "not observed: postgres stops well within it",
    "restart_policy.policy": "not observed: no test makes postgres fail",
  },
};

for (const name of ["redis", "postgres"] as const) {
  test(`README's ${name} block parses and has exactly the keys these tests cover`, () => {
    expect(keyPaths(readmeBlock(name).spec)).toEqual(Object.keys(COVERED[name]).sort());
  });
}

/** The uid `pid` runs as. */
const uidOf = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);

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
  test("runs as redis with its runtime directory, nofile and umask; restarted after kill -9; stops cleanly, saved, and the directory goes", async () => {
    world = new World();
    chmodSync(world.dir, 0o755);
    const rt = runName("redis");
    runDirs.push(join("/run", rt));
    const port = freePort();
    const data = dataDir("redis", "redis");
    world.writeService("redis", readmeService("redis", {
      set: { "--port": String(port), "--dir": data, "--unixsocket": `/run/${rt}/redis.sock` },
      process: { runtime_directory: rt },
    }));
    await world.daemon();
    const sock = join("/run", rt, "redis.sock");
    const answers = () => waitUntil(async () => (await run(["/usr/bin/redis-cli", "-s", sock, "ping"])).out.trim() === "PONG", "redis to answer on its socket", 20_000);
    await answers();
    const a = await world.app("redis");
    expect(a.state).toBe("running");
    const redisUid = resolveUser("redis")!.uid;
    expect(uidOf(a.main_pid!)).toBe(redisUid);
    expect(readFileSync(`/proc/${a.main_pid}/limits`, "utf8")).toMatch(/^Max open files\s+10032\s+10032\s+files/m);
    const dir = statSync(join("/run", rt));
    expect({ uid: dir.uid, mode: dir.mode & 0o7777 }).toEqual({ uid: redisUid, mode: 0o755 }); // the default mode
    expect(statSync(sock).mode & 0o077).toBe(0); // made under umask 0077

    process.kill(a.main_pid!, "SIGKILL");
    await waitUntil(async () => { const b = await world.app("redis"); return b.restarts === 1 && b.state === "running"; }, "redis to be restarted", 20_000);
    expect(await world.app("redis")).toMatchObject({ exit_signal: "SIGKILL" });
    await answers();

    expect((await world.pmctl(["stop", "redis"])).code).toBe(0);
    expect(await world.app("redis")).toMatchObject({ state: "stopped", last_exit: "exit", exit_code: 0 });
    expect(existsSync(join("/run", rt))).toBe(false);
    expect(existsSync(join(data, "dump.rdb"))).toBe(true); // saved at the stop, in the README's --dir
  });
});

describe.skipIf(!POSTGRES)("postgres", () => {
  test.skipIf(!existsSync("/etc/postgresql/15/main/postgresql.conf"))("README's -D reads Debian's cluster 15/main: postgres -C data_directory, as postgres", async () => {
    const argv = readmeService("postgres", { add: ["-C", "data_directory"] }).process.command as string[];
    const r = await run(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", ...argv]);
    expect(r).toEqual({ code: 0, out: "/var/lib/postgresql/15/main\n" });
  });

  /** An initdb'd cluster run as README's service `postgres` (a `variant` of a key as its comment names it); resolves once it answers. */
  async function startPostgres(variant?: Record<string, string>) {
    world = new World();
    chmodSync(world.dir, 0o755);
    const data = dataDir("pgdata", "postgres");
    const init = await run(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", join(POSTGRES!, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
    expect(init.code, init.out).toBe(0);
    const rt = runName("pg");
    runDirs.push(join("/run", rt));
    world.writeService("postgres", readmeService("postgres", {
      program: join(POSTGRES!, "postgres"),
      set: { "-D": data, "-k": `/run/${rt}` },
      add: ["-c", "listen_addresses="], // no TCP: each test's cluster answers on the socket in its own runtime folder only
      process: { runtime_directory: rt },
      variant,
    }));
    const d = await world.daemon();
    const psqlArgs = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "/usr/bin/psql", "-h", `/run/${rt}`, "-U", "postgres", "-At"];
    const psql = (sql: string) => run([...psqlArgs, "-c", sql]);
    await waitUntil(async () => (await psql("select 1")).out.trim() === "1", "postgres to answer", 30_000);
    const up = await world.app("postgres");
    expect(up.state).toBe("running");
    expect(up.pids.length).toBeGreaterThan(1); // postmaster, checkpointer, background writer, …
    expect(uidOf(up.main_pid!)).toBe(resolveUser("postgres")!.uid);
    const pgLog = () => readFileSync(join(world.appDir("postgres"), "stderr.log"), "utf8");
    return { d, rt, up, psqlArgs, psql, pgLog };
  }

  test("the postmaster as main: SIGHUP reload, SIGINT to it alone stops every backend, a clean exit", async () => {
    const { d, rt, up, pgLog } = await startPostgres();
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
