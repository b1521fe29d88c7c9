/**
 * `pmctl status [app…] [--watch [--interval 1s]]`: the table (or JSON), exit 4 when a service is
 * unhealthy; with --watch, redrawn in place on a terminal until Ctrl-C.
 */
import type { RequestOptions } from "../control/protocol.ts";
import type { AppStatus, StatusRow } from "../supervisor/status.ts";
import { PmError, errorMessage, isPmError } from "../util/errors.ts";
import { parseDurationMs } from "../util/units.ts";
import { EXIT, type CliCommand, type ParsedCommandArgs } from "./args.ts";
import { isTerminal, out, writeFd } from "./output.ts";
import { renderStatus } from "./render.ts";
import { request } from "./request.ts";

/** States that make `status` exit 4: the service is down for a reason, or crashing and waiting to retry. */
export const UNHEALTHY_STATES: ReadonlySet<string> = new Set(["failed", "suppressed", "backoff"]);

export interface StatusReply { apps: AppStatus[] | StatusRow[]; master?: { cgroup: string; limits_not_in_force: { file: string }[] } }

/** The options of the table's request; the bench's floor client sends the same (scripts/bench/bench.ts). */
export const TABLE_VIEW: RequestOptions = { view: "table" };

/** A daemon older than the `view` option refused it: later looks (`--watch`) ask for the full answer at once. */
let viewRefused = false;

/**
 * The table asks only for its own fields (`options.view: "table"`, null ones left out): at 1000
 * services that is about a fifth of the bytes, and the daemon skips the log-file lookups (issue
 * 15). `full` (`--json`) asks for the whole documented answer. A daemon older than the option
 * refuses it; the full answer renders the same table.
 */
export async function statusReply(args: ParsedCommandArgs, names: string[], full = args.json): Promise<StatusReply> {
  if (full || viewRefused) return (await request(args, "status", names)) as StatusReply;
  try { return (await request(args, "status", names, undefined, TABLE_VIEW)) as StatusReply; }
  catch (e) {
    if (!isPmError(e, "PROTOCOL") || !errorMessage(e).includes('unknown option "view"')) throw e;
    viewRefused = true; // `--watch` asks once, not every frame
    return (await request(args, "status", names)) as StatusReply;
  }
}

/** What one look prints: the table (or JSON) and the master note; and the exit code it earns. */
function frame(data: StatusReply, args: ParsedCommandArgs, color: boolean): { text: string; code: number } {
  const unhealthy = data.apps.some((a) => UNHEALTHY_STATES.has(a.state));
  const code = unhealthy ? EXIT.unhealthy : EXIT.ok;
  if (args.json) return { text: JSON.stringify({ apps: data.apps, master: data.master }), code };
  const lines = [renderStatus(data.apps, { color })];
  const masterMissing = data.master?.limits_not_in_force ?? [];
  if (masterMissing.length) lines.push(`master cgroup ${data.master!.cgroup}: limits not in force: ${masterMissing.map((l) => l.file).join(", ")} (the daemon log says why)`);
  return { text: lines.join("\n"), code };
}

export const statusCommand: CliCommand = {
  name: "status",
  description: "show services: state, PIDs, uptime, restarts, last exit; exit 4 if one is failed, suppressed or in backoff",
  usage: "status [app…] [--json] [--watch [--interval 1s]]",
  args: {
    watch: { type: "boolean", alias: ["w"], description: "redraw every interval until Ctrl-C" },
    interval: { type: "string", description: "time between redraws with --watch (default 1s)" },
  },
  async run(args) {
    // Not process.stdout.isTTY: building the stdout stream costs a cold pmctl ~3 ms (issue 6).
    const color = args.color && !args.json && await isTerminal(1);
    if (!args.flags.watch) {
      if (args.flags.interval !== undefined) throw new PmError("USAGE", "--interval needs --watch");
      const { text, code } = frame(await statusReply(args, args.positionals), args, color);
      out(text);
      return code;
    }
    const intervalMs = parseDurationMs(args.flags.interval ?? "1s");
    if (intervalMs === null || intervalMs < 100) throw new PmError("USAGE", `--interval expects a duration of at least 100ms like 1s or 500ms, got '${args.flags.interval}'`);
    return watch(args, intervalMs, color);
  },
};

/** Polls the daemon every `intervalMs`; on a terminal each frame replaces the last. Ends 0 on SIGINT/SIGTERM. */
async function watch(args: ParsedCommandArgs, intervalMs: number, color: boolean): Promise<number> {
  const tty = !args.json && await isTerminal(1);
  let stopped = false;
  let wake: (() => void) | null = null;
  const stop = () => { stopped = true; wake?.(); };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const names = args.positionals;
  while (!stopped) {
    let text: string;
    try { text = frame(await statusReply(args, names), args, color).text; }
    catch (e) {
      // A daemon restart during a watch is worth seeing, not worth ending the watch for.
      text = args.json ? JSON.stringify({ error: { code: e instanceof PmError ? e.code : "INTERNAL", message: errorMessage(e) } }) : `pmctl: ${errorMessage(e)}`;
    }
    if (tty) {
      const header = `every ${intervalMs >= 1000 ? `${intervalMs / 1000}s` : `${intervalMs}ms`}: pmctl status${names.length ? ` ${names.join(" ")}` : ""}    ${new Date().toLocaleTimeString("sv-SE")}`;
      // Home, then each line cleared to its end, then everything below: no flicker of a full clear.
      writeFd(1, `\x1b[H${[header, "", ...text.split("\n")].map((l) => `${l}\x1b[K`).join("\n")}\n\x1b[J`);
    } else out(args.json ? text : `${text}\n`);
    await new Promise<void>((r) => { wake = r; setTimeout(r, intervalMs); });
    wake = null;
  }
  if (tty) writeFd(1, "\n");
  return EXIT.ok;
}
