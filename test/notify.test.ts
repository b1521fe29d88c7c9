/** sd_notify with real processes: READY=1 from the service, forged messages from outside ignored, the watchdog. */
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sendDatagram } from "../src/linux/ffi.ts";
import { World, pmctlCommand, PM_CWD, waitUntil } from "./helpers/harness.ts";

let world: World;
afterEach(async () => { await world?.cleanup(); });

/**
 * A service that speaks sd_notify from its main process (as a daemon linked with libsystemd
 * does): STATUS at once (with MAINPID=<the pid in the file `foreign-mainpid`> when that file
 * exists), READY=1 once the file `go` exists, then WATCHDOG=1 every 100 ms until the file `hang`
 * exists. Once the file `quit` exists: STOPPING=1, 1.5 s of silence (3 watchdog periods in the
 * watchdog test), then exit 0.
 */
const service = (dir: string) => `
import { dlopen, ptr } from "bun:ffi";
import { existsSync, readFileSync } from "node:fs";
const libc = dlopen("libc.so.6", { socket: { args: ["i32", "i32", "i32"], returns: "i32" }, sendto: { args: ["i32", "ptr", "u64", "i32", "ptr", "u32"], returns: "i64" } });
const target = process.env.NOTIFY_SOCKET; // "@name" (abstract) or a path, as sd_notify(3) takes it
const abstract = target.startsWith("@");
const name = Buffer.from(abstract ? target.slice(1) : target);
const addr = Buffer.alloc(110); addr.writeUInt16LE(1, 0); name.copy(addr, abstract ? 3 : 2);
const fd = libc.symbols.socket(1, 2, 0);
const send = (text) => { const b = Buffer.from(text); libc.symbols.sendto(fd, ptr(b), b.length, 0, ptr(addr), 3 + name.length); }; // family, then NUL+name or path+NUL
const file = (name) => ${JSON.stringify(dir)} + "/" + name;
send("STATUS=warming up" + (existsSync(file("foreign-mainpid")) ? "\\nMAINPID=" + readFileSync(file("foreign-mainpid"), "utf8") : ""));
while (!existsSync(file("go"))) await Bun.sleep(20);
send("READY=1\\nSTATUS=serving\\nMAINPID=" + process.pid);
while (!existsSync(file("hang"))) {
  if (existsSync(file("quit"))) { send("STOPPING=1"); await Bun.sleep(1500); process.exit(0); }
  send("WATCHDOG=1"); await Bun.sleep(100);
}
setInterval(() => {}, 1e6);
`;

function notifySocketOf(pid: number): string {
  const env = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
  return env.find((e) => e.startsWith("NOTIFY_SOCKET="))!.slice("NOTIFY_SOCKET=".length);
}

/** The service above, told to go at once, with a 0.5 s notify watchdog; resolves once it is ready. */
async function readyWithWatchdog(failureThreshold: number, policy: "always" | "on-failure") {
  world = new World();
  writeFileSync(join(world.dir, "go"), "");
  world.writeService("svc", {
    process: { command: [process.execPath, "-e", service(world.dir)], stop_grace_ms: 2000 },
    readiness: { notify: true },
    liveness: { notify: true, watchdog_sec: 0.5, failure_threshold: failureThreshold },
    restart_policy: { policy, restart_backoff_ms: 100 },
  });
  const d = await world.daemon();
  const first = await waitUntil(async () => { const a = await world.app("svc"); return a.ready && a; }, "svc ready");
  return { d, first };
}

describe("notify", () => {
  test("ready only after READY=1 from the service; a forged READY=1 from outside its cgroup, and a MAINPID outside it, are ignored", async () => {
    world = new World();
    writeFileSync(join(world.dir, "foreign-mainpid"), String(process.pid)); // this test process: not in the service's cgroup
    world.writeService("svc", {
      enabled: false,
      process: { command: [process.execPath, "-e", service(world.dir)], stop_grace_ms: 2000 },
      readiness: { notify: true, timeout: "1m" },
    });
    const d = await world.daemon();
    const start = Bun.spawn({ cmd: pmctlCommand(["-c", world.configPath, "start", "svc"]), cwd: PM_CWD, stdout: "pipe", stderr: "pipe" });
    const warming = await waitUntil(async () => { const a = await world.app("svc"); return a.notify_status === "warming up" && a; }, "STATUS from the service");
    expect(warming.ready).toBe(false);
    expect(warming.start).toBe("starting");
    // The service's own message was believed (its STATUS), its MAINPID of a foreign process was not.
    await d.waitForLog(new RegExp(`\\[svc\\] ignored MAINPID=${process.pid}: not a process of this service`));
    expect(warming.notify_main_pid).toBeNull();
    expect(d.output()).not.toContain(`[svc] MAINPID=${process.pid}`);

    const socket = notifySocketOf(warming.pids[0]!);
    expect(socket).toBe(`${world.sockPath}.notify/svc`);
    sendDatagram(socket, "READY=1\nSTATUS=forged");
    await d.waitForLog(new RegExp(`\\[svc\\] ignored a notify message from pid ${process.pid} `));
    const after = await world.app("svc");
    expect(after.ready).toBe(false);
    expect(after.notify_status).toBe("warming up");
    expect(start.exitCode).toBeNull(); // pmctl start is still waiting

    writeFileSync(join(world.dir, "go"), "");
    expect(await start.exited).toBe(0);
    const ready = await world.app("svc");
    expect(ready).toMatchObject({ ready: true, start: "up", notify_status: "serving", notify_main_pid: ready.pids[0] });
  });

  test("a missed WATCHDOG=1 counts as a liveness failure: the service is restarted", async () => {
    const { d, first } = await readyWithWatchdog(2, "always");
    expect(readFileSync(`/proc/${first.pids[0]}/environ`, "utf8")).toContain("WATCHDOG_USEC=500000");
    writeFileSync(join(world.dir, "hang"), "");
    await d.waitForLog(/\[svc\] liveness failed 2 times in a row: no WATCHDOG=1 within 0.5s; stopping it/, 15_000);
    const after = await waitUntil(async () => { const a = await world.app("svc"); return a.restarts === 1 && a.state === "running" && a; }, "a restart");
    expect(after.last_unhealthy).toContain("no WATCHDOG=1 within 0.5s");
  });
});

describe("notify STOPPING=1", () => {
  test("a service that says STOPPING=1, goes silent past its watchdog and exits 0 ends exited: no unhealthy verdict, no restart", async () => {
    const { d } = await readyWithWatchdog(1, "on-failure");
    writeFileSync(join(world.dir, "quit"), "");
    await d.waitForLog(/\[svc\] the service says it is stopping \(STOPPING=1\)/, 15_000);
    const end = await waitUntil(async () => { const a = await world.app("svc"); return a.state === "exited" && a; }, "svc exited", 15_000);
    expect(end).toMatchObject({ restarts: 0, last_unhealthy: null, pids: [], last_exit: "exit", exit_code: 0 });
    expect(d.output()).not.toContain("[svc] liveness");
  });
});

describe("ignored notify messages in the log", () => {
  test("10 lines per sender uid per minute, then one line with the count when the next window opens", async () => {
    const { IgnoredMessageLog, IGNORED_PER_WINDOW, IGNORED_WINDOW_MS } = await import("../src/supervisor/notify.ts");
    const lines: string[] = [];
    const unit = { log: { warn: (m: string) => lines.push(m) } } as unknown as import("../src/supervisor/supervisor.ts").Unit;
    let now = 0;
    const log = new IgnoredMessageLog(() => now);
    for (let i = 0; i < 25; i++) log.ignored(unit, 65534, () => `msg ${i}`);
    log.ignored(unit, 1000, () => "other uid");
    expect(lines.length).toBe(IGNORED_PER_WINDOW + 1);
    expect(lines[IGNORED_PER_WINDOW - 1]).toContain("further ignored messages from uid 65534 are counted, not logged, for 60s");
    expect(lines.at(-1)).toBe("other uid");
    now = IGNORED_WINDOW_MS;
    log.ignored(unit, 65534, () => "next window");
    expect(lines.slice(-2)).toEqual(["15 more ignored notify messages from uid 65534 not logged", "next window"]);
  });
});
