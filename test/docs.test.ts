/**
 * Docs that cannot drift. Every YAML block in README.md passes the config check (master or
 * service, told apart by a `process:` key); every master config under examples/ passes the full
 * `processmaster check` (run-time checks included: the examples need only /bin/sh and perl, as on any Debian or Ubuntu host) and
 * every service file there is reached by one of them; the README's key tables list exactly the
 * keys the parser accepts, each with a type, a default and a meaning; the examples use every
 * documented key at least once (the checks, options and conditions inside `readiness`,
 * `liveness` and `depends_on` too); `pmctl show --json` prints exactly the documented keys; and
 * the README's exit-code table is the one `pmctl --help` prints.
 *
 * README blocks are checked for keys, types, values and their combinations. What depends on the
 * host they are read on is not held against them: a `working_directory` that does not exist here,
 * a user or group unknown here, a program not installed here.
 *
 * A new key group (a mapping like `restart_policy.tolerance`) needs a line in GROUPS below.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { EXIT_CODE_TABLE } from "../src/cli/args.ts";
import { CONDITIONS, LIVENESS_KEYS, PROBE_KINDS, READINESS_KEYS } from "../src/config/health.ts";
import { checkConfig, loadConfig } from "../src/config/load.ts";
import { MASTER_KEYS } from "../src/config/master.ts";
import { LOGS_KEYS, PROCESS_KEYS, RESOURCES_KEYS, RESTART_KEYS, SERVICE_KEYS, TOLERANCE_KEYS } from "../src/config/service.ts";
import { formatProblem, type ConfigProblem } from "../src/config/types.ts";
import { pmCommand, pmctlCommand, REPO, runPm } from "./helpers/harness.ts";
import { yamlBlocks } from "./helpers/readme-services.ts";

/** Service keys whose value is a mapping of more keys (dotted path → its keys). */
const GROUPS: Record<string, readonly string[]> = {
  process: PROCESS_KEYS,
  logs: LOGS_KEYS,
  restart_policy: RESTART_KEYS,
  "restart_policy.tolerance": TOLERANCE_KEYS,
  resources: RESOURCES_KEYS,
};

const README = join(REPO, "README.md");
const EXAMPLES = join(REPO, "examples");

/** Every key path the service parser accepts: `name`, `process.command`, `restart_policy.tolerance.duration`. */
function serviceKeyPaths(prefix = "", keys: readonly string[] = SERVICE_KEYS): string[] {
  return keys.flatMap((k) => {
    const full = prefix ? `${prefix}.${k}` : k;
    return GROUPS[full] ? serviceKeyPaths(full, GROUPS[full]) : [full];
  });
}

/** The key paths a parsed YAML document uses (a mapping not in GROUPS, like environment, is one key). */
function usedKeyPaths(value: unknown, prefix = ""): string[] {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return prefix ? [prefix] : [];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => {
    const full = prefix ? `${prefix}.${k}` : k;
    if (k.startsWith("x-") && !prefix) return [];
    return GROUPS[full] ? usedKeyPaths(v, full) : [full];
  });
}

/**
 * What the examples must also show inside the sections the key table documents in one row each:
 * every probe check (in readiness or liveness), each option of readiness and of liveness, each
 * depends_on condition and its list form.
 */
const PROBE_OPTIONS = {
  readiness: READINESS_KEYS.filter((k) => !(PROBE_KINDS as readonly string[]).includes(k)),
  liveness: LIVENESS_KEYS.filter((k) => !(PROBE_KINDS as readonly string[]).includes(k)),
};
const SECTION_USES = [
  ...PROBE_KINDS.map((k) => `check ${k}`),
  ...PROBE_OPTIONS.readiness.map((k) => `readiness.${k}`),
  ...PROBE_OPTIONS.liveness.map((k) => `liveness.${k}`),
  ...CONDITIONS.map((c) => `depends_on: ${c}`), "depends_on: [list]",
];

/** The SECTION_USES a parsed service file shows. */
function sectionUses(doc: Record<string, unknown> | null): string[] {
  const uses: string[] = [];
  for (const section of ["readiness", "liveness"] as const) {
    const v = doc?.[section];
    if (v === null || typeof v !== "object") continue;
    for (const k of Object.keys(v)) uses.push((PROBE_KINDS as readonly string[]).includes(k) ? `check ${k}` : `${section}.${k}`);
  }
  const deps = doc?.depends_on;
  if (Array.isArray(deps)) uses.push("depends_on: [list]");
  else if (deps !== null && typeof deps === "object") for (const c of Object.values(deps)) uses.push(`depends_on: ${c}`);
  return uses;
}

const isService = (doc: unknown) => doc !== null && typeof doc === "object" && "process" in (doc as object);

/**
 * Problems that say only that this host lacks something the example names, or that a block
 * shows one service file of several (a `depends_on` naming a service of another block).
 */
const HOST_FACT = [
  /^the folder .* does not exist/, /^unknown user '/, /^unknown group '/,
  /^unknown service '[^']+' \(no valid service file defines it\)$/,
];
const hostFact = (p: ConfigProblem) => HOST_FACT.some((re) => re.test(p.message));

const scratch = mkdtempSync(join(tmpdir(), "pmdocs-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
let seq = 0;

/** The check of one README block: its problems, host facts left out. */
export function checkBlock(text: string): ConfigProblem[] {
  const dir = join(scratch, `block-${++seq}`);
  mkdirSync(join(dir, "config.d"), { recursive: true });
  const doc = parseYaml(text);
  if (isService(doc)) {
    writeFileSync(join(dir, "config.yaml"), "config_directory: ./config.d\n");
    writeFileSync(join(dir, "config.d", "example.yaml"), text);
  } else {
    writeFileSync(join(dir, "config.yaml"), text);
  }
  return checkConfig(join(dir, "config.yaml")).filter((p) => !hostFact(p));
}

/** Rows of the README tables under a heading that contains `heading`: key cell → the other cells. */
function keyTable(markdown: string, heading: string): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  const lines = markdown.split("\n");
  const at = lines.findIndex((l) => /^#{2,5} /.test(l) && l.includes(heading));
  if (at < 0) return rows;
  let i = at + 1;
  while (i < lines.length && !lines[i]!.startsWith("| key | type | default | meaning |")) {
    if (/^#{2,5} /.test(lines[i]!)) return rows;
    i++;
  }
  for (i += 2; i < lines.length && lines[i]!.startsWith("|"); i++) {
    const cells = lines[i]!.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim());
    for (const key of cells[0]!.match(/`[^`]+`/g) ?? []) rows.set(key.slice(1, -1), cells.slice(1));
  }
  return rows;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

const readme = readFileSync(README, "utf8");

describe("README YAML blocks", () => {
  const blocks = yamlBlocks(readme);
  test("there are master and service blocks to check", () => {
    expect(blocks.filter((b) => isService(parseYaml(b.text))).length).toBeGreaterThan(0);
    expect(blocks.filter((b) => !isService(parseYaml(b.text))).length).toBeGreaterThan(0);
  });
  for (const b of blocks) {
    test(`README.md:${b.line} passes check`, () => {
      expect(checkBlock(b.text).map(formatProblem)).toEqual([]);
    });
  }
  test("a block indented in a list item is found and dedented, and its problems reported", () => {
    const md = "- A list item:\n\n  ```yaml\n  process:\n    command: x\n    stop_grace: 5s\n  ```\n";
    const [block, ...more] = yamlBlocks(md);
    expect(more).toEqual([]);
    expect(block).toEqual({ line: 4, text: "process:\n  command: x\n  stop_grace: 5s\n" });
    expect(checkBlock(block!.text).map((p) => p.message).join("\n")).toMatch(/unknown key 'stop_grace'; did you mean 'stop_grace_ms'/);
  });

  test("the block checker does report a broken block (the test can fail)", () => {
    const broken = checkBlock("process:\n  command: x\n  schedule: '0 * * * *'\nrestart_policy:\n  policy: always\n  restart_backof_ms: 5\n");
    expect(broken.map((p) => p.message).join("\n")).toMatch(/did you mean 'restart_backoff_ms'/);
    expect(broken.map((p) => p.message).join("\n")).toMatch(/policy: always cannot be combined with process.schedule/);
  });
});

describe("examples/", () => {
  const yamlFiles = filesUnder(EXAMPLES).filter((f) => /\.ya?ml$/.test(f));
  const masters = yamlFiles.filter((f) => !isService(parseYaml(readFileSync(f, "utf8"))));
  const services = yamlFiles.filter((f) => !masters.includes(f));

  for (const m of masters) {
    test(`processmaster check -c examples/${relative(EXAMPLES, m)}: ok, no warnings`, async () => {
      const r = await runPm(pmCommand(["check", "-c", m]));
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
    });
  }

  test("every service file under examples/ is in a master config's config_directory", () => {
    const dirs = masters.map((m) => resolve(dirname(m), (parseYaml(readFileSync(m, "utf8")) ?? {}).config_directory ?? "./config.d"));
    expect(services.filter((s) => !dirs.includes(dirname(s)))).toEqual([]);
  });

  test("the examples use every documented key at least once", () => {
    const used = new Set<string>();
    for (const m of masters) for (const k of usedKeyPaths(parseYaml(readFileSync(m, "utf8")))) used.add(`master:${k}`);
    for (const s of services) {
      const doc = parseYaml(readFileSync(s, "utf8"));
      for (const k of usedKeyPaths(doc)) used.add(`service:${k}`);
      for (const k of sectionUses(doc)) used.add(`service:${k}`);
    }
    const documented = [
      ...[...keyTable(readme, "Master config keys").keys()].map((k) => `master:${k}`),
      ...[...keyTable(readme, "Service file keys").keys()].map((k) => `service:${k}`),
      ...SECTION_USES.map((k) => `service:${k}`),
    ];
    expect(documented.length).toBeGreaterThan(0);
    expect(documented.filter((k) => !used.has(k))).toEqual([]);
  });
});

describe("README key tables", () => {
  test("the master table lists exactly the master keys, each with type, default and meaning", () => {
    const table = keyTable(readme, "Master config keys");
    expect([...table.keys()].sort()).toEqual([...MASTER_KEYS].sort());
    for (const [key, cells] of table) expect(cells.every((c) => c.length > 0), key).toBe(true);
  });

  test("the readiness, liveness and depends_on rows name every check, option and condition", () => {
    const table = keyTable(readme, "Service file keys");
    const named = (key: string) => new Set((table.get(key) ?? []).join(" ").match(/`[^`]+`/g)?.map((m) => m.slice(1, -1)));
    expect(PROBE_KINDS.filter((k) => !named("readiness").has(k))).toEqual([]);
    expect(PROBE_OPTIONS.readiness.filter((k) => !named("readiness").has(k))).toEqual([]);
    expect(PROBE_OPTIONS.liveness.filter((k) => !named("liveness").has(k))).toEqual([]);
    expect(CONDITIONS.filter((c) => !named("depends_on").has(c))).toEqual([]);
  });

  test("the service table lists exactly the service keys, each with type, default and meaning", () => {
    const table = keyTable(readme, "Service file keys");
    expect([...table.keys()].sort()).toEqual(serviceKeyPaths().sort());
    for (const [key, cells] of table) expect(cells.every((c) => c.length > 0), key).toBe(true);
  });
});

describe("pmctl show", () => {
  const master = join(EXAMPLES, "config.yaml");
  const names = [...loadConfig(master).services.keys()];
  test("there are example services to show", () => expect(names.length).toBeGreaterThan(3));
  for (const name of names) {
    test(`show ${name} --json prints exactly the documented service keys`, async () => {
      const r = await runPm(pmctlCommand(["-c", master, "show", name, "--json"]));
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(usedKeyPaths(JSON.parse(r.stdout).config).sort()).toEqual(serviceKeyPaths().sort());
    });
  }
});

describe("exit codes", () => {
  /** The README's `| code | meaning |` rows, backticks dropped. */
  function readmeExitCodes(): [number, string][] {
    const lines = readme.split("\n");
    const at = lines.indexOf("| code | meaning |");
    expect(at).toBeGreaterThan(0);
    const rows: [number, string][] = [];
    for (let i = at + 2; i < lines.length && lines[i]!.startsWith("|"); i++) {
      const [code, meaning] = lines[i]!.slice(1, -1).split("|").map((c) => c.trim().replace(/`/g, ""));
      rows.push([Number(code), meaning!]);
    }
    return rows;
  }

  test("the README's exit-code table is the one pmctl --help prints", async () => {
    expect(readmeExitCodes()).toEqual(EXIT_CODE_TABLE.map(([code, meaning]) => [code, meaning]));
    const help = await runPm(pmctlCommand(["--help"]));
    for (const [code, meaning] of EXIT_CODE_TABLE) expect(help.stdout).toContain(`  ${code}  ${meaning}\n`);
  });
});
