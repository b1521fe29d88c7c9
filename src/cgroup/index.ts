export { CgroupTree, type CgroupStats, type LimitReport, type LimitProblem } from "./tree.ts";
export { findCgroup2Mount, parseCgroup2Mount } from "./mount.ts";
export { cgroupDirName, serviceNameOf, DAEMON_LEAF } from "./names.ts";
