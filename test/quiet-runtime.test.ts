/**
 * The daemon, and `pmctl logs -f`, re-execute themselves with Bun's GC timer and mimalloc's
 * scavenger thread off (an idle process sleeps); services do not inherit that, and a setting the
 * operator gave stays.
 */
import { afterEach, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PM_CWD, pmctlCommand, waitUntil, World } from "./helpers/harness.ts";

let world: World;
afterEach(async () => { await world?.cleanup(); });

const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
const threadNames = (pid: number) => readdirSync(`/proc/${pid}/task`).map((t) => { try { return readFileSync(`/proc/${pid}/task/${t}/comm`, "utf8").trim(); } catch { return ""; } });
const serviceEnv = () => waitUntil(() => { try { const t = readFileSync(`${world.appDir("env")}/env.txt`, "utf8"); return t.includes("PM_SERVICE=env") && t; } catch { return false; } }, "the service's environment");

test("the daemon keeps its PID and runs with BUN_GC_TIMER_DISABLE=1 and MIMALLOC_SCAVENGER=0 (no mi-scavenger thread); its services do not see them", async () => {
  world = new World();
  world.writeService("env", { process: { command: ["sh", "-c", "env > env.txt; exec sleep 1000"] } });
  const d = await world.daemon();
  expect(environ(d.pid)).toContain("BUN_GC_TIMER_DISABLE=1");
  expect(environ(d.pid)).toContain("MIMALLOC_SCAVENGER=0");
  const [app] = await world.status();
  expect(app!.state).toBe("running");
  const env = await serviceEnv();
  expect(env).not.toContain("BUN_GC_TIMER_DISABLE");
  expect(env).not.toContain("MIMALLOC_SCAVENGER");
  expect(env).not.toContain("PM_QUIET_RUNTIME");
  expect(threadNames(d.pid)).not.toContain("mi-scavenger");
});

test("a setting the operator gave the daemon stays as given", async () => {
  world = new World();
  world.writeService("env", { process: { command: ["sh", "-c", "env > env.txt; exec sleep 1000"] } });
  const d = world.startDaemon([], { MIMALLOC_SCAVENGER: "1" });
  await d.waitForLog(/serving /, 15_000);
  expect(environ(d.pid)).toContain("MIMALLOC_SCAVENGER=1");
  expect(environ(d.pid)).toContain("BUN_GC_TIMER_DISABLE=1");
  expect(environ(d.pid).filter((e) => e.startsWith("PM_QUIET_RUNTIME="))).toEqual(["PM_QUIET_RUNTIME=BUN_GC_TIMER_DISABLE"]);
  expect(await serviceEnv()).not.toContain("BUN_GC_TIMER_DISABLE");
});

test("pmctl logs -f re-executes itself the same way before it prints anything (same PID, output once)", async () => {
  world = new World();
  const logDir = join(world.dir, "quiet-logs");
  mkdirSync(logDir, { recursive: true });
  const out = join(logDir, "out.log");
  writeFileSync(out, "old line\n");
  world.writeService("app", { enabled: false, process: { command: ["sleep", "1000"] }, logs: { stdout: out, stderr: join(logDir, "err.log") } });
  const proc = Bun.spawn({ cmd: pmctlCommand(["-c", world.configPath, "logs", "app", "out.log", "-f", "-n", "100"]), cwd: PM_CWD, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  try {
    let stdout = "";
    const reader = (async () => { for await (const chunk of proc.stdout) stdout += new TextDecoder().decode(chunk); })();
    await waitUntil(() => { appendFileSync(out, "probe\n"); return stdout.includes("probe"); }, "pmctl logs -f to follow", 20_000, 200);
    expect(environ(proc.pid)).toContain("BUN_GC_TIMER_DISABLE=1");
    expect(environ(proc.pid)).toContain("MIMALLOC_SCAVENGER=0");
    expect(threadNames(proc.pid)).not.toContain("mi-scavenger");
    expect(stdout.split("\n").filter((l) => l === "old line")).toEqual(["old line"]);
    proc.kill("SIGINT");
    expect(await proc.exited).toBe(0);
    await reader;
    expect((await new Response(proc.stderr).text()).match(/the daemon is not running/g)?.length).toBe(1);
  } finally {
    proc.kill("SIGKILL");
  }
});
