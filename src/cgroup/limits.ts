/**
 * Controllers and limit files: enabling controllers from the cgroup2 root down to the service
 * cgroups, writing limit files, and saying why one is not in force (tree.ts owns one of these).
 */
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { errorMessage } from "../util/errors.ts";
import { readWords } from "./read.ts";

export interface LimitProblem { file: string; value: string; reason: string }
export interface LimitReport { applied: string[]; notApplied: LimitProblem[] }

/** Controllers a cgroup's limit files can use (its `cgroup.controllers`: the parent's subtree_control). */
function controllersAvailable(path: string): Set<string> {
  return readWords(join(path, "cgroup.controllers"));
}

export class CgroupControllers {
  /** cgroup.controllers of the master's children (the master's subtree_control); null: read it again. */
  private serviceControllers: Set<string> | null = null;

  /** `changed`: called when enable() may have changed the controllers (memory.* may appear in existing children). */
  constructor(private readonly root: string, private readonly masterPath: string, private readonly changed: () => void) {}

  /** Controllers the master's children have (its cgroup.subtree_control), read once until enable(). */
  ofServices(): Set<string> {
    return (this.serviceControllers ??= readWords(join(this.masterPath, "cgroup.subtree_control")));
  }

  /**
   * Enables the needed controllers for the master's children (`for: "services"`), or only for
   * the master itself (`for: "master"`: its own limit files). Each controller must first be
   * enabled in every ancestor; we try the root→master chain and report what stayed missing.
   * All in one write first (one syscall); if the kernel refuses that (one controller could not
   * be enabled), one write per controller so the others still get enabled.
   */
  enable(wanted: string[], opts: { for: "master" | "services" } = { for: "services" }): Set<string> {
    if (wanted.length === 0) return new Set();
    for (const dir of opts.for === "master" ? [this.root] : [this.root, this.masterPath]) {
      const have = controllersAvailable(dir);
      const enabled = readWords(join(dir, "cgroup.subtree_control"));
      const add = wanted.filter((c) => have.has(c) && !enabled.has(c)).map((c) => `+${c}`);
      if (add.length === 0) continue;
      const file = join(dir, "cgroup.subtree_control");
      try { writeFileSync(file, add.join(" ")); } catch {
        for (const one of add) { try { writeFileSync(file, one); } catch { /* reported by writeLimits as not in force */ } }
      }
    }
    this.changed();
    return (this.serviceControllers = readWords(join(this.masterPath, "cgroup.subtree_control")));
  }

  /**
   * Writes interface files (e.g. {"memory.max": "67108864"}) into `path`. A file whose
   * controller is not enabled there is reported, never silently skipped.
   */
  writeLimits(path: string, limits: Record<string, string>): LimitReport {
    const report: LimitReport = { applied: [], notApplied: [] };
    const files = Object.entries(limits);
    if (files.length === 0) return report;
    // A service cgroup has what the master's subtree_control enables: read once, not per start;
    // enable() forgets it, and a controller it lacks is looked up again, in the
    // service's own cgroup.controllers (the kernel's word for that cgroup), before reporting.
    const isService = dirname(path) === this.masterPath;
    let available = isService ? this.ofServices() : controllersAvailable(path);
    let lookedAgain = !isService;
    let inTree: Set<string> | null = null; // the root's controllers, read once, only to say why one is missing
    for (const [file, value] of files) {
      const controller = file.split(".")[0]!;
      if (!available.has(controller) && !lookedAgain) { available = this.serviceControllers = controllersAvailable(path); lookedAgain = true; }
      if (!available.has(controller)) {
        report.notApplied.push({ file, value, reason: this.missingControllerReason(controller, path, available, (inTree ??= controllersAvailable(this.root))) });
        continue;
      }
      try { writeFileSync(join(path, file), value); report.applied.push(file); }
      catch (e) { report.notApplied.push({ file, value, reason: `write failed: ${errorMessage(e)}` }); }
    }
    return report;
  }

  /** Why `controller` is missing at `path`: absent from the whole cgroup2 tree, or not enabled down to it. */
  private missingControllerReason(controller: string, path: string, available: Set<string>, inTree: Set<string>): string {
    if (!inTree.has(controller)) {
      return `the ${controller} controller is not available in the cgroup2 tree at ${this.root} (its cgroup.controllers lists: ${[...inTree].join(" ") || "none"}; on a hybrid cgroup v1/v2 host it is usually attached to a v1 hierarchy)`;
    }
    return `the ${controller} controller is not enabled for ${path} (its cgroup.controllers lists: ${[...available].join(" ") || "none"}); enabling it in the parent's cgroup.subtree_control failed`;
  }
}
