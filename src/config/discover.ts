/**
 * Which master config the daemon and the client read, the same for both: `-c FILE`, then
 * $PROCESSMASTER_CONFIG, then ./config.yaml if it exists, then /etc/processmaster/config.yaml.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { PmError } from "../util/errors.ts";
import { untrustedFileReason } from "../util/file-trust.ts";

export const ETC_CONFIG = "/etc/processmaster/config.yaml";

/**
 * Why root should not take `file`, found by itself in the working directory, as its config: a
 * config names the socket pmctl talks to and trusts the answer of (service names for shell
 * completion, text for the terminal); in a folder someone else controls, it is theirs.
 */
function untrustedAsRoot(file: string): string | null {
  if (process.getuid?.() !== 0) return null;
  return untrustedFileReason(file, new Set([0]));
}

export function discoverConfig(given: string | undefined, env: Record<string, string | undefined> = process.env,
  exists: (path: string) => boolean = existsSync, untrusted: (file: string) => string | null = untrustedAsRoot): string {
  if (given !== undefined && given !== "") return resolve(given);
  const fromEnv = env.PROCESSMASTER_CONFIG;
  if (fromEnv) return resolve(fromEnv);
  const local = resolve("config.yaml");
  if (exists(local)) {
    const why = untrusted(local);
    if (why) throw new PmError("CONFIG_UNREADABLE", `not using ${local} found in the working directory: ${why}; pass -c FILE to use it anyway`);
    return local;
  }
  if (exists(ETC_CONFIG)) return ETC_CONFIG;
  throw new PmError("CONFIG_UNREADABLE",
    `no master config found: tried -c (not given), $PROCESSMASTER_CONFIG (not set), ${local} (not found), ${ETC_CONFIG} (not found); pass -c FILE`);
}
