/**
 * One executable, two roles: invoked as `pmctl` it is the client; as `processmaster` it runs
 * the daemon (`processmaster [daemon] -c FILE`), validates config (`check`), or runs any
 * client command directly (`processmaster status`, or `processmaster ctl status`).
 */
import { basename, resolve } from "node:path";
import { EXIT, parseCommandArgs, type CliCommand } from "./cli/args.ts";
import { runCli } from "./cli/index.ts";
import { errorMessage } from "./util/errors.ts";

const daemonCommand: CliCommand = {
  name: "daemon",
  description: "run the daemon in the foreground (the default when no command is given)",
  usage: "daemon [-c config.yaml]",
  args: {},
  async run(args) {
    // Imported here, not at the top: the bundle evaluates a dynamically imported module only
    // when it is imported, so a pmctl call never evaluates daemon code (issue 15: pmctl status
    // within 1.1x of a minimal compiled client; test/client-lazy-load.test.ts checks it).
    const { reexecWithQuietRuntime } = await import("./linux/quiet-runtime.ts");
    reexecWithQuietRuntime();
    const { serveDaemon } = await import("./daemon/daemon.ts");
    return serveDaemon(resolve(args.config)); // serves until a signal ends the process
  },
};

async function main(): Promise<number> {
  const prog = basename(process.argv0);
  const argv = process.argv.slice(2);
  if (prog.startsWith("pmctl")) return runCli(argv, "pmctl");
  if (argv[0] === "ctl") return runCli(argv.slice(1), "pmctl");
  const onlyFlags = argv.every((a, i) => a.startsWith("-") || ["-c", "--config"].includes(argv[i - 1] ?? ""));
  const wantsInfo = argv.some((a) => ["-h", "--help", "-V", "--version"].includes(a));
  if (onlyFlags && !wantsInfo) {
    try { return await daemonCommand.run(await parseCommandArgs(argv, {})); }
    catch (e) { process.stderr.write(`processmaster: ${errorMessage(e)}\n`); return EXIT.usage; }
  }
  return runCli(argv, "processmaster", [daemonCommand]);
}

main().then((code) => process.exit(code));
