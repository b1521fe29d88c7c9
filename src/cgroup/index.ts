export { CgroupTree, type CgroupStats } from "./tree.ts";
export type { LimitReport, LimitProblem } from "./limits.ts";
export { defaultCgroupRoot, findCgroup2Mount, parseCgroup2Mount, parseOwnCgroup } from "./mount.ts";
export { cgroupDirName, serviceNameOf, DAEMON_LEAF } from "./names.ts";
