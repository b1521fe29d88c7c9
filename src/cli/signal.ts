/** `pmctl reload <app…|all>` and `pmctl signal <SIGNAL> <app…|all> [--main]`. */
import type { ServiceActionReport } from "../control/protocol.ts";
import { PmError } from "../util/errors.ts";
import { EXIT, type CliCommand, type ParsedCommandArgs } from "./args.ts";

type Request = (args: ParsedCommandArgs, cmd: "reload" | "signal", names: string[], extra?: { signal?: string; main?: boolean }) => Promise<unknown>;
type Print = (s: string) => void;

/** One line per service; exit 1 when any of them failed. */
function report(data: unknown, args: ParsedCommandArgs, out: Print, err: Print): number {
  const services = (data as { services: ServiceActionReport[] }).services;
  if (args.json) out(JSON.stringify({ services }));
  else {
    for (const s of services) {
      (s.ok ? out : err)(`${s.name}: ${s.ok ? "" : "failed: "}${s.message}`);
      if (!s.ok && s.output) for (const line of s.output.split("\n")) err(`  ${line}`);
    }
  }
  return services.every((s) => s.ok) ? EXIT.ok : EXIT.failed;
}

export function signalCommands(request: Request, out: Print, err: Print): CliCommand[] {
  return [
    {
      name: "reload", description: "reload services: reload_signal to the main process, or reload_command", usage: "reload <app…|all>", args: {},
      async run(args) {
        if (args.positionals.length === 0) throw new PmError("USAGE", "reload needs service names or 'all'");
        return report(await request(args, "reload", args.positionals), args, out, err);
      },
    },
    {
      name: "signal", description: "send a signal to every process of services, or (--main) to the main one", usage: "signal <SIGNAL> <app…|all> [--main]",
      args: { main: { type: "boolean", description: "only the main process" } },
      async run(args) {
        const [sig, ...names] = args.positionals;
        if (sig === undefined || names.length === 0) throw new PmError("USAGE", "signal needs a signal and service names or 'all', e.g. signal HUP web");
        // Imported here: config/values.ts pulls in the YAML layer, which a `status` never loads (issue 15).
        const { normalizeSignal } = await import("../config/values.ts");
        const signal = normalizeSignal(sig);
        if (signal === null) throw new PmError("USAGE", `unknown signal '${sig}'; expected a name like SIGHUP, HUP or a number like 1`);
        return report(await request(args, "signal", names, { signal, main: args.flags.main === true }), args, out, err);
      },
    },
  ];
}
