/**
 * The floor of `pmctl status`: the least a compiled Bun client can do for the same answer.
 * It connects to the socket named in argv, sends the request line given as the second argument
 * (bench.ts passes the one pmctl sends for the `status` table: `options.view: "table"`), reads
 * until the first complete line of the answer (the whole `result` line: every service) and
 * prints it. No config file, no argument parsing, no rendering. Compiled with the flags of
 * dist/processmaster (scripts/compile-flags.ts) by `buildFloorClient`, so the difference
 * between the two is what processmaster's own code adds.
 */
import { writeSync } from "node:fs";

const sock = process.argv[2]!;
const request = process.argv[3] ?? JSON.stringify({ cmd: "status", names: [] });
const chunks: Buffer[] = [];
Bun.connect({
  unix: sock,
  socket: {
    open(s) { s.write(request + "\n"); },
    data(s, chunk) {
      chunks.push(Buffer.from(chunk));
      const nl = chunk.indexOf(10);
      if (nl < 0) return;
      const all = Buffer.concat(chunks);
      writeSync(1, all.subarray(0, all.indexOf(10) + 1));
      process.exit(0); // the kernel closes the socket; s.end() would call close() first
    },
    close() { process.exit(1); },
    error() { process.exit(3); },
  },
}).catch(() => process.exit(3));
