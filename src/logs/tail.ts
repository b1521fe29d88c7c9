/**
 * `tail -n`: the last lines of a file, read backwards from its end in chunks, so the cost
 * depends on the size of the answer, not of the file (a 10 GB log answers as fast as a 10 KB one).
 */
import fs from "node:fs";
import { closeQuietly, codeOf, openForReading } from "./fsutil.ts";

const CHUNK = 64 * 1024;
const NL = 0x0a;

/**
 * The last `n` lines of `file`, without their newlines. Like `tail -n`: a final newline ends
 * the last line (it does not start an empty one); a last line without a newline is still a
 * line. Bytes are decoded as UTF-8 (invalid sequences become U+FFFD). A missing file gives [].
 */
export function tailLines(file: string, n: number): string[] {
  if (!(n > 0)) return [];
  let fd: number;
  try {
    fd = openForReading(file);
  } catch (e) {
    if (codeOf(e) === "ENOENT" || codeOf(e) === "ENOTDIR") return [];
    throw e;
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return [];
    const chunks: Buffer[] = [];
    let pos = size; // everything at or after pos has been read into chunks
    let end = size; // the text ends here (a final newline excluded)
    let start = -1; // where the n lines begin, once found
    let newlines = 0;
    let first = true;
    while (pos > 0 && start < 0) {
      const len = Math.min(CHUNK, pos);
      pos -= len;
      const buf = Buffer.allocUnsafe(len);
      let got = 0;
      while (got < len) {
        const r = fs.readSync(fd, buf, got, len - got, pos + got);
        if (r === 0) break; // the file shrank meanwhile: take what there is
        got += r;
      }
      const chunk = got === len ? buf : buf.subarray(0, got);
      let i = chunk.length - 1;
      if (first) {
        first = false;
        if (chunk[i] === NL) { end = pos + i; i--; }
      }
      for (; i >= 0; i--) {
        if (chunk[i] === NL && ++newlines === n) {
          start = pos + i + 1;
          break;
        }
      }
      chunks.unshift(chunk);
    }
    if (start < 0) start = 0;
    const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    const text = all.subarray(start - pos, end - pos).toString("utf8");
    return text.split("\n");
  } finally {
    closeQuietly(fd);
  }
}
