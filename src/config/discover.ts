/**
 * Which master config the daemon and the client read, the same for both: `-c FILE`, then
 * $PROCESSMASTER_CONFIG, then ./config.yaml if it exists, then /etc/processmaster/config.yaml.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { PmError } from "../util/errors.ts";

export const ETC_CONFIG = "/etc/processmaster/config.yaml";

export function discoverConfig(given: string | undefined, env: Record<string, string | undefined> = process.env,
  exists: (path: string) => boolean = existsSync): string {
  if (given !== undefined && given !== "") return resolve(given);
  const fromEnv = env.PROCESSMASTER_CONFIG;
  if (fromEnv) return resolve(fromEnv);
  const local = resolve("config.yaml");
  if (exists(local)) return local;
  if (exists(ETC_CONFIG)) return ETC_CONFIG;
  throw new PmError("CONFIG_UNREADABLE",
    `no master config found: tried -c (not given), $PROCESSMASTER_CONFIG (not set), ${local} (not found), ${ETC_CONFIG} (not found); pass -c FILE`);
}
