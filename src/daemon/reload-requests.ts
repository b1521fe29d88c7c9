/**
 * The `reload` and `signal` requests: every named service at once, one report per service.
 * A service that is not running (or has no reload defined) gets its own failed entry; the
 * others still go ahead. Who asked is logged by the request handler (daemon.ts).
 */
import type { CgroupTree } from "../cgroup/index.ts";
import { normalizeSignal } from "../config/load.ts";
import type { Request, ServiceActionReport } from "../control/protocol.ts";
import { reloadService, signalService } from "../supervisor/reload.ts";
import type { Unit } from "../supervisor/supervisor.ts";
import { PmError, errorMessage } from "../util/errors.ts";
import { logger } from "../util/log.ts";


export async function serviceReloads(units: Unit[], cgroups: CgroupTree): Promise<{ services: ServiceActionReport[] }> {
  const services = await Promise.all(units.map(async (u): Promise<ServiceActionReport> => {
    try {
      const r = await reloadService(u, cgroups);
      if (r.ok) u.log.info(`reloaded: ${r.how}`);
      else u.log.warn(`reload failed: ${r.how}${r.output ? `; output: ${r.output}` : ""}; the service keeps running`);
      return { name: u.name, ok: r.ok, message: r.how, ...(r.output ? { output: r.output } : {}) };
    } catch (e) {
      return { name: u.name, ok: false, message: errorMessage(e) };
    }
  }));
  return { services };
}

export function serviceSignals(units: Unit[], cgroups: CgroupTree, req: Request): { services: ServiceActionReport[] } {
  const signal = req.signal === undefined ? null : normalizeSignal(req.signal);
  if (signal === null) throw new PmError("USAGE", `unknown signal '${req.signal ?? ""}'; expected a name like SIGHUP, HUP or a number like 1`);
  const log = logger("signal");
  const services = units.map((u): ServiceActionReport => {
    try {
      const r = signalService(u, cgroups, signal as NodeJS.Signals, req.main === true);
      const message = `${signal} sent to ${r.main ? "the main process " : ""}${r.pids.length === 0 ? "no process" : `pid ${r.pids.join(",")}`}`;
      u.log.info(message);
      return { name: u.name, ok: true, message, pids: r.pids };
    } catch (e) {
      log.debug(`${u.name}: ${errorMessage(e)}`);
      return { name: u.name, ok: false, message: errorMessage(e) };
    }
  });
  return { services };
}
