/**
 * The unprivileged side of the security tests: commands run as uid/gid 65534 (nobody) with no
 * supplementary groups, through setpriv, as a local user on the host would run them.
 */
import { chmodSync, readdirSync, readFileSync } from "node:fs";
import { PM_CWD, pmctlCommand, type World } from "../helpers/harness.ts";

export const NOBODY = 65534;
export const AS_NOBODY = ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups"];

export interface Ran { code: number; stdout: string; stderr: string }

/** Runs `cmd` as nobody to the end. */
export async function runAsNobody(cmd: string[], opts: { cwd?: string; stdin?: string } = {}): Promise<Ran> {
  const proc = Bun.spawn({
    cmd: [...AS_NOBODY, ...cmd], cwd: opts.cwd ?? "/", stdin: opts.stdin !== undefined ? new TextEncoder().encode(opts.stdin) : "ignore",
    stdout: "pipe", stderr: "pipe", env: { PATH: "/usr/bin:/bin", HOME: "/tmp" },
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/** `sh -c script` as nobody. */
export function shAsNobody(script: string): Promise<Ran> {
  return runAsNobody(["/bin/sh", "-c", script]);
}

/** pmctl as nobody against the world's daemon (its config must be readable: see openWorld). */
export function pmctlAsNobody(world: World, args: string[]): Promise<Ran> {
  return runAsNobody(pmctlCommand(["-c", world.configPath, ...args]), { cwd: PM_CWD });
}

/**
 * A bun program run as nobody in the background (e.g. a socket flood); `lines()` is what it
 * printed so far. The caller kills it (by its PID) when done.
 */
export function spawnBunAsNobody(source: string, args: string[] = []) {
  return spawnBunAs(NOBODY, source, args);
}

/** spawnBunAsNobody as another unprivileged uid (its gid the same number, no groups). */
export function spawnBunAs(uid: number, source: string, args: string[] = []) {
  const proc = Bun.spawn({
    cmd: ["setpriv", `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", process.execPath, "-e", source, ...args], cwd: "/", stdin: "ignore", stdout: "pipe", stderr: "pipe",
    env: { PATH: "/usr/bin:/bin", HOME: "/tmp" },
  });
  let out = "";
  void (async () => { for await (const c of proc.stdout) out += new TextDecoder().decode(c); })();
  void (async () => { for await (const c of proc.stderr) out += new TextDecoder().decode(c); })();
  return { proc, output: () => out };
}

/** The world's folder is private (mkdtemp): let others reach the config and the socket. */
export function openWorld(world: World): void { chmodSync(world.dir, 0o755); }

/** Open file descriptors of a process. */
export function fdCount(pid: number): number { return readdirSync(`/proc/${pid}/fd`).length; }

/** A field of /proc/PID/status, e.g. NoNewPrivs or CapBnd. */
export function procStatus(pid: number, key: string): string {
  return new RegExp(`^${key}:\\s*(.*)$`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]?.trim() ?? "";
}

/**
 * Sends `requests` (objects, one JSON line each) on one connection as nobody, and returns the
 * reply lines (one `result`/`error` per request; progress lines are skipped).
 */
export async function requestsAsNobody(sockPath: string, requests: unknown[]): Promise<{ type: string; code?: string; message?: string; data?: unknown }[]> {
  const source = `
    const want = ${requests.length};
    let text = "", got = 0;
    const done = new Promise((resolve) => {
      Bun.connect({ unix: ${JSON.stringify(sockPath)}, socket: {
        data(_s, c) { text += Buffer.from(c).toString(); got = text.split("\\n").filter((l) => l && !l.includes('"progress"')).length; if (got >= want) resolve(); },
        close() { resolve(); }, error() { resolve(); },
      } }).then(async (s) => {
        const body = Buffer.from(await Bun.stdin.text());
        for (let off = 0; off < body.length;) { const n = s.write(body.subarray(off)); if (n < 0) break; off += n; if (off < body.length) await Bun.sleep(1); }
      });
    });
    await done;
    process.stdout.write(text);
    process.exit(0);`;
  const body = requests.map((r) => JSON.stringify(r) + "\n").join("");
  const ran = await runAsNobody([process.execPath, "-e", source], { stdin: body });
  if (ran.code !== 0) throw new Error(`attacker client failed: ${ran.stderr}`);
  return ran.stdout.split("\n").filter((l) => l && !l.includes('"progress"')).map((l) => JSON.parse(l));
}
