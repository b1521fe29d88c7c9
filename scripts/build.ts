/**
 * `bun run build`: one executable dist/processmaster (bytecode, minified, source map embedded)
 * and the symlink dist/pmctl. The pid-watch and log-rotation workers are further entrypoints so they are embedded too.
 */
import { mkdirSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const dist = join(root, "dist");
mkdirSync(dist, { recursive: true });
// --compile-jit-policy=100: JS tiers up to the optimizing JITs 100× later. The daemon's work is
// mostly cold code; the JIT compilers' own code and output were ~10 MB of its RSS (issue 6,
// BENCHMARKS.md: 58 → 52 MB at 20 services, 80 → 68 MB at 1000, hot paths within noise).
// --no-compile-autoload-*: a compiled Bun executable otherwise reads bunfig.toml (whose
// `preload` runs code), .env, tsconfig.json and package.json from its working directory. A root
// daemon started in a folder others can write would run their code (found in issue 10's review).
const noAutoload = ["--no-compile-autoload-bunfig", "--no-compile-autoload-dotenv", "--no-compile-autoload-tsconfig", "--no-compile-autoload-package-json"];
// The commit goes into `--version` (with "-dirty" for a work tree with uncommitted changes).
const git = (args: string[]) => Bun.spawnSync({ cmd: ["git", ...args], cwd: root, stdout: "pipe", stderr: "ignore" });
const head = git(["rev-parse", "--short=12", "HEAD"]);
const commit = head.exitCode === 0
  ? head.stdout.toString().trim() + (git(["diff", "--quiet", "HEAD", "--", "src", "package.json"]).exitCode === 0 ? "" : "-dirty")
  : "unknown";
const proc = Bun.spawnSync({
  cmd: ["bun", "build", "--compile", ...noAutoload, "--bytecode", "--format=esm", "--minify", "--sourcemap", "--compile-jit-policy=100",
    `--define=PM_BUILD_COMMIT=${JSON.stringify(commit)}`,
    "./src/main.ts", "./src/linux/pidwatch-worker.ts", "./src/logs/rotate-worker.ts", "--outfile", join(dist, "processmaster")],
  cwd: root, stdout: "inherit", stderr: "inherit",
});
if (proc.exitCode !== 0) process.exit(proc.exitCode ?? 1);
rmSync(join(dist, "pmctl"), { force: true });
symlinkSync("processmaster", join(dist, "pmctl"));
console.log("built dist/processmaster and dist/pmctl -> processmaster");
