/**
 * Service log files: opening them for services, lossless rotation by time and size,
 * retention, `tail -n` and `tail -F` for `pmctl logs`. Every file the daemon touches here is
 * reached through a verified folder fd without following symlinks (safe-dir.ts).
 */
export { openLogFd, openLogFds, openedIdentity, withSharedLogFolders, NEW_LOG_MODE, type LogOwner } from "./open.ts";
export { rotateLogFile, rotateInDir, probeRotationMode, type RotationResult, type RotationKind } from "./rotate.ts";
export { LogRotator, emptyReport, type ManagedLog, type TickReport, type RotatedEntry } from "./rotator.ts";
export { periodKey, periodEnd, msUntilNextMinute, isoWeek, isTimeArchiveName, backupNumber } from "./period.ts";
export { deleteExpiredArchives, listTimeArchives, listBackups, shiftBackups } from "./retention.ts";
export { LogDir, logFileSize } from "./safe-dir.ts";
export { LogSizes } from "./sizes.ts";
export { tailLines } from "./tail.ts";
export { followFiles, type FollowOptions, type Follower } from "./follow.ts";
