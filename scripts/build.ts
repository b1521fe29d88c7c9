/**
 * `bun run build`: one executable dist/processmaster (bytecode, minified, source map embedded)
 * and the symlink dist/pmctl. The pid-watch worker is a second entrypoint so it is embedded too.
 */
import { mkdirSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const dist = join(root, "dist");
mkdirSync(dist, { recursive: true });
// --compile-jit-policy=100: JS tiers up to the optimizing JITs 100× later. The daemon's work is
// mostly cold code; the JIT compilers' own code and output were ~10 MB of its RSS (issue 6,
// BENCHMARKS.md: 58 → 52 MB at 20 services, 80 → 68 MB at 1000, hot paths within noise).
const proc = Bun.spawnSync({
  cmd: ["bun", "build", "--compile", "--bytecode", "--format=esm", "--minify", "--sourcemap", "--compile-jit-policy=100",
    "./src/main.ts", "./src/linux/pidwatch-worker.ts", "--outfile", join(dist, "processmaster")],
  cwd: root, stdout: "inherit", stderr: "inherit",
});
if (proc.exitCode !== 0) process.exit(proc.exitCode ?? 1);
rmSync(join(dist, "pmctl"), { force: true });
symlinkSync("processmaster", join(dist, "pmctl"));
console.log("built dist/processmaster and dist/pmctl -> processmaster");
