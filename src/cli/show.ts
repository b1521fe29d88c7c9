/**
 * `pmctl show <app> [--json]`: a service's effective config, every default filled in, in the
 * config file's own key names, with the file it came from. Read from the config files (as
 * `logs` and `check` do), so it works with the daemon down and shows what `update` would apply.
 */
import { resolve as resolvePath } from "node:path";
import { formatProblem } from "../config/types.ts";
import { PmError } from "../util/errors.ts";
import { EXIT, type CliCommand } from "./args.ts";
import { out } from "./output.ts";

export const showCommand: CliCommand = {
  name: "show",
  description: "print a service's effective config (defaults filled in) and the file it came from",
  usage: "show <app> [--json]",
  args: {},
  async run(args) {
    if (args.positionals.length !== 1) throw new PmError("USAGE", "show needs exactly one service name");
    const name = args.positionals[0]!;
    const { loadConfig } = await import("../config/load.ts"); // not loaded by a `status` (issue 15)
    const config = loadConfig(resolvePath(args.config));
    const svc = config.services.get(name);
    if (!svc) {
      const broken = config.serviceErrors.filter((p) => p.file.replace(/^.*\//, "").replace(/\.ya?ml$/, "") === name);
      if (broken.length) throw new PmError("CONFIG_INVALID", `service '${name}' is not loaded: ${broken.map(formatProblem).join("; ")}`);
      throw new PmError("UNKNOWN_SERVICE", `unknown service '${name}' (known: ${[...config.services.keys()].join(", ") || "none"})`);
    }
    const { effectiveServiceDoc } = await import("./show-doc.ts");
    const doc = effectiveServiceDoc(svc);
    if (args.json) { out(JSON.stringify({ name: svc.name, file: svc.file, config: doc })); return EXIT.ok; }
    out(`# ${svc.name}: effective config from ${svc.file}`);
    out("# (every default filled in; durations in ms but start_seconds and watchdog_sec in seconds, sizes in bytes; null: not set)");
    const { stringifyYaml } = await import("../config/yaml.ts");
    out(stringifyYaml(doc).trimEnd());
    return EXIT.ok;
  },
};
