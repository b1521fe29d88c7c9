/**
 * pmctl's output. Through write(2): the first touch of process.stdout builds a stream object,
 * about 3 ms of a ~15 ms cold pmctl (issue 6). Blocking and in order; a closed pipe (`| head`)
 * ends output.
 */
import { fstatSync, writeSync } from "node:fs";

export function writeFd(fd: number, s: string) {
  const buf = Buffer.from(s);
  for (let off = 0; off < buf.length;) {
    try { off += writeSync(fd, buf, off); }
    catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EAGAIN") { Bun.sleepSync(1); continue; } // a non-blocking fd from the caller
      if (code === "EPIPE") return;
      throw e;
    }
  }
}
export const out = (s: string) => writeFd(1, s + "\n");
export const err = (s: string) => writeFd(2, s + "\n");

/**
 * isatty(fd), loading node:tty only for a character device: importing node:tty costs a cold
 * pmctl ~2.5 ms (issue 15, timestamps in a compiled build), more than the whole client's own work.
 * A pipe or a file (scripts, `watch`, the bench) is never a terminal; a character device may be
 * (or /dev/null), and there node:tty's isatty decides.
 */
export async function isTerminal(fd: number): Promise<boolean> {
  try { if (!fstatSync(fd).isCharacterDevice()) return false; } catch { return false; }
  const { isatty } = await import("node:tty");
  return isatty(fd);
}
