/**
 * A pmctl call evaluates no daemon code (issue 15: `pmctl status` within 1.1x of a minimal
 * compiled client). The daemon, the config parser and the log code are reached only through
 * `await import()`, so the bundle (built with --splitting, as scripts/build.ts builds the binary)
 * puts them in chunks that a client never loads. This bundles src/main.ts the same way and
 * checks which source modules the entry chunk loads through static imports alone.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const REPO = join(import.meta.dir, "..");
const out = mkdtempSync(join(tmpdir(), "pm-lazy-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

/**
 * Source files (`// src/x.ts`, `// node_modules/…` markers) of every chunk reached from `entry`
 * by static imports, and the runtime modules (`node:x`, bare builtins) those chunks import.
 */
function staticClosure(entry: string, builtins = new Set<string>()): Set<string> {
  const seen = new Set<string>(), sources = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(join(out, file), "utf8");
    for (const m of text.matchAll(/^\/\/ ((?:src|node_modules)\/\S+\.[cm]?[jt]s)$/gm)) sources.add(m[1]!);
    // Static imports only: `import … from "./chunk.js"` / `export … from` (not `import("…")`).
    for (const m of text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s*"([^"]+)"/gms)) {
      if (m[1]!.startsWith("./")) visit(m[1]!.slice(2));
      else builtins.add(m[1]!.replace(/^node:/, ""));
    }
  };
  visit(entry);
  return sources;
}

test("the client's entry chunk statically loads only client modules", async () => {
  const r = await Bun.build({ entrypoints: [join(REPO, "src/main.ts"), join(REPO, "src/linux/pidwatch-worker.ts")], outdir: out, target: "bun", format: "esm", splitting: true });
  expect(r.success).toBe(true);
  const loaded = [...staticClosure("main.js")].sort();
  expect(loaded).toContain("src/cli/index.ts");
  expect(loaded).toContain("src/control/client.ts");
  const forbidden = loaded.filter((s) => /^src\/(daemon|supervisor|cgroup|linux|logs|schedule)\/|^src\/config\/(load|service|master)\.ts$|^node_modules\/(yaml|croner)\//.test(s));
  expect(forbidden).toEqual([]);
});

// Measured in a compiled pmctl (timestamps before its first statement): importing node:tty costs
// ~2.5 ms and node:util (citty's parser) ~0.8 ms, against a floor client of ~7 ms in all. A plain
// `status` needs neither: isTerminal() loads tty only for a character device, and citty (with
// node:util) loads only for flags plainArgs() leaves to it. The other commands' code cost ~0.3 ms.
test("the client's entry chunk loads neither node:tty nor node:util nor citty, nor other commands' code", async () => {
  const r = await Bun.build({ entrypoints: [join(REPO, "src/main.ts")], outdir: out, target: "bun", format: "esm", splitting: true });
  expect(r.success).toBe(true);
  const builtins = new Set<string>();
  const sources = staticClosure("main.js", builtins);
  expect(builtins).toContain("fs");
  expect([...builtins].filter((b) => b === "tty" || b === "util")).toEqual([]);
  expect([...sources].filter((s) => s.startsWith("node_modules/citty/"))).toEqual([]);
  // The other commands' code and the completion scripts: loaded when such a command runs.
  expect([...sources].filter((s) => s === "src/cli/commands.ts" || s === "src/cli/completion-scripts.ts")).toEqual([]);
});
