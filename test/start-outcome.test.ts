/** `pmctl start`/`restart` wait for the outcome: start_seconds and readiness checks, with real processes. */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PM_CWD, World, freePort, pidAlive, pmctlCommand, waitUntil } from "./helpers/harness.ts";

let world: World;
afterEach(async () => { await world?.cleanup(); });

describe("start outcome", () => {
  test("a service that exits at 0.2 s: start exits 1 naming the exit and its stderr", async () => {
    world = new World();
    world.writeService("early", { enabled: false, process: { command: ["sh", "-c", "echo 'cannot bind port 80' >&2; sleep 0.2; exit 7"], start_seconds: 1 } });
    await world.daemon();
    const res = await world.pmctl(["start", "early"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("early: start failed: exited with code 7");
    expect(res.stderr).toContain("before start_seconds (1s)");
    expect(res.stderr).toContain("cannot bind port 80");
    const a = (await world.status("early"))[0]!;
    expect(a.state).toBe("failed");
    expect(String(a.start_failure)).toContain("exited with code 7");

    // restart reports the same way, with the stderr lines.
    const again = await world.pmctl(["restart", "early"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("early: start failed: exited with code 7");
    expect(again.stderr).toContain("early stderr| cannot bind port 80");
  });

  test("a start answers with its own run's outcome even when the policy restarts it at once", async () => {
    world = new World();
    world.writeService("loop", {
      enabled: false, process: { command: ["sh", "-c", "exit 5"] },
      restart_policy: { policy: "always", restart_backoff_ms: 0, tolerance: { max_restarts: 1000, duration: "1h" } },
    });
    await world.daemon();
    const res = await world.pmctl(["start", "loop"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("loop: start failed: exited with code 5");
    expect((await world.app("loop")).state).not.toBe("suppressed"); // answered long before the loop could end
    expect((await world.pmctl(["stop", "loop"])).code).toBe(0);
  });

  test("a service that stays up for start_seconds starts; a one-shot that exits 0 early is not a failed start", async () => {
    world = new World();
    world.writeService("steady", { enabled: false, process: { command: ["sleep", "1000"], start_seconds: "300ms", stop_grace_ms: 2000 } });
    world.writeService("job", { enabled: false, process: { command: ["sh", "-c", "exit 0"] } });
    await world.daemon();
    const res = await world.pmctl(["start", "steady", "job"]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const [job, steady] = await world.status();
    expect(steady!.state).toBe("running");
    expect(steady!.ready).toBe(true);
    expect(job!.state).toBe("exited");
  });

  test("a TCP server that listens after 0.5 s: start returns only once it listens", async () => {
    world = new World();
    const port = freePort();
    const marker = join(world.dir, "listening");
    // Bun is the TCP server: sleeps 0.5 s, listens, then writes a marker file.
    const script = `await Bun.sleep(500); Bun.listen({ hostname: "127.0.0.1", port: ${port}, socket: { data() {} } }); await Bun.write(${JSON.stringify(marker)}, "1"); setInterval(() => {}, 1e6);`;
    world.writeService("db", {
      enabled: false,
      process: { command: [process.execPath, "-e", script], stop_grace_ms: 2000 },
      readiness: { tcp: `127.0.0.1:${port}`, interval: "100ms", timeout: "20s" },
    });
    await world.daemon();
    const res = await world.pmctl(["start", "db"]);
    expect(res.code).toBe(0);
    // The marker is written right after listen(): start returned after the server listened.
    expect(existsSync(marker)).toBe(true);
    const a = await world.app("db");
    expect(a.ready).toBe(true);
    expect(a.start).toBe("up");
    // A client can connect now, as a script after `pmctl start` would.
    const sock = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
    sock.end();
  });

  test("readiness timeout with fail_on_timeout fails the start and stops the service; start answers once it has stopped", async () => {
    world = new World();
    const port = freePort();
    // Slow to stop: SIGTERM is answered 0.5 s later, so an answer given while it stops shows.
    world.writeService("deaf", {
      enabled: false,
      process: { command: ["sh", "-c", "trap 'sleep 0.5; exit 0' TERM; while :; do sleep 0.05; done"], stop_grace_ms: 5000 },
      readiness: { tcp: `127.0.0.1:${port}`, interval: "100ms", timeout: "600ms" },
    });
    await world.daemon();
    const res = await world.pmctl(["start", "deaf"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`not ready within 0.6s (tcp 127.0.0.1:${port}: connection refused)`);
    const a = await world.app("deaf");
    expect(a.state).toBe("failed");
    expect(a.pids).toEqual([]);
  });

  test("readiness timeout without fail_on_timeout: the start succeeds not ready and checks go on; plain wait is met, wait --ready only once ready", async () => {
    world = new World();
    const port = freePort();
    const go = join(world.dir, "go");
    const script = `while (!(await Bun.file(${JSON.stringify(go)}).exists())) await Bun.sleep(20); Bun.listen({ hostname: "127.0.0.1", port: ${port}, socket: { data() {} } }); setInterval(() => {}, 1e6);`;
    world.writeService("lazy", {
      enabled: false,
      process: { command: [process.execPath, "-e", script], stop_grace_ms: 2000 },
      readiness: { tcp: `127.0.0.1:${port}`, interval: "100ms", timeout: "500ms", fail_on_timeout: false },
    });
    const d = await world.daemon();
    const res = await world.pmctl(["start", "lazy"]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(await world.app("lazy")).toMatchObject({ state: "running", start: "up", ready: false, readiness: "connection refused" });
    await d.waitForLog(new RegExp(`\\[lazy\\] not ready within 0\\.5s \\(tcp 127\\.0\\.0\\.1:${port}: connection refused\\); counted as started \\(fail_on_timeout: false\\), still checking`));

    const up = await world.pmctl(["wait", "lazy"]);
    expect(up.code).toBe(0);
    expect(up.stdout).toContain("lazy: up");
    const notReady = await world.pmctl(["wait", "lazy", "--ready", "--timeout", "300ms"]);
    expect(notReady.code).toBe(1);
    expect(notReady.stderr).toContain("lazy: not ready after 300ms (not ready: connection refused)");

    writeFileSync(go, "");
    const ready = await world.pmctl(["wait", "lazy", "--ready", "--timeout", "30s"]);
    expect(ready.code).toBe(0);
    expect(ready.stdout).toContain("lazy: ready");
    expect(await world.app("lazy")).toMatchObject({ ready: true, readiness: "connected" });
  });

  test("an http check answered 503, then 302: not ready (redirects are not followed); ready at 200", async () => {
    world = new World();
    const port = freePort();
    const redirect = join(world.dir, "redirect"), go = join(world.dir, "go");
    // /health: 503 at first, a 302 to /ok once the file `redirect` exists, 200 once `go` exists; /ok is always 200.
    const server = `Bun.serve({ hostname: "127.0.0.1", port: ${port}, async fetch(req) {
      if (new URL(req.url).pathname === "/ok") return new Response("ok");
      if (await Bun.file(${JSON.stringify(go)}).exists()) return new Response("ok");
      if (await Bun.file(${JSON.stringify(redirect)}).exists()) return Response.redirect("/ok", 302);
      return new Response("starting", { status: 503 });
    } }); setInterval(() => {}, 1e6);`;
    world.writeService("web", {
      enabled: false,
      process: { command: [process.execPath, "-e", server], stop_grace_ms: 2000 },
      readiness: { http: `http://127.0.0.1:${port}/health`, interval: "100ms", timeout: "1h" },
    });
    await world.daemon();
    const start = Bun.spawn({ cmd: pmctlCommand(["-c", world.configPath, "start", "web"]), cwd: PM_CWD, stdout: "pipe", stderr: "pipe" });
    for (const [code, next] of [[503, redirect], [302, go]] as const) {
      const a = await waitUntil(async () => { const x = await world.app("web"); return x.readiness === `HTTP ${code}` && x; }, `readiness detail HTTP ${code}`);
      expect(a).toMatchObject({ ready: false, start: "starting" });
      expect(start.exitCode).toBeNull(); // pmctl start still waits
      writeFileSync(next, "");
    }
    expect(await start.exited).toBe(0);
    expect(await world.app("web")).toMatchObject({ ready: true, start: "up", readiness: "HTTP 200" });
  });

  test("log, exec, http and unix readiness checks; pmctl wait --ready", async () => {
    world = new World();
    const port = freePort();
    const sockPath = join(world.dir, "svc.sock");
    const flag = join(world.dir, "flag");
    world.writeService("logger", {
      enabled: false,
      process: { command: ["sh", "-c", "sleep 0.3; echo 'database system is ready to accept connections'; sleep 1000"], stop_grace_ms: 2000 },
      readiness: { log: "ready to accept", interval: "100ms" },
    });
    world.writeService("execd", {
      enabled: false,
      process: { command: ["sh", "-c", `sleep 0.3; touch ${flag}; sleep 1000`], stop_grace_ms: 2000 },
      readiness: { exec: ["test", "-e", flag], interval: "100ms" },
    });
    const http = `Bun.serve({ hostname: "127.0.0.1", port: ${port}, fetch: () => new Response("ok") }); setInterval(() => {}, 1e6);`;
    world.writeService("web", {
      enabled: false,
      process: { command: [process.execPath, "-e", http], stop_grace_ms: 2000 },
      readiness: { http: `http://127.0.0.1:${port}/health`, interval: "100ms" },
    });
    const unix = `Bun.listen({ unix: ${JSON.stringify(sockPath)}, socket: { data() {} } }); setInterval(() => {}, 1e6);`;
    world.writeService("unixd", {
      enabled: false,
      process: { command: [process.execPath, "-e", unix], stop_grace_ms: 2000 },
      readiness: { unix: sockPath, interval: "100ms" },
    });
    await world.daemon();
    const res = await world.pmctl(["start", "logger", "execd", "web", "unixd"]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    for (const a of await world.status()) expect(a.ready).toBe(true);
    const waited = await world.pmctl(["wait", "all", "--ready", "--timeout", "10s"]);
    expect(waited.code).toBe(0);
    expect(waited.stdout).toContain("web: ready");
    expect(readFileSync(join(world.appDir("logger"), "stdout.log"), "utf8")).toContain("ready to accept");
  });

  test("an exec readiness check runs as the service's user, in the service's cgroup", async () => {
    world = new World();
    chmodSync(world.dir, 0o755); // reachable for nobody
    const out = join(world.dir, "probe-out");
    mkdirSync(out);
    chmodSync(out, 0o777);
    world.writeService("who", {
      enabled: false,
      process: { command: ["sleep", "1000"], user: "nobody", stop_grace_ms: 2000 },
      readiness: { exec: ["sh", "-c", `id -u > ${out}/uid && cat /proc/self/cgroup > ${out}/cgroup`], interval: "100ms", timeout: "30s" },
    });
    await world.daemon();
    const res = await world.pmctl(["start", "who"]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const a = await world.app("who");
    expect(a.ready).toBe(true);
    expect(readFileSync(join(out, "uid"), "utf8").trim()).toBe("65534");
    // The probe's cgroup is the service's: the one its main process runs in, inside this world's tree.
    const probeCgroup = readFileSync(join(out, "cgroup"), "utf8").trim();
    expect(probeCgroup).toBe(readFileSync(`/proc/${a.pids[0]}/cgroup`, "utf8").trim());
    expect(probeCgroup).toEndWith(`/${world.cgroupName}/who`);
  });

  test("an exec readiness check still running at probe_timeout is killed with everything it started; the run goes on", async () => {
    world = new World();
    const probes = join(world.dir, "probes"), kids = join(world.dir, "kids");
    // Each probe notes its pid and the pid of a child it starts, then waits for that child (1000 s).
    world.writeService("slowprobe", {
      process: { command: ["sleep", "1000"], stop_grace_ms: 2000 },
      readiness: { exec: ["sh", "-c", `echo $$ >> ${probes}; sleep 1000 & echo $! >> ${kids}; wait`], probe_timeout: "300ms", interval: "100ms", timeout: "1h" },
    });
    await world.daemon();
    const a = await waitUntil(async () => { const x = await world.app("slowprobe"); return x.readiness?.includes("killed") && x; }, "a probe killed at its timeout");
    expect(a.readiness).toBe("still running after 300ms, killed");
    expect(a).toMatchObject({ state: "running", start: "starting", ready: false });
    // The first probe and its child are gone, though the service still runs in that cgroup.
    const firstProbe = Number(readFileSync(probes, "utf8").split("\n")[0]);
    const firstKid = Number(readFileSync(kids, "utf8").split("\n")[0]);
    await waitUntil(() => !pidAlive(firstProbe) && !pidAlive(firstKid), "the first probe and its child to be gone");
    expect(world.cgroupPids("slowprobe")).not.toContain(firstKid);
    expect(world.cgroupPids("slowprobe")).toContain(a.pids[0]!);
  });

  test("pmctl wait times out naming what it waits for, and fails at once for a stopped service", async () => {
    world = new World();
    const port = freePort();
    world.writeService("slow", {
      process: { command: ["sleep", "1000"], stop_grace_ms: 2000 },
      readiness: { tcp: `127.0.0.1:${port}`, interval: "100ms", timeout: "1h" },
    });
    world.writeService("off", { enabled: false, process: { command: ["sleep", "1000"] } });
    await world.daemon();
    const res = await world.pmctl(["wait", "slow", "--ready", "--timeout", "500ms"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("slow: not ready after 500ms");
    expect(res.stderr).toContain("connection refused");
    const off = await world.pmctl(["wait", "off", "--timeout", "1h"]);
    expect(off.code).toBe(1);
    expect(off.stderr).toContain("off: stopped");
  });
});
