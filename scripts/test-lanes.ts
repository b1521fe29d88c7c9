/**
 * `bun run test`: the test lanes, one after the other, each with its counts and time, then one
 * line `N passed, N failed` for all of them.
 *   source   every test file, processmaster run as `bun src/main.ts` from the repository root;
 *   binary   every end-to-end file (those that start a daemon or the client through the test
 *            harness) against dist/processmaster copied outside the repository, started from `/`;
 *   cgroup-v2 (only with --cgroup-v2, as .ci/run does; alone: `bun run test:cgroup-v2`)
 *            scripts/cgroup-v2-lane inside scripts/cgroup-v2-vm; it fails when a test skips.
 * Arguments after the options are passed to `bun test` (a file filter, say).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { sweepInstalledBinaries } from "../test/helpers/harness.ts";

const root = join(import.meta.dir, "..");
const args = process.argv.slice(2);
const lanesWanted = new Set(["source", "binary"]);
const only = args.find((a) => a.startsWith("--lane="));
if (only) { lanesWanted.clear(); for (const l of only.slice(7).split(",")) lanesWanted.add(l); }
if (args.includes("--cgroup-v2")) lanesWanted.add("cgroup-v2");
const passThrough = args.filter((a) => !a.startsWith("--lane=") && a !== "--cgroup-v2");

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return testFiles(p);
    return e.name.endsWith(".test.ts") ? [p] : [];
  });
}

/** End-to-end files: they run processmaster through the harness (a World, pmCommand, pmctlCommand). */
const e2eFiles = testFiles(join(root, "test"))
  .filter((f) => /\bnew World\(|\bpmCommand\(|\bpmctlCommand\(/.test(readFileSync(f, "utf8")))
  .map((f) => "./" + relative(root, f))
  .sort();

interface Lane { name: string; passed: number; failed: number; skipped: number; seconds: number; code: number }

async function runLane(name: string, cmd: string[], env: Record<string, string>): Promise<Lane> {
  console.log(`\n===== lane ${name}: ${cmd.join(" ").slice(0, 200)}${cmd.join(" ").length > 200 ? " …" : ""}`);
  const t0 = performance.now();
  const proc = Bun.spawn({ cmd, cwd: root, env: { ...process.env, ...env }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let text = "";
  const pump = async (stream: ReadableStream<Uint8Array>, out: NodeJS.WriteStream) => {
    const d = new TextDecoder();
    for await (const chunk of stream) { const s = d.decode(chunk, { stream: true }); text += s; out.write(s); }
  };
  await Promise.all([pump(proc.stdout, process.stdout), pump(proc.stderr, process.stderr)]);
  let code = await proc.exited;
  sweepInstalledBinaries();
  if (code === 77) { // the lane cannot run on this machine (scripts/cgroup-v2-vm without user-mode Linux)
    console.log(`lane ${name}: SKIPPED here (exit 77)${process.env.CI ? "; CI must run it: counted as a failure" : ""}`);
    if (!process.env.CI) return { name, passed: 0, failed: 0, skipped: 1, seconds: (performance.now() - t0) / 1000, code: 0 };
    code = 1;
  }
  const count = (re: RegExp) => { const m = [...text.matchAll(re)].pop(); return m ? Number(m[1]) : 0; };
  let failed = count(/^\s*(\d+) fail$/gm);
  if (code !== 0 && failed === 0) failed = 1;
  return { name, passed: count(/^\s*(\d+) pass$/gm), failed, skipped: count(/^\s*(\d+) skip$/gm), seconds: (performance.now() - t0) / 1000, code };
}

const build = Bun.spawnSync({ cmd: ["bun", "run", "build"], cwd: root, stdout: "inherit", stderr: "inherit" });
if (build.exitCode !== 0) { console.log("build failed\n0 passed, 1 failed"); process.exit(1); }

const bunTest = ["bun", "test", "--timeout", "60000"];
const lanes: Lane[] = [];
if (lanesWanted.has("source")) lanes.push(await runLane("source", [...bunTest, ...passThrough], { PM_TEST_TARGET: "source" }));
if (lanesWanted.has("binary")) {
  const files = passThrough.length ? passThrough : e2eFiles;
  lanes.push(await runLane("binary", [...bunTest, ...files], { PM_TEST_TARGET: "binary" }));
}
if (lanesWanted.has("cgroup-v2")) lanes.push(await runLane("cgroup-v2", ["bash", join(root, "scripts", "cgroup-v2-lane")], {}));

console.log("\n===== lanes");
for (const l of lanes) console.log(`${l.name.padEnd(10)} ${l.passed} passed, ${l.failed} failed, ${l.skipped} skipped in ${l.seconds.toFixed(0)} s`);
const passed = lanes.reduce((n, l) => n + l.passed, 0);
const failed = lanes.reduce((n, l) => n + l.failed, 0);
console.log(`${passed} passed, ${failed} failed`);
process.exit(lanes.every((l) => l.code === 0) ? 0 : 1);
