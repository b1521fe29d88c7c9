/**
 * How requests appear in the daemon's log. What a client sends is escaped (no forged lines) and
 * bounded (a request may carry thousands of names); refusals, which anyone who can connect can
 * cause, are logged at most REFUSALS_PER_WINDOW times per uid per window, then counted.
 */
import type { Request } from "../control/protocol.ts";
import type { PeerCred } from "../linux/ffi.ts";
import { printable, type Logger } from "../util/log.ts";
import { plural } from "../util/plural.ts";

/** Names shown for one request; the rest are counted. */
const NAMES_SHOWN = 8;

/** `stop a b c … (+97 more)`, escaped. */
export function describeRequest(req: Request): string {
  const cmd = `${req.cmd}${req.signal ? ` ${printable(req.signal, 16)}` : ""}${req.main ? " --main" : ""}`;
  if (req.names.length === 0) return `${cmd} (all)`;
  const shown = req.names.slice(0, NAMES_SHOWN).map((n) => printable(n, 64)).join(" ");
  const more = req.names.length - NAMES_SHOWN;
  return `${cmd} ${shown}${more > 0 ? ` (+${more} more)` : ""}`;
}

export const REFUSALS_PER_WINDOW = 10;
export const REFUSAL_WINDOW_MS = 60_000;

/** Logs refused requests, REFUSALS_PER_WINDOW per uid per window; then one line saying how many were not logged. */
export class RefusalLog {
  private readonly byUid = new Map<number, { since: number; logged: number; dropped: number }>();
  constructor(private readonly log: Logger, private readonly now: () => number) {}

  refused(req: Request, peer: PeerCred | null, who: () => string): void {
    const uid = peer?.uid ?? -1;
    const t = this.now();
    let w = this.byUid.get(uid);
    if (!w || t - w.since >= REFUSAL_WINDOW_MS) {
      if (w && w.dropped > 0) this.log.warn(`${plural(w.dropped, "more refused request")} from uid ${uid} not logged`);
      w = { since: t, logged: 0, dropped: 0 };
      this.byUid.set(uid, w);
      if (this.byUid.size > 1024) this.byUid.delete(this.byUid.keys().next().value!); // bounded: oldest window goes
    }
    if (w.logged < REFUSALS_PER_WINDOW) {
      w.logged++;
      this.log.warn(`refused ${describeRequest(req)} from ${who()}${w.logged === REFUSALS_PER_WINDOW ? ` (further refusals for uid ${uid} are counted, not logged, for ${REFUSAL_WINDOW_MS / 1000}s)` : ""}`);
    } else w.dropped++;
  }
}
