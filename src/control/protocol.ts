/**
 * The control protocol: newline-delimited JSON over a unix socket. A client sends one request
 * per line; the daemon answers with zero or more `progress` lines and then exactly one
 * `result` or `error` line. Pure: no I/O here.
 */
import { PmError, type ErrorCode } from "../util/errors.ts";

/** A request line longer than this is refused and the connection closed. */
export const MAX_REQUEST_BYTES = 1 << 20;

/**
 * Requests one connection may have waiting for their answers; one more is refused and the
 * connection closed. Without a cap, a client that pipelines without reading queues work and
 * answers without bound (4096 pipelined `status` held every other client back for seconds).
 */
export const MAX_QUEUED_REQUESTS = 64;

/** Answers a client has not read yet; past this the daemon drops the connection. */
export const MAX_UNREAD_REPLY_BYTES = 8 << 20;

export const COMMANDS = ["ping", "status", "start", "stop", "restart", "update", "rotate", "reload", "signal", "shutdown", "wait"] as const;
export type Command = (typeof COMMANDS)[number];

/** Commands that change something: they need write access. */
export const MUTATING: ReadonlySet<Command> = new Set(["start", "stop", "restart", "update", "rotate", "reload", "signal", "shutdown"]);

export interface Request {
  cmd: Command;
  /** Service names; empty or ["all"] means every service. */
  names: string[];
  /** `signal`: the signal's name or number (the daemon checks it). */
  signal?: string;
  /** `signal`: only the main process. */
  main?: boolean;
  /** stop: `withDependents`; wait: `ready`, `timeoutMs`; status: `view`. */
  options?: RequestOptions;
}

/** `view: "table"`: `status` answers only the fields of pmctl's table, null ones left out (supervisor/status.ts StatusRow). */
export interface RequestOptions { withDependents?: boolean; ready?: boolean; timeoutMs?: number; view?: "table" }

/** One service's outcome in the answer to `reload` and `signal`: `{services: [...]}`. */
export interface ServiceActionReport { name: string; ok: boolean; message: string; output?: string; pids?: number[] }

export type Reply =
  | { type: "progress"; message: string }
  | { type: "result"; data: unknown }
  | { type: "error"; code: ErrorCode; message: string };

export function encodeLine(msg: Request | Reply): string {
  return JSON.stringify(msg) + "\n";
}

/** Validates one request line; throws PmError("PROTOCOL") with a message for the client. */
export function parseRequest(line: string): Request {
  // A request nests two levels deep; parsing 1 MB of `[[[[…` costs JSC tens of MB of memory.
  if (nestingDeeperThan(line, MAX_REQUEST_NESTING)) throw new PmError("PROTOCOL", `request is nested more than ${MAX_REQUEST_NESTING} levels deep`);
  let value: unknown;
  try { value = JSON.parse(line); } catch (e) {
    throw new PmError("PROTOCOL", `request is not valid JSON (${e instanceof RangeError ? "nested too deeply" : "syntax error"})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new PmError("PROTOCOL", "request must be a JSON object");
  const { cmd, names, signal, main, options } = value as Record<string, unknown>;
  if (typeof cmd !== "string" || !(COMMANDS as readonly string[]).includes(cmd)) {
    throw new PmError("PROTOCOL", `unknown command ${JSON.stringify(cmd)}; expected one of ${COMMANDS.join(", ")}`);
  }
  if (names !== undefined && (!Array.isArray(names) || !names.every((n) => typeof n === "string" && n.length > 0 && n.length < 256 && !CONTROL_CHAR.test(n)))) {
    throw new PmError("PROTOCOL", "names must be a list of service names (printable text, 1 to 255 characters)");
  }
  if (signal !== undefined && (typeof signal !== "string" || signal.length === 0 || signal.length > 16 || CONTROL_CHAR.test(signal))) throw new PmError("PROTOCOL", "signal must be a signal name or number");
  if (main !== undefined && typeof main !== "boolean") throw new PmError("PROTOCOL", "main must be true or false");
  // Each name costs a lookup and a line of work: 120,000 copies of one name stalled the daemon
  // for seconds. Duplicates are dropped, and more distinct names than any host has are refused.
  const unique = [...new Set((names as string[] | undefined) ?? [])];
  if (unique.length > MAX_NAMES_PER_REQUEST) throw new PmError("PROTOCOL", `a request may name at most ${MAX_NAMES_PER_REQUEST} services, found ${unique.length}`);
  const req: Request = { cmd: cmd as Command, names: unique, ...(signal !== undefined ? { signal } : {}), ...(main !== undefined ? { main } : {}) };
  if (options !== undefined) req.options = parseOptions(options);
  return req;
}

function parseOptions(o: unknown): RequestOptions {
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw new PmError("PROTOCOL", "options must be a JSON object");
  const { withDependents, ready, timeoutMs, view, ...rest } = o as Record<string, unknown>;
  if (Object.keys(rest).length) throw new PmError("PROTOCOL", `unknown option ${JSON.stringify(Object.keys(rest)[0])}`);
  const out: RequestOptions = {};
  for (const [k, v] of [["withDependents", withDependents], ["ready", ready]] as const) {
    if (v === undefined) continue;
    if (typeof v !== "boolean") throw new PmError("PROTOCOL", `option ${k} must be true or false`);
    out[k] = v;
  }
  if (timeoutMs !== undefined) {
    if (typeof timeoutMs !== "number" || !Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > 2 ** 31 - 1) throw new PmError("PROTOCOL", "option timeoutMs must be a whole number of milliseconds");
    out.timeoutMs = timeoutMs;
  }
  if (view !== undefined) {
    if (view !== "table") throw new PmError("PROTOCOL", 'option view must be "table"');
    out.view = view;
  }
  return out;
}

/** Distinct service names one request may carry. */
export const MAX_NAMES_PER_REQUEST = 4096;

// eslint-disable-next-line no-control-regex
const CONTROL_CHAR = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/;

/** How deep a request's JSON may nest (a request needs 2: the object and its `names` list). */
export const MAX_REQUEST_NESTING = 8;

/** Does the JSON text open more than `max` arrays/objects at once? Brackets inside strings don't count. */
function nestingDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) { if (++depth > max) return true; }
    else if (c === 93 || c === 125) depth--;
  }
  return false;
}

/** Splits a byte stream into lines; refuses a line that grows past `limit` bytes. */
export class LineSplitter {
  private parts: Buffer[] = [];
  private pendingBytes = 0;
  constructor(private readonly limit = MAX_REQUEST_BYTES) {}

  /** The complete lines in `chunk` (without newline); throws PROTOCOL once a line is too long. */
  push(chunk: Uint8Array): string[] {
    const lines: string[] = [];
    let buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10)) {
      this.parts.push(buf.subarray(0, nl));
      lines.push(Buffer.concat(this.parts).toString("utf8"));
      this.parts = [];
      this.pendingBytes = 0;
      buf = buf.subarray(nl + 1);
    }
    if (buf.length > 0) {
      this.pendingBytes += buf.length;
      if (this.pendingBytes > this.limit) {
        this.parts = [];
        throw new PmError("PROTOCOL", `request line longer than ${this.limit} bytes`);
      }
      this.parts.push(Buffer.from(buf)); // copy: the chunk's memory is reused by the runtime
    }
    return lines;
  }

  /** Bytes of the unfinished line held now. */
  get pending(): number { return this.pendingBytes; }

  /** The partial line held so far (the stream ended without its newline), or null; clears it. */
  rest(): string | null {
    if (this.parts.length === 0) return null;
    const line = Buffer.concat(this.parts).toString("utf8");
    this.parts = [];
    this.pendingBytes = 0;
    return line;
  }
}
