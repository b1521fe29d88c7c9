/** `pmctl wait <app…> [--ready] [--timeout 30s]`, and how a failed start is reported. */
import { PmError } from "../util/errors.ts";
import { parseDurationMs } from "../util/units.ts";
import { EXIT, type CliCommand } from "./args.ts";
import { err, out } from "./output.ts";
import { request } from "./request.ts";

/** One service's outcome in the answer to `start`/`restart`/`wait`. */
export interface StartResult { name: string; ok: boolean; reason: string | null; stderr?: string[] }

/** A failed start: one line naming the service and why, then the last lines of its stderr. */
export function reportStartFailure(r: StartResult, write: (s: string) => void): void {
  write(`${r.name}: start failed: ${r.reason ?? "unknown reason"}`);
  for (const line of r.stderr ?? []) write(`  ${r.name} stderr| ${line}`);
}

export const waitCommand: CliCommand = {
  name: "wait", description: "wait until services are up (start succeeded), or ready with --ready", usage: "wait <app…|all> [--ready] [--timeout 30s]",
  args: {
    ready: { type: "boolean", description: "wait for readiness, not only a successful start" },
    timeout: { type: "string", description: "give up after this long (default 30s)" },
  },
  async run(args) {
    if (args.positionals.length === 0) throw new PmError("USAGE", "wait needs service names or 'all'");
    const timeoutMs = args.flags.timeout === undefined ? 30_000 : parseDurationMs(String(args.flags.timeout));
    if (timeoutMs === null || timeoutMs > 2 ** 31 - 1) throw new PmError("USAGE", `--timeout expects a duration like 30s or 500ms, got '${args.flags.timeout}'`);
    const ready = args.flags.ready === true;
    const data = (await request(args, "wait", args.positionals, undefined, { ready, timeoutMs })) as { results: StartResult[] };
    if (args.json) out(JSON.stringify({ results: data.results }));
    else for (const r of data.results) (r.ok ? out : err)(r.ok ? `${r.name}: ${ready ? "ready" : "up"}` : `${r.name}: ${r.reason}`);
    return data.results.every((r) => r.ok) ? EXIT.ok : EXIT.failed;
  },
};
