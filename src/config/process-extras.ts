/**
 * The `process:` keys that shape how a real daemon is run and ended: exit_type, stop_mode,
 * reload_signal/reload_command, limits, umask, environment_file, supplementary_groups and
 * runtime_directory. Parsed here so service.ts only spreads the result in.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { isMap, isScalar, isSeq } from "./yaml.ts";
import type { Node } from "./yaml.ts";
import { RLIMIT_NAMES, type ExitType, type ProcessConfig, type RlimitName, type RlimitValue, type StopMode } from "./types.ts";
import { MapView, clip, describe, scalarText, type Entry } from "./source.ts";
import { readEnum, readSignal, readStringList } from "./values.ts";
import { resolveGroup } from "./users.ts";
import { parseSizeBytes } from "../util/units.ts";

export const EXTRA_PROCESS_KEYS = [
  "exit_type", "stop_mode", "reload_signal", "reload_command", "limits", "umask", "environment_file",
  "supplementary_groups", "runtime_directory", "runtime_directory_mode",
] as const;

export type ProcessExtras = Pick<ProcessConfig, "exitType" | "stopMode" | "reloadSignal" | "reloadCommand" | "limits" | "umask" |
  "environmentFiles" | "supplementaryGroups" | "runtimeDirectories" | "runtimeDirectoryMode">;

/** Where runtime_directory names live, as systemd's RuntimeDirectory= (system services). */
export const RUNTIME_BASE = "/run";

/** Limits whose values are byte counts (a size like 64M is accepted). */
const BYTE_LIMITS: ReadonlySet<RlimitName> = new Set(["core", "memlock", "stack", "fsize", "as"]);

export function parseProcessExtras(p: MapView, opts: { workingDirectory: string; readCommand: (e: Entry) => string[] | undefined }): ProcessExtras {
  const exitType = readEnum<ExitType>(p, "exit_type", ["auto", "main", "cgroup"]) ?? "auto";
  const stopMode = readEnum<StopMode>(p, "stop_mode", ["all", "main"]) ?? "all";
  const reloadSignal = readSignal(p, "reload_signal");
  const rc = p.get("reload_command");
  const reloadCommand = rc ? opts.readCommand(rc) : undefined;
  if (reloadSignal !== undefined && rc) p.add(rc, "set reload_signal or reload_command, not both");
  const umaskEntry = p.get("umask");
  const umask = umaskEntry ? readOctal(p, umaskEntry, 0o777) : undefined;
  const environmentFiles = (readOneOrMany(p, "environment_file") ?? []).map((name) => {
    const optional = name.startsWith("-");
    return { path: path.resolve(opts.workingDirectory, optional ? name.slice(1) : name), optional };
  });
  const supplementaryGroups: number[] = [];
  for (const [i, g] of (readOneOrMany(p, "supplementary_groups") ?? []).entries()) {
    const group = resolveGroup(g);
    if (!group) p.ctx.add(p.get("supplementary_groups")!.node, `process.supplementary_groups[${i}]`, `unknown group '${clip(g)}' (not in /etc/group)`);
    else if (!supplementaryGroups.includes(group.gid)) supplementaryGroups.push(group.gid);
  }
  if (supplementaryGroups.length > 0 && !p.has("user")) {
    p.add(p.get("supplementary_groups"), "supplementary_groups needs process.user: the groups are added to that user's");
  }
  const runtimeDirectories: string[] = [];
  for (const name of readOneOrMany(p, "runtime_directory") ?? []) {
    const why = runtimeDirectoryNameError(name);
    if (why) p.add(p.get("runtime_directory"), why);
    else runtimeDirectories.push(path.join(RUNTIME_BASE, name));
  }
  const modeEntry = p.get("runtime_directory_mode");
  const runtimeDirectoryMode = (modeEntry ? readOctal(p, modeEntry, 0o7777) : undefined) ?? 0o755;
  return {
    exitType, stopMode, reloadSignal, reloadCommand, limits: readLimits(p), umask, environmentFiles, supplementaryGroups,
    runtimeDirectories, runtimeDirectoryMode,
  };
}

/** The keys among these whose change needs a restart (the rest apply at the next stop or reload). */
export function extrasRunShape(p: ProcessExtras): unknown {
  return {
    exitType: p.exitType, limits: p.limits, umask: p.umask, environmentFiles: p.environmentFiles,
    supplementaryGroups: p.supplementaryGroups, runtimeDirectories: p.runtimeDirectories, runtimeDirectoryMode: p.runtimeDirectoryMode,
  };
}

export function runtimeDirectoryNameError(name: string): string | null {
  if (name.startsWith("/")) return `runtime_directory '${clip(name)}' must be relative: it is created under ${RUNTIME_BASE}`;
  const parts = name.split("/").filter((s) => s !== "");
  if (parts.length === 0 || parts.some((s) => s === "." || s === "..")) return `runtime_directory '${clip(name)}' must be a folder name under ${RUNTIME_BASE} without '.' or '..' parts`;
  if (name.includes("\0")) return "runtime_directory must not contain NUL characters";
  return null;
}

/** A text or a list of texts. */
function readOneOrMany(p: MapView, name: string): string[] | undefined {
  const e = p.get(name);
  if (!e) return undefined;
  if (e.node && isScalar(e.node) && typeof e.node.value === "string" && e.node.value.trim() !== "") return [e.node.value];
  if (e.node && isSeq(e.node)) return readStringList(p, name);
  p.add(e, `expected a text or a list of texts, found ${describe(e.node)}`);
  return undefined;
}

/** An octal mode like 027, 0027 or "0o027", read from the source text (YAML reads 0027 as decimal 27). */
function readOctal(p: MapView, e: Entry, max: number): number | undefined {
  const s = e.node && isScalar(e.node) ? e.node : null;
  const text = s ? scalarText(s).trim() : "";
  const m = /^(?:0o|0)?([0-7]+)$/i.exec(text);
  const n = m ? parseInt(m[1]!, 8) : NaN;
  if (!m || n > max) {
    p.add(e, `expected an octal mode like 022 or 0027 (at most 0${max.toString(8)}), found ${s ? `'${clip(text)}'` : describe(e.node)}`);
    return undefined;
  }
  return n;
}

function readLimits(p: MapView): Partial<Record<RlimitName, RlimitValue>> {
  const out: Partial<Record<RlimitName, RlimitValue>> = {};
  const e = p.get("limits");
  if (!e || e.node === null) return out;
  const view = MapView.open(p.ctx, e.node, "process.limits", RLIMIT_NAMES, e.keyNode);
  if (!view) return out;
  for (const name of RLIMIT_NAMES) {
    const le = view.get(name);
    if (!le) continue;
    const r = parseLimitNode(name, le.node);
    if (typeof r === "string") view.add(le, r);
    else out[name] = r;
  }
  return out;
}

const LIMIT_EXPECTED = "a number, 'unlimited', \"SOFT:HARD\" or a mapping {soft: …, hard: …}";

function parseLimitNode(name: RlimitName, node: Node | null): RlimitValue | string {
  let soft: number | "unlimited" | string;
  let hard: number | "unlimited" | string;
  if (node && isMap(node)) {
    const get = (k: string) => node.items.find((it) => isScalar(it.key) && it.key.value === k)?.value as Node | undefined;
    const unknown = node.items.map((it) => (isScalar(it.key) ? String(it.key.value) : "?")).find((k) => k !== "soft" && k !== "hard");
    if (unknown !== undefined) return `unknown key '${clip(unknown)}'; expected soft and hard`;
    const s = get("soft");
    const h = get("hard");
    if (!s || !h) return `expected both soft and hard, found ${s ? "no hard" : "no soft"}`;
    soft = parseSide(name, s);
    hard = parseSide(name, h);
  } else if (node && isScalar(node)) {
    const text = scalarText(node).trim();
    const colon = typeof node.value === "string" ? text.split(":") : [text];
    if (colon.length > 2) return `expected ${LIMIT_EXPECTED}, found '${clip(text)}'`;
    soft = parseSideText(name, colon[0]!);
    hard = colon.length === 2 ? parseSideText(name, colon[1]!) : soft;
  } else {
    return `expected ${LIMIT_EXPECTED}, found ${describe(node)}`;
  }
  if (typeof soft === "string" && soft !== "unlimited") return soft;
  if (typeof hard === "string" && hard !== "unlimited") return hard;
  const s = soft as number | "unlimited";
  const h = hard as number | "unlimited";
  if (h !== "unlimited" && (s === "unlimited" || s > h)) return `the soft limit (${s}) must not be above the hard limit (${h})`;
  if (name === "nofile" && h !== "unlimited") {
    const nrOpen = readNrOpen();
    if (nrOpen !== null && h > nrOpen) return `the hard limit ${h} is above the kernel's fs.nr_open (${nrOpen})`;
  }
  if (name === "nofile" && h === "unlimited") return "nofile cannot be unlimited (the kernel caps it at fs.nr_open); give a number";
  return { soft: s, hard: h };
}

function parseSide(name: RlimitName, node: Node): number | string {
  if (!isScalar(node)) return `expected ${LIMIT_EXPECTED}, found ${describe(node)}`;
  return parseSideText(name, scalarText(node));
}

/** A number, a size for byte limits, or "unlimited"; a string other than "unlimited" is an error message. */
function parseSideText(name: RlimitName, raw: string): number | string {
  const text = raw.trim();
  if (text === "unlimited" || text === "infinity") return "unlimited";
  const n = BYTE_LIMITS.has(name) ? parseSizeBytes(text) : /^\d+$/.test(text) ? Number(text) : null;
  if (n === null || !Number.isSafeInteger(n)) {
    return `expected ${BYTE_LIMITS.has(name) ? "a size like 65536 or 64M" : "a whole number"} or 'unlimited' for ${name}, found '${clip(text)}'`;
  }
  return n;
}

function readNrOpen(): number | null {
  try { return Number(fs.readFileSync("/proc/sys/fs/nr_open", "utf8").trim()) || null; } catch { return null; }
}
