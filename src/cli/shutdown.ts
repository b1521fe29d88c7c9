/**
 * `pmctl shutdown`: stop every service (in parallel, each with its grace), then the daemon
 * exits 0. Operator stops are not recorded, so the next daemon starts what was running. The
 * report counts the services that had processes when it was asked (`stopped`, also in --json).
 */
import type { AppStatus } from "../supervisor/status.ts";
import { PmError } from "../util/errors.ts";
import { plural } from "../util/plural.ts";
import { EXIT, type CliCommand } from "./args.ts";
import { out } from "./output.ts";
import { request } from "./request.ts";
import { statusReply } from "./status.ts";

export const shutdownCommand: CliCommand = {
  name: "shutdown",
  description: "stop every service (in parallel, with grace), then the daemon exits; the next daemon starts them again",
  usage: "shutdown",
  args: {},
  async run(args) {
    if (args.positionals.length > 0) throw new PmError("USAGE", "shutdown takes no service names (it stops every service and the daemon)");
    // What had processes just before: the reply shows every service stopped, so it cannot say
    // which were running. Names and PIDs only: the table's view (no log-file lookups).
    const before = await statusReply(args, [], false);
    const running = new Set(before.apps.filter((a) => a.pids.length > 0).map((a) => a.name));
    const { apps } = (await request(args, "shutdown")) as { apps: AppStatus[] };
    const left = apps.filter((a) => a.pids.length > 0);
    const stopped = apps.filter((a) => running.has(a.name));
    if (args.json) out(JSON.stringify({ apps, stopped: stopped.map((a) => a.name), daemon: "exiting" }));
    else {
      const killed = stopped.filter((a) => a.last_exit === "killed-after-grace").map((a) => a.name);
      out(`stopped ${plural(stopped.length, "service")}${killed.length ? ` (killed after grace: ${killed.join(", ")})` : ""}; the daemon is exiting`);
      for (const a of left) out(`${a.name}: still has processes ${a.pids.join(",")}`);
    }
    return left.length ? EXIT.failed : EXIT.ok;
  },
};
