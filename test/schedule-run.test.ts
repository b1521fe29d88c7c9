/**
 * Cron schedules with real processes: runs on time, never overlaps itself, is not started at
 * daemon start, rests in `scheduled`, `pmctl start` runs it now, the restart policy does not
 * re-run it. And the config errors around schedules and restart policies.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CronSchedule } from "../src/schedule/cron.ts";
import { pmCommand, runPm, waitUntil, World } from "./helpers/harness.ts";

let world: World;
afterEach(async () => { await world?.cleanup(); });

function lines(path: string): string[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8").split("\n").filter(Boolean);
}

const nsToMs = (ns: string) => Number(BigInt(ns) / 1_000_000n);
const EVERY_SECOND = "* * * * * *";
const YEARLY = "0 0 1 1 *";

async function waitForState(name: string, state: string, timeoutMs = 10_000) {
  return waitUntil(async () => { const a = await world.app(name); return a.state === state && a; }, `${name} to be ${state}`, timeoutMs);
}

describe("schedules", () => {
  test("a 6-field every-second schedule runs a short job at most once in each second, planned on the second", async () => {
    world = new World();
    world.writeService("tick", { process: { command: ["sh", "-c", "date +%s%N >> runs"], schedule: EVERY_SECOND } });
    const d = await world.daemon();
    const runsFile = join(world.appDir("tick"), "runs");
    await waitUntil(() => lines(runsFile).length >= 4, "4 runs of the schedule", 30_000, 50);
    // Planned by the cron match, on a whole second (not a free-running interval from some start).
    const tick = await waitForState("tick", "scheduled", 30_000);
    expect(Date.parse(tick.next_run_at!) % 1000, tick.next_run_at!).toBe(0);
    const starts = lines(runsFile).map(nsToMs);
    const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
    console.log(`every-second schedule: runs started ${starts.map((t) => t % 1000).join(" ")} ms into their seconds; gaps ${gaps.join(" ")} ms`);
    // Once a second at most: each run in a later wall second than the one before.
    const seconds = starts.map((t) => Math.floor(t / 1000));
    for (let i = 1; i < seconds.length; i++) expect(seconds[i]!, `run seconds ${seconds}`).toBeGreaterThan(seconds[i - 1]!);
    const a = await world.app("tick");
    expect(a.restarts).toBe(0);
    expect(a.exit_code).toBe(0);
    expect(d.output()).not.toContain("skipped");
  });

  test("a long job on an every-second schedule never overlaps itself; skipped ticks are logged", async () => {
    world = new World();
    world.writeService("long", {
      process: { command: ["sh", "-c", "echo start $(date +%s%N) >> runs; sleep 1.5; echo end $(date +%s%N) >> runs"], schedule: EVERY_SECOND, stop_grace_ms: 1000 },
    });
    const d = await world.daemon();
    const runsFile = join(world.appDir("long"), "runs");
    await waitUntil(() => lines(runsFile).filter((l) => l.startsWith("end")).length >= 2, "two complete runs", 15_000, 50);
    const events = lines(runsFile).map((l) => { const [kind, ns] = l.split(" "); return { kind: kind!, ms: nsToMs(ns!) }; });
    // start, end, start, end, … each start after the previous end.
    events.forEach((e, i) => expect(e.kind).toBe(i % 2 === 0 ? "start" : "end"));
    for (let i = 2; i < events.length; i += 2) expect(events[i]!.ms).toBeGreaterThanOrEqual(events[i - 1]!.ms);
    await d.waitForLog(/\[long\] schedule fired while the previous run is still going; skipped/);
  });

  test("a scheduled service is not started at daemon start; it rests in 'scheduled' and status shows the next run", async () => {
    world = new World();
    world.writeService("nightly", { process: { command: ["sh", "-c", "date +%s%N >> runs"], schedule: YEARLY } });
    world.writeService("tick", { process: { command: ["sh", "-c", "date +%s%N >> runs"], schedule: EVERY_SECOND } });
    await world.daemon(); // boot (and any start it would do) happens before the daemon serves
    const nightly = await world.app("nightly");
    expect(nightly).toMatchObject({ state: "scheduled", pids: [], last_exit: null, restarts: 0 });
    expect(existsSync(join(world.appDir("nightly"), "runs"))).toBe(false);
    const expected = new CronSchedule(YEARLY).nextAfter(Date.now())!;
    expect(nightly.next_run_at).toBe(new Date(expected).toISOString());
    const table = await world.pmctl(["status", "nightly"]);
    // The table gives the next run in local time with how far ahead it is (times.ts); JSON keeps the ISO time.
    expect(table.stdout).toMatch(/\nnightly\s+scheduled\s+-\s+-\s+0\s+-\s.*next run [0-9-]+ [0-9:]+ \(in \d+d/);

    // Between runs of an every-second job the state is `scheduled` again, with the next second planned.
    const tickRuns = join(world.appDir("tick"), "runs");
    await waitUntil(() => lines(tickRuns).length >= 1, "tick's first run");
    const lastRunBefore = nsToMs(lines(tickRuns).at(-1)!);
    const tick = await waitForState("tick", "scheduled");
    expect(tick.exit_code).toBe(0);
    expect(Date.parse(tick.next_run_at!) % 1000).toBe(0);
    expect(Date.parse(tick.next_run_at!)).toBeGreaterThan(lastRunBefore); // the next second, not a past one
  });

  test("pmctl start runs a scheduled service now; afterwards it is scheduled again", async () => {
    world = new World();
    world.writeService("nightly", { process: { command: ["sh", "-c", "date +%s%N >> runs; sleep 0.3"], schedule: YEARLY } });
    const d = await world.daemon();
    const res = await world.pmctl(["start", "nightly"]);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/nightly: running \(pid [\d,]+\)/);
    const after = await waitForState("nightly", "scheduled");
    expect(lines(join(world.appDir("nightly"), "runs"))).toHaveLength(1); // read once the run is over: the job writes it
    expect(after).toMatchObject({ exit_code: 0, restarts: 0, pids: [] });
    expect(after.next_run_at).toBe(new Date(new CronSchedule(YEARLY).nextAfter(Date.now())!).toISOString());
    expect(d.output()).toContain("[nightly] exited with code 0; scheduled job; next run by schedule");

    // Stopped by the operator, ticks are ignored: no next run is shown.
    expect((await world.pmctl(["stop", "nightly"])).code).toBe(0);
    expect(await world.app("nightly")).toMatchObject({ state: "stopped", operator_stopped: true, next_run_at: null });
  });

  test("the restart policy does not re-run a scheduled job that failed", async () => {
    world = new World();
    world.writeService("job", {
      process: { command: ["sh", "-c", "date +%s%N >> runs; exit 4"], schedule: YEARLY },
      restart_policy: { policy: "on-failure", restart_backoff_ms: 0 },
    });
    const d = await world.daemon();
    await world.pmctl(["start", "job"]);
    await d.waitForLog(/\[job\] exited with code 4; scheduled job; next run by schedule/);
    const a = await world.app("job");
    expect(a).toMatchObject({ state: "scheduled", exit_code: 4, restarts: 0 });
    expect(lines(join(world.appDir("job"), "runs"))).toHaveLength(1);
  });
});

describe("config errors for schedules and restart policies", () => {
  test("processmaster check names each problem; the daemon skips those files and runs the rest", async () => {
    world = new World();
    const bad: Record<string, string> = {
      "always-scheduled.yaml": `process:\n  command: ["true"]\n  schedule: "* * * * *"\nrestart_policy:\n  policy: always\n`,
      "zero-restarts.yaml": `process:\n  command: ["true"]\nrestart_policy:\n  policy: always\n  tolerance:\n    max_restarts: 0\n`,
      "bad-cron.yaml": `process:\n  command: ["true"]\n  schedule: "61 * * * *"\n`,
      "seven-fields.yaml": `process:\n  command: ["true"]\n  schedule: "0 0 0 1 1 * 2030"\n`,
      "bad-tz.yaml": `process:\n  command: ["true"]\n  schedule: "0 3 * * *"\n  schedule_timezone: Mars/Olympus_Mons\n`,
      "negative-backoff.yaml": `process:\n  command: ["true"]\nrestart_policy:\n  restart_backoff_ms: -5\n`,
      "negative-window.yaml": `process:\n  command: ["true"]\nrestart_policy:\n  tolerance:\n    duration: -1m\n`,
      "max-below-base.yaml": `process:\n  command: ["true"]\nrestart_policy:\n  restart_backoff_ms: 1000\n  restart_backoff_max_ms: 10\n`,
    };
    for (const [file, text] of Object.entries(bad)) world.writeRawService(file, text);
    world.writeService("fine", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 }, restart_policy: { policy: "always" } });

    const { stderr, code } = await runPm(pmCommand(["check", "-c", world.configPath]));
    expect(code).toBe(1);
    const expectLine = (file: string, re: RegExp) => {
      const line = stderr.split("\n").find((l) => l.includes(`/${file}:`));
      expect(line, `no problem reported for ${file}:\n${stderr}`).toBeDefined();
      expect(line!).toMatch(re);
    };
    expectLine("always-scheduled.yaml", /:5: restart_policy\.policy: policy: always cannot be combined with process\.schedule/);
    expectLine("zero-restarts.yaml", /:6: .*max_restarts must be at least 1/);
    expectLine("bad-cron.yaml", /:3: process\.schedule: invalid cron schedule '61 \* \* \* \*'/);
    expectLine("seven-fields.yaml", /:3: process\.schedule: invalid cron schedule .*7 parts/);
    expectLine("bad-tz.yaml", /:4: process\.schedule_timezone: unknown timezone 'Mars\/Olympus_Mons'/);
    expectLine("negative-backoff.yaml", /:4: restart_policy\.restart_backoff_ms: .*negative value '-5'/);
    expectLine("negative-window.yaml", /:5: restart_policy\.tolerance\.duration: .*negative value '-1m'/);
    expectLine("max-below-base.yaml", /:5: restart_policy\.restart_backoff_max_ms: must be at least restart_backoff_ms/);

    const d = await world.daemon();
    expect((await world.app("fine")).state).toBe("running");
    expect((await world.status()).map((a) => a.name)).toEqual(["fine"]);
    await d.waitForLog(/service file skipped: .*seven-fields\.yaml/);
  });
});
