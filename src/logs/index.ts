/**
 * Service log files: opening them for services, lossless rotation by time and size,
 * retention, `tail -n` and `tail -F` for `pmctl logs`.
 */
export { openLogFd } from "./open.ts";
export { rotateLogFile, probeRotationMode, type RotationResult, type RotationKind } from "./rotate.ts";
export { LogRotator, emptyReport, type ManagedLog, type TickReport, type RotatedEntry } from "./rotator.ts";
export { periodKey, msUntilNextMinute, isoWeek, isTimeArchiveName, backupNumber } from "./period.ts";
export { deleteExpiredArchives, listTimeArchives, listBackups, shiftBackups } from "./retention.ts";
export { tailLines } from "./tail.ts";
export { followFiles, type FollowOptions, type Follower } from "./follow.ts";
