/**
 * pmctl: the client. Every command reads the master config (`-c`, default config.yaml) to find
 * the socket. Exit codes: EXIT_CODE_TABLE in args.ts (0 success, 1 the request failed, 2 usage
 * error, 3 daemon unreachable, 4 status found an unhealthy service).
 */
import { resolve as resolvePath } from "node:path";
import { formatProblem } from "../config/types.ts";
import { callDaemon } from "../control/client.ts";
import type { TickReport } from "../logs/index.ts";
import type { AppStatus } from "../supervisor/status.ts";
import { PmError, errorMessage, isPmError } from "../util/errors.ts";
import { VERSION, VERSION_LINE } from "../version.ts";
import { EXIT, EXIT_CODE_TABLE, findCommand, GLOBAL_ARGS, intFlag, parseCommandArgs, type CliCommand } from "./args.ts";
import { lastExitText, renderTable } from "./render.ts";
import { err, out } from "./output.ts";
import { request } from "./request.ts";
import { snakeKeys } from "./json.ts";
import { statusCommand } from "./status.ts";
import { showCommand } from "./show.ts";
import { shutdownCommand } from "./shutdown.ts";
import { completionCommands } from "./completion.ts";
import { reportStartFailure, waitCommand, type StartResult } from "./wait.ts";
import type { ArgsDef } from "citty";
import { signalCommands } from "./signal.ts";


function appsOf(data: unknown): AppStatus[] {
  return (data as { apps: AppStatus[] }).apps;
}

function lifecycle(cmd: "start" | "stop" | "restart", description: string): CliCommand {
  const args: ArgsDef = cmd === "stop" ? { "with-dependents": { type: "boolean", description: "stop the services that need them first" } } : {};
  return {
    name: cmd, description, usage: `${cmd} <app…|all>${cmd === "stop" ? " [--with-dependents]" : ""}`, args,
    async run(args) {
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
    },
  };
}

const commands: CliCommand[] = [
  statusCommand,
  lifecycle("start", "start services (a manual start also clears restart suppression)"),
  lifecycle("stop", "stop services: stop_command or stop_signal, then cgroup.kill after stop_grace_ms"),
  lifecycle("restart", "stop, then start services; 'all' restarts those running, starting or in backoff, a named stopped service is started"),
  waitCommand,
  ...signalCommands(request, out, err),
  {
    name: "update", description: "re-read the config: start added, stop removed, restart changed services", usage: "update", args: {},
    async run(args) {
      const report = snakeKeys(await request(args, "update")) as Record<string, string[]>;
      if (args.json) { out(JSON.stringify(report)); return EXIT.ok; }
      const rows = [["ACTION", "SERVICES"]];
      for (const [key, label] of [["added", "started"], ["removed", "stopped and removed"], ["changed", "restarted"], ["resources_only", "updated in place"], ["unchanged", "unchanged"]] as const) {
        rows.push([label, report[key]!.join(" ") || "-"]);
      }
      out(renderTable(rows));
      return EXIT.ok;
    },
  },
  {
    name: "rotate", description: "rotate log files now", usage: "rotate [app…]", args: {},
    async run(args) {
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
    },
  },
  {
    name: "logs", description: "print the last lines of log files, or follow them (--json: one {app,file,line} a line)", usage: "logs [app] [file-name] [-n N] [-f]",
    args: {
      lines: { type: "string", alias: ["n"], description: "number of lines (default 50)" },
      follow: { type: "boolean", alias: ["f"], description: "keep printing new lines (Ctrl-C to stop)" },
    },
    async run(args) {
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
    },
  },
  {
    name: "check", description: "validate the config files and what would fail at run time; print every problem (warnings do not fail)", usage: "check", args: {},
    async run(args) {
      const { checkConfigDeep } = await import("../config/load.ts");
      const { errors, warnings } = checkConfigDeep(resolvePath(args.config));
      if (args.json) out(JSON.stringify({ problems: errors, warnings }));
      else {
        for (const p of errors) err(formatProblem(p));
        for (const w of warnings) err(`warning: ${formatProblem(w)}`);
        if (errors.length === 0) out(`${resolvePath(args.config)}: ok${warnings.length ? ` (${warnings.length} warning${warnings.length === 1 ? "" : "s"})` : ""}`);
      }
      return errors.length ? EXIT.failed : EXIT.ok; // warnings alone do not fail the check
    },
  },
  shutdownCommand,
  showCommand,
  ...completionCommands(() => currentProg, () => currentCommands),
];

/** The program name and command list of this run (completion scripts name both). */
let currentProg = "pmctl";
let currentCommands: CliCommand[] = commands;

export function usageText(prog: string, extra: CliCommand[] = []): string {
  const all = [...commands, ...extra];
  const lines = [`${prog} ${VERSION}`, "", `usage: ${prog} [-c config.yaml] <command> [options]`, "", "commands:"];
  const width = Math.max(36, ...all.filter((c) => !c.hidden).map((c) => c.usage.length));
  for (const c of all) if (!c.hidden) lines.push(`  ${c.usage.padEnd(width)} ${c.description}`);
  lines.push("", "options:");
  for (const [name, a] of Object.entries(GLOBAL_ARGS)) {
    const flag = name === "color" ? "--no-color" : `--${name}${"alias" in a ? `, -${a.alias[0]}` : ""}`;
    lines.push(`  ${flag.padEnd(width)} ${a.description}`);
  }
  lines.push(`  ${"-n N, -f".padEnd(width)} logs: line count, follow`);
  lines.push(`  ${"--watch, --interval 1s".padEnd(width)} status: redraw every interval`);
  lines.push("", "exit codes:");
  for (const [code, meaning] of EXIT_CODE_TABLE) lines.push(`  ${code}  ${meaning}`);
  return lines.join("\n");
}

/** `--json` before any `--` (the flag may come before the command, or be the usage error itself). */
function wantsJson(argv: string[]): boolean {
  const end = argv.indexOf("--");
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === "--json" || a === "--json=true");
}

/** Runs one client command; returns the exit code. `extra` lets processmaster add `daemon`. */
export async function runCli(argv: string[], prog: string, extra: CliCommand[] = []): Promise<number> {
  const all = [...commands, ...extra];
  currentProg = prog;
  currentCommands = all;
  try {
    if (argv.includes("--version") || argv.includes("-V")) { out(`${prog} ${VERSION_LINE}`); return EXIT.ok; }
    const { command, rest, unknown } = findCommand(argv, all.map((c) => c.name));
    const wantsHelp = rest.includes("--help") || rest.includes("-h");
    if (!command) {
      if (wantsHelp || argv.length === 0) { (argv.length === 0 ? err : out)(usageText(prog, extra)); return argv.length === 0 ? EXIT.usage : EXIT.ok; }
      throw new PmError("USAGE", unknown ? `unknown command '${unknown}'; run '${prog} --help'` : `no command given; run '${prog} --help'`);
    }
    const cmd = all.find((c) => c.name === command)!;
    if (wantsHelp) { out(`usage: ${prog} [-c config.yaml] ${cmd.usage}\n  ${cmd.description}`); return EXIT.ok; }
    return await cmd.run(parseCommandArgs(rest, cmd.args));
  } catch (e) {
    const code = isPmError(e, "USAGE") ? EXIT.usage : isPmError(e, "DAEMON_UNREACHABLE") ? EXIT.unreachable : EXIT.failed;
    // Under --json the error is the one JSON document on stdout (scripts parse one stream).
    if (wantsJson(argv)) out(JSON.stringify({ error: { code: isPmError(e) ? e.code : "INTERNAL", message: errorMessage(e) } }));
    else err(`${prog}: ${errorMessage(e)}`);
    return code;
  }
}
