/**
 * Loading the whole configuration: the master file, then every service file in its
 * `config_directory`. Entry points for the daemon (`loadConfig`), `pmctl check`
 * (`checkConfig`) and anything that only needs the master (`loadMasterConfig`).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PmError, errorMessage } from "../util/errors.ts";
import { envFileReader, readEnvironmentFile } from "./env-file.ts";
import { formatProblem } from "./types.ts";
import type { Config, ConfigProblem, MasterConfig, ServiceConfig } from "./types.ts";
import { parseMaster } from "./master.ts";
import type { MasterParse } from "./master.ts";
import { parseServiceFile } from "./service.ts";
import { describeFsError } from "./source.ts";
import { dependencyProblems } from "./deps.ts";
import { untrustedFolderReason } from "../util/file-trust.ts";
import { runtimeFindings, type RuntimeFindings } from "./runtime-check.ts";

export { splitCommand, splitCommandWords } from "./command.ts";
export { diffConfigs, deepEqual } from "./diff.ts";
export type { ConfigDiff } from "./diff.ts";
export { resolveUser, resolveGroup, userGroups } from "./users.ts";
export type { UserInfo, GroupInfo } from "./users.ts";
export { parseCpuMax, normalizeSignal } from "./values.ts";
export { parseSockMode, cgroupNameError } from "./master.ts";
export { serviceNameError } from "./service.ts";
export { formatProblem } from "./types.ts";

/** A config error carrying every problem; `message` is one `file:line: key: message` per line. */
/**
 * `check` reads each environment file as the daemon would at start (the daemon reads them only
 * then): the problems of each, and the variables they give together (none when one of them has a
 * problem, as the daemon would not start the service), for runtimeFindings' PATH.
 */
function readEnvironmentFilesForCheck(svc: ServiceConfig): { problems: ConfigProblem[]; env: Record<string, string> } {
  const problems: ConfigProblem[] = [];
  const env: Record<string, string> = {};
  const who = envFileReader(svc.process);
  for (const f of svc.process.environmentFiles) {
    try { Object.assign(env, readEnvironmentFile(f.path, { optional: f.optional, who })); }
    catch (e) { problems.push({ file: svc.file, key: "process.environment_file", message: errorMessage(e) }); }
  }
  return { problems, env: problems.length > 0 ? {} : env };
}

export class ConfigError extends PmError {
  readonly problems: ConfigProblem[];
  constructor(code: "CONFIG_INVALID" | "CONFIG_UNREADABLE", problems: ConfigProblem[]) {
    super(code, problems.map(formatProblem).join("\n"));
    this.problems = problems;
  }
}

function throwMaster(m: MasterParse): never {
  throw new ConfigError(m.unreadable ? "CONFIG_UNREADABLE" : "CONFIG_INVALID", m.problems);
}

/** The master config; throws ConfigError (CONFIG_INVALID / CONFIG_UNREADABLE) listing every problem. */
export function loadMasterConfig(masterPath: string): MasterConfig {
  const m = parseMaster(masterPath);
  if (!m.master) throwMaster(m);
  return m.master;
}

/**
 * Master plus every service. A bad service file lands in `serviceErrors` and that service is
 * left out; the master being bad, or its config_directory unreadable, throws.
 */
export function loadConfig(masterPath: string): Config {
  const m = parseMaster(masterPath);
  if (!m.master) throwMaster(m);
  const scan = scanServices(m.master.configDirectory, path.dirname(m.master.file), m.master.logDirectory);
  if (scan.dirProblem) {
    throw new ConfigError("CONFIG_INVALID", [{ file: m.file, line: m.configDirectoryLine, key: "config_directory", message: scan.dirProblem }]);
  }
  return { master: m.master, services: scan.services, serviceErrors: scan.problems };
}

/** Every problem of the master and of all service files; empty when all is good. */
export function checkConfig(masterPath: string): ConfigProblem[] {
  return checkFiles(masterPath).problems;
}

/** `fromFiles`: each service's variables from its environment files, read once for both checks. */
function checkFiles(masterPath: string): { problems: ConfigProblem[]; services: Map<string, ServiceConfig>; fromFiles: Map<string, Record<string, string>> } {
  const m = parseMaster(masterPath);
  const problems = [...m.problems];
  let services = new Map<string, ServiceConfig>();
  const fromFiles = new Map<string, Record<string, string>>();
  if (m.configDirectory !== undefined && !m.unreadable) {
    const scan = scanServices(m.configDirectory, path.dirname(m.file), m.logDirectory);
    if (scan.dirProblem) problems.push({ file: m.file, line: m.configDirectoryLine, key: "config_directory", message: scan.dirProblem });
    problems.push(...scan.problems);
    for (const svc of scan.services.values()) {
      const read = readEnvironmentFilesForCheck(svc);
      problems.push(...read.problems);
      fromFiles.set(svc.name, read.env);
    }
    services = scan.services;
  }
  return { problems, services, fromFiles };
}

/**
 * `check`: every problem of the files, plus what would fail at run time for the services that
 * load (program not found or not executable by the service's user, working directory not
 * reachable, log folders that cannot be created), plus warnings that do not fail the check.
 */
export function checkConfigDeep(masterPath: string): RuntimeFindings {
  const { problems, services, fromFiles } = checkFiles(masterPath);
  const runtime = runtimeFindings({ services }, process.env, fromFiles);
  return { errors: [...problems, ...runtime.errors], warnings: runtime.warnings };
}

export interface ServiceScan {
  services: Map<string, ServiceConfig>;
  problems: ConfigProblem[];
  /** Set when the folder itself cannot be listed. */
  dirProblem?: string;
}

/** Service files of a folder: `*.yaml` / `*.yml`, not starting with `.`, in byte order of their names. */
export function listServiceFiles(dir: string): string[] {
  return fs.readdirSync(dir)
    .filter((n) => /\.ya?ml$/.test(n) && !n.startsWith("."))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((n) => path.join(dir, n));
}

/** Load every service file of `dir`, then check names and log files across services. */
export function scanServices(dir: string, masterDir: string, logDirectory?: string): ServiceScan {
  const services = new Map<string, ServiceConfig>();
  const problems: ConfigProblem[] = [];
  let files: string[];
  try {
    if (!fs.statSync(dir).isDirectory()) return { services, problems, dirProblem: `${dir} is not a directory; expected the folder of service files` };
    // Someone who can add entries to the folder could add services (or links to files meant for something else).
    const distrust = process.getuid?.() === 0 ? untrustedFolderReason(dir, new Set([0])) : null;
    if (distrust) return { services, problems, dirProblem: `not trusted: ${distrust}; a root daemon reads service files only from a folder that root owns and nobody else can write` };
    files = listServiceFiles(dir);
  } catch (e) {
    return { services, problems, dirProblem: `cannot read the service folder ${dir}: ${describeFsError(e)}` };
  }
  /** Canonical log path → who writes it. */
  const logOwners = new Map<string, { service: string; file: string }>();
  const dependsOnLines = new Map<string, number | undefined>();
  // The real path of each log folder, learnt once for all the files of this scan: a boot of
  // 5000 files made ~40 system calls per file, most of them the same stats and realpaths
  // (issue 15). Kept for this scan only: the next scan (update) looks again. (The trust check of
  // each file walks its whole path every time: see file-trust.ts.)
  const realFolders = new Map<string, string | null>();
  const canonical = (p: string) => canonicalPath(p, realFolders);
  for (const file of files) {
    const r = parseServiceFile(file, masterDir, logDirectory);
    if (!r.service) { problems.push(...r.problems); continue; }
    const s = r.service;
    const lines = r.lines ?? {};
    const first = services.get(s.name);
    if (first) {
      problems.push({
        file, line: lines.name, key: "name",
        message: `duplicate service name '${s.name}'${lines.name === undefined ? " (from the file name)" : ""}: already defined by ${first.file}; this file is ignored`,
      });
      continue;
    }
    const outPath = canonical(s.logs.stdout), errPath = canonical(s.logs.stderr);
    const own = new Set([outPath, errPath]);
    let clash: ConfigProblem | undefined;
    for (const [key, p, c] of [["logs.stdout", s.logs.stdout, outPath], ["logs.stderr", s.logs.stderr, errPath]] as const) {
      const owner = logOwners.get(c);
      if (owner && !clash) {
        clash = {
          file, line: lines[key] ?? lines["process.working_directory"] ?? lines.logs ?? lines.process, key,
          message: `${p} is already written by service '${owner.service}' (${owner.file}); give this service its own file by setting ${key} (or a working_directory of its own)`,
        };
      }
    }
    if (clash) { problems.push(clash); continue; }
    for (const c of own) logOwners.set(c, { service: s.name, file });
    services.set(s.name, s);
    dependsOnLines.set(s.name, lines.depends_on);
  }
  // depends_on across files: unknown names and cycles leave those services out, as any bad file.
  // Repeated: a service that needs one left out is left out too.
  for (;;) {
    const graph = dependencyProblems([...services.values()].map((s) => ({ name: s.name, file: s.file, dependsOn: s.dependsOn, line: dependsOnLines.get(s.name) })));
    for (const name of graph.bad) services.delete(name);
    problems.push(...graph.problems);
    if (graph.bad.size === 0) break;
  }
  return { services, problems };
}

/** The path with its folder's symlinks resolved (when the folder exists), to catch two names for one file. */
function canonicalPath(p: string, realFolders: Map<string, string | null>): string {
  const dir = path.dirname(p);
  let real = realFolders.get(dir);
  if (real === undefined) {
    try { real = fs.realpathSync(dir); } catch { real = null; }
    realFolders.set(dir, real);
  }
  return real === null ? p : path.join(real, path.basename(p));
}
