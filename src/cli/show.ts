/**
 * `pmctl show <app> [--json]`: a service's effective config, every default filled in, in the
 * config file's own key names, with the file it came from. Read from the config files (as
 * `logs` and `check` do), so it works with the daemon down and shows what `update` would apply.
 */
import { resolve as resolvePath } from "node:path";
import { formatProblem, type ServiceConfig } from "../config/types.ts";
import { PmError } from "../util/errors.ts";
import { EXIT, type CliCommand } from "./args.ts";
import { out } from "./output.ts";

/** The service as a config file would spell it: every key present, paths absolute, durations in ms. */
export function effectiveServiceDoc(svc: ServiceConfig): Record<string, unknown> {
  const p = svc.process;
  const l = svc.logs;
  const r = svc.restartPolicy;
  const res = svc.resources;
  return {
    name: svc.name,
    enabled: svc.enabled,
    process: {
      command: p.command,
      working_directory: p.workingDirectory,
      user: p.user ?? null,
      group: p.group ?? null,
      environment: p.environment,
      stop_command: p.stopCommand ?? null,
      stop_signal: p.stopSignal,
      stop_grace_ms: p.stopGraceMs,
      schedule: p.schedule ?? null,
      schedule_timezone: p.scheduleTimezone ?? null,
      allow_writable_command: p.allowWritableCommand,
    },
    logs: {
      stdout: l.stdout,
      stderr: l.stderr,
      stop_command_stdout: l.stopCommandStdout ?? null,
      stop_command_stderr: l.stopCommandStderr ?? null,
      hints: l.hints,
      rotation_mode: l.rotationMode,
      rotation_frequency: l.rotationFrequency,
      rotation_max_age_ms: l.rotationMaxAgeMs,
      rotation_size: l.rotationSizeBytes ?? null,
      rotation_backups: l.rotationBackups,
    },
    restart_policy: {
      policy: r.policy,
      restart_backoff_ms: r.restartBackoffMs,
      restart_backoff_max_ms: r.restartBackoffMaxMs ?? null,
      tolerance: { max_restarts: r.maxRestarts, duration: r.toleranceWindowMs },
    },
    resources: {
      cpu_max: res.cpuMax ?? null,
      cpu_weight: res.cpuWeight ?? null,
      memory_max: res.memoryMax ?? null,
      memory_high: res.memoryHigh ?? null,
      memory_swap_max: res.memorySwapMax ?? null,
      pids_max: res.pidsMax ?? null,
    },
  };
}

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
    const doc = effectiveServiceDoc(svc);
    if (args.json) { out(JSON.stringify({ name: svc.name, file: svc.file, config: doc })); return EXIT.ok; }
    out(`# ${svc.name}: effective config from ${svc.file}`);
    out("# (every default filled in; durations in ms, sizes in bytes; null: not set)");
    const { stringifyYaml } = await import("../config/yaml.ts");
    out(stringifyYaml(doc).trimEnd());
    return EXIT.ok;
  },
};
