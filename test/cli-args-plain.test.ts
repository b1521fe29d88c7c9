/**
 * plainArgs() answers the plainest calls (names, `-c FILE`, `--config[=]FILE`, `--json`) without
 * loading citty (issue 15: citty's node:util import is ~0.8 ms of a cold pmctl). Its answer must
 * be citty's for every argv it accepts, and it must leave everything else to citty.
 */
import { expect, test } from "bun:test";
import { parseArgs, type ArgsDef } from "citty";
import { findCommand, GLOBAL_ARGS, GLOBAL_VALUE_FLAGS, parseCommandArgs, plainArgs } from "../src/cli/args.ts";

const DEFS: Record<string, ArgsDef> = {
  none: {},
  status: { watch: { type: "boolean", alias: ["w"] }, interval: { type: "string" } },
  stop: { "with-dependents": { type: "boolean" } },
  logs: { lines: { type: "string", alias: ["n"] }, follow: { type: "boolean", alias: ["f"] } },
};

const PLAIN: string[][] = [
  [], ["web"], ["web", "db"], ["all"], ["-c", "/x/config.yaml"], ["--config", "rel.yaml", "web"],
  ["--config=/x/c.yaml"], ["--json"], ["--json", "--json"], ["web", "--json", "-c", "c.yaml", "db"],
  ["", "web"], ["-c", "a b.yaml"],
];

const OTHER: string[][] = [
  ["--no-color"], ["--color"], ["-c"], ["-c", "-x"], ["-c", ""], ["--config="], ["-c=x"], ["-c", "a", "-c", "b"],
  ["--json=false"], ["--json=true"], ["--"], ["web", "--", "-c", "x"], ["-"], ["-w"], ["--watch"], ["--interval", "2s"],
  ["-n", "5"], ["--with-dependents"], ["-h"], ["-1"], ["--c", "x"], ["--CONFIG", "x"],
];

/** The fields the commands read: positionals, every flag name and alias, camelCase spellings. */
function view(parsed: Record<string, unknown>, def: ArgsDef) {
  const names = ["_", "c", "withDependents", ...Object.keys(def)];
  for (const a of Object.values(def)) if ("alias" in a && a.alias) names.push(...(Array.isArray(a.alias) ? a.alias : [a.alias]));
  return Object.fromEntries(names.map((n) => [n, parsed[n]]));
}

test("plainArgs gives citty's answer for every plain argv", () => {
  for (const [defName, own] of Object.entries(DEFS)) {
    const full: ArgsDef = { ...GLOBAL_ARGS, ...own };
    for (const argv of PLAIN) {
      const mine = plainArgs(argv, full);
      expect(mine, `${defName} ${JSON.stringify(argv)}`).not.toBeNull();
      expect(view(mine!, full), `${defName} ${JSON.stringify(argv)}`).toEqual(view(parseArgs(argv, full) as Record<string, unknown>, full));
    }
  }
});

test("plainArgs leaves every other argv to citty", () => {
  for (const own of Object.values(DEFS)) {
    for (const argv of OTHER) expect(plainArgs(argv, { ...GLOBAL_ARGS, ...own }), JSON.stringify(argv)).toBeNull();
  }
  // A default it does not know (only `color` is): citty decides.
  expect(plainArgs([], { ...GLOBAL_ARGS, lines: { type: "string", default: "50" } })).toBeNull();
});

test("parseCommandArgs reads the same through both paths", async () => {
  for (const argv of [["-c", "/x/c.yaml", "web"], ["--no-color", "-c", "/x/c.yaml", "web"], ["--json", "--config=/x/c.yaml"]]) {
    const p = await parseCommandArgs(argv, DEFS.status!);
    const q = parseArgs(argv, { ...GLOBAL_ARGS, ...DEFS.status! }) as Record<string, unknown> & { _: string[] };
    expect({ config: p.config, json: p.json, positionals: p.positionals, watch: p.flags.watch })
      .toEqual({ config: String(q.config), json: Boolean(q.json), positionals: q._, watch: q.watch });
    expect(p.color).toBe(q.color !== false && !process.env.NO_COLOR);
  }
});

test("GLOBAL_VALUE_FLAGS lists every spelling of a global flag that takes a value", () => {
  const spellings = Object.entries(GLOBAL_ARGS).filter(([, a]) => a.type === "string")
    .flatMap(([name, a]) => [name, ...("alias" in a ? a.alias : [])]);
  expect([...GLOBAL_VALUE_FLAGS].sort()).toEqual(spellings.sort());
});

test("findCommand skips the value of -c/--config, not of other flags", () => {
  const known = ["status", "logs"];
  expect(findCommand(["-c", "status", "logs"], known)).toEqual({ command: "logs", rest: ["-c", "status"] });
  expect(findCommand(["--config", "x", "--json", "status", "web"], known)).toEqual({ command: "status", rest: ["--config", "x", "--json", "web"] });
  expect(findCommand(["--config=status", "logs"], known)).toEqual({ command: "logs", rest: ["--config=status"] });
  expect(findCommand(["--json", "nope"], known)).toEqual({ command: null, rest: ["--json", "nope"], unknown: "nope" });
  expect(findCommand(["--", "status"], known)).toEqual({ command: null, rest: ["--", "status"] });
});
