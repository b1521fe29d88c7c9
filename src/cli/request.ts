/** One request to the daemon named by the master config of `-c`; progress lines go to stderr. */
import { resolve as resolvePath } from "node:path";
import { loadMasterConfig } from "../config/load.ts";
import { callDaemon } from "../control/client.ts";
import type { Command } from "../control/protocol.ts";
import type { ParsedCommandArgs } from "./args.ts";
import { err } from "./output.ts";
import { quickSockPath } from "./quick-master.ts";

export function sockPathOf(args: ParsedCommandArgs): string {
  const file = resolvePath(args.config);
  return quickSockPath(file) ?? loadMasterConfig(file).sockPath;
}

/** `extra`: the fields of `reload`/`signal` requests (the signal, whether to the main process only). */
export async function request(args: ParsedCommandArgs, cmd: Command, names: string[] = [], extra?: { signal?: string; main?: boolean }) {
  return callDaemon(sockPathOf(args), cmd, names, { onProgress: (m) => err(m), request: extra });
}

