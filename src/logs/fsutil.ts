/** Small helpers around node:fs errors shared by the log modules. */
import fs from "node:fs";

/** The positive errno of a node:fs or PmError error, if it carries one. */
export function errnoOf(e: unknown): number | undefined {
  const n = (e as { errno?: unknown } | null)?.errno;
  return typeof n === "number" ? Math.abs(n) : undefined;
}

/** The errno name (`ENOENT`) of a node:fs error, if it carries one. */
export function codeOf(e: unknown): string | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === "string" ? c : undefined;
}

/** stat that answers null for a missing file (or a missing folder on the way). */
export function statOrNull(file: string): fs.Stats | null {
  try {
    return fs.statSync(file);
  } catch (e) {
    const code = codeOf(e);
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    throw e;
  }
}

export function closeQuietly(fd: number | null | undefined): void {
  if (fd === null || fd === undefined) return;
  try { fs.closeSync(fd); } catch { /* already closed */ }
}

/**
 * Opens `file` read-only for `pmctl logs` (which runs with its caller's own rights): with
 * O_NONBLOCK, so a FIFO someone put at a log path can neither block the open nor a read, and
 * only a regular file is accepted. Throws node's error for a missing file (ENOENT, ENOTDIR).
 */
export function openForReading(file: string): number {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw Object.assign(new Error(`${file} is not a regular file; not read`), { code: "ENOTREG" });
    return fd;
  } catch (e) {
    closeQuietly(fd);
    throw e;
  }
}
