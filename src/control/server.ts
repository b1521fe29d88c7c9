/**
 * The control socket. Permissions are in place before the socket can be reached: it is
 * created under umask 0177 (owner-only), then chmod/chown'd to the configured mode.
 * A malformed request gets an error reply; the daemon carries on.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import type { Socket, UnixSocketListener } from "bun";
import { getPeerCred, type PeerCred } from "../linux/ffi.ts";
import { PmError, errorMessage } from "../util/errors.ts";
import { logger } from "../util/log.ts";
import { encodeLine, LineSplitter, parseRequest, type Reply, type Request } from "./protocol.ts";

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
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  if (await socketIsLive(path)) {
    throw new PmError("DAEMON_RUNNING", `another processmaster is already listening on ${path}; stop it first (pmctl -c ... status shows it)`);
  }
  try { unlinkSync(path); } catch { /* no stale socket */ }

  const oldMask = process.umask(0o177);
  let server: UnixSocketListener<ConnState>;
  try {
    server = Bun.listen<ConnState>({
      unix: path,
      socket: {
        open(sock) {
          let peer: PeerCred | null = null;
          try { peer = getPeerCred((sock as unknown as { fd: number }).fd); } catch { /* unknown peer: treated as unprivileged */ }
          sock.data = { splitter: new LineSplitter(), peer, outbox: [], closed: false, chain: Promise.resolve() };
        },
        data(sock, chunk) {
          const st = sock.data;
          let lines: string[];
          try { lines = st.splitter.push(chunk); } catch (e) {
            send(sock, { type: "error", code: "PROTOCOL", message: errorMessage(e) });
            st.closed = true;
            sock.end();
            return;
          }
          for (const line of lines) {
            if (line.trim() === "") continue;
            st.chain = st.chain.then(() => serve(sock, line, handle));
          }
        },
        drain(sock) { flush(sock); },
        close(sock) { if (sock.data) sock.data.closed = true; },
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

async function serve(sock: Socket<ConnState>, line: string, handle: RequestHandler) {
  const st = sock.data;
  let reply: Reply;
  try {
    const req = parseRequest(line);
    const data = await handle(req, { peer: st.peer, progress: (message) => send(sock, { type: "progress", message }) });
    reply = { type: "result", data };
  } catch (e) {
    reply = e instanceof PmError ? { type: "error", code: e.code, message: e.message } : { type: "error", code: "INTERNAL", message: errorMessage(e) };
    if (!(e instanceof PmError)) log.error(`request failed: ${e instanceof Error ? e.stack : e}`);
  }
  send(sock, reply);
}

function send(sock: Socket<ConnState>, reply: Reply) {
  const st = sock.data;
  if (st.closed) return;
  st.outbox.push(Buffer.from(encodeLine(reply)));
  flush(sock);
}

function flush(sock: Socket<ConnState>) {
  const st = sock.data;
  while (st.outbox.length > 0) {
    const head = st.outbox[0]!;
    const n = sock.write(head);
    if (n < 0) { st.closed = true; st.outbox = []; return; }
    if (n < head.length) { st.outbox[0] = head.subarray(n); return; }
    st.outbox.shift();
  }
}
