/**
 * `bun run build`: one executable dist/processmaster (bytecode, minified, source map embedded)
 * and the symlink dist/pmctl. The pid-watch and log-rotation workers are further entrypoints so they are embedded too.
 */
import { mkdirSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { COMPILE_FLAGS } from "./compile-flags.ts";

const root = join(import.meta.dir, "..");
const dist = join(root, "dist");
mkdirSync(dist, { recursive: true });
// The commit goes into `--version` (with "-dirty" for a work tree with uncommitted changes).
const git = (args: string[]) => Bun.spawnSync({ cmd: ["git", ...args], cwd: root, stdout: "pipe", stderr: "ignore" });
const head = git(["rev-parse", "--short=12", "HEAD"]);
const commit = head.exitCode === 0
  ? head.stdout.toString().trim() + (git(["diff", "--quiet", "HEAD", "--", "src", "package.json"]).exitCode === 0 ? "" : "-dirty")
  : "unknown";
const proc = Bun.spawnSync({
  cmd: ["bun", "build", ...COMPILE_FLAGS, "--splitting",
    `--define=PM_BUILD_COMMIT=${JSON.stringify(commit)}`,
    "./src/main.ts", "./src/linux/pidwatch-worker.ts", "./src/logs/rotate-worker.ts", "--outfile", join(dist, "processmaster")],
  cwd: root, stdout: "inherit", stderr: "inherit",
});
if (proc.exitCode !== 0) process.exit(proc.exitCode ?? 1);
rmSync(join(dist, "pmctl"), { force: true });
symlinkSync("processmaster", join(dist, "pmctl"));
console.log("built dist/processmaster and dist/pmctl -> processmaster");
