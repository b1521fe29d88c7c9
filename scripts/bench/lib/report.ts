/**
 * Turns results.json into the terminal table and BENCHMARKS.md: medians, ratios (how many
 * times better processmaster is than each peer; > 1 means processmaster wins) and the targets
 * of issue 6, each marked met or missed.
 */
type Row = Record<string, unknown>;
export interface Meta {
  date: string; durationSec: number; mode: string;
  machine: { host: string; cpu: string; cores: number; memGiB: number; kernel: string; os: string };
  loadavgStart: number[]; loadavgEnd: number[];
  versions: Record<string, string | null>;
  problems: string[];
  params: Record<string, number>;
}
export interface Results {
  workloads: Record<string, { meta: Meta; data: Record<string, Record<string, Row>> }>;
  last?: Meta;
}

const WHO = ["bare", "processmaster", "supervisord", "pm2"] as const;
type Who = (typeof WHO)[number];
const PEERS = ["supervisord", "pm2"] as const;

interface Metric {
  label: string;
  workload: string;
  key: string;
  field: string;
  unit: string;
  better: "lower" | "higher";
  digits?: number;
  /** `v(who)`: this metric's value; `r`: every result, for goals relative to another row. */
  target?: { text: string; check(v: (who: Who) => number | null, r: Results): boolean | null };
}

const ratio = (pm: number | null, peer: number | null, better: "lower" | "higher") =>
  pm === null || peer === null || pm === 0 || peer === 0 ? null : better === "lower" ? peer / pm : pm / peer;

/** One value from the results: `workload`/`key`/`who`/`field`. */
function at(r: Results, workload: string, key: string, who: Who, field: string): number | null {
  const v = r.workloads[workload]?.data[key]?.[who]?.[field];
  return typeof v === "number" ? v : null;
}
const status20 = (r: Results) => at(r, "cli-latency", "20", "processmaster", "median");
/** pm within `x` times `base`; unknown when either is missing. */
const within = (pm: number | null, base: number | null, x: number) => (pm === null || base === null ? null : pm <= x * base);

// The goals of issue 15 (performance, second round); each is measured against a floor or a
// peer taken in the same run, except the absolute ones the issue names (ms, MiB).
const METRICS: Metric[] = [
  { label: "CLI status, 20 services", workload: "cli-latency", key: "20", field: "median", unit: "ms", better: "lower",
    target: { text: "≤ 1.1× the floor client", check: (v) => within(v("processmaster"), v("bare"), 1.1) } },
  { label: "CLI status, 1000 services", workload: "cli-latency", key: "1000", field: "median", unit: "ms", better: "lower",
    target: { text: "≤ 1.5× status of 20", check: (v, r) => within(v("processmaster"), status20(r), 1.5) } },
  { label: "CLI status, 5000 services", workload: "scale", key: "5000", field: "statusMedian", unit: "ms", better: "lower",
    target: { text: "≤ 3× status of 20", check: (v, r) => within(v("processmaster"), status20(r), 3) } },
  { label: "start all 5000 (daemon boot)", workload: "scale", key: "5000", field: "bootMs", unit: "ms", better: "lower", digits: 0,
    target: { text: "≤ 10 s", check: (v) => all(v("processmaster"), (pm) => pm <= 10_000) } },
  { label: "restart after kill -9, median", workload: "restart-latency", key: "kill-9", field: "median", unit: "ms", better: "lower", digits: 2,
    target: { text: "≤ 1.2× the bare respawn loop", check: (v) => within(v("processmaster"), v("bare"), 1.2) } },
  { label: "restart after kill -9, p95", workload: "restart-latency", key: "kill-9", field: "p95", unit: "ms", better: "lower", digits: 2 },
  { label: "start 100 services", workload: "start-stop", key: "start", field: "median", unit: "ms", better: "lower",
    target: { text: "≤ 150 ms, or ≥ 5× faster than supervisord", check: (v) => all(v("processmaster"), (pm) => pm <= 150 || (v("supervisord") !== null && v("supervisord")! / pm >= 5)) } },
  { label: "stop 100 services", workload: "start-stop", key: "stop", field: "median", unit: "ms", better: "lower",
    target: { text: "no slower than supervisord", check: (v) => all(v("processmaster"), (pm) => v("supervisord") === null ? null : pm <= v("supervisord")!) } },
  { label: "idle, 200 services: wake-ups", workload: "idle", key: "200", field: "wakeupsPerSec", unit: "/s", better: "lower", digits: 3,
    // The rate is stored rounded to 3 digits: one switch in the 60 s window (1/60.01 s) reads 0.017.
    target: { text: "one a minute: the rotation tick (≤ 0.017/s)", check: (v) => all(v("processmaster"), (pm) => pm <= 0.017) } },
  { label: "idle, 200 services: daemon CPU", workload: "idle", key: "200", field: "cpuMs", unit: "ms", better: "lower", digits: 0 },
  { label: "daemon RSS, 20 services", workload: "memory", key: "20", field: "rssMiB", unit: "MiB", better: "lower", digits: 1 },
  { label: "daemon RSS, 200 services", workload: "memory", key: "200", field: "rssMiB", unit: "MiB", better: "lower", digits: 1 },
  { label: "daemon RSS, 1000 services", workload: "memory", key: "1000", field: "rssMiB", unit: "MiB", better: "lower", digits: 1,
    target: { text: "≤ 60 MiB", check: (v) => all(v("processmaster"), (pm) => pm <= 60) } },
  { label: "daemon RSS, 5000 services", workload: "scale", key: "5000", field: "rssMiB", unit: "MiB", better: "lower", digits: 1,
    target: { text: "≤ 120 MiB", check: (v) => all(v("processmaster"), (pm) => pm <= 120) } },
  ...(["20", "200", "1000"] as const).map((n): Metric => ({
    label: `daemon private memory (anon), ${n}`, workload: "memory", key: n, field: "anonMiB", unit: "MiB", better: "lower", digits: 1,
    target: { text: "below supervisord", check: (v) => all(v("processmaster"), (pm) => v("supervisord") === null ? null : pm < v("supervisord")!) },
  })),
  { label: "log throughput, 1 M lines", workload: "log-throughput", key: "1000000", field: "linesPerSec", unit: "lines/s", better: "higher", digits: 0,
    target: { text: "raw file-write speed (≥ 90 % of bare)", check: (v) => all(v("processmaster"), (pm) => v("bare") === null ? null : pm >= 0.9 * v("bare")!) } },
  { label: "daemon CPU during 1 M lines", workload: "log-throughput", key: "1000000", field: "daemonCpuMs", unit: "ms", better: "lower", digits: 0,
    target: { text: "none (≤ 20 ms: two clock ticks)", check: (v) => all(v("processmaster"), (pm) => pm <= 20) } },
];

function all(pm: number | null, f: (pm: number) => boolean | null): boolean | null {
  return pm === null ? null : f(pm);
}

function valueOf(r: Results, m: Metric, who: Who): number | null {
  const row = r.workloads[m.workload]?.data[m.key]?.[who];
  const v = row?.[m.field];
  return typeof v === "number" ? v : null;
}

function fmt(v: number | null, digits = 1): string {
  if (v === null) return "–";
  if (Math.abs(v) >= 10_000) return Math.round(v).toLocaleString("en-US");
  return v.toFixed(digits);
}

function fmtRatio(x: number | null): string {
  if (x === null) return "–";
  return `${x >= 10 ? x.toFixed(0) : x.toFixed(x >= 1 ? 1 : 2)}×`;
}

interface Line { label: string; unit: string; values: Record<Who, string>; vsSup: string; vsPm2: string; target: string; met: string }

function lines(r: Results): Line[] {
  const out: Line[] = [];
  for (const m of METRICS) {
    if (!r.workloads[m.workload]) continue;
    const v = (who: Who) => valueOf(r, m, who);
    const values = Object.fromEntries(WHO.map((w) => [w, fmt(v(w), m.digits ?? 1)])) as Record<Who, string>;
    const met = m.target ? m.target.check(v, r) : null;
    out.push({
      label: m.label, unit: m.unit, values,
      vsSup: fmtRatio(ratio(v("processmaster"), v("supervisord"), m.better)),
      vsPm2: fmtRatio(ratio(v("processmaster"), v("pm2"), m.better)),
      target: m.target?.text ?? "",
      met: m.target ? (met === null ? "?" : met ? "met" : "MISSED") : "",
    });
  }
  return out;
}

export function renderTerminal(r: Results): string {
  const rows = [["metric", "unit", ...WHO, "vs supervisord", "vs pm2", "target"]];
  for (const l of lines(r)) rows.push([l.label, l.unit, ...WHO.map((w) => l.values[w]), l.vsSup, l.vsPm2, l.met]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const text = rows.map((row) => row.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ")).join("\n");
  return `\n${text}\n(vs X: how many times better processmaster is than X; > 1× = processmaster wins)\n`;
}

function mdTable(head: string[], body: string[][]): string {
  return [`| ${head.join(" | ")} |`, `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`, ...body.map((b) => `| ${b.join(" | ")} |`)].join("\n");
}

function details(r: Results): string {
  const parts: string[] = [];
  for (const [w, { meta, data }] of Object.entries(r.workloads)) {
    parts.push(`### ${w}\n\nTaken ${meta.date.slice(0, 16).replace("T", " ")} UTC, ${meta.mode} mode, load average ${meta.loadavgStart.join(" ")} at the start of that run.\n`);
    for (const [key, byWho] of Object.entries(data)) {
      const fields = [...new Set(Object.values(byWho).flatMap((row) => Object.keys(row)))].filter((f) => f !== "busyThreads");
      const body = Object.entries(byWho).map(([who, row]) => [who, ...fields.map((f) => {
        const v = row[f];
        return v === null || v === undefined ? "–" : typeof v === "number" ? fmt(v, Number.isInteger(v) ? 0 : 2) : String(v).replace(/\|/g, "\\|");
      })]);
      parts.push(`**${key}**\n\n${mdTable(["", ...fields], body)}\n`);
      const busy = Object.entries(byWho).filter(([, row]) => Array.isArray(row.busyThreads) && (row.busyThreads as unknown[]).length);
      if (busy.length) {
        parts.push("Threads that woke up (context switches in the window):\n");
        for (const [who, row] of busy) {
          parts.push(`- ${who}: ${(row.busyThreads as { name: string; switches: number }[]).map((t) => `${t.name} ${t.switches}`).join(", ")}`);
        }
        parts.push("");
      }
    }
  }
  return parts.join("\n");
}

export function renderMarkdown(r: Results, notes: string): string {
  const m = r.last!;
  const ls = lines(r);
  const v = m.versions;
  const busy = Math.max(...m.loadavgStart, ...m.loadavgEnd) > 0.3 * m.machine.cores;
  const table = mdTable(
    ["metric", "floor", "processmaster", "supervisord", "PM2", "vs supervisord", "vs PM2", "goal (issue 15)", ""],
    ls.map((l) => [`${l.label} (${l.unit})`, l.values.bare, `**${l.values.processmaster}**`, l.values.supervisord, l.values.pm2, l.vsSup, l.vsPm2, l.target, l.met]),
  );
  return `# Benchmarks: processmaster vs supervisord vs PM2

<!-- Generated by scripts/bench/run from scripts/bench/results.json; do not edit by hand.
     The prose at the end comes from scripts/bench/NOTES.md. -->

Regenerate with \`scripts/bench/run\` (everything, about ${Math.max(1, Math.round(m.durationSec / 60))} min here) or one workload alone, e.g. \`scripts/bench/run cli-latency\`; \`--quick\` for a smoke run.

- **Date:** ${m.date.slice(0, 16).replace("T", " ")} UTC (${m.mode} run, ${m.durationSec} s)
- **Machine:** ${m.machine.cpu}, ${m.machine.cores} cores, ${m.machine.memGiB} GiB; ${m.machine.os}; Linux ${m.machine.kernel}
- **Versions:** processmaster ${v.processmaster} (Bun ${v.bun}); ${v.supervisord ? `supervisord ${v.supervisord} (${v.python})` : "supervisord not run"}; ${v.pm2 ? `PM2 ${v.pm2} (Node ${v.node})` : "PM2 not run"}
- **Load average** at start ${m.loadavgStart.join(" ")}, at end ${m.loadavgEnd.join(" ")}${busy ? ": **a shared, busy machine** (other work ran during the benchmark); timings are noisy, ratios more trustworthy than absolute numbers" : ""}
${m.problems.length ? `- **Problems:** ${m.problems.join("; ")}\n` : ""}
## Summary

Medians. *floor* is the same work with no supervisor, measured in the same run: for \`status\` a minimal compiled Bun client (built like dist/processmaster) that sends the same request to the same daemon and prints the answer's line; for a restart a Bun loop that respawns on exit; for booting 5000 services a loop that makes the cgroups, opens the logs and spawns the same commands; for logs perl writing straight into the file. *vs X* is how many times better processmaster is than X (> 1× means processmaster wins). The last column says whether processmaster meets the goal of issue 15; *What limits processmaster* below says why where it does not.

${table}

## Details

${details(r)}
${notes}`;
}
