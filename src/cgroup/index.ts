export { CgroupTree, type CgroupStats, type LimitReport, type LimitProblem } from "./tree.ts";
export { defaultCgroupRoot, findCgroup2Mount, parseCgroup2Mount, parseOwnCgroup } from "./mount.ts";
export { cgroupDirName, serviceNameOf, DAEMON_LEAF } from "./names.ts";
