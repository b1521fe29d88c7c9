/** The pmctl side of the control socket: one connection per request. */
import { PmError, type ErrorCode } from "../util/errors.ts";
import { encodeLine, LineSplitter, type Command, type RequestOptions } from "./protocol.ts";

export interface CallOptions {
  /** Called for each progress line while the daemon works. */
  onProgress?: (message: string) => void;
  /** More fields of the request (`signal`, `main`). */
  request?: { signal?: string; main?: boolean };
  /** `options` of the request (stop, wait). */
  options?: RequestOptions;
}

export async function callDaemon(sockPath: string, cmd: Command, names: string[] = [], opts: CallOptions = {}): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const splitter = new LineSplitter(64 << 20);
    let settled = false;
    // A long request (thousands of names) does not fit the socket buffer in one write: the rest
    // goes out as the daemon reads (drain). A write that dropped it silently hung pmctl forever.
    let unsent = Buffer.from(encodeLine({ cmd, names, ...opts.request, ...(opts.options ? { options: opts.options } : {}) }));
    const sendMore = (sock: { write(b: Uint8Array): number }) => {
      while (unsent.length > 0) {
        const n = sock.write(unsent);
        if (n <= 0) return;
        unsent = unsent.subarray(n);
      }
    };
    const settle = (fn: () => void) => { if (!settled) { settled = true; fn(); } };
    Bun.connect({
      unix: sockPath,
      socket: {
        open(sock) { sendMore(sock); },
        drain(sock) { sendMore(sock); },
        data(sock, chunk) {
          let lines: string[];
          try { lines = splitter.push(chunk); } catch (e) { settle(() => reject(e)); sock.end(); return; }
          for (const line of lines) {
            let msg: { type: string; message?: string; data?: unknown; code?: ErrorCode };
            try { msg = JSON.parse(line); } catch { settle(() => reject(new PmError("PROTOCOL", `daemon sent a line that is not JSON: ${line.slice(0, 80)}`))); sock.end(); return; }
            if (msg.type === "progress") opts.onProgress?.(msg.message ?? "");
            else if (msg.type === "result") { settle(() => resolve(msg.data)); sock.end(); }
            else if (msg.type === "error") { settle(() => reject(new PmError(msg.code ?? "INTERNAL", msg.message ?? "request failed"))); sock.end(); }
          }
        },
        close() { settle(() => reject(new PmError("DAEMON_UNREACHABLE", `the daemon at ${sockPath} closed the connection without answering`))); },
        error(_sock, e) { settle(() => reject(new PmError("DAEMON_UNREACHABLE", `cannot talk to the daemon at ${sockPath}: ${e.message}`))); },
      },
    }).catch((e: Error & { code?: string }) => {
      const why = e.code === "ENOENT" ? "no socket there" : e.code === "ECONNREFUSED" ? "nothing is listening" : e.code === "EACCES" ? "permission denied" : e.message;
      settle(() => reject(new PmError(e.code === "EACCES" ? "PERMISSION" : "DAEMON_UNREACHABLE", `the daemon is not reachable at ${sockPath} (${why}); start it with: processmaster daemon -c <config.yaml>`)));
    });
  });
}
