/**
 * The service files README.md shows under "Running real servers" (the ```yaml blocks headed
 * `# config.d/<name>.yaml`), as the real-server tests run them. A test takes a block as it is and
 * replaces only what must differ per test: the host paths and names in the command (a data folder,
 * a config file, a port, a socket), the program where this host installs it elsewhere, and the
 * process keys in PER_TEST_KEYS. Every other key comes from the README, so the README shows what
 * the tests run and a change to a block is run by them.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { splitCommand } from "../../src/config/command.ts";
import { REPO, type ServiceSpec } from "./harness.ts";

/** Process keys a test may set: where its files are and what its runtime folder is called. */
export const PER_TEST_KEYS = ["working_directory", "runtime_directory"] as const;

export interface ReadmeBlock extends YamlBlock {
  spec: ServiceSpec & { process: Record<string, unknown> };
}

export interface YamlBlock {
  /** Line (1-based) of the block's first line in the markdown. */
  line: number;
  text: string;
}

/** Every ```yaml block, also one indented inside a list item (its lines dedented by the fence's indent). */
export function yamlBlocks(markdown: string): YamlBlock[] {
  const blocks: YamlBlock[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const fence = /^( *)```ya?ml\s*$/.exec(lines[i]!);
    if (!fence) continue;
    const indent = fence[1]!.length;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^ *```\s*$/.test(lines[end]!)) end++;
    const body = lines.slice(start, end).map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length)));
    blocks.push({ line: start + 1, text: body.join("\n") + "\n" });
    i = end;
  }
  return blocks;
}

/** The one YAML block of README.md whose first line is `# config.d/<name>.yaml`, parsed; throws when there is none, more than one, or it is no service file. */
export function readmeBlock(name: string, markdown = readFileSync(join(REPO, "README.md"), "utf8")): ReadmeBlock {
  const heading = `# config.d/${name}.yaml`;
  const found = yamlBlocks(markdown).filter((b) => b.text.split("\n")[0]!.trim() === heading);
  if (found.length !== 1) throw new Error(`README.md has ${found.length} YAML blocks headed '${heading}'; the tests need exactly one`);
  const { line, text } = found[0]!;
  const spec = parseYaml(text) as ReadmeBlock["spec"];
  const command = spec?.process?.command;
  if (typeof command !== "string" || command.trim() === "") {
    throw new Error(`README.md:${line}: the block '${heading}' has no process.command string`);
  }
  return { line, text, spec };
}

/** Every key path of a parsed block, nested mappings followed: `process.limits.nofile`, `restart_policy.policy`. */
export function keyPaths(value: unknown, prefix = ""): string[] {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return prefix ? [prefix] : [];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => keyPaths(v, prefix ? `${prefix}.${k}` : k)).sort();
}

export interface ReadmeOverrides {
  /** argv[0], where this host installs the program elsewhere (postgres's version folder). */
  program?: string;
  /** Option → its value, for options the README's command shows (`-c` → this test's nginx.conf). */
  set?: Record<string, string>;
  /** Arguments the README's command does not show, appended; the caller says why. */
  add?: string[];
  /** Process keys of PER_TEST_KEYS only. */
  process?: Partial<Record<(typeof PER_TEST_KEYS)[number], unknown>>;
  /**
   * Another value for a process key the block has, one the block's own comment on that key's
   * line names (`stop_signal: SIGINT  # fast shutdown; SIGTERM for smart` → SIGTERM).
   */
  variant?: Record<string, string>;
}

/** The README's service file `name` with only `o` changed; throws where `o` changes what it may not. */
export function readmeService(name: string, o: ReadmeOverrides = {}, markdown?: string): ReadmeBlock["spec"] {
  const block = readmeBlock(name, markdown);
  const where = `README.md:${block.line} (${name})`;
  const argv = splitCommand(block.spec.process.command as string);
  if (o.program) argv[0] = o.program;
  for (const [flag, value] of Object.entries(o.set ?? {})) {
    const at = argv.indexOf(flag);
    if (at < 1 || at + 1 >= argv.length) throw new Error(`${where}: the command shows no '${flag} <value>' to replace`);
    argv[at + 1] = value;
  }
  argv.push(...(o.add ?? []));

  const process: Record<string, unknown> = { ...block.spec.process, command: argv };
  for (const [key, value] of Object.entries(o.process ?? {})) {
    if (!(PER_TEST_KEYS as readonly string[]).includes(key)) throw new Error(`${where}: process.${key} comes from the README; a test may set only ${PER_TEST_KEYS.join(", ")}`);
    process[key] = value;
  }
  for (const [key, value] of Object.entries(o.variant ?? {})) {
    const line = block.text.split("\n").find((l) => new RegExp(`^\\s+${key}:`).test(l));
    const comment = line?.includes("#") ? line.slice(line.indexOf("#")) : "";
    if (!line || !comment.includes(value)) throw new Error(`${where}: process.${key} has no comment naming '${value}' as its other value`);
    process[key] = value;
  }
  return { ...block.spec, process };
}
