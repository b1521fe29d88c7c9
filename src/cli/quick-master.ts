/**
 * The socket path from the master config without the YAML parser, for the pmctl commands that
 * only need to reach the daemon. In a cold pmctl the `yaml` library's first parse costs 3 to 5
 * ms of a ~15 ms call (issue 6, CLI latency). Handles what master files are in practice: JSON
 * (which is YAML), or flat `key: value` lines with comments. Anything else (nesting, anchors,
 * block scalars, escapes, a repeated key, a BOM) returns null, and the caller parses the file
 * properly, which also reports its errors. It never validates the other keys: the daemon did.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";

/** Same default as the master parser (`sock_path` relative to the master file's folder). */
const DEFAULT_SOCK = "./processmaster.sock";

export function quickSockPath(masterFile: string): string | null {
  let text: string;
  try { text = readFileSync(masterFile, "utf8"); } catch { return null; }
  const raw = text.trimStart().startsWith("{") ? fromJson(text) : fromFlatYaml(text);
  if (raw === null) return null;
  return resolve(dirname(masterFile), raw ?? DEFAULT_SOCK);
}

/** The value, undefined when the key is absent, null when unsure. */
function fromJson(text: string): string | undefined | null {
  let v: unknown;
  try { v = JSON.parse(text); } catch { return null; }
  if (v === null || typeof v !== "object" || Array.isArray(v)) return null;
  const s = (v as Record<string, unknown>).sock_path;
  if (s === undefined) return undefined;
  return typeof s === "string" && s !== "" ? s : null;
}

function fromFlatYaml(text: string): string | undefined | null {
  let found: string | undefined;
  for (const line of text.split("\n")) {
    if (/^\s*(#.*)?\r?$/.test(line)) continue; // blank or comment
    const m = /^([A-Za-z_][A-Za-z0-9_]*):(?:[ \t]+(.*?))?[ \t]*\r?$/.exec(line);
    if (!m) return null; // indented, a list, a document marker…: not flat
    const value = m[2] ?? "";
    if (m[1] !== "sock_path") {
      if (value === "" || /^[|>&*!%@`{[]/.test(value)) return null; // a nested or block value follows
      continue;
    }
    if (found !== undefined) return null; // a repeated key is an error for the real parser
    const v = scalar(value);
    if (v === null) return null;
    found = v;
  }
  return found;
}

/** A plain, '…' or "…" scalar without escapes; null for anything fancier. */
function scalar(value: string): string | null {
  let v = value;
  const q = v[0];
  if (q === '"' || q === "'") {
    const end = v.indexOf(q, 1);
    if (end < 0 || v.includes("\\") || (q === "'" && v[end + 1] === "'")) return null;
    const rest = v.slice(end + 1).trim();
    if (rest !== "" && !rest.startsWith("#")) return null;
    v = v.slice(1, end);
  } else {
    const hash = v.search(/[ \t]#/);
    if (hash >= 0) v = v.slice(0, hash).trimEnd();
    if (v === "" || v === "~" || v === "null" || /^[|>&*!%@`{["'#-]/.test(v) || v.includes(": ")) return null;
  }
  return v === "" ? null : v;
}
