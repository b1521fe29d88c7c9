/**
 * The bodies of pmctl's commands other than `status`, loaded when one of them runs: a `status`
 * loads and runs only its own code (issue 15: with these in the entry chunk a cold
 * `pmctl status` took ~0.3 ms longer, timestamps in a compiled build). Names, usage and options
 * stay in index.ts, where parsing and --help need them.
 */
import { resolve as resolvePath } from "node:path";
import { formatProblem } from "../config/types.ts";
import { callDaemon } from "../control/client.ts";
import type { TickReport } from "../logs/index.ts";
import type { AppStatus } from "../supervisor/status.ts";
import { PmError } from "../util/errors.ts";
import { EXIT, intFlag, type ParsedCommandArgs } from "./args.ts";
import { lastExitText, renderTable } from "./render.ts";
import { err, out } from "./output.ts";
import { request } from "./request.ts";
import { snakeKeys } from "./json.ts";
import { reportStartFailure, type StartResult } from "./wait.ts";
import { plural } from "../util/plural.ts";

function appsOf(data: unknown): AppStatus[] {
  return (data as { apps: AppStatus[] }).apps;
}

export async function lifecycle(cmd: "start" | "stop" | "restart", args: ParsedCommandArgs): Promise<number> {
  if (args.positionals.length === 0) throw new PmError("USAGE", `${cmd} needs service names or 'all'`);
  const options = cmd === "stop" && (args.flags["with-dependents"] === true || args.flags.withDependents === true) ? { withDependents: true } : undefined;
  const data = (await request(args, cmd, args.positionals, undefined, options)) as { apps: AppStatus[]; results?: StartResult[] };
  const apps = appsOf(data);
  const failures = (data.results ?? []).filter((r) => !r.ok);
  const failedNames = new Set(failures.map((r) => r.name));
  // A start's outcome is the daemon's call (results); without one, running or exited is fine.
  const reached = (a: AppStatus) => (cmd === "stop" ? a.pids.length === 0 : data.results ? !failedNames.has(a.name) : a.state === "running" || a.state === "exited");
  if (args.json) { out(JSON.stringify({ apps, ...(data.results ? { results: data.results } : {}) })); return apps.every(reached) && failures.length === 0 ? EXIT.ok : EXIT.failed; }
  for (const r of failures) reportStartFailure(r, err);
  if (apps.length === 0 && cmd === "restart") out("nothing to restart: no service is running, starting or in backoff (name a service to start it)");
  let failed = failures.length > 0;
  for (const a of apps) {
    const ok = reached(a);
    failed ||= !ok;
    const detail = cmd === "stop"
      ? a.last_exit === "killed-after-grace" ? "killed after grace" : "stopped"
      : ok && a.state === "running" ? `running${a.pids.length ? ` (pid ${a.pids.join(",")})` : ""}` : `${a.state}${a.last_exit ? `, last exit ${lastExitText(a)}` : ""}`;
    out(`${a.name}: ${detail}`);
  }
  return failed ? EXIT.failed : EXIT.ok;
}

export async function update(args: ParsedCommandArgs): Promise<number> {
  const report = snakeKeys(await request(args, "update")) as Record<string, string[]>;
  if (args.json) { out(JSON.stringify(report)); return EXIT.ok; }
  const rows = [["ACTION", "SERVICES"]];
  for (const [key, label] of [["added", "started"], ["removed", "stopped and removed"], ["changed", "restarted"], ["resources_only", "updated in place"], ["unchanged", "unchanged"]] as const) {
    rows.push([label, report[key]!.join(" ") || "-"]);
  }
  out(renderTable(rows));
  return EXIT.ok;
}

export async function rotate(args: ParsedCommandArgs): Promise<number> {
  const report = (await request(args, "rotate", args.positionals)) as TickReport;
  if (args.json) { out(JSON.stringify(snakeKeys(report))); return report.errors.length ? EXIT.failed : EXIT.ok; }
  for (const r of report.rotated) {
    out(r.bytesMoved > 0 || !r.note
      ? `${r.app}: ${r.path} -> ${r.archive ?? "(discarded)"} (${r.bytesMoved} bytes, ${r.mode})`
      : `${r.app}: ${r.path}: not rotated (${r.note})`);
  }
  for (const d of report.deleted) out(`${d.app}: deleted ${d.path} (${d.reason === "max-age" ? "older than rotation_max_age_ms" : "beyond rotation_backups"})`);
  for (const m of report.missing) out(`${m.app}: ${m.path} does not exist; it is created on the service's next start`);
  // (A daemon older than the `replaced` list sends none.)
  for (const m of report.replaced ?? []) err(`${m.app}: ${m.path} is not the file the service writes to (replaced since its start); not rotated until the service's next start`);
  if (report.rotated.length + report.deleted.length + report.missing.length + (report.replaced?.length ?? 0) + report.errors.length === 0) out("nothing to rotate (no log file has content)");
  for (const e of report.errors) err(`${e.path}: ${e.message}`);
  return report.errors.length ? EXIT.failed : EXIT.ok;
}

export async function logs(args: ParsedCommandArgs): Promise<number> {
  const lines = intFlag(args.flags.lines, "-n", 50); // a usage error comes before any other output
  // A follower idles for hours: without the runtime's GC timer and allocator thread (issue 15).
  if (args.flags.follow) (await import("../linux/quiet-runtime.ts")).reexecWithQuietRuntime(() => {});
  // Imported here: a `status` loads neither the config parser nor the log code (issue 15).
  const { loadConfig } = await import("../config/load.ts");
  const { follow, printTail, selectLogFiles } = await import("./logs.ts");
  const config = loadConfig(resolvePath(args.config));
  const files = selectLogFiles(config, args.positionals);
  try { await callDaemon(config.master.sockPath, "ping"); }
  catch { err(`note: the daemon is not running; reading log files named in ${config.master.file}`); }
  if (args.flags.follow) {
    if (lines > 0 && args.flags.lines !== undefined) printTail(files, lines, out, args.json);
    return follow(files, out, err, args.json);
  }
  printTail(files, lines, out, args.json);
  return EXIT.ok;
}

export async function check(args: ParsedCommandArgs): Promise<number> {
  const { checkConfigDeep } = await import("../config/load.ts");
  const { errors, warnings } = checkConfigDeep(resolvePath(args.config));
  if (args.json) out(JSON.stringify({ problems: errors, warnings }));
  else {
    for (const p of errors) err(formatProblem(p));
    for (const w of warnings) err(`warning: ${formatProblem(w)}`);
    if (errors.length === 0) out(`${resolvePath(args.config)}: ok${warnings.length ? ` (${plural(warnings.length, "warning")})` : ""}`);
  }
  return errors.length ? EXIT.failed : EXIT.ok; // warnings alone do not fail the check
}
