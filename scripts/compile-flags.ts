/**
 * The `bun build --compile` flags of the product binary, shared by scripts/build.ts and the
 * benchmark's floor client (scripts/bench/lib/floor-client.ts), so the floor is built exactly
 * the way dist/processmaster is.
 */

// --compile-jit-policy=100: JS tiers up to the optimizing JITs 100× later. The daemon's work is
// mostly cold code; the JIT compilers' own code and output were ~10 MB of its RSS (issue 6,
// BENCHMARKS.md: 58 → 52 MB at 20 services, 80 → 68 MB at 1000, hot paths within noise).
// --no-compile-autoload-*: a compiled Bun executable otherwise reads bunfig.toml (whose
// `preload` runs code), .env, tsconfig.json and package.json from its working directory. A root
// daemon started in a folder others can write would run their code (found in issue 10's review).
export const NO_AUTOLOAD = ["--no-compile-autoload-bunfig", "--no-compile-autoload-dotenv", "--no-compile-autoload-tsconfig", "--no-compile-autoload-package-json"];

export const COMPILE_FLAGS = ["--compile", ...NO_AUTOLOAD, "--bytecode", "--format=esm", "--minify", "--sourcemap", "--compile-jit-policy=100"];
