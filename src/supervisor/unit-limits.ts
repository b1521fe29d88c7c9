/** Applying a unit's `resources:` to its cgroup, live (boot, spawn, update). */
import type { CgroupTree } from "../cgroup/index.ts";
import { errorMessage } from "../util/errors.ts";
import { KERNEL_DEFAULTS, limitChanges, resourceLimitFiles } from "./limits.ts";
import type { Unit } from "./supervisor.ts";

/**
 * Writes `resources:` into the service cgroup, and the kernel default ("no limit") into each
 * limit file that is no longer configured, so `update` can lift a limit without a restart.
 * What could not be applied is kept for status and logged once per file and value.
 */
export function applyUnitLimits(unit: Unit, cgroups: CgroupTree, cgroupPath?: string): void {
  const files = resourceLimitFiles(unit.config.resources);
  if (cgroupPath === undefined && Object.keys(files).length === 0 && !cgroups.hasService(unit.name)) { unit.limits = null; unit.writtenLimits = {}; return; }
  let path: string;
  // At boot or in update a cgroup that cannot be made costs this service its limits, not the
  // daemon its life; spawn reports the same error when it tries to start the service.
  if (cgroupPath !== undefined) path = cgroupPath; // spawn's, just made
  else try { path = cgroups.createService(unit.name); } catch (e) { unit.log.error(errorMessage(e)); return; }
  const report = cgroups.writeLimits(path, limitChanges(unit.writtenLimits ?? KERNEL_DEFAULTS, files));
  unit.writtenLimits = files;
  const reported = new Set((unit.limits?.notApplied ?? []).map((p) => `${p.file}=${p.value}`));
  // A default that could not be written lifts nothing that was in force: not worth a report.
  const notApplied = report.notApplied.filter((p) => files[p.file] === p.value);
  unit.limits = { applied: report.applied.filter((f) => f in files), notApplied };
  for (const p of notApplied) if (!reported.has(`${p.file}=${p.value}`)) unit.log.warn(`limit ${p.file}=${p.value} not in force: ${p.reason}`);
}
