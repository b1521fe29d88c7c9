/**
 * Who may hold what on the control socket, decided at accept time, before any request is read
 * or any permission checked. Anyone the socket's mode lets connect (0666 with sock_read_group)
 * could otherwise open connections until the daemon runs out of file descriptors (restarts then
 * fail with EMFILE and root's pmctl finds nothing listening), or park a megabyte of unfinished
 * line, or of unread answers, on each.
 *
 * Root and the daemon's own uid are never limited: the limits exist so that the daemon keeps
 * answering them. Everyone else shares MAX_CONNECTIONS, at most MAX_CONNECTIONS_PER_UID each,
 * and byte budgets for unfinished request lines and unread answers. An over-limit connection is
 * closed at once (the kernel's accept queue is drained, so nothing spins).
 */

/** Connections of non-privileged peers, all uids together. */
export const MAX_CONNECTIONS = 256;
/** Connections of one non-privileged uid. */
export const MAX_CONNECTIONS_PER_UID = 32;
/** Bytes of unfinished request lines held for non-privileged peers, all together. */
export const MAX_PENDING_LINE_BYTES = 16 << 20;
/** Bytes of answers non-privileged peers have not read yet, all together. */
export const MAX_UNREAD_ANSWER_BYTES = 64 << 20;
/** A non-privileged connection with no request in progress is closed after this long. */
export const IDLE_TIMEOUT_S = 60;
/** A connection (anyone's, root's too) whose answers wait and that reads none of them for this long is closed. */
export const WRITE_STALL_S = 30;

export type Budget = "lines" | "answers";

export class Admission {
  private total = 0;
  private readonly perUid = new Map<number, number>();
  private readonly bytes: Record<Budget, number> = { lines: 0, answers: 0 };

  /** `privilegedUids`: root and the daemon's own uid. */
  constructor(private readonly privilegedUids: ReadonlySet<number>) {}

  /** Whether a peer (uid, or null when SO_PEERCRED failed) is exempt from every limit. */
  privileged(uid: number | null): boolean {
    return uid !== null && this.privilegedUids.has(uid);
  }

  /** Counts the connection in and returns null, or says why it must be closed (nothing counted then). */
  admit(uid: number | null): string | null {
    if (this.privileged(uid)) return null;
    const key = uid ?? -1;
    const mine = this.perUid.get(key) ?? 0;
    if (mine >= MAX_CONNECTIONS_PER_UID) return `uid ${key} already has ${mine} connections (at most ${MAX_CONNECTIONS_PER_UID})`;
    if (this.total >= MAX_CONNECTIONS) return `${this.total} connections of non-root clients are open (at most ${MAX_CONNECTIONS})`;
    this.perUid.set(key, mine + 1);
    this.total++;
    return null;
  }

  /** A connection `admit` counted is gone. */
  release(uid: number | null): void {
    if (this.privileged(uid)) return;
    const key = uid ?? -1;
    const mine = (this.perUid.get(key) ?? 1) - 1;
    if (mine <= 0) this.perUid.delete(key); else this.perUid.set(key, mine);
    this.total--;
  }

  /**
   * Asks for `delta` more bytes of a budget (negative gives back). False, and nothing taken,
   * when a non-privileged peer would overdraw it: the caller closes that connection.
   */
  take(uid: number | null, budget: Budget, delta: number): boolean {
    if (this.privileged(uid)) return true;
    const max = budget === "lines" ? MAX_PENDING_LINE_BYTES : MAX_UNREAD_ANSWER_BYTES;
    if (delta > 0 && this.bytes[budget] + delta > max) return false;
    this.bytes[budget] += delta;
    return true;
  }

  /** For tests and status: what is held now. */
  usage() { return { connections: this.total, uids: this.perUid.size, ...this.bytes }; }
}
