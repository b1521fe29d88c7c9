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
