/**
 * Reading a config file and walking its YAML tree with line numbers.
 *
 * Config files are read through one size-checked fd (never whole when over MAX_CONFIG_BYTES),
 * decoded as strict UTF-8, checked for binary bytes and parsed with `yaml`'s parseDocument +
 * LineCounter. Validation walks the YAML nodes themselves (not `toJS()`), so every problem
 * can name the line of the key or value it is about, and the original source text of a
 * scalar (e.g. `0660` vs `660`) is still at hand.
 */
import * as fs from "node:fs";
import { isAlias, isMap, isPair, isScalar, isSeq, newDocument, newLineCounter, parseDocument } from "./yaml.ts";
import type { Alias, Document, LineCounter, Node, Pair, Scalar, YAMLMap } from "./yaml.ts";
import { closestName } from "./suggest.ts";
import type { ConfigProblem } from "./types.ts";
import { untrustedFileReason } from "../util/file-trust.ts";

/** Files larger than this are refused without being read whole. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

export type ReadResult =
  | { ok: true; text: string }
  | { ok: false; kind: "unreadable" | "invalid"; problem: ConfigProblem };

/** Read a config file: regular file, at most 1 MiB, valid UTF-8, no binary bytes. */
export function readConfigSource(file: string): ReadResult {
  const distrust = configTrustProblem(file);
  if (distrust) return { ok: false, kind: "invalid", problem: { file, message: distrust } };
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    return { ok: false, kind: "unreadable", problem: { file, message: `cannot open: ${describeFsError(e)}` } };
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) return { ok: false, kind: "unreadable", problem: { file, message: "is a directory, expected a YAML file" } };
    if (!st.isFile()) return { ok: false, kind: "unreadable", problem: { file, message: "is not a regular file, expected a YAML file" } };
    if (st.size > MAX_CONFIG_BYTES) {
      return { ok: false, kind: "invalid", problem: { file, message: `file is too large (${st.size} bytes); config files may be at most ${MAX_CONFIG_BYTES} bytes (1 MiB)` } };
    }
    // Read at most MAX+1 bytes: the file may grow between fstat and read.
    const buf = Buffer.alloc(Math.min(st.size, MAX_CONFIG_BYTES) + 1);
    let len = 0;
    while (len < buf.length) {
      const n = fs.readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
    }
    if (len > MAX_CONFIG_BYTES) {
      return { ok: false, kind: "invalid", problem: { file, message: `file is too large; config files may be at most ${MAX_CONFIG_BYTES} bytes (1 MiB)` } };
    }
    return decodeSource(file, buf.subarray(0, len));
  } catch (e) {
    return { ok: false, kind: "unreadable", problem: { file, message: `cannot read: ${describeFsError(e)}` } };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A root daemon runs what its config files say as root: it reads only files that root owns and
 * nobody else can change, along the whole path (symlinks followed, and the folders on the way to
 * where they point). Null when the file may be read (always when not running as root).
 */
export function configTrustProblem(file: string): string | null {
  if (process.getuid?.() !== 0) return null;
  let why: string | null;
  try { fs.realpathSync(file); why = untrustedFileReason(file, ROOT_ONLY); } catch { return null; } // missing: reported by the open
  return why === null ? null : `not trusted: ${why}; a root daemon reads only config files that root owns and nobody else can change (also every folder on the way, and where symlinks point)`;
}

const ROOT_ONLY: ReadonlySet<number> = new Set([0]);

function decodeSource(file: string, bytes: Uint8Array): ReadResult {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const loose = new TextDecoder("utf-8").decode(bytes);
    const at = loose.indexOf("\uFFFD");
    const line = at < 0 ? undefined : lineAtOffset(loose, at);
    return { ok: false, kind: "invalid", problem: { file, line, message: "file is not valid UTF-8 text (binary data?); expected a YAML text file" } };
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  // YAML forbids C0 control characters other than tab, LF and CR; `yaml` would accept some.
  // eslint-disable-next-line no-control-regex
  const bad = /[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]/.exec(text);
  if (bad) {
    const code = bad[0].charCodeAt(0).toString(16).padStart(2, "0");
    return {
      ok: false, kind: "invalid",
      problem: { file, line: lineAtOffset(text, bad.index), message: `file contains a control character (byte 0x${code}); expected YAML text (binary data?)` },
    };
  }
  return { ok: true, text };
}

function lineAtOffset(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

export function describeFsError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err?.code) {
    case "ENOENT": return "no such file or directory";
    case "EACCES": case "EPERM": return "permission denied";
    case "ELOOP": return "too many levels of symbolic links (symlink loop?)";
    case "ENOTDIR": return "a path component is not a directory";
    case "EISDIR": return "is a directory";
    case "ENAMETOOLONG": return "file name too long";
    default: return err?.code ? `${err.code}${err.message ? ` (${err.message})` : ""}` : String(e);
  }
}

/** A parsed document plus the problems found so far, for one file. */
export class Ctx {
  readonly problems: ConfigProblem[] = [];
  /** Bytes of text that aliases have pulled in so far (capped at MAX_ALIAS_EXPANSION_BYTES). */
  aliasBytes = 0;
  aliasCapReported = false;
  constructor(readonly file: string, readonly lc: LineCounter, readonly doc: Document) {}

  lineOf(node: Node | Pair | null | undefined): number | undefined {
    const start = rangeStart(node);
    return start === undefined ? undefined : this.lc.linePos(start).line;
  }

  add(node: Node | Pair | null | undefined, key: string | undefined, message: string): void {
    this.problems.push({ file: this.file, line: this.lineOf(node), key: key || undefined, message });
  }
}

function rangeStart(node: Node | Pair | null | undefined): number | undefined {
  if (!node) return undefined;
  if (isPair(node)) return rangeStart(node.key as Node) ?? rangeStart(node.value as Node);
  const r = (node as { range?: [number, number, number] | null }).range;
  return r ? r[0] : undefined;
}

const MAX_SYNTAX_PROBLEMS = 5;

/** `null`, or a YAML null (`~`, `null`, an empty value). */
export function isNullish(node: Node | null | undefined): boolean {
  return node === null || node === undefined || (isScalar(node) && node.value === null);
}

/** Parse YAML text; syntax errors and warnings become problems. Returns null root on errors. */
export function parseYaml(file: string, text: string): { ctx: Ctx; root: Node | null } {
  const lc = newLineCounter();
  let doc: Document;
  try {
    doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, merge: false, strict: true });
  } catch (e) {
    const ctx = new Ctx(file, lc, newDocument(null));
    ctx.problems.push({ file, message: `YAML cannot be parsed: ${yamlMessage(e instanceof Error ? e.message : String(e))}` });
    return { ctx, root: null };
  }
  const ctx = new Ctx(file, lc, doc);
  // An error "at the end of the file" points at the last line that has text, not the one after it.
  const lastLine = Math.max(1, text.replace(/\s+$/, "").split("\n").length);
  const lineAt = (offset: number) => Math.min(lc.linePos(offset).line, lastLine);
  // One mistake often cascades into many errors: report each distinct one once, at most a few.
  const seen = new Set<string>();
  const push = (line: number, message: string) => {
    const k = `${line}\0${message}`;
    if (!seen.has(k)) { seen.add(k); ctx.problems.push({ file, line, message }); }
  };
  for (const e of doc.errors) push(lineAt(e.pos[0]), `YAML syntax error: ${yamlMessage(e.message)}`);
  for (const w of doc.warnings) push(lineAt(w.pos[0]), `YAML: ${firstLine(w.message)}`);
  if (ctx.problems.length > MAX_SYNTAX_PROBLEMS) {
    const more = ctx.problems.length - MAX_SYNTAX_PROBLEMS;
    ctx.problems.length = MAX_SYNTAX_PROBLEMS;
    ctx.problems.push({ file, message: `… and ${more} more YAML errors after these` });
  }
  if (doc.errors.length > 0) return { ctx, root: null };
  return { ctx, root: (doc.contents as Node | null) ?? null };
}

function firstLine(s: string): string {
  return s.split("\n")[0]!.trim();
}

function yamlMessage(s: string): string {
  if (/Maximum call stack|too much recursion/i.test(s)) return "the YAML nests too deeply";
  if (/multiple documents/i.test(s)) return "a config file must hold exactly one YAML document (remove the extra '---' separator)";
  return firstLine(s);
}

/** Follow an alias to its node; a dangling alias is reported and gives undefined. */
export function deref(ctx: Ctx, node: unknown, key: string): Node | null | undefined {
  if (node === null || node === undefined) return node as null | undefined;
  if (isAlias(node)) {
    const target = (node as Alias).resolve(ctx.doc);
    if (!target) {
      ctx.add(node as Node, key, `unknown alias '*${(node as Alias).source}'`);
      return undefined;
    }
    // A 1 MiB file whose aliases repeat a long text expands to gigabytes ("billion laughs"):
    // count what every alias pulls in and stop reading values once it is more than a file may hold.
    ctx.aliasBytes += textBytes(target);
    if (ctx.aliasBytes > MAX_ALIAS_EXPANSION_BYTES) {
      if (!ctx.aliasCapReported) ctx.add(node as Node, key, `YAML aliases expand to more than ${MAX_ALIAS_EXPANSION_BYTES} bytes of text; write the values out or use fewer aliases`);
      ctx.aliasCapReported = true;
      return undefined;
    }
    return deref(ctx, target, key);
  }
  return node as Node;
}

/** What alias expansion may add to a file, in bytes of text (a config file itself holds at most 1 MiB). */
export const MAX_ALIAS_EXPANSION_BYTES = 1024 * 1024;

const textSizes = new WeakMap<object, number>();

/** Bytes of text in a node and everything under it (aliases inside count once: they are counted when followed). */
function textBytes(node: unknown): number {
  if (node === null || typeof node !== "object") return 0;
  const known = textSizes.get(node);
  if (known !== undefined) return known;
  let n = 0;
  if (isScalar(node)) n = String(node.value ?? "").length;
  else if (isMap(node)) for (const it of node.items) n += textBytes(it.key) + textBytes(it.value);
  else if (isSeq(node)) for (const it of node.items) n += textBytes(it);
  textSizes.set(node, n);
  return n;
}

/** Short human text for what a node holds, for "found ..." in messages. */
export function describe(node: Node | null | undefined): string {
  if (node === null || node === undefined) return "nothing (an empty value)";
  if (isMap(node)) return "a mapping";
  if (isSeq(node)) return "a list";
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return "nothing (null)";
    const src = scalarText(node);
    const t = typeof v === "string" ? "text" : typeof v === "boolean" ? "a boolean" : typeof v === "number" || typeof v === "bigint" ? "a number" : "a value";
    return `${t} '${clip(src)}'`;
  }
  return "an unsupported value";
}

export function clip(s: string, max = 40): string {
  const one = s.replace(/\s+/g, " ");
  return one.length <= max ? one : `${one.slice(0, max)}… (${s.length} characters)`;
}

/** The text of a scalar as written in the file (plain scalars), or its string value. */
export function scalarText(node: Scalar): string {
  if (typeof node.source === "string" && node.type === "PLAIN") return node.source;
  const v = node.value;
  if (typeof v === "string") return v;
  if (node.source !== undefined) return String(node.source);
  return String(v);
}

export interface Entry {
  /** Dotted key, e.g. `process.stop_grace_ms`. */
  key: string;
  keyNode: Node;
  /** The value, aliases followed; null for `key:` with no value. */
  node: Node | null;
}

/** The entries of one YAML mapping, checked against the keys it may have. */
export class MapView {
  private readonly entries = new Map<string, Entry>();
  /** Keys present but unusable (already reported): `has` is true, `get` undefined. */
  private readonly broken = new Set<string>();
  /** `keyNode`: the key this mapping is the value of (problems about missing keys point at it). */
  constructor(readonly ctx: Ctx, readonly prefix: string, readonly node: YAMLMap | null, readonly keyNode?: Node) {}

  static open(ctx: Ctx, node: Node | null | undefined, prefix: string, allowed: readonly string[], keyNode?: Node): MapView | null {
    const view = new MapView(ctx, prefix, null, keyNode);
    if (isNullish(node)) return view;
    if (!isMap(node)) {
      ctx.add(node ?? keyNode, prefix || undefined, `expected a mapping (key: value lines), found ${describe(node)}`);
      return null;
    }
    const m = new MapView(ctx, prefix, node, keyNode);
    for (const pair of node.items) {
      const keyNode = deref(ctx, pair.key, prefix);
      if (!keyNode || !isScalar(keyNode) || typeof keyNode.value !== "string") {
        ctx.add(pair as Pair, prefix || undefined, `expected a text key, found ${describe(keyNode as Node)}`);
        continue;
      }
      const name = keyNode.value;
      const full = prefix ? `${prefix}.${name}` : name;
      if (!prefix && name.startsWith("x-")) continue; // extension keys: a place for YAML anchors
      if (!allowed.includes(name)) {
        const guess = closestName(name, allowed);
        ctx.add(keyNode, full, `unknown key '${clip(name)}'; ${guess ? `did you mean '${guess}'? ` : ""}expected one of: ${allowed.join(", ")}`);
        continue;
      }
      const value = deref(ctx, pair.value, full);
      if (value === undefined && pair.value !== null && pair.value !== undefined) {
        m.broken.add(name); // dangling alias, reported
        continue;
      }
      m.entries.set(name, { key: full, keyNode, node: value ?? null });
    }
    return m;
  }

  get(name: string): Entry | undefined {
    return this.entries.get(name);
  }

  has(name: string): boolean {
    return this.entries.has(name) || this.broken.has(name);
  }

  keyOf(name: string): string {
    return this.prefix ? `${this.prefix}.${name}` : name;
  }

  add(entry: Entry | undefined, message: string, name?: string): void {
    if (entry) this.ctx.add(entry.node ?? entry.keyNode, entry.key, message);
    else this.ctx.add(this.keyNode ?? (this.prefix ? this.node : null), name ? this.keyOf(name) : this.prefix, message);
  }
}
