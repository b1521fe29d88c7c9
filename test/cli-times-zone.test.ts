/**
 * The status table's wall-clock times are in the zone pmctl runs in (TZ), not UTC; a scheduled
 * service's next run stays in its own `schedule_timezone` whatever TZ says. The renderer runs in
 * a child process per TZ: Bun does apply a change of process.env.TZ at run time, but
 * src/cli/times.ts caches its local-zone formatter (an Intl.DateTimeFormat) on first use, so
 * one process would render every zone in the first one's.
 */
import { expect, test } from "bun:test";
import { REPO } from "./helpers/harness.ts";

/** The same rows rendered at the same instant by a process in `tz`. */
async function tableIn(tz: string): Promise<string> {
  const script = `
    import { renderStatus } from "./src/cli/render.ts";
    const nowMs = Date.parse("2026-03-10T14:59:00Z"); // 23:59 in Tokyo, the day before there
    const rows = [
      { name: "flappy", state: "backoff", pids: [], restarts: 2, next_attempt_at: "2026-03-10T15:01:00.000Z" },
      { name: "job", state: "scheduled", pids: [], restarts: 0, next_run_at: "2026-03-10T16:00:00.000Z", schedule_timezone: "Europe/Berlin" },
    ];
    process.stdout.write(renderStatus(rows, { nowMs }));
  `;
  const proc = Bun.spawn({ cmd: [process.execPath, "-e", script], cwd: REPO, env: { ...process.env, TZ: tz }, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = [await new Response(proc.stdout).text(), await new Response(proc.stderr).text(), await proc.exited];
  expect(err).toBe("");
  expect(code).toBe(0);
  return out;
}

test("a next attempt is shown in the local zone (TZ), with the date when it is another day there", async () => {
  const tokyo = await tableIn("Asia/Tokyo");
  expect(tokyo).toMatch(/next attempt 2026-03-11 00:01:00 \(in 2m\)/); // UTC+9: past midnight there
  const utc = await tableIn("UTC");
  expect(utc).toMatch(/next attempt 15:01:00 \(in 2m\)/);
  const newYork = await tableIn("America/New_York");
  expect(newYork).toMatch(/next attempt 11:01:00 \(in 2m\)/); // UTC-4 (daylight time from 8 March 2026)
});

test("a next run keeps the service's schedule_timezone in any local zone", async () => {
  for (const tz of ["Asia/Tokyo", "UTC"]) {
    expect(await tableIn(tz)).toMatch(/next run 17:00:00 Europe\/Berlin \(in 1h1m\)/);
  }
});
