/**
 * pmctl: the client. Every command reads the master config (`-c`, default config.yaml) to find
 * the socket. Exit codes: EXIT_CODE_TABLE in util/exit-codes.ts (0 success, 1 the request failed, 2 usage
 * error, 3 daemon unreachable, 4 status found an unhealthy service).
 */
import type { ArgsDef } from "citty";
import { PmError, errorMessage, isPmError } from "../util/errors.ts";
import { VERSION, VERSION_LINE } from "../version.ts";
import { EXIT, EXIT_CODE_TABLE, findCommand, GLOBAL_ARGS, parseCommandArgs, type CliCommand } from "./args.ts";
import { err, out } from "./output.ts";
import { request } from "./request.ts";
import { statusCommand } from "./status.ts";
import { showCommand } from "./show.ts";
import { shutdownCommand } from "./shutdown.ts";
import { completionCommands } from "./completion.ts";
import { waitCommand } from "./wait.ts";
import { signalCommands } from "./signal.ts";

/** The code of the commands below but `status`: loaded when one of them runs (commands.ts). */
const bodies = () => import("./commands.ts");

function lifecycle(cmd: "start" | "stop" | "restart", description: string): CliCommand {
  const args: ArgsDef = cmd === "stop" ? { "with-dependents": { type: "boolean", description: "stop the services that need them first" } } : {};
  return {
    name: cmd, description, usage: `${cmd} <app…|all>${cmd === "stop" ? " [--with-dependents]" : ""}`, args,
    async run(args) { return (await bodies()).lifecycle(cmd, args); },
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
    async run(args) { return (await bodies()).update(args); },
  },
  {
    name: "rotate", description: "rotate log files now", usage: "rotate [app…]", args: {},
    async run(args) { return (await bodies()).rotate(args); },
  },
  {
    name: "logs", description: "print the last lines of log files, or follow them (--json: one {app,file,line} a line)", usage: "logs [app] [file-name] [-n N] [-f]",
    args: {
      lines: { type: "string", alias: ["n"], description: "number of lines (default 50)" },
      follow: { type: "boolean", alias: ["f"], description: "keep printing new lines (Ctrl-C to stop)" },
    },
    async run(args) { return (await bodies()).logs(args); },
  },
  {
    name: "check", description: "validate the config files and what would fail at run time; print every problem (warnings do not fail)", usage: "check", args: {},
    async run(args) { return (await bodies()).check(args); },
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
    return await cmd.run(await parseCommandArgs(rest, cmd.args));
  } catch (e) {
    const code = isPmError(e, "USAGE") ? EXIT.usage : isPmError(e, "DAEMON_UNREACHABLE") ? EXIT.unreachable : EXIT.failed;
    // Under --json the error is the one JSON document on stdout (scripts parse one stream).
    if (wantsJson(argv)) out(JSON.stringify({ error: { code: isPmError(e) ? e.code : "INTERNAL", message: errorMessage(e) } }));
    else err(`${prog}: ${errorMessage(e)}`);
    return code;
  }
}
