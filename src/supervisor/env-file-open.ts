/**
 * How the daemon (root) opens a service's environment file: its folder is reached through the
 * verified folder walk of logs/safe-dir.ts (no symlink a non-root user made on the way, a folder
 * swapped for one is refused), the file itself with openat(O_NOFOLLOW | O_NONBLOCK). Checking
 * and parsing stay in config/env-file.ts, which may not import logs/.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { OpenedEnvFile } from "../config/env-file.ts";
import { LogDir } from "../logs/index.ts";
import { ERRNO } from "../linux/ffi.ts";
import { PmError, errorMessage } from "../util/errors.ts";

function errnoOf(e: unknown): number | undefined {
  const n = (e as { errno?: unknown } | null)?.errno;
  return typeof n === "number" ? Math.abs(n) : undefined;
}

/** Null when the file or a folder on its way does not exist; throws PmError("SPAWN") when it may not be opened. */
export function openEnvironmentFileSafely(file: string): OpenedEnvFile | null {
  let dir: LogDir | null;
  try {
    dir = LogDir.openIfExists(path.dirname(file));
  } catch (e) {
    throw new PmError("SPAWN", `environment_file ${file}: ${errorMessage(e).replace(/^log folder /, "folder ")}`, { cause: e });
  }
  if (!dir) return null;
  try {
    let fd: number;
    try {
      fd = dir.open(path.basename(file), fs.constants.O_RDONLY);
    } catch (e) {
      if (errnoOf(e) === ERRNO.ENOENT) return null;
      throw new PmError("SPAWN", `environment_file ${errorMessage(e)}`, { cause: e });
    }
    return { fd, folderRootOnly: dir.rootOnly() };
  } finally {
    dir.close();
  }
}
