/**
 * Idle probe: where an idle processmaster's wake-ups come from, thread by thread and second by
 * second, for one or more daemon variants side by side (the same window, so load on this shared
 * machine hits them alike). Shorter than `scripts/bench/run idle` and says more.
 *
 *   bun scripts/bench/idle-probe.ts [--services 200] [--settle 60] [--window 180] \
 *       [--churn 0] [--variant name[:binary][:ENV=V,ENV=V]]…
 *
 * Every second it reads /proc/PID/task/{tid}/status of each daemon; at the end it prints, per
 * variant, each thread's context switches in the window (voluntary + involuntary, as the bench
 * counts them), the seconds of the minute in which they happened, and VmRSS/RssAnon before and
 * after. A thread that starts and ends between two samples is not seen (threadsEnded says how
 * many ended in the window). The env of a variant reaches its daemon (and its services).
 * `--churn N` makes each daemon answer N `pmctl status` right before the window (allocation
 * that is then freed): RssAnon at the window's start and end says whether freed memory goes
 * back to the OS while the daemon idles.
 * The services' PIDs are not counted: only the daemon's threads.
 */
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { findCgroup2Mount } from "../../src/cgroup/mount.ts";
import { ProcessmasterDriver } from "./lib/drivers.ts";
import { Fleet } from "./lib/fleet.ts";
import { sampleProc, sleep, waitUntil, type ProcSample } from "./lib/util.ts";

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const services = opt("services", 200);
const settleS = opt("settle", 60);
const windowS = opt("window", 180);
const churn = opt("churn", 0);
const defaultBin = resolve(import.meta.dir, "../../dist/processmaster");

interface Variant { name: string; bin: string; env: Record<string, string> }
const variants: Variant[] = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] !== "--variant") continue;
  const [name, ...rest] = args[++i]!.split(":");
  let bin = defaultBin;
  const env: Record<string, string> = {};
  for (const part of rest) {
    if (part.includes("=")) for (const kv of part.split(",")) { const [k, v] = kv.split("="); env[k!] = v ?? ""; }
    else if (part) bin = resolve(part);
  }
  variants.push({ name: name!, bin, env });
}
if (variants.length === 0) variants.push({ name: "default", bin: defaultBin, env: {} });

const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
const dir = mkdtempSync(join(tmpdir(), "pmidle-"));
const cgroupRoot = findCgroup2Mount();
const up: { v: Variant; d: ProcessmasterDriver; fleet: Fleet }[] = [];

async function main() {
  for (const v of variants) {
    const fleet = new Fleet(join(dir, v.name), services, "sleep");
    // Bun.spawn does not see later changes to process.env: the variant's env goes in through a
    // wrapper that execs the binary (same PID).
    let bin = v.bin;
    if (Object.keys(v.env).length > 0) {
      bin = join(dir, `${v.name}.sh`);
      const exports = Object.entries(v.env).map(([k, val]) => `export ${k}='${val}'`).join("\n");
      writeFileSync(bin, `#!/bin/sh\n${exports}\nexec '${v.bin}' "$@"\n`);
      chmodSync(bin, 0o755);
      try { symlinkSync(defaultBin, join(dir, "pmctl")); } catch { /* made for an earlier variant */ }
    }
    const d = new ProcessmasterDriver(bin, "probe", cgroupRoot);
    await d.up(fleet, { autostart: true });
    up.push({ v, d, fleet });
    await waitUntil(() => fleet.runningCount() === fleet.n, `${v.name}: ${services} running`, 120_000, 100);
    log(`${v.name}: pid ${d.daemonPid()}, ${services} services running`);
  }
  log(`settling ${settleS} s, then a ${windowS} s window`);
  await sleep(settleS * 1000);
  for (const { v, d } of up) {
    if (churn === 0) break;
    const before = sampleProc(d.daemonPid())!.rssAnonKb;
    for (let i = 0; i < churn; i++) {
      const r = await d.cli(["status", "--json"]);
      if (r.code !== 0) throw new Error(`${v.name}: status failed: ${r.stderr}`);
    }
    log(`${v.name}: ${churn} × status: RssAnon ${before} → ${sampleProc(d.daemonPid())!.rssAnonKb} kB`);
  }
  const first = up.map(({ d }) => sampleProc(d.daemonPid())!);
  let prev = first;
  // per variant: thread name → second-of-minute → switches
  const bySecond = up.map(() => new Map<string, Map<number, number>>());
  const t0 = Date.now();
  while (Date.now() - t0 < windowS * 1000) {
    await sleep(1000 - (Date.now() % 1000) + 300); // sample at .3 of each second
    const cur = up.map(({ d }) => sampleProc(d.daemonPid())!);
    const sec = new Date().getSeconds();
    cur.forEach((b, i) => {
      const a = prev[i]!;
      for (const [tid, t] of Object.entries(b.threads)) {
        const before = a.threads[tid];
        const n = t.voluntary + t.nonvoluntary - (before ? before.voluntary + before.nonvoluntary : 0);
        if (n <= 0) continue;
        const key = `${t.name}${before ? "" : " (new)"}`;
        const m = bySecond[i]!.get(key) ?? new Map<number, number>();
        m.set(sec, (m.get(sec) ?? 0) + n);
        bySecond[i]!.set(key, m);
      }
    });
    prev = cur;
  }
  up.forEach(({ v }, i) => report(v, first[i]!, prev[i]!, bySecond[i]!));
}

function report(v: Variant, a: ProcSample, b: ProcSample, by: Map<string, Map<number, number>>) {
  const secs = (b.at - a.at) / 1000;
  // Per-thread deltas of each second (a thread that ended drops out of the sums, not negative).
  const total = [...by.values()].reduce((s, m) => s + sum(m), 0);
  const ended = Object.keys(a.threads).filter((t) => !b.threads[t]).length;
  const started = Object.keys(b.threads).filter((t) => !a.threads[t]).length;
  console.log(`\n== ${v.name} ${JSON.stringify(v.env)}: ${total} switches in ${secs.toFixed(0)} s = ${(total / secs).toFixed(3)}/s, ${(total / secs * 60).toFixed(1)}/min (live threads; ${started} started, ${ended} ended), CPU ${(b.cpuMs - a.cpuMs).toFixed(0)} ms`);
  console.log(`   VmRSS ${a.rssKb} → ${b.rssKb} kB, RssAnon ${a.rssAnonKb} → ${b.rssAnonKb} kB, threads ${Object.keys(b.threads).length}`);
  for (const [name, m] of [...by].sort((x, y) => sum(y[1]) - sum(x[1]))) {
    const at = [...m].sort((x, y) => x[0] - y[0]).map(([s, n]) => `:${String(s).padStart(2, "0")}×${n}`).join(" ");
    console.log(`   ${name.padEnd(20)} ${String(sum(m)).padStart(4)}  ${at}`);
  }
}
const sum = (m: Map<number, number>) => [...m.values()].reduce((s, n) => s + n, 0);

try { await main(); } finally {
  for (const { d } of up) await d.down().catch((e) => log(`cleanup: ${e}`));
  rmSync(dir, { recursive: true, force: true });
}
