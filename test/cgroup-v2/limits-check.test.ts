/**
 * scripts/limits-check.ts against the compiled binary started from `/`: master limits, OOM kill
 * reported as oom-kill, the pids_max fork bomb, cpu_max. Its PASS/FAIL lines are printed.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { installedBinary, REPO } from "../helpers/harness.ts";
import { FULL_TREE } from "./v2-host.ts";

test.skipIf(!FULL_TREE)("scripts/limits-check.ts passes every check on the compiled binary", async () => {
  const proc = Bun.spawn({ cmd: [process.execPath, join(REPO, "scripts", "limits-check.ts"), "--binary", installedBinary().daemon], cwd: REPO, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  console.log(out + err);
  expect(out).toContain("all limit checks passed");
  expect(code).toBe(0);
}, 180_000);
