/** /proc/PID/stat, the fields the supervisor uses. */
import { readFileSync } from "node:fs";

export interface ProcStat {
  /** The program's name (what exec set; a child that did not exec yet has its parent's). */
  comm: string;
  /** R, S, D, Z, … */
  state: string;
  /** Field 4: the parent's PID. */
  ppid: number;
  /** Field 22: start time in clock ticks since boot; with the PID it names one process. */
  startTime: string;
  /** Field 52: the exit status as waitpid reports it, once the process is exiting (else 0). */
  exitCode: number;
}

/** The process's stat, or null when it is gone (reaped). */
export function readProcStat(pid: number | "self"): ProcStat | null {
  let text: string;
  try { text = readFileSync(`/proc/${pid}/stat`, "latin1"); } catch { return null; }
  // `pid (comm) state …`: comm may hold spaces and parentheses; field 3 starts after the last ") ".
  const close = text.lastIndexOf(")");
  const fields = text.slice(close + 2).trimEnd().split(" ");
  return { comm: text.slice(text.indexOf("(") + 1, close), state: fields[0] ?? "", ppid: Number(fields[4 - 3] ?? 0), startTime: fields[22 - 3] ?? "", exitCode: Number(fields[52 - 3] ?? 0) };
}

let ownComm: string | undefined;

/**
 * Whether `stat` is of a child of ours that was SIGKILLed before it could exec: it still has our
 * name, and its exit status is SIGKILL's. Read right after Bun.spawn returns (vfork: the child
 * has exec'd or died by then), before the event loop reaps it.
 */
export function killedBeforeExec(stat: ProcStat | null): boolean {
  if (stat === null || stat.exitCode !== 9) return false;
  ownComm ??= readProcStat("self")?.comm ?? "";
  return stat.comm === ownComm;
}
