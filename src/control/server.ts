/**
 * The control socket. Permissions are in place before the socket can be reached: it is
 * created under umask 0177 (owner-only), then chmod/chown'd to the configured mode.
 * A malformed request gets an error reply; the daemon carries on.
 */
import { chmodSync, chownSync, closeSync, constants, existsSync, fstatSync, mkdirSync, openSync, statSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import type { Socket, UnixSocketListener } from "bun";
import { getPeerCred, getPeerGroups, tryLockExclusive, type PeerCred } from "../linux/ffi.ts";
import { PmError, errorMessage } from "../util/errors.ts";
import { logger } from "../util/log.ts";
import { selfTrusted, untrustedFolderReason } from "../util/file-trust.ts";
import { Admission, IDLE_TIMEOUT_S, WRITE_STALL_S } from "./admission.ts";
import { encodeLine, LineSplitter, MAX_QUEUED_REQUESTS, MAX_UNREAD_REPLY_BYTES, MUTATING, parseRequest, type Reply, type Request } from "./protocol.ts";

export interface RequestContext {
  peer: PeerCred | null;
  progress(message: string): void;
}

export type RequestHandler = (req: Request, ctx: RequestContext) => Promise<unknown>;

interface ConnState {
  splitter: LineSplitter;
  peer: PeerCred | null;
  /** Bytes not yet accepted by the kernel (backpressure). */
  outbox: Buffer[];
  closed: boolean;
  /** Requests on one connection are answered in order. */
  chain: Promise<void>;
  /** No more requests are read: the connection closes once every answer is flushed. */
  ending: boolean;
  /** Every answer is sent: end the socket as soon as the outbox is empty. */
  endWhenFlushed: boolean;
  /** Requests read and not answered yet (capped at MAX_QUEUED_REQUESTS). */
  queued: number;
  /** Bytes in `outbox`: answers the client has not read (capped at MAX_UNREAD_REPLY_BYTES). */
  outboxBytes: number;
  /** Counted by the Admission (admission.ts) until the connection closes. */
  admitted: boolean;
  /** Bytes of unfinished line taken from the admission's budget. */
  lineBytes: number;
  /** When the client last sent something (performance.now()), for the idle timeout. */
  lastActive: number;
  /** Since when answers wait in `outbox` and the client has taken none of them (performance.now()), or null. */
  stalledSince: number | null;
  admission: Admission;
}

const log = logger("control");

export interface SocketPermissions { mode: number; uid?: number; gid?: number }

/** Is a live daemon listening on `path`? A socket file nobody listens on is stale. */
export async function socketIsLive(path: string): Promise<boolean> {
  if (!existsSync(path)) return false;
  try {
    const s = await Bun.connect({ unix: path, socket: { data() {}, error() {} } });
    s.end();
    return true;
  } catch {
    return false;
  }
}

export async function listenControl(path: string, perms: SocketPermissions, handle: RequestHandler): Promise<UnixSocketListener<ConnState>> {
  ensureSocketFolder(dirname(path));
  const running = `another processmaster is already listening on ${path}; stop it first (pmctl -c ... status shows it)`;
  if (!lockSocketPath(path) || await socketIsLive(path)) throw new PmError("DAEMON_RUNNING", running);
  try { unlinkSync(path); } catch { /* no stale socket */ }

  const admission = new Admission(new Set([0, process.getuid?.() ?? 0]));
  const refused = rateLimitedWarning(10_000);
  const oldMask = process.umask(0o177);
  let server: UnixSocketListener<ConnState>;
  try {
    server = Bun.listen<ConnState>({
      unix: path,
      // A client may shut down its side once it has sent its request (`nc -N`) and still read the answer.
      allowHalfOpen: true,
      socket: {
        open(sock) {
          let peer: PeerCred | null = null;
          const fd = (sock as unknown as { fd: number }).fd;
          try { peer = getPeerCred(fd); } catch { /* unknown peer: treated as unprivileged */ }
          if (peer) { try { peer.groups = getPeerGroups(fd); } catch { /* old kernel: access.ts reads /proc */ } }
          sock.data = {
            splitter: new LineSplitter(), peer, outbox: [], closed: false, chain: Promise.resolve(), ending: false,
            endWhenFlushed: false, queued: 0, outboxBytes: 0, admitted: false, lineBytes: 0, lastActive: performance.now(), stalledSince: null, admission,
          };
          // Limits first, before a byte is read: an over-limit peer is closed at once.
          const why = admission.admit(peer?.uid ?? null);
          if (why) { refused(`closing a connection from ${peer ? `uid ${peer.uid} pid ${peer.pid}` : "an unidentified client"}: ${why}`); drop(sock); return; }
          sock.data.admitted = true;
          if (!admission.privileged(peer?.uid ?? null)) sock.timeout(IDLE_TIMEOUT_S);
        },
        data(sock, chunk) {
          const st = sock.data;
          if (st.ending) return; // refused or half-closed: whatever else arrives is dropped unread
          st.lastActive = performance.now();
          let lines: string[];
          try {
            lines = st.splitter.push(chunk);
            if (!holdLineBytes(st, st.splitter.pending)) {
              refused(`closing a connection from uid ${st.peer?.uid ?? "unknown"}: unfinished requests of non-root clients hold too much memory`);
              drop(sock);
              return;
            }
          } catch (e) {
            holdLineBytes(st, 0);
            // Too long: answer (after what was asked before it), then close; nothing more is buffered.
            st.chain = st.chain.then(() => send(sock, { type: "error", code: "PROTOCOL", message: errorMessage(e) }));
            finish(sock);
            return;
          }
          for (const line of lines) {
            if (line.trim() === "") continue;
            if (st.queued >= MAX_QUEUED_REQUESTS) {
              const message = `more than ${MAX_QUEUED_REQUESTS} requests waiting for their answers on one connection; closing it`;
              st.chain = st.chain.then(() => send(sock, { type: "error", code: "PROTOCOL", message }));
              finish(sock);
              return;
            }
            st.queued++;
            st.chain = st.chain.then(() => serve(sock, line, handle));
          }
        },
        end(sock) {
          // The client sent all it will send; a last request without its newline still counts.
          const st = sock.data;
          if (st.ending) return;
          const last = st.splitter.rest();
          holdLineBytes(st, 0);
          if (last !== null && last.trim() !== "") { st.queued++; st.chain = st.chain.then(() => serve(sock, last, handle)); }
          finish(sock);
        },
        drain(sock) { flush(sock); },
        close(sock) { if (sock.data) release(sock.data); },
        timeout(sock) {
          // Idle: nothing sent for IDLE_TIMEOUT_S and no request in progress (one waiting for its
          // answer, a stop's grace, keeps it open). The runtime's timer does not restart on data.
          const st = sock.data;
          if (st.closed) return;
          if (st.stalledSince !== null) {
            const stalledS = (performance.now() - st.stalledSince) / 1000;
            if (stalledS >= WRITE_STALL_S) {
              log.warn(`dropping a connection (peer uid ${st.peer?.uid ?? "unknown"} pid ${st.peer?.pid ?? "unknown"}): answers it does not read, none taken for ${Math.round(stalledS)} s`);
              drop(sock);
              return;
            }
            sock.timeout(Math.ceil(WRITE_STALL_S - stalledS));
            return;
          }
          if (admission.privileged(st.peer?.uid ?? null)) { sock.timeout(0); return; } // was armed for a stall only
          const quietS = (performance.now() - st.lastActive) / 1000;
          if (st.queued > 0 || st.outbox.length > 0) sock.timeout(IDLE_TIMEOUT_S);
          else if (quietS < IDLE_TIMEOUT_S) sock.timeout(Math.ceil(IDLE_TIMEOUT_S - quietS));
          else drop(sock);
        },
        error(sock, e) { log.debug(`connection error: ${errorMessage(e)}`); },
      },
    });
  } finally {
    process.umask(oldMask);
  }
  if (perms.uid !== undefined || perms.gid !== undefined) chownSync(path, perms.uid ?? -1, perms.gid ?? -1);
  chmodSync(path, perms.mode);
  return server;
}

/** Lock files this process holds, by socket path: kept open (and locked) until the process ends. */
const heldLocks = new Map<string, number>();

/**
 * Takes `${path}.lock` for the life of this process; false when another daemon holds it. The
 * liveness check of the socket alone leaves a window: two daemons starting at the same moment
 * both find no live socket, and the second unlinks the first's socket and starts every service
 * again. The kernel drops the lock when its holder dies, so a SIGKILLed daemon leaves none behind.
 */
function lockSocketPath(path: string): boolean {
  if (heldLocks.has(path)) return true;
  const lockPath = `${path}.lock`;
  let fd: number;
  // No symlink followed (a link would make us create a file elsewhere), and only our own file:
  // a lock someone else created is one they can hold to keep every daemon from starting.
  try { fd = openSync(lockPath, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o600); }
  catch (e) { throw new PmError("PERMISSION", `cannot open the lock file ${lockPath}: ${errorMessage(e)}`, { cause: e }); }
  const st = fstatSync(fd);
  if (!st.isFile() || st.uid !== process.getuid?.()) {
    closeSync(fd);
    throw new PmError("PERMISSION", `the lock file ${lockPath} is ${st.isFile() ? `owned by uid ${st.uid}` : "not a regular file"}; remove it (and keep sock_path in a folder only root can write)`);
  }
  if (!tryLockExclusive(fd)) { closeSync(fd); return false; }
  heldLocks.set(path, fd);
  return true;
}

/**
 * Creates the socket's folder (and missing parents) as 0755 whatever the umask: clients in
 * sock_group must be able to reach the socket, nobody but the owner may put files there. An
 * existing folder that others can write without the sticky bit would let them replace the
 * socket: that is logged.
 */
function ensureSocketFolder(dir: string) {
  const first = mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (first !== undefined) {
    for (let d = dir; d.length >= first.length; d = dirname(d)) { chmodSync(d, 0o755); if (d === first) break; }
  }
  const why = untrustedFolderReason(dir, selfTrusted());
  if (why === null) return;
  const message = `sock_path: ${why}: others could replace the socket, or take or redirect its lock file; use a folder only root can write (e.g. /run/processmaster)`;
  // A root daemon refuses (its lock and socket files would be open to tampering); another uid is warned.
  if (process.getuid?.() === 0) throw new PmError("CONFIG_INVALID", message);
  log.warn(message);
}

async function serve(sock: Socket<ConnState>, line: string, handle: RequestHandler) {
  const st = sock.data;
  // One request per event-loop turn: a connection with many pipelined requests (each a
  // synchronous piece of work) does not hold the other clients back.
  await new Promise((r) => setImmediate(r));
  let req: Request | null = null;
  let parseError: unknown = null;
  try { req = parseRequest(line); } catch (e) { parseError = e; }
  // The client is gone: nobody reads the answer, so a read is skipped. A change it asked for is
  // still made: whether a received `stop` happens must not depend on how fast we got to it.
  if (st.closed && !(req && MUTATING.has(req.cmd))) { st.queued--; return; }
  let reply: Reply;
  try {
    if (!req) throw parseError;
    const data = await handle(req, { peer: st.peer, progress: (message) => send(sock, { type: "progress", message }) });
    reply = { type: "result", data };
  } catch (e) {
    reply = e instanceof PmError ? { type: "error", code: e.code, message: e.message } : { type: "error", code: "INTERNAL", message: errorMessage(e) };
    if (!(e instanceof PmError)) log.error(`request failed: ${e instanceof Error ? e.stack : e}`);
  }
  st.queued--;
  send(sock, reply);
}

/** Reads no more requests; closes the connection once the pending ones are answered and flushed. */
function finish(sock: Socket<ConnState>) {
  const st = sock.data;
  st.ending = true;
  st.chain = st.chain.then(() => {
    st.endWhenFlushed = true;
    flush(sock);
  });
}

function send(sock: Socket<ConnState>, reply: Reply) {
  const st = sock.data;
  if (st.closed) return;
  const bytes = Buffer.from(encodeLine(reply));
  if (!st.admission.take(st.peer?.uid ?? null, "answers", bytes.length)) {
    log.warn(`dropping a connection (peer uid ${st.peer?.uid ?? "unknown"} pid ${st.peer?.pid ?? "unknown"}): answers non-root clients do not read hold too much memory`);
    drop(sock);
    return;
  }
  st.outbox.push(bytes);
  st.outboxBytes += bytes.length;
  flush(sock);
  if (!st.closed && st.outboxBytes > MAX_UNREAD_REPLY_BYTES) {
    log.warn(`dropping a connection (peer pid ${st.peer?.pid ?? "unknown"}): more than ${MAX_UNREAD_REPLY_BYTES} bytes of answers it does not read`);
    drop(sock);
  }
}

/** Closes a connection now, unanswered, and gives back what it held. */
function drop(sock: Socket<ConnState>) {
  release(sock.data);
  sock.data.ending = true;
  sock.terminate();
}

/** The connection is gone: its answers and unfinished line are dropped and its budgets given back (once). */
function release(st: ConnState) {
  st.closed = true;
  if (st.outboxBytes > 0) st.admission.take(st.peer?.uid ?? null, "answers", -st.outboxBytes);
  st.outbox = [];
  st.outboxBytes = 0;
  holdLineBytes(st, 0);
  if (st.admitted) { st.admitted = false; st.admission.release(st.peer?.uid ?? null); }
}

/** Sets the unfinished-line bytes this connection holds; false (nothing changed) when the budget is spent. */
function holdLineBytes(st: ConnState, held: number): boolean {
  if (!st.admission.take(st.peer?.uid ?? null, "lines", held - st.lineBytes)) return false;
  st.lineBytes = held;
  return true;
}

/** A warning at most once per `gapMs`, then how many were left out: a flood of refusals must not flood the log. */
function rateLimitedWarning(gapMs: number) {
  let last = -Infinity;
  let skipped = 0;
  return (message: string) => {
    const now = performance.now();
    if (now - last < gapMs) { skipped++; return; }
    log.warn(`${message}${skipped > 0 ? ` (${skipped} similar not logged)` : ""}`);
    last = now;
    skipped = 0;
  };
}

function flush(sock: Socket<ConnState>) {
  const st = sock.data;
  let progress = false;
  while (st.outbox.length > 0) {
    const head = st.outbox[0]!;
    const n = sock.write(head);
    if (n < 0) { release(st); return; }
    if (n > 0) progress = true;
    st.outboxBytes -= n;
    st.admission.take(st.peer?.uid ?? null, "answers", -n);
    if (n < head.length) { st.outbox[0] = head.subarray(n); break; }
    st.outbox.shift();
  }
  if (st.outbox.length > 0) {
    // Answers wait for the client to read. One that reads nothing for WRITE_STALL_S is dropped
    // whoever it is: once it stops reading, neither the cap on unread bytes nor the idle timeout
    // (a request in progress keeps a connection open) would ever end it.
    if (st.stalledSince === null || progress) {
      st.stalledSince = performance.now();
      sock.timeout(WRITE_STALL_S);
    }
    return;
  }
  st.stalledSince = null;
  if (st.endWhenFlushed) { st.endWhenFlushed = false; sock.end(); }
}
