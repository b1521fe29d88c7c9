/**
 * For the security tests (test/security/): a service run as `nobody` in a working directory
 * nobody owns, a root-only file the attacker aims at, running shell commands as nobody
 * (setpriv), and asking the daemon for status with a deadline.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { periodKey } from "../../src/logs/period.ts";
import { PM_CWD, pmctlCommand, type World } from "./harness.ts";

export const NOBODY = 65534;

/** A root-only folder (0700) holding files of mode 0600: what the attacker must not reach. */
export class RootFiles {
  readonly dir = mkdtempSync(join(tmpdir(), "pmroot-"));
  private readonly before = new Map<string, string>();

  constructor() { chmodSync(this.dir, 0o700); }

  /** A root file of mode 0600 with `content`, and optionally an mtime (ms since the epoch). */
  add(name: string, content: string, mtimeMs?: number): string {
    const file = join(this.dir, name);
    writeFileSync(file, content, { mode: 0o600 });
    if (mtimeMs !== undefined) utimesSync(file, mtimeMs / 1000, mtimeMs / 1000);
    return file;
  }

  path(name: string): string { return join(this.dir, name); }

  /** Remembers every file's content: `changes()` compares against it. */
  snapshot(): void {
    this.before.clear();
    for (const n of readdirSync(this.dir)) this.before.set(n, readFileSync(join(this.dir, n), "latin1"));
  }

  /** What differs from the snapshot: files changed, created or deleted (empty when nothing). */
  changes(): string[] {
    const now = new Set(readdirSync(this.dir));
    const out: string[] = [];
    for (const [n, c] of this.before) {
      if (!now.has(n)) out.push(`${n} deleted`);
      else if (readFileSync(join(this.dir, n), "latin1") !== c) out.push(`${n} changed`);
    }
    for (const n of now) if (!this.before.has(n)) out.push(`${n} created`);
    return out;
  }

  cleanup(): void { rmSync(this.dir, { recursive: true, force: true }); }
}

/**
 * Makes the world reachable for nobody and gives the service `name` a working directory that
 * nobody owns (as a service's user owns its folder). Returns that folder.
 */
export function nobodysFolder(world: World, name: string): string {
  chmodSync(world.dir, 0o755);
  const apps = join(world.dir, "apps");
  mkdirSync(apps, { recursive: true, mode: 0o755 });
  const wd = join(apps, name);
  mkdirSync(wd, { recursive: true });
  chownSync(wd, NOBODY, NOBODY);
  return wd;
}

/** Runs `script` with /bin/sh as nobody (uid and gid 65534, no groups) in `cwd`. */
export async function asNobody(cwd: string, script: string): Promise<{ code: number; out: string }> {
  const proc = Bun.spawn({
    cmd: ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "/bin/sh", "-c", script],
    cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out: out + err };
}

/**
 * Runs `pmctl <args>` against the world and resolves with its result, or rejects when it has
 * not answered within `deadlineMs` (the client is killed then).
 */
export async function pmctlWithin(world: World, args: string[], deadlineMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn({ cmd: pmctlCommand(["-c", world.configPath, ...args]), cwd: PM_CWD, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; proc.kill("SIGKILL"); }, deadlineMs);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  if (timedOut) throw new Error(`pmctl ${args.join(" ")} did not finish within ${deadlineMs} ms (no answer)`);
  return { code, stdout, stderr };
}

/** The daily archive names a rotation of `base` now could use: today's and yesterday's (either side of midnight). */
export function dailyArchiveNames(base: string): string[] {
  const now = Date.now();
  return [...new Set([periodKey("daily", now), periodKey("daily", now - 86_400_000), periodKey("daily", now + 60_000)])].map((k) => `${base}.${k}`);
}

export { existsSync };
