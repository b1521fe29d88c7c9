/** One request to the daemon named by the master config of `-c`; progress lines go to stderr. */
import { resolve as resolvePath } from "node:path";
import { callDaemon } from "../control/client.ts";
import type { Command, RequestOptions } from "../control/protocol.ts";
import type { ParsedCommandArgs } from "./args.ts";
import { err } from "./output.ts";
import { quickSockPath } from "./quick-master.ts";

// The config parser is imported where used: a `status` never loads it (issue 15; daemon, config
// parser and log code are separate chunks of the binary, test/client-lazy-load.test.ts).
export async function sockPathOf(args: ParsedCommandArgs): Promise<string> {
  const file = resolvePath(args.config);
  return quickSockPath(file) ?? (await import("../config/load.ts")).loadMasterConfig(file).sockPath;
}

/**
 * `extra`: the fields of `reload`/`signal` requests (the signal, whether to the main process only);
 * `options`: those of `stop` (withDependents) and `wait` (ready, timeoutMs).
 */
export async function request(args: ParsedCommandArgs, cmd: Command, names: string[] = [], extra?: { signal?: string; main?: boolean }, options?: RequestOptions) {
  return callDaemon(await sockPathOf(args), cmd, names, { onProgress: (m) => err(m), request: extra, ...(options ? { options } : {}) });
}

