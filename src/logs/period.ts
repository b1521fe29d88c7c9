/**
 * Time periods for time-based rotation, in local time. Pure: no I/O.
 *
 * A period is named by the text its archive carries after the log's own name:
 *
 * | frequency  | period key          | archive of `stdout.log`        |
 * |------------|---------------------|--------------------------------|
 * | `minutely` | `2026-11-26T14-05`  | `stdout.log.2026-11-26T14-05`  |
 * | `hourly`   | `2026-11-26T14`     | `stdout.log.2026-11-26T14`     |
 * | `daily`    | `2026-11-26`        | `stdout.log.2026-11-26`        |
 * | `weekly`   | `2026-W48` (ISO)    | `stdout.log.2026-W48`          |
 * | `monthly`  | `2026-11`           | `stdout.log.2026-11`           |
 *
 * Weeks are ISO 8601 weeks: they start on Monday 00:00 and belong to the year of their
 * Thursday (so 2026-12-31 is in `2026-W53`, 2027-01-01 too). Keys sort in time order within
 * one frequency.
 */
import type { RotationFrequency } from "../config/types.ts";

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** The ISO week-year and week number (1..53) of a local calendar date. */
export function isoWeek(year: number, month0: number, day: number): { year: number; week: number } {
  // Work on a UTC date built from the local calendar fields: no DST surprises.
  const date = new Date(Date.UTC(year, month0, day));
  const dow = (date.getUTCDay() + 6) % 7; // Monday 0 .. Sunday 6
  date.setUTCDate(date.getUTCDate() - dow + 3); // the Thursday of this week
  const wy = date.getUTCFullYear();
  const jan1 = Date.UTC(wy, 0, 1);
  const week = Math.floor((date.getTime() - jan1) / 86_400_000 / 7) + 1;
  return { year: wy, week };
}

/**
 * The key of the period that `wallMs` (milliseconds since the epoch) falls in, in local time;
 * null for frequency `none`.
 */
export function periodKey(frequency: RotationFrequency, wallMs: number): string | null {
  const d = new Date(wallMs);
  const y = d.getFullYear();
  const mo = d.getMonth();
  const day = d.getDate();
  switch (frequency) {
    case "minutely": return `${y}-${pad(mo + 1)}-${pad(day)}T${pad(d.getHours())}-${pad(d.getMinutes())}`;
    case "hourly": return `${y}-${pad(mo + 1)}-${pad(day)}T${pad(d.getHours())}`;
    case "daily": return `${y}-${pad(mo + 1)}-${pad(day)}`;
    case "weekly": {
      const w = isoWeek(y, mo, day);
      return `${w.year}-W${pad(w.week)}`;
    }
    case "monthly": return `${y}-${pad(mo + 1)}`;
    case "none": return null;
  }
}

/**
 * The wall time (ms) at which the period that `wallMs` falls in ends, i.e. the first instant of
 * the next one, in local time; null for `none`. The rotator looks at a time-mode file again only
 * then (issue 15: an idle daemon does no work per file between boundaries). The Date
 * constructor normalizes local fields, so a day that starts at 01:00 (DST) starts there, and a
 * repeated hour is named by its first occurrence (its key repeats, so nothing rotates twice).
 */
export function periodEnd(frequency: RotationFrequency, wallMs: number): number | null {
  const d = new Date(wallMs);
  const y = d.getFullYear();
  const mo = d.getMonth();
  const day = d.getDate();
  let end: number;
  switch (frequency) {
    case "minutely": end = new Date(y, mo, day, d.getHours(), d.getMinutes() + 1).getTime(); break;
    case "hourly": end = new Date(y, mo, day, d.getHours() + 1).getTime(); break;
    case "daily": end = new Date(y, mo, day + 1).getTime(); break;
    case "weekly": end = new Date(y, mo, day + 7 - ((d.getDay() + 6) % 7)).getTime(); break;
    case "monthly": end = new Date(y, mo + 1, 1).getTime(); break;
    case "none": return null;
  }
  // Never in the past (a time zone whose rules the fields cannot express): look again in a minute.
  return end > wallMs ? end : wallMs + 60_000;
}

/** Matches any period key of any frequency (so retention still finds archives after a change of frequency). */
export const PERIOD_KEY_RE = /^(?:\d{4}-\d{2}-\d{2}(?:T\d{2}(?:-\d{2})?)?|\d{4}-W\d{2}|\d{4}-\d{2})$/;

/** True when `name` is `<base>.<period key>`: a time-rotation archive of the log named `base`. */
export function isTimeArchiveName(base: string, name: string): boolean {
  if (!name.startsWith(base + ".")) return false;
  return PERIOD_KEY_RE.test(name.slice(base.length + 1));
}

/**
 * The size-rotation backup number of `name` for the log named `base` (`stdout.log.3` → 3),
 * or null when `name` is not one.
 */
export function backupNumber(base: string, name: string): number | null {
  if (!name.startsWith(base + ".")) return null;
  const rest = name.slice(base.length + 1);
  if (!/^[1-9]\d{0,5}$/.test(rest)) return null;
  return Number(rest);
}

/**
 * Milliseconds from `wallMs` to the next whole minute of the wall clock, in (0, 60000]: the
 * daemon arms its one rotation timer with it so that ticks land just after each minute turns
 * (and so just after every hourly/daily/... boundary). Exactly on a minute, the answer is a
 * full minute.
 */
export function msUntilNextMinute(wallMs: number): number {
  const into = ((wallMs % 60_000) + 60_000) % 60_000;
  return 60_000 - into;
}
