/**
 * nginx (Debian package nginx-light or nginx) as a real pre-forking server: master as root,
 * two workers as nobody, `daemon off;`, a private prefix, a free port on 127.0.0.1. The tests
 * skip, saying so, where nginx is not installed.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pidAlive, waitUntil, World, freePort } from "./helpers/harness.ts";
import type { AppStatus } from "../src/supervisor/status.ts";

const NGINX = ["/usr/sbin/nginx", "/usr/bin/nginx"].find((p) => existsSync(p));
if (!NGINX) console.warn("nginx.test.ts: SKIPPED — nginx is not installed (apt-get install -y nginx-light)");

let world: World;
afterEach(async () => { await world?.cleanup(); });

/** Writes an nginx prefix into the world and the service file that runs it; returns the port. */
function nginxService(process: Record<string, unknown> = {}): number {
  const prefix = join(world.dir, "nginx");
  mkdirSync(join(prefix, "tmp"), { recursive: true });
  const port = freePort();
  writeFileSync(join(prefix, "nginx.conf"), `daemon off;
worker_processes 2;
user nobody nogroup;
pid ${prefix}/nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  server {
    listen 127.0.0.1:${port};
    location / { return 200 "ok\\n"; }
  }
}
`);
  world.writeService("nginx", {
    process: {
      command: [NGINX!, "-p", prefix, "-c", join(prefix, "nginx.conf"), "-e", "stderr"],
      exit_type: "auto", stop_signal: "SIGQUIT", stop_mode: "main", reload_signal: "SIGHUP", stop_grace_ms: 10_000,
      limits: { nofile: "4096:8192" },
      ...process,
    },
    restart_policy: { policy: "always", restart_backoff_ms: 100 },
  });
  return port;
}

async function serves(port: number): Promise<boolean> {
  try { return (await (await fetch(`http://127.0.0.1:${port}/`)).text()) === "ok\n"; } catch { return false; }
}

/** nginx running with its master (main_pid) and both workers, answering on `port`. */
async function up(port: number, not?: { main_pid: number | null }): Promise<AppStatus & { main_pid: number }> {
  return waitUntil(async () => {
    const a = await world.app("nginx");
    return a.state === "running" && a.pids.length === 3 && a.main_pid !== null && a.main_pid !== not?.main_pid && await serves(port)
      && (a as AppStatus & { main_pid: number });
  }, "nginx to serve with a master and 2 workers", 20_000);
}

const workersOf = (a: AppStatus) => a.pids.filter((p) => p !== a.main_pid);

describe.skipIf(!NGINX)("nginx", () => {
  test("kill -9 of the master: the service ends, no worker is left behind, and it serves again", async () => {
    world = new World();
    chmodSync(world.dir, 0o755);
    const port = nginxService();
    const d = await world.daemon();
    const first = await up(port);
    expect(readFileSync(`/proc/${first.main_pid}/limits`, "utf8")).toMatch(/^Max open files\s+4096\s+8192\s+files/m);
    process.kill(first.main_pid, "SIGKILL");
    const second = await up(port, first);
    for (const w of workersOf(first)) expect(pidAlive(w)).toBe(false);
    expect(second).toMatchObject({ restarts: 1, exit_signal: "SIGKILL" });
    expect(d.output()).toMatch(/main process \d+ killed by SIGKILL while other processes remain/);
  });

  test("pmctl reload: new workers under the same master; stop_mode main: SIGQUIT to the master only, a clean exit", async () => {
    world = new World();
    chmodSync(world.dir, 0o755);
    const port = nginxService();
    const d = await world.daemon();
    const before = await up(port);
    const res = await world.pmctl(["reload", "nginx"]);
    expect(res).toMatchObject({ code: 0, stdout: `nginx: SIGHUP to the main process ${before.main_pid}\n` });
    const after = await waitUntil(async () => {
      const a = await world.app("nginx");
      return a.pids.length === 3 && !workersOf(a).some((p) => workersOf(before).includes(p)) && a;
    }, "nginx's new workers", 20_000);
    expect(after.main_pid).toBe(before.main_pid);
    expect(await serves(port)).toBe(true);

    const stop = await world.pmctl(["stop", "nginx"]);
    expect(stop.code).toBe(0);
    expect(await world.app("nginx")).toMatchObject({ state: "stopped", last_exit: "exit", exit_code: 0, pids: [] });
    expect(d.output()).toContain(`sent SIGQUIT to the main process ${before.main_pid} (stop_mode main)`);
  });

  test("after a daemon SIGKILL and restart, the same main_pid; a kill -9 of it is seen and nginx restarted", async () => {
    world = new World();
    chmodSync(world.dir, 0o755);
    const port = nginxService();
    const d1 = await world.daemon();
    const first = await up(port);
    d1.proc.kill("SIGKILL");
    await d1.exited;
    await world.daemon();
    expect(await world.app("nginx")).toMatchObject({ state: "running", main_pid: first.main_pid });
    process.kill(first.main_pid, "SIGKILL");
    const second = await up(port, first);
    for (const w of workersOf(first)) expect(pidAlive(w)).toBe(false);
    expect(second).toMatchObject({ restarts: 1, last_exit: "unknown" });
  });
});
