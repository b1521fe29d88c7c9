/**
 * A fleet: N services that every supervisor runs the same way, in a temp dir of its own.
 * Each service writes its PID into pids/NAME when it starts (`sh -c 'echo $$ > f; exec sleep …'`,
 * so the PID is the sleep's), which lets the harness see "running" from outside, identically for
 * every supervisor, without asking any of them. The sleep length is unique to the run, so cleanup
 * kills only processes whose command line carries it.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pidAlive, readText } from "./util.ts";

export type FleetKind = "sleep" | "log";

/** The log writer: one write(2) per line (autoflush), start/end wall times to marker files. */
export const LOG_WRITER = String.raw`
use strict; use Time::HiRes qw(time);
my ($pidf, $startf, $endf, $n, $tag) = @ARGV;
open(my $p, '>', $pidf) or die; print $p "$$\n"; close $p;
open(my $m, '>', $startf) or die; print $m sprintf("%.6f\n", time()); close $m;
$| = 1;
my $pad = "x" x 60;
for my $i (1 .. $n) { print "$i $pad\n"; }
open(my $e, '>', $endf) or die; print $e sprintf("%.6f\n", time()); close $e;
sleep(1e6); # stay up so no supervisor restarts it; $tag marks it for cleanup
`;

export function logBytes(n: number): number {
  let total = 0;
  for (let digits = 1, lo = 1; lo <= n; digits++, lo *= 10) {
    const hi = Math.min(n, lo * 10 - 1);
    total += (hi - lo + 1) * (digits + 1 + 60 + 1);
  }
  return total;
}

export class Fleet {
  readonly names: string[];
  readonly pidDir: string;
  readonly logDir: string;
  readonly markDir: string;
  /** Unique per run, in every service's argv: what cleanup looks for before it kills. */
  readonly tag: string;

  constructor(readonly dir: string, readonly n: number, readonly kind: FleetKind, readonly logLines = 1_000_000) {
    this.names = kind === "log" ? ["logger"] : Array.from({ length: n }, (_, i) => `s${String(i + 1).padStart(4, "0")}`);
    this.pidDir = join(dir, "pids");
    this.logDir = join(dir, "logs");
    this.markDir = join(dir, "marks");
    for (const d of [this.pidDir, this.logDir, this.markDir]) mkdirSync(d, { recursive: true });
    this.tag = String(900_000 + Math.floor(Math.random() * 90_000) + (process.pid % 10_000) / 10_000);
    if (kind === "log") writeFileSync(this.writerScript, LOG_WRITER);
  }

  /** The log writer as a file: a multi-line `perl -e` does not survive supervisord's INI format. */
  get writerScript() { return join(this.dir, "writer.pl"); }

  pidFile(name: string) { return join(this.pidDir, name); }
  stdoutLog(name: string) { return join(this.logDir, `${name}.out`); }
  stderrLog(name: string) { return join(this.logDir, `${name}.err`); }
  startMark(name: string) { return join(this.markDir, `${name}.start`); }
  endMark(name: string) { return join(this.markDir, `${name}.end`); }

  argv(name: string): string[] {
    if (this.kind === "log") {
      return ["/usr/bin/perl", this.writerScript, this.pidFile(name), this.startMark(name), this.endMark(name), String(this.logLines), this.tag];
    }
    return ["/bin/sh", "-c", `echo $$ > ${this.pidFile(name)}; exec sleep ${this.tag}`];
  }

  /** The same command as one shell-quoted string (supervisord's `command=`). */
  commandLine(name: string): string {
    return this.argv(name).map(shellQuote).join(" ");
  }

  readPid(name: string): number | null {
    const t = readText(this.pidFile(name));
    const pid = t ? Number(t.trim()) : NaN;
    return pid > 0 ? pid : null;
  }

  /** How many services have a live process right now. */
  runningCount(): number {
    let n = 0;
    for (const name of this.names) { const pid = this.readPid(name); if (pid && pidAlive(pid)) n++; }
    return n;
  }

  livePids(): number[] {
    const pids: number[] = [];
    for (const name of this.names) { const pid = this.readPid(name); if (pid && pidAlive(pid)) pids.push(pid); }
    return pids;
  }

  clearPidFiles() {
    for (const f of readdirSync(this.pidDir)) rmSync(join(this.pidDir, f), { force: true });
  }

  logSize(name: string): number {
    try { return statSync(this.stdoutLog(name)).size; } catch { return 0; }
  }

  /** Is `pid` one of this fleet's service processes (not a reused PID)? */
  owns(pid: number): boolean {
    const cmd = readText(`/proc/${pid}/cmdline`);
    return cmd !== null && cmd.includes(this.tag);
  }

  /** SIGKILLs every live process of this fleet, found by pid file or by scanning /proc for the tag. */
  killAll(): number {
    const pids = new Set<number>();
    for (const name of this.names) { const pid = this.readPid(name); if (pid) pids.add(pid); }
    for (const e of readdirSync("/proc")) if (/^\d+$/.test(e)) pids.add(Number(e));
    let n = 0;
    for (const pid of pids) {
      if (pid === process.pid || !pidAlive(pid) || !this.owns(pid)) continue;
      try { process.kill(pid, "SIGKILL"); n++; } catch { /* gone */ }
    }
    return n;
  }

  remove() {
    if (existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
  }
}

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function readMark(path: string): number | null {
  try { const v = Number(readFileSync(path, "utf8").trim()); return v > 0 ? v * 1000 : null; } catch { return null; }
}
