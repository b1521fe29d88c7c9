/**
 * `status --watch` in a pseudo-terminal (util-linux `script`): it redraws in place, coloured, and
 * shows a state change; Ctrl-C ends it with 0. Colour follows the terminal, NO_COLOR and
 * --no-color. Times in the table are local and relative.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Subprocess } from "bun";
import { PM_CWD, pmctlCommand, waitUntil, World } from "./helpers/harness.ts";
import { app } from "./helpers/status-fixture.ts";
import { renderStatus } from "../src/cli/render.ts";
import { localTime, relativeTime } from "../src/cli/times.ts";

setDefaultTimeout(60_000);

let world: World;
let tty: Subprocess<"pipe", "pipe", "pipe"> | null = null;
afterEach(async () => {
  if (tty) { try { tty.kill("SIGKILL"); } catch { /* gone */ } await tty.exited; tty = null; }
  await world?.cleanup();
});

const shellQuote = (a: string) => `'${a.replace(/'/g, "'\\''")}'`;

/** Runs a pmctl command line in a pseudo-terminal; collects what the terminal shows. */
function inTerminal(args: string[], env: Record<string, string> = {}) {
  // exec: otherwise a shell that does not exec its last command (dash, CI's $SHELL) takes the
  // terminal's SIGINT itself and dies of it, whatever pmctl does with it.
  const line = "exec " + pmctlCommand(["-c", world.configPath, ...args]).map(shellQuote).join(" ");
  const proc = Bun.spawn({ cmd: ["script", "-qfec", line, "/dev/null"], cwd: PM_CWD, stdin: "pipe", stdout: "pipe", stderr: "pipe", env: { ...process.env, TERM: "xterm", ...env } });
  let text = "";
  void (async () => { const d = new TextDecoder(); for await (const c of proc.stdout) text += d.decode(c, { stream: true }); })();
  return { proc, output: () => text };
}

/** A daemon of its own with one service, web, running. */
async function worldWithRunningWeb(): Promise<void> {
  world = new World();
  world.writeService("web", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 } });
  await world.daemon();
  await waitUntil(async () => (await world.app("web")).state === "running", "web to run");
}

describe("status --watch in a terminal", () => {
  test("redraws in place and shows a stop on a later frame; Ctrl-C exits 0", async () => {
    await worldWithRunningWeb();
    const t = inTerminal(["status", "--watch", "--interval", "200ms"]);
    tty = t.proc;
    await waitUntil(() => /web\s+\x1b\[32mrunning\x1b\[0m/.test(t.output()), "the watch to show web running, in green");
    expect(t.output()).toContain("\x1b[H"); // cursor home: the next frame overwrites this one

    expect((await world.pmctl(["stop", "web"])).code).toBe(0);
    const seenAt = t.output().length;
    const t0 = performance.now();
    // The issue asked for the stop to show within 2 s (10 frames at 200 ms): printed, not asserted.
    await waitUntil(() => /web\s+\x1b\[2mstopped\x1b\[0m/.test(t.output().slice(seenAt)), "the watch to show web stopped", 15_000);
    console.log(`status --watch --interval 200ms showed the stop ${(performance.now() - t0).toFixed(0)} ms after pmctl stop returned`);

    t.proc.stdin.write("\x03"); // Ctrl-C, through the terminal's line discipline
    t.proc.stdin.flush();
    expect(await t.proc.exited).toBe(0);
    tty = null;
  });
});

describe("colour", () => {
  test("on a terminal by default; not with NO_COLOR, --no-color or a pipe", async () => {
    await worldWithRunningWeb();
    for (const [args, env, coloured] of [[[], {}, true], [[], { NO_COLOR: "1" }, false], [["--no-color"], {}, false]] as const) {
      const t = inTerminal(["status", ...args], env);
      tty = t.proc;
      expect(await t.proc.exited).toBe(0);
      tty = null;
      expect(/\x1b\[\d+m/.test(t.output()), `status ${args.join(" ")} ${JSON.stringify(env)}`).toBe(coloured);
      expect(t.output()).toMatch(/web\s+(\x1b\[32m)?running/);
    }
    const piped = await world.pmctl(["status"]);
    expect(piped.stdout).not.toContain("\x1b[");
  });

  test("renderStatus colours the state cell without breaking column alignment", () => {
    const apps = [app({ name: "a", state: "running" }), app({ name: "bb", state: "failed" })];
    const plain = renderStatus(apps, { nowMs: 0 });
    const coloured = renderStatus(apps, { color: true, nowMs: 0 });
    expect(coloured.replace(/\x1b\[\d+m/g, "")).toBe(plain);
    expect(coloured).toContain("\x1b[31mfailed\x1b[0m");
  });
});

describe("times", () => {
  test("relative times: in the future and the past, coarse", () => {
    expect(relativeTime(4 * 60_000, 0)).toBe("in 4m");
    expect(relativeTime(0, 3 * 3_600_000)).toBe("3h ago");
    expect(relativeTime(0, 90_000)).toBe("1m30s ago");
    expect(relativeTime(500, 0)).toBe("now");
    expect(relativeTime(2 * 86_400_000 + 3_600_000, 0)).toBe("in 2d1h");
  });

  test("a next run is shown in the service's zone, the date only when it is not today there", () => {
    const now = Date.parse("2026-12-06T08:00:00Z");
    expect(localTime("2026-12-06T09:30:00.000Z", now, "Europe/Berlin")).toBe("10:30:00 Europe/Berlin (in 1h30m)");
    expect(localTime("2026-12-06T17:30:00.000Z", now, "Asia/Tokyo")).toBe("2026-12-07 02:30:00 Asia/Tokyo (in 9h30m)");
  });

  test("the table shows a next run in its zone and relative", () => {
    const now = Date.parse("2026-12-06T08:00:00Z");
    const table = renderStatus([app({ name: "job", state: "scheduled", next_run_at: "2026-12-06T08:04:00.000Z", schedule_timezone: "UTC" })], { nowMs: now });
    expect(table).toContain("next run 08:04:00 UTC (in 4m)");
  });
});
