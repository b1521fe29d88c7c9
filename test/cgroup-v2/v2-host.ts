/**
 * Whether this host's cgroup2 tree has the controllers limits need. The tests in this folder
 * run in the cgroup v2 lane (`bun run test:cgroup-v2`, inside scripts/cgroup-v2-vm) and skip,
 * saying so, on hosts without them (hybrid cgroups, containers without delegation); in the lane
 * (PM_REQUIRE_FULL_TREE=1) a tree without them is an error.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { findCgroup2Mount } from "../../src/cgroup/mount.ts";

export const CGROUP2_MOUNT = findCgroup2Mount();
const inTree = readFileSync(join(CGROUP2_MOUNT, "cgroup.controllers"), "utf8").split(/\s+/).filter(Boolean);
export const FULL_TREE = ["cpu", "memory", "pids"].every((c) => inTree.includes(c)) && process.getuid?.() === 0;
if (!FULL_TREE && process.env.PM_REQUIRE_FULL_TREE === "1") {
  // scripts/cgroup-v2-lane: the lane exists to run these tests, so a tree without the controllers fails it.
  throw new Error(`cgroup v2 lane: this kernel's cgroup2 tree at ${CGROUP2_MOUNT} offers ${inTree.join(" ") || "nothing"} (uid ${process.getuid?.()}); the lane needs cpu, memory and pids as root`);
}
if (!FULL_TREE) {
  console.warn(`cgroup v2 lane: skipped here (cgroup2 at ${CGROUP2_MOUNT} offers: ${inTree.join(" ") || "nothing"}); run bun run test:cgroup-v2`);
}

export const readCg = (dir: string, file: string): string | null => {
  try { return readFileSync(join(dir, file), "utf8").trim(); } catch { return null; }
};
