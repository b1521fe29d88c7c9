/**
 * Worker thread of the rotation of big log files (rotate.ts): copying, fsyncing and collapsing
 * a file of a GiB takes seconds, which on the daemon's thread would keep it from answering
 * anyone (issue 11, 8b). It gets fds the main thread opened and verified, and touches no path.
 */
import { moveLogBytes, type MoveJob } from "./move.ts";

declare const self: Worker;

self.onmessage = (ev: MessageEvent<MoveJob>) => {
  postMessage(moveLogBytes(ev.data));
};
