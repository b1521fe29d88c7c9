/** Opening the files services write their stdout/stderr to. */
import fs from "node:fs";
import path from "node:path";
import { PmError, errorMessage } from "../util/errors.ts";
import { errnoOf } from "./fsutil.ts";

/**
 * Opens `file` for appending (O_APPEND, created 0644 if missing) after creating its folder,
 * and returns the fd to pass as a service's stdout/stderr. O_APPEND matters: after a
 * truncate or a collapse the writer keeps writing at the new end (no hole of NULs).
 * The caller closes the fd once the child has it.
 */
export function openLogFd(file: string): number {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    return fs.openSync(file, "a", 0o644);
  } catch (e) {
    throw new PmError("LOGS", `cannot open log file ${file}: ${errorMessage(e)}`, { errno: errnoOf(e), cause: e });
  }
}
