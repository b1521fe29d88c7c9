/**
 * nginx (Debian package nginx-light or nginx) as a real pre-forking server, run from README.md's
 * `config.d/nginx.yaml` block as it is but for its config file: master as root, two workers as
 * www-data, `daemon off;` from the README's `-g`, a free port on 127.0.0.1. The nginx tests skip,
 * saying so, where the README's nginx is not installed; the check of the README block does not.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pidAlive, waitUntil, World, freePort, runPm } from "./helpers/harness.ts";
import { keyPaths, readmeBlock, readmeService } from "./helpers/readme-services.ts";
import type { AppStatus } from "../src/supervisor/status.ts";

/** Every key of README's nginx block, and where these tests show what it does. */
const COVERED: Record<string, string> = {
  "process.command": "every test: master and 2 workers serve, in the foreground by the README's -g 'daemon off;'",
  "process.exit_type": "kill -9 of the master while its workers remain: the service ends, no worker left",
  "process.stop_signal": "stop: SIGQUIT to the master, a clean exit",
  "process.stop_mode": "stop: the signal to the main process only",
  "process.reload_signal": "pmctl reload: new workers under the same master",
  "process.stop_grace_ms": "not observed: nginx quits well within it",
  "process.limits.nofile": "kill -9 test: /proc/PID/limits of the master",
  "restart_policy.policy": "kill -9 tests: always restarts it",
};

const NGINX = (() => { try { return (readmeService("nginx").process.command as string[])[0]; } catch { return undefined; } })();
const INSTALLED = NGINX !== undefined && existsSync(NGINX);
if (!INSTALLED) console.warn(`nginx.test.ts: nginx SKIPPED — ${NGINX ?? "the README's nginx"} is not installed (apt-get install -y nginx-light)`);

let world: World;
afterEach(async () => { await world?.cleanup(); });

test("README's nginx block parses and has exactly the keys these tests cover", () => {
  expect(keyPaths(readmeBlock("nginx").spec)).toEqual(Object.keys(COVERED).sort());
});

test("a README without the block, or with one that does not parse, fails; a test cannot change what the README sets", () => {
  const md = (yaml: string) => `text\n\n\`\`\`yaml\n# config.d/nginx.yaml\n${yaml}\`\`\`\n`;
  expect(() => readmeBlock("nginx", "no blocks here\n")).toThrow("README.md has 0 YAML blocks headed '# config.d/nginx.yaml'");
  expect(() => readmeBlock("nginx", md("process: { command: [unclosed\n"))).toThrow("Flow sequence");
  expect(() => readmeBlock("nginx", md("restart_policy: { policy: always }\n"))).toThrow("has no process.command string");
  const ok = md("process:\n  command: /usr/sbin/nginx -c /etc/nginx/nginx.conf\n  stop_signal: SIGQUIT   # or SIGTERM, fast\n");
  expect(readmeService("nginx", { variant: { stop_signal: "SIGTERM" } }, ok).process.stop_signal).toBe("SIGTERM");
  expect(() => readmeService("nginx", { variant: { stop_signal: "SIGKILL" } }, ok)).toThrow("no comment naming 'SIGKILL'");
  expect(() => readmeService("nginx", { process: { stop_signal: "SIGTERM" } } as never, ok)).toThrow("process.stop_signal comes from the README");
  expect(() => readmeService("nginx", { set: { "-p": "/x" } }, ok)).toThrow("the command shows no '-p <value>'");
});

test.skipIf(!INSTALLED || !existsSync("/etc/nginx/nginx.conf"))("README's nginx command reads the packaged /etc/nginx/nginx.conf (nginx -t)", async () => {
  const r = await runPm(readmeService("nginx", { add: ["-t"] }).process.command as string[]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toContain("test is successful");
});

/** Writes an nginx.conf into the world and README's service file that runs it; returns the port. */
function nginxService(): number {
  const prefix = join(world.dir, "nginx");
  mkdirSync(join(prefix, "tmp"), { recursive: true });
  const port = freePort();
  writeFileSync(join(prefix, "nginx.conf"), `worker_processes 2;
user www-data;
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
  world.writeService("nginx", readmeService("nginx", { set: { "-c": join(prefix, "nginx.conf") } }));
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

describe.skipIf(!INSTALLED)("nginx", () => {
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
