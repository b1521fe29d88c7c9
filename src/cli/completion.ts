/**
 * `pmctl completion bash|zsh|fish`: a script that completes commands, options and service names.
 * The script asks `pmctl [-c FILE] __complete services` for the names (hidden command): the
 * daemon's services when it answers, else those of the config files.
 */
import { resolve as resolvePath } from "node:path";
import type { AppStatus } from "../supervisor/status.ts";
import { PmError } from "../util/errors.ts";
import { EXIT, type CliCommand } from "./args.ts";
import { out } from "./output.ts";
import { request } from "./request.ts";

/** `completion` needs the whole command list, which includes itself: given as a function. */
export function completionCommands(prog: () => string, commands: () => CliCommand[]): CliCommand[] {
  const visible = () => commands().filter((c) => !c.hidden);
  return [
    {
      name: "completion", description: "print a shell completion script: bash, zsh or fish", usage: "completion bash|zsh|fish", args: {},
      async run(args) {
        const shell = args.positionals[0];
        if (args.positionals.length !== 1 || !shell || !["bash", "zsh", "fish"].includes(shell)) throw new PmError("USAGE", "completion needs one shell: bash, zsh or fish");
        const { bashScript, fishScript, zshScript } = await import("./completion-scripts.ts");
        const make = shell === "bash" ? bashScript : shell === "zsh" ? zshScript : fishScript;
        out(make(prog(), visible()).trimEnd());
        return EXIT.ok;
      },
    },
    {
      name: "__complete", description: "service names for completion scripts", usage: "__complete services", args: {}, hidden: true,
      async run(args) {
        if (args.positionals[0] !== "services") throw new PmError("USAGE", "__complete knows only: services");
        let names: string[];
        try { names = ((await request(args, "status")) as { apps: AppStatus[] }).apps.map((a) => a.name); }
        catch { names = [...(await import("../config/load.ts")).loadConfig(resolvePath(args.config)).services.keys()]; } // the daemon is down: the files say
        // Only what could be a service name: the answer may come from whatever socket a
        // config in the current folder names, and shells must never see anything to expand.
        // (Imported here: a `status` never loads the config parser, issue 15.)
        const { serviceNameError } = await import("../config/service.ts");
        names = names.filter((n) => serviceNameError(n) === null);
        if (names.length) out(names.join("\n"));
        return EXIT.ok;
      },
    },
  ];
}
