/**
 * Command-line parsing shared by pmctl and processmaster. citty parses the flags of each
 * command; this layer adds what citty leaves out: picking the subcommand when global flags come
 * first, refusing unknown flags, and the usage-error exit code.
 */
import type { ArgsDef } from "citty";
import { discoverConfig } from "../config/discover.ts";
import { PmError } from "../util/errors.ts";

export { EXIT, EXIT_CODE_TABLE } from "../util/exit-codes.ts";

export const GLOBAL_ARGS = {
  config: { type: "string", alias: ["c"], description: "master config file (else $PROCESSMASTER_CONFIG, ./config.yaml, /etc/processmaster/config.yaml)" },
  json: { type: "boolean", description: "print JSON instead of a table (errors too: {\"error\":{\"code\",\"message\"}})" },
  color: { type: "boolean", description: "colour states on a terminal; --no-color (or NO_COLOR=1) turns it off", default: true },
  help: { type: "boolean", alias: ["h"], description: "show help" },
} as const satisfies ArgsDef;

export interface CliCommand {
  name: string;
  description: string;
  usage: string;
  args: ArgsDef;
  /** Left out of --help and completion (helpers for scripts, like `__complete`). */
  hidden?: boolean;
  run(args: ParsedCommandArgs): Promise<number>;
}

export interface ParsedCommandArgs {
  config: string;
  json: boolean;
  /** Colour wanted: not --no-color and no NO_COLOR (whether stdout is a terminal is the renderer's call). */
  color: boolean;
  positionals: string[];
  flags: Record<string, unknown>;
}

/** Flags that take a value, by every spelling (`-c`, `--config`), from an args definition. */
function flagTable(def: ArgsDef): Map<string, { name: string; takesValue: boolean }> {
  const table = new Map<string, { name: string; takesValue: boolean }>();
  for (const [name, arg] of Object.entries(def)) {
    if (arg.type === "positional") continue;
    const takesValue = arg.type === "string" || arg.type === "enum";
    const aliases = "alias" in arg && arg.alias ? (Array.isArray(arg.alias) ? arg.alias : [arg.alias]) : [];
    for (const spelling of [name, ...aliases]) table.set(spelling, { name, takesValue });
    if (arg.type === "boolean") table.set(`no-${name}`, { name, takesValue: false });
  }
  return table;
}

/** `-c FILE`, `--config FILE`: the spellings of GLOBAL_ARGS that take a value (test/cli-args-plain.test.ts checks the list). */
export const GLOBAL_VALUE_FLAGS: ReadonlySet<string> = new Set(["c", "config"]);

/** `config` of `--config=x`, `c` of `-c`: one or two dashes off, the value after `=` cut. */
function flagName(a: string): string {
  const body = a.startsWith("--") ? a.slice(2) : a.slice(1);
  const eq = body.indexOf("=");
  return eq < 0 ? body : body.slice(0, eq);
}

/**
 * The first word that is not a flag or a flag's value: the subcommand (`unknown` when it is not
 * one of `known`). No table or regex here: a cold pmctl runs this once, in the interpreter.
 */
export function findCommand(argv: string[], known: string[]): { command: string | null; rest: string[]; unknown?: string } {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") break;
    if (a.startsWith("-")) {
      if (!a.includes("=") && GLOBAL_VALUE_FLAGS.has(flagName(a))) i++;
      continue;
    }
    if (known.includes(a)) return { command: a, rest: [...argv.slice(0, i), ...argv.slice(i + 1)] };
    return { command: null, rest: argv, unknown: a };
  }
  return { command: null, rest: argv };
}

/**
 * citty's answer for the plainest calls, without loading citty: argv made only of names,
 * `-c FILE`, `--config FILE`, `--config=FILE` and `--json`; null for anything else. citty
 * imports node:util, ~0.8 ms of a cold pmctl whose own work is ~1 ms (issue 15, timestamps in a
 * compiled build). test/cli-args-plain.test.ts checks that both give the same answer.
 */
export function plainArgs(argv: string[], def: ArgsDef): Record<string, unknown> & { _: string[] } | null {
  const parsed: Record<string, unknown> & { _: string[] } = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a[0] !== "-") { parsed._.push(a); continue; }
    if (a === "--json") { parsed.json = true; continue; }
    let value: string | undefined;
    if (a === "-c" || a === "--config") value = argv[++i];
    else if (a.startsWith("--config=")) value = a.slice(9);
    if (value === undefined || value === "" || value[0] === "-" || parsed.config !== undefined) return null;
    parsed.config = parsed.c = value;
  }
  for (const [name, arg] of Object.entries(def)) {
    if ("default" in arg && arg.default !== undefined) {
      if (name !== "color" || "alias" in arg) return null; // only the one default whose spellings are known here
      parsed.color = arg.default;
    }
  }
  return parsed;
}

/** Parses a command's argv; throws PmError("USAGE") for a flag it does not know. */
export async function parseCommandArgs(argv: string[], def: ArgsDef): Promise<ParsedCommandArgs> {
  const full: ArgsDef = { ...GLOBAL_ARGS, ...def };
  // A plain argv holds only known flags, each with its value: nothing to refuse.
  const parsed = plainArgs(argv, full) ?? await parseWithCitty(argv, full);
  return {
    get config() { return discoverConfig(parsed.config === undefined ? undefined : String(parsed.config)); },
    json: Boolean(parsed.json),
    color: parsed.color !== false && !process.env.NO_COLOR,
    positionals: parsed._.map(String),
    flags: parsed,
  };
}

/** Refuses unknown flags and a missing value (citty takes both silently), then lets citty parse. */
async function parseWithCitty(argv: string[], full: ArgsDef): Promise<Record<string, unknown> & { _: string[] }> {
  const table = flagTable(full);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") break;
    if (!a.startsWith("-") || a === "-") continue;
    if (/^-\d+$/.test(a)) continue; // a negative number as a value
    const known = table.get(flagName(a));
    if (!known) throw new PmError("USAGE", `unknown option '${a}'`);
    if (known.takesValue && !a.includes("=")) {
      if (i + 1 >= argv.length) throw new PmError("USAGE", `option '${a}' needs a value`);
      i++;
    }
  }
  return (await import("citty")).parseArgs(argv, full) as Record<string, unknown> & { _: string[] };
}

/** A whole number ≥ 0 from a flag (citty has no number type). */
export function intFlag(value: unknown, flag: string, fallback: number): number {
  if (value === undefined || value === true) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new PmError("USAGE", `${flag} expects a whole number ≥ 0, got '${value}'`);
  return n;
}
