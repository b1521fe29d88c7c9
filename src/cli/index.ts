/**
 * pmctl: the client. Every command reads the master config (`-c`, default config.yaml) to find
 * the socket. Exit codes: 0 success, 1 the request failed, 2 usage error, 3 daemon unreachable.
 */
import { writeSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
import { callDaemon } from "../control/client.ts";
import type { Command } from "../control/protocol.ts";
import type { TickReport } from "../logs/index.ts";
import type { AppStatus } from "../supervisor/status.ts";
import { PmError, errorMessage, isPmError } from "../util/errors.ts";
import { VERSION, VERSION_LINE } from "../version.ts";
import { EXIT, findCommand, GLOBAL_ARGS, intFlag, parseCommandArgs, type CliCommand, type ParsedCommandArgs } from "./args.ts";
import { lastExitText, renderStatus, renderTable } from "./render.ts";
import { quickSockPath } from "./quick-master.ts";

/**
 * Output through write(2): the first touch of process.stdout builds a stream object, about 3 ms
 * of a ~15 ms cold pmctl (issue 6). Blocking and in order; a closed pipe (`| head`) ends output.
 */
function writeFd(fd: number, s: string) {
  const buf = Buffer.from(s);
  for (let off = 0; off < buf.length;) {
    try { off += writeSync(fd, buf, off); }
    catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EAGAIN") { Bun.sleepSync(1); continue; } // a non-blocking fd from the caller
      if (code === "EPIPE") return;
      throw e;
    }
  }
}
const out = (s: string) => writeFd(1, s + "\n");
const err = (s: string) => writeFd(2, s + "\n");

// The config parser and the log code are imported where used: a `status` evaluates neither
// (issue 15; the bundle defers a dynamically imported module's evaluation to its import).
async function sockPathOf(args: ParsedCommandArgs): Promise<string> {
  const file = resolvePath(args.config);
  return quickSockPath(file) ?? (await import("../config/load.ts")).loadMasterConfig(file).sockPath;
}

async function request(args: ParsedCommandArgs, cmd: Command, names: string[] = []) {
  return callDaemon(await sockPathOf(args), cmd, names, { onProgress: (m) => err(m) });
}

function appsOf(data: unknown): AppStatus[] {
  return (data as { apps: AppStatus[] }).apps;
}

function lifecycle(cmd: "start" | "stop" | "restart", description: string): CliCommand {
  return {
    name: cmd, description, usage: `${cmd} <app…|all>`, args: {},
    async run(args) {
      if (args.positionals.length === 0) throw new PmError("USAGE", `${cmd} needs service names or 'all'`);
      const apps = appsOf(await request(args, cmd, args.positionals));
      if (args.json) { out(JSON.stringify({ apps })); return EXIT.ok; }
      let failed = false;
      for (const a of apps) {
        const ok = cmd === "stop" ? a.pids.length === 0 : a.state === "running" || a.state === "exited";
        failed ||= !ok;
        const detail = cmd === "stop"
          ? a.last_exit === "killed-after-grace" ? "killed after grace" : "stopped"
          : ok ? `running${a.pids.length ? ` (pid ${a.pids.join(",")})` : ""}` : `${a.state}${a.last_exit ? `, last exit ${lastExitText(a)}` : ""}`;
        out(`${a.name}: ${detail}`);
      }
      return failed ? EXIT.failed : EXIT.ok;
    },
  };
}

const commands: CliCommand[] = [
  {
    name: "status", description: "show services: state, PIDs, uptime, restarts, last exit", usage: "status [app…] [--json]", args: {},
    async run(args) {
      const data = (await request(args, "status", args.positionals)) as { apps: AppStatus[]; master?: { cgroup: string; limits_not_in_force: { file: string }[] } };
      const apps = appsOf(data);
      out(args.json ? JSON.stringify({ apps, master: data.master }) : renderStatus(apps));
      const masterMissing = data.master?.limits_not_in_force ?? [];
      if (!args.json && masterMissing.length) out(`master cgroup ${data.master!.cgroup}: limits not in force: ${masterMissing.map((l) => l.file).join(", ")} (the daemon log says why)`);
      return EXIT.ok;
    },
  },
  lifecycle("start", "start services (a manual start also clears restart suppression)"),
  lifecycle("stop", "stop services: stop_command or stop_signal, then cgroup.kill after stop_grace_ms"),
  lifecycle("restart", "stop, then start services"),
  {
    name: "update", description: "re-read the config: start added, stop removed, restart changed services", usage: "update", args: {},
    async run(args) {
      const report = (await request(args, "update")) as Record<string, string[]>;
      if (args.json) { out(JSON.stringify(report)); return EXIT.ok; }
      const rows = [["ACTION", "SERVICES"]];
      for (const [key, label] of [["added", "started"], ["removed", "stopped and removed"], ["changed", "restarted"], ["resourcesOnly", "updated in place"], ["unchanged", "unchanged"]] as const) {
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
      if (args.json) { out(JSON.stringify(report)); return report.errors.length ? EXIT.failed : EXIT.ok; }
      for (const r of report.rotated) {
        out(r.bytesMoved > 0 || !r.note
          ? `${r.app}: ${r.path} -> ${r.archive ?? "(discarded)"} (${r.bytesMoved} bytes, ${r.mode})`
          : `${r.app}: ${r.path}: not rotated (${r.note})`);
      }
      for (const d of report.deleted) out(`${d.app}: deleted ${d.path} (${d.reason === "max-age" ? "older than rotation_max_age_ms" : "beyond rotation_backups"})`);
      for (const m of report.missing) out(`${m.app}: ${m.path} does not exist; it is created on the service's next start`);
      if (report.rotated.length + report.deleted.length + report.missing.length + report.errors.length === 0) out("nothing to rotate (no log file has content)");
      for (const e of report.errors) err(`${e.path}: ${e.message}`);
      return report.errors.length ? EXIT.failed : EXIT.ok;
    },
  },
  {
    name: "logs", description: "print the last lines of log files, or follow them", usage: "logs [app] [file-name] [-n N] [-f]",
    args: {
      lines: { type: "string", alias: ["n"], description: "number of lines (default 50)" },
      follow: { type: "boolean", alias: ["f"], description: "keep printing new lines (Ctrl-C to stop)" },
    },
    async run(args) {
      const lines = intFlag(args.flags.lines, "-n", 50); // a usage error comes before any other output
      const { loadConfig } = await import("../config/load.ts");
      const { follow, printTail, selectLogFiles } = await import("./logs.ts");
      const config = loadConfig(resolvePath(args.config));
      const files = selectLogFiles(config, args.positionals);
      try { await callDaemon(config.master.sockPath, "ping"); }
      catch { err(`note: the daemon is not running; reading log files named in ${config.master.file}`); }
      if (args.flags.follow) {
        if (lines > 0 && args.flags.lines !== undefined) printTail(files, lines, out);
        return follow(files, out, err);
      }
      printTail(files, lines, out);
      return EXIT.ok;
    },
  },
  {
    name: "check", description: "validate the config files and print every problem", usage: "check", args: {},
    async run(args) {
      const { checkConfig } = await import("../config/load.ts");
      const { formatProblem } = await import("../config/types.ts");
      const problems = checkConfig(resolvePath(args.config));
      if (args.json) out(JSON.stringify({ problems }));
      else if (problems.length === 0) out(`${resolvePath(args.config)}: ok`);
      else for (const p of problems) err(formatProblem(p));
      return problems.length ? EXIT.failed : EXIT.ok;
    },
  },
];

export function usageText(prog: string, extra: CliCommand[] = []): string {
  const all = [...commands, ...extra];
  const lines = [`${prog} ${VERSION}`, "", `usage: ${prog} [-c config.yaml] <command> [options]`, "", "commands:"];
  for (const c of all) lines.push(`  ${c.usage.padEnd(36)} ${c.description}`);
  lines.push("", "options:");
  for (const [name, a] of Object.entries(GLOBAL_ARGS)) lines.push(`  ${`--${name}${"alias" in a ? `, -${a.alias[0]}` : ""}`.padEnd(36)} ${a.description}`);
  lines.push(`  ${"-n N, -f".padEnd(36)} logs: line count, follow`);
  lines.push("", "exit codes: 0 ok, 1 request failed, 2 usage error, 3 daemon not reachable");
  return lines.join("\n");
}

/** Runs one client command; returns the exit code. `extra` lets processmaster add `daemon`. */
export async function runCli(argv: string[], prog: string, extra: CliCommand[] = []): Promise<number> {
  const all = [...commands, ...extra];
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
    err(`${prog}: ${errorMessage(e)}`);
    if (isPmError(e, "USAGE")) return EXIT.usage;
    if (isPmError(e, "DAEMON_UNREACHABLE")) return EXIT.unreachable;
    return EXIT.failed;
  }
}
