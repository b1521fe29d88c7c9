/**
 * Rotating one live log file into an archive beside it (or discarding its content), safely for
 * a root daemon: the live file and the archive are opened relative to a verified folder fd with
 * O_NOFOLLOW | O_NONBLOCK and checked with fstat (safe-dir.ts) before a byte moves:
 *
 * - the live file: a regular file, one link, owned by root or the service's user, and (when
 *   the daemon opened it for the service) the same inode the service writes to;
 * - an existing archive: a regular file, one link, with the same owner as the live file (so no
 *   one can have the content of a file they cannot read appended to a file they can);
 * - a new archive: created O_EXCL with the live file's owner and mode.
 *
 * The bytes are then moved by move.ts: on this thread for small files, in a Worker
 * (rotate-worker.ts) for big ones, so that a rotation of a GiB (seconds of copy, fsync and
 * collapse) does not keep the daemon from answering (issue 11, 8b). Failures are PmError("LOGS")
 * with the errno; then the live file is as it was and the archive is back to its old length (or
 * removed if this rotation created it).
 */
import fs from "node:fs";
import path from "node:path";
import { ERRNO } from "../linux/ffi.ts";
import { PmError, errorMessage } from "../util/errors.ts";
import { closeQuietly, errnoOf } from "./fsutil.ts";
import { moveLogBytes, probeCollapse, type MoveJob, type MoveOutcome, type RotationKind, type RotationResult } from "./move.ts";
import { allowedOwners, checkFile, LogDir, withDirOf } from "./safe-dir.ts";

export { probeCollapse, type RotationKind, type RotationResult } from "./move.ts";

const C = fs.constants;
let kernelCopy = true;
/** Rotations that move at least this many bytes run in the worker (a few ms of work below it). */
let workerFrom = 8 << 20;

/** Turns the in-kernel copy (copy_file_range) on or off; for benchmarks and tests. */
export function useKernelCopy(on: boolean): void {
  kernelCopy = on;
}

/** From how many bytes a rotation runs in the worker thread; for tests and benchmarks. */
export function setWorkerThreshold(bytes: number): void {
  workerFrom = bytes;
}

/** What the live file must be, beyond a regular file with one link. */
export interface LiveExpectations {
  /** Who may own it (default: root and the daemon's user). */
  owners?: Set<number>;
  /** The file the daemon opened for the service: a different one at the path is not rotated. */
  identity?: { dev: number; ino: number };
}

function logsError(message: string, e?: unknown): PmError {
  return new PmError("LOGS", message, { ...(errnoOf(e) !== undefined ? { errno: errnoOf(e) } : {}), ...(e !== undefined ? { cause: e } : {}) });
}

/** How `file` would be rotated, for status: "unknown" when it cannot be opened safely (see checkFile; `owners` who may own it). */
export function probeRotationMode(file: string, owners = allowedOwners()): RotationKind | "unknown" {
  try {
    return withDirOf(file, false, (dir, name) => probeRotationModeIn(dir, name, owners));
  } catch {
    return "unknown";
  }
}

/**
 * probeRotationMode of `name` in an open log folder (a caller probing many files opens each
 * folder once). Still one fallocate per file: the answer is the file's, not only its file
 * system's (ext4 refuses a collapse on a file without extents or with data journalling).
 */
export function probeRotationModeIn(dir: LogDir, name: string, owners = allowedOwners()): RotationKind | "unknown" {
  try {
    const fd = dir.open(name, C.O_RDWR);
    try {
      const st = checkFile(fd, dir.at(name), owners);
      const blk = st.blksize > 0 ? st.blksize : 4096;
      const kind = probeCollapse(fd, blk, st.size) ? "collapse" : "copy-truncate";
      keepTimes(fd, st);
      return kind;
    } finally { closeQuietly(fd); }
  } catch {
    return "unknown";
  }
}

/**
 * The probe's failed fallocate still sets the file's mtime on ext4 (6.x). The mtime tells a
 * restarted daemon which period the content belongs to (rotator.ts), and the daemon probes every
 * file at start: so put the times back, unless the service wrote meanwhile (size changed).
 */
function keepTimes(fd: number, before: fs.Stats): void {
  try {
    if (fs.fstatSync(fd).size === before.size) fs.futimesSync(fd, before.atimeMs / 1000, before.mtimeMs / 1000);
  } catch { /* times only: the probe's answer stands */ }
}

/** An opened, verified rotation, ready to move bytes (or done already when there is nothing to move). */
type Prepared = { done: RotationResult } | { job: MoveJob; finish: (o: MoveOutcome) => RotationResult };

function openArchive(dir: LogDir, name: string, like: fs.Stats): { fd: number; created: boolean; oldLength: number } {
  const mode = like.mode & 0o777;
  try {
    const fd = dir.open(name, C.O_WRONLY | C.O_CREAT | C.O_EXCL, mode); // O_EXCL: we know we made it
    try {
      if (process.getuid?.() === 0) fs.fchownSync(fd, like.uid, like.gid);
      fs.fchmodSync(fd, mode);
    } catch (e) { closeQuietly(fd); throw e; }
    return { fd, created: true, oldLength: 0 };
  } catch (e) {
    if (errnoOf(e) !== ERRNO.EEXIST) throw e;
  }
  const fd = dir.open(name, C.O_WRONLY);
  try {
    const st = checkFile(fd, dir.at(name), new Set([like.uid]), `uid ${like.uid}, the owner of the live file`);
    return { fd, created: false, oldLength: st.size };
  } catch (e) { closeQuietly(fd); throw e; }
}

function prepare(dir: LogDir, name: string, archiveDir: LogDir | null, archiveName: string | null, expect: LiveExpectations): Prepared {
  const livePath = dir.at(name);
  const archivePath = archiveDir && archiveName !== null ? archiveDir.at(archiveName) : null;
  let liveFd: number;
  try {
    liveFd = dir.open(name, C.O_RDWR); // O_RDWR: fallocate needs a writable fd, not O_APPEND
  } catch (e) {
    throw logsError(`cannot open ${livePath} for rotation: ${errorMessage(e)}`, e);
  }
  let archive: ReturnType<typeof openArchive> | null = null;
  try {
    const st = checkFile(liveFd, livePath, expect.owners ?? allowedOwners());
    if (expect.identity && (expect.identity.dev !== st.dev || expect.identity.ino !== st.ino)) {
      throw new PmError("LOGS", `${livePath} is no longer the file the service writes to (replaced since its start); not rotated`);
    }
    const blk = st.blksize > 0 ? st.blksize : 4096;
    const collapse = probeCollapse(liveFd, blk, st.size);
    // The collapse may not reach the end of the file (the kernel answers EINVAL), so a file of
    // exactly k blocks keeps its last block.
    const n = collapse ? (st.size > 0 ? Math.floor((st.size - 1) / blk) * blk : 0) : st.size;
    if (n === 0) {
      closeQuietly(liveFd);
      const note = st.size === 0 ? "empty" : `${st.size} bytes, less than one ${blk}-byte block: left in the live file`;
      return { done: { mode: collapse ? "collapse" : "copy-truncate", bytesMoved: 0, note } };
    }
    if (archiveDir && archiveName !== null) archive = openArchive(archiveDir, archiveName, st);
    const job: MoveJob = {
      liveFd, livePath, archivePath, archiveFd: archive?.fd ?? null, archiveOldLength: archive?.oldLength ?? 0,
      mode: collapse ? "collapse" : "copy-truncate", n, blksize: blk, kernelCopy,
    };
    const opened = archive;
    const finish = (o: MoveOutcome): RotationResult => {
      try {
        if (o.ok) return o.result;
        if (opened?.created && o.archiveKept === 0) { try { archiveDir!.unlink(archiveName!); } catch { /* best effort */ } }
        throw new PmError("LOGS", o.message, o.errno !== undefined ? { errno: o.errno } : {});
      } finally {
        closeQuietly(liveFd);
        closeQuietly(opened?.fd);
      }
    };
    return { job, finish };
  } catch (e) {
    closeQuietly(liveFd);
    closeQuietly(archive?.fd);
    if (e instanceof PmError && e.code === "LOGS") throw e;
    throw logsError(`rotation of ${livePath}${archivePath ? ` to ${archivePath}` : ""} failed: ${errorMessage(e)}`, e);
  }
}

/**
 * Rotates `name` in `dir` into `archiveName` in the same folder (appending if it exists), or
 * discards the moved bytes when `archiveName` is null. Big files are moved in the worker.
 */
export async function rotateInDir(dir: LogDir, name: string, archiveName: string | null, expect: LiveExpectations = {}): Promise<RotationResult> {
  const p = prepare(dir, name, archiveName === null ? null : dir, archiveName, expect);
  if ("done" in p) return p.done;
  const bytes = p.job.n;
  return p.finish(bytes >= workerFrom ? await moveInWorker(p.job) : moveLogBytes(p.job));
}

/**
 * Rotates the live log `file` into `archivePath` (appending if the archive exists), or
 * discards the moved bytes when `archivePath` is null; on this thread, whatever the size. For
 * tools and tests; the daemon's rotator uses rotateInDir.
 */
export function rotateLogFile(file: string, archivePath: string | null, expect: LiveExpectations = {}): RotationResult {
  return withDirOf(file, false, (dir, name) => {
    const archiveDir = archivePath === null ? null : path.dirname(archivePath) === dir.path ? dir : LogDir.open(path.dirname(archivePath));
    try {
      const p = prepare(dir, name, archiveDir, archivePath === null ? null : path.basename(archivePath), expect);
      return "done" in p ? p.done : p.finish(moveLogBytes(p.job));
    } finally {
      if (archiveDir && archiveDir !== dir) archiveDir.close();
    }
  });
}

/**
 * In the compiled binary the worker is an entrypoint of `bun build --compile` (scripts/build.ts),
 * embedded under `/$bunfs/root/` by its path relative to `src/`, with a `.js` suffix; the
 * address is absolute so nothing is looked up in the working directory (issue 10). From source
 * it sits beside this file.
 */
export const ROTATE_WORKER_URL = import.meta.url.includes("$bunfs")
  ? "/$bunfs/root/logs/rotate-worker.js"
  : new URL("./rotate-worker.ts", import.meta.url).href;

let worker: Worker | null = null;
let queue: Promise<unknown> = Promise.resolve();
let queued = 0;

/**
 * Runs `job` in the rotation worker, one job at a time. The worker is started for the first
 * job and ended when no job is left: an idle daemon pays nothing for it.
 */
function moveInWorker(job: MoveJob): Promise<MoveOutcome> {
  queued++;
  const run = queue.then(() => new Promise<MoveOutcome>((resolve) => {
    const failed = (why: string): void => {
      // The worker died mid-job. The archive is left as it is: the live file is collapsed only
      // after the archive is complete and synced, so at worst both hold some bytes (never none).
      let kept = job.archiveOldLength;
      if (job.archiveFd !== null) { try { kept = fs.fstatSync(job.archiveFd).size; } catch { /* keep the old length */ } }
      worker?.terminate();
      worker = null;
      resolve({ ok: false, message: `rotation of ${job.livePath}: the rotation worker (${ROTATE_WORKER_URL}) ${why}`, archiveKept: kept });
    };
    try {
      worker ??= new Worker(ROTATE_WORKER_URL);
    } catch (e) {
      failed(`could not be started: ${errorMessage(e)}`);
      return;
    }
    worker.onmessage = (ev: MessageEvent<MoveOutcome>) => resolve(ev.data);
    worker.onerror = (ev: ErrorEvent) => failed(`failed: ${ev.message}`);
    worker.postMessage(job);
  }));
  queue = run.finally(() => {
    if (--queued === 0) { worker?.terminate(); worker = null; }
  });
  return run;
}
