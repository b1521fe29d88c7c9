/** Times for people: wall-clock in the local zone (or a service's zone), and relative ("in 4m"). */

/** "in 4m", "3h ago", "now": the coarsest two units, as a glance needs. */
export function relativeTime(atMs: number, nowMs: number): string {
  const diff = atMs - nowMs;
  const abs = Math.abs(diff);
  if (abs < 1000) return "now";
  const s = Math.floor(abs / 1000);
  const text = s < 60 ? `${s}s`
    : s < 3600 ? `${Math.floor(s / 60)}m${s % 60 && s < 600 ? `${s % 60}s` : ""}`
    : s < 86_400 ? `${Math.floor(s / 3600)}h${Math.floor(s / 60) % 60 ? `${Math.floor(s / 60) % 60}m` : ""}`
    : `${Math.floor(s / 86_400)}d${Math.floor(s / 3600) % 24 ? `${Math.floor(s / 3600) % 24}h` : ""}`;
  return diff > 0 ? `in ${text}` : `${text} ago`;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(timeZone: string | undefined): Intl.DateTimeFormat {
  const key = timeZone ?? "";
  let f = formatters.get(key);
  if (!f) {
    // sv-SE writes ISO-like "2026-12-06 10:04:00"; the zone comes from the process (TZ) or the service.
    f = new Intl.DateTimeFormat("sv-SE", { timeZone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
    formatters.set(key, f);
  }
  return f;
}

/**
 * `iso` as wall-clock time in `timeZone` (default: local), without the date when it is today
 * there, with the zone's name when one was given, and how far from now: "10:00:00 Europe/Berlin (in 4m)".
 */
export function localTime(iso: string, nowMs: number, timeZone?: string | null): string {
  const at = Date.parse(iso);
  let text: string;
  try {
    const f = formatter(timeZone ?? undefined);
    const [day, time] = f.format(at).split(" ");
    const [today] = f.format(nowMs).split(" ");
    text = `${day === today ? time : `${day} ${time}`}${timeZone ? ` ${timeZone}` : ""}`;
  } catch {
    text = iso; // an unknown zone (config changed under us): the UTC time is still right
  }
  return `${text} (${relativeTime(at, nowMs)})`;
}
