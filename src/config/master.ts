/** The master config file (`config.yaml`): parsing and validation. */
import * as path from "node:path";
import { isScalar } from "./yaml.ts";
import type { ConfigProblem, MasterConfig } from "./types.ts";
import { MapView, clip, describe, parseYaml, readConfigSource, scalarText } from "./source.ts";
import { readCpuMax, readMemoryLimit, readString } from "./values.ts";
import { resolveGroup, resolveUser } from "./users.ts";

export const MASTER_KEYS = [
  "config_directory", "sock_path", "sock_owner", "sock_group", "sock_read_group", "sock_mode",
  "state_file", "log_directory", "cgroup_root", "cgroup_name", "cgroup_cpu_max", "cgroup_memory_max", "cgroup_memory_swap_max",
] as const;

export const DEFAULT_SOCK_MODE = 0o600;

export interface MasterParse {
  /** Set only when there are no problems. */
  master?: MasterConfig;
  problems: ConfigProblem[];
  /** True when the file itself could not be opened or read (missing, permissions, loop). */
  unreadable: boolean;
  /** Absolute path of the master file. */
  file: string;
  /** Where the service files are, when that key was valid (even if other keys were not). */
  configDirectory?: string;
  /** Line of the `config_directory` key, for errors about the folder. */
  configDirectoryLine?: number;
  /** Where services without a working_directory log (`log_directory` or its default). */
  logDirectory?: string;
}

/**
 * `log_directory` when not set: `/var/log/processmaster` for a system install (the master
 * config under /etc), else `logs` beside the master config. Services without a
 * working_directory log to `<log_directory>/<service>/`, so their default files never collide.
 */
export function defaultLogDirectory(masterFile: string): string {
  return masterFile.startsWith("/etc/") ? "/var/log/processmaster" : path.join(path.dirname(masterFile), "logs");
}

export function parseMaster(masterPath: string): MasterParse {
  const file = path.resolve(masterPath);
  const dir = path.dirname(file);
  const src = readConfigSource(file);
  if (!src.ok) return { problems: [src.problem], unreadable: src.kind === "unreadable", file };
  const { ctx, root } = parseYaml(file, src.text);
  if (ctx.problems.length > 0 && root === null) return { problems: ctx.problems, unreadable: false, file };
  // A file with only comments (or `~`) means: all defaults.
  const rootNode = root !== null && isScalar(root) && root.value === null ? null : root;
  const top = MapView.open(ctx, rootNode, "", MASTER_KEYS);
  if (!top) return { problems: ctx.problems, unreadable: false, file };

  const pathKey = (name: string, def?: string): string | undefined => {
    const v = readString(top, name);
    if (v === undefined) return def === undefined ? undefined : path.resolve(dir, def);
    return path.resolve(dir, v);
  };
  const configDirectory = pathKey("config_directory", "./config.d");
  const configDirectoryValid = !top.has("config_directory") || ctx.problems.every((p) => p.key !== "config_directory");
  const sockPath = pathKey("sock_path", "./processmaster.sock")!;
  const stateFile = pathKey("state_file", "./processmaster.state.json")!;
  const logDirectory = pathKey("log_directory") ?? defaultLogDirectory(file);

  const sockOwner = readString(top, "sock_owner", { loose: true });
  if (sockOwner !== undefined && !resolveUser(sockOwner)) top.add(top.get("sock_owner"), `unknown user '${clip(sockOwner)}' (not in /etc/passwd)`);
  const sockGroup = readString(top, "sock_group", { loose: true });
  if (sockGroup !== undefined && !resolveGroup(sockGroup)) top.add(top.get("sock_group"), `unknown group '${clip(sockGroup)}' (not in /etc/group)`);
  const sockReadGroup = readString(top, "sock_read_group", { loose: true });
  if (sockReadGroup !== undefined && !resolveGroup(sockReadGroup)) top.add(top.get("sock_read_group"), `unknown group '${clip(sockReadGroup)}' (not in /etc/group)`);

  const sockMode = readSockMode(top);

  let cgroupRoot = readString(top, "cgroup_root");
  if (cgroupRoot !== undefined) {
    if (!path.isAbsolute(cgroupRoot)) {
      top.add(top.get("cgroup_root"), `expected an absolute path like /sys/fs/cgroup, found '${clip(cgroupRoot)}'`);
      cgroupRoot = undefined;
    } else cgroupRoot = path.resolve(cgroupRoot);
  }
  const cgroupName = readString(top, "cgroup_name") ?? "processmaster";
  if (top.has("cgroup_name")) {
    const err = cgroupNameError(cgroupName);
    if (err) top.add(top.get("cgroup_name"), err);
  }
  const cgroupCpuMax = readCpuMax(top, "cgroup_cpu_max");
  const cgroupMemoryMax = readMemoryLimit(top, "cgroup_memory_max", 1);
  const cgroupMemorySwapMax = readMemoryLimit(top, "cgroup_memory_swap_max", 0);

  ctx.problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  const result: MasterParse = {
    problems: ctx.problems,
    unreadable: false,
    file,
    configDirectory: configDirectoryValid ? configDirectory : undefined,
    configDirectoryLine: ctx.lineOf(top.get("config_directory")?.keyNode),
    logDirectory,
  };
  if (ctx.problems.length === 0) {
    result.master = {
      file,
      configDirectory: configDirectory!,
      sockPath,
      sockOwner,
      sockGroup,
      sockReadGroup,
      sockMode: sockMode ?? DEFAULT_SOCK_MODE,
      stateFile,
      logDirectory,
      cgroupRoot,
      cgroupName,
      cgroupCpuMax,
      cgroupMemoryMax,
      cgroupMemorySwapMax,
    };
  }
  return result;
}

/**
 * `sock_mode`: `660`, `0660`, `"0660"`, `"0o660"` all mean 0o660. YAML 1.2 reads `0660` and `660`
 * as the decimal 660, so the digits are taken from the source text and read as octal.
 */
function readSockMode(top: MapView): number | undefined {
  const e = top.get("sock_mode");
  if (!e) return undefined;
  const s = e.node && isScalar(e.node) ? e.node : null;
  const v = s?.value;
  if (!s || (typeof v !== "string" && typeof v !== "number")) {
    top.add(e, `expected an octal file mode like 660, 0660 or "0o660", found ${describe(e.node)}`);
    return undefined;
  }
  const r = parseSockMode(typeof v === "string" ? v : scalarText(s));
  if (typeof r === "number") return r;
  top.add(e, r);
  return undefined;
}

/** Octal mode text → number, or an error message. */
export function parseSockMode(input: string): number | string {
  const text = input.trim();
  const m = /^(?:0o|0)?([0-9]+)$/i.exec(text);
  if (!m) return `expected an octal file mode like 660, 0660 or "0o660", found '${clip(text)}'`;
  if (/[89]/.test(m[1]!)) return `expected octal digits 0-7 in a file mode like 660 or 0660, found '${clip(text)}'`;
  const n = parseInt(m[1]!, 8);
  if (!Number.isSafeInteger(n) || n > 0o777) return `a socket mode must be at most 0777 (permission bits only), found '${clip(text)}'`;
  return n;
}

const CONTROLLER_PREFIXES = ["cgroup", "cpu", "cpuset", "cpuacct", "io", "memory", "pids", "rdma", "hugetlb", "misc", "perf_event", "net_cls", "net_prio", "freezer", "blkio", "devices"];

/** Why `name` cannot be the master cgroup's directory name, or null when it can. */
export function cgroupNameError(name: string): string | null {
  if (name === "." || name === "..") return `must be a folder name, not '${name}'`;
  if (name.includes("/")) return `must be a single folder name without '/', found '${clip(name)}'`;
  if (Buffer.byteLength(name) > 255) return `must be at most 255 bytes, found ${Buffer.byteLength(name)}`;
  if (!/^[A-Za-z0-9_@-][A-Za-z0-9_.@-]*$/.test(name)) {
    return `may contain only letters, digits, '-', '_', '.', '@' and must not start with '.', found '${clip(name)}'`;
  }
  const prefix = name.split(".")[0]!;
  if (name.includes(".") && CONTROLLER_PREFIXES.includes(prefix)) {
    return `must not start with '${prefix}.' (it would clash with the kernel's cgroup interface files), found '${clip(name)}'`;
  }
  return null;
}
