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

export async function request(args: ParsedCommandArgs, cmd: Command, names: string[] = []) {
  return callDaemon(sockPathOf(args), cmd, names, { onProgress: (m) => err(m) });
}

