/**
 * The root command check follows paths the way the kernel does: every folder a name is looked
 * up in (also the folders holding the links in the middle of a chain) must be one only root (or
 * the service's user) can change. Otherwise nobody re-points a hop between the check and the
 * exec. A dangling script symlink is judged where it points; `..` applies after a symlink.
 */
import { expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveCommand, unsafeCommandReason, unsafeScriptReason } from "../../src/supervisor/exec.ts";
import { waitUntil, World } from "../helpers/harness.ts";
import { perTest } from "../helpers/per-test.ts";
import { NOBODY, shAsNobody } from "./attacker.ts";

const t = perTest();

/** fs/root (root, 0755) and fs/u (nobody's home, 0755), both reachable by nobody. */
function layout(): { root: string; u: string } {
  const fs = mkdtempSync(join(tmpdir(), "pmchain-"));
  t.dirs.push(fs);
  chmodSync(fs, 0o755);
  const root = join(fs, "root");
  const u = join(fs, "u");
  mkdirSync(root, { mode: 0o755 });
  mkdirSync(u, { mode: 0o755 });
  chownSync(u, NOBODY, NOBODY);
  return { root, u };
}

/** A root-owned executable at `file` (its folder created root-owned, 0755). */
function rootScript(file: string): string {
  mkdirSync(join(file, ".."), { recursive: true, mode: 0o755 });
  writeFileSync(file, "#!/bin/sh\nexec sleep 1000\n", { mode: 0o755 });
  return file;
}

test("a symlink in the middle of a chain, held by a folder nobody owns, is refused", async () => {
  const { root, u } = layout();
  const real = rootScript(join(root, "real", "app"));
  mkdirSync(join(root, "bin"), { mode: 0o755 });
  symlinkSync(join(u, "link"), join(root, "bin", "app"));
  symlinkSync(real, join(u, "link"));
  const app = join(root, "bin", "app");
  expect(unsafeCommandReason(app)).toBe(`its folder ${u} (holding the symlink ${u}/link) is owned by uid 65534 (nobody)`);
  // What the check stands for: nobody can re-point the hop at will.
  expect((await shAsNobody(`ln -sfn /bin/true ${u}/link`)).code).toBe(0);
  // The same hop as a folder on the way: root/cmds -> u/d -> root/real.
  symlinkSync(join(root, "real"), join(u, "d"));
  symlinkSync(join(u, "d"), join(root, "cmds"));
  expect(unsafeCommandReason(join(root, "cmds", "app"))).toContain(`its folder ${u} (holding the symlink ${u}/d) is owned by uid 65534 (nobody)`);
  // Held by root instead: fine.
  chownSync(u, 0, 0);
  rmSync(join(u, "link"));
  symlinkSync(real, join(u, "link"));
  expect(unsafeCommandReason(app)).toBeNull();
  expect(unsafeCommandReason(join(root, "cmds", "app"))).toBeNull();
});

test("a chain of more than 40 symlinks is refused, as the kernel would (ELOOP)", () => {
  const { root } = layout();
  const real = rootScript(join(root, "real", "app"));
  const chain = (n: number) => {
    let to = real;
    for (let i = 0; i < n; i++) { const link = join(root, `l${n}-${i}`); symlinkSync(to, link); to = link; }
    return to;
  };
  expect(unsafeCommandReason(chain(40))).toBeNull();
  expect(unsafeCommandReason(chain(41))).toContain("more than 40 symlinks on the way (ELOOP)");
});

test("a symlink owned by nobody in a sticky folder is refused (its owner can replace it)", () => {
  const { root } = layout();
  const real = rootScript(join(root, "real", "app"));
  const sticky = join(root, "sticky");
  mkdirSync(sticky);
  chmodSync(sticky, 0o1777);
  symlinkSync(real, join(sticky, "app"));
  expect(unsafeCommandReason(join(sticky, "app"))).toBeNull();
  rmSync(join(sticky, "app"));
  symlinkSync(real, join(sticky, "app"));
  Bun.spawnSync(["chown", "-h", `${NOBODY}:${NOBODY}`, join(sticky, "app")]);
  expect(unsafeCommandReason(join(sticky, "app"))).toBe(`the symlink ${sticky}/app in the sticky folder ${sticky} is owned by uid 65534 (nobody)`);
});

test("a script symlink that points nowhere yet is judged by the folder it points into", async () => {
  const { root, u } = layout();
  mkdirSync(join(root, "bin"), { mode: 0o755 });
  const run = join(root, "bin", "run.sh");
  symlinkSync(join(u, "run.sh"), run);
  expect(unsafeScriptReason(["/bin/sh", run], "/")).toBe(
    `the script ${run} it runs: ${run} (-> ${u}/run.sh) does not exist, and the folder ${u} is owned by uid 65534 (nobody)`);
  // Pointing into a root folder instead: whoever creates it there is root.
  rmSync(run);
  symlinkSync(join(root, "later", "run.sh"), run);
  mkdirSync(join(root, "later"), { mode: 0o755 });
  expect(unsafeScriptReason(["/bin/sh", run], "/")).toBeNull();
  // A plain missing script in a sticky folder: anyone can create it first.
  const sticky = join(root, "sticky");
  mkdirSync(sticky);
  chmodSync(sticky, 0o1777);
  expect(unsafeScriptReason(["/bin/sh", join(sticky, "x.sh")], "/")).toContain(`the folder ${sticky} is writable by everyone (mode 1777)`);
});

test("`..` in a script or command path applies after the working directory's symlink, as the kernel does", async () => {
  const { root, u } = layout();
  rootScript(join(root, "run.sh"));
  rootScript(join(root, "app"));
  expect((await shAsNobody(`mkdir ${u}/42 && printf 'id -u\\n' > ${u}/run.sh && cp ${root}/app ${u}/app`)).code).toBe(0);
  const cur = join(root, "cur");
  symlinkSync(join(u, "42"), cur);
  expect(unsafeScriptReason(["/bin/sh", "../run.sh"], cur)).toBe(
    `the script ${cur}/../run.sh it runs: ${cur}/../run.sh (-> ${u}/run.sh) is owned by uid 65534 (nobody)`);
  const cmd = resolveCommand("../app", { PATH: "/usr/bin", cwd: cur });
  expect(cmd).toBe(`${cur}/../app`);
  expect(unsafeCommandReason(cmd)).toBe(`${cur}/../app (-> ${u}/app) is owned by uid 65534 (nobody)`);
  // A working directory that is a plain folder: `..` is its parent, root's.
  mkdirSync(join(root, "plain"), { mode: 0o755 });
  expect(unsafeScriptReason(["/bin/sh", "../run.sh"], join(root, "plain"))).toBeNull();
});

test("the daemon (root) refuses a command reached through a hop nobody can re-point", async () => {
  t.world = new World();
  const { root, u } = layout();
  const real = rootScript(join(root, "real", "app"));
  mkdirSync(join(root, "bin"), { mode: 0o755 });
  symlinkSync(join(u, "link"), join(root, "bin", "app"));
  symlinkSync(real, join(u, "link"));
  const marker = join(root, "ran");
  writeFileSync(real, `#!/bin/sh\ntouch ${marker}\nexec sleep 1000\n`);
  t.world.writeService("chained", { process: { command: [join(root, "bin", "app")], stop_grace_ms: 1000 }, restart_policy: { policy: "never" } });
  const d = await t.world.daemon();
  await waitUntil(async () => (await t.world!.app("chained")).state === "failed", "chained to fail");
  expect(d.output()).toContain(`refusing to run ${root}/bin/app for chained as root: its folder ${u} (holding the symlink ${u}/link) is owned by uid 65534 (nobody)`);
  expect(existsSync(marker)).toBe(false);
});

test("the daemon (root) refuses a command whose middle hop nobody re-pointed (with ln -sfn, as nobody)", async () => {
  t.world = new World();
  const { root, u } = layout();
  const real = rootScript(join(root, "real", "app"));
  const marker = join(root, "ran");
  writeFileSync(real, `#!/bin/sh\ntouch ${marker}\nexec sleep 1000\n`);
  mkdirSync(join(root, "bin"), { mode: 0o755 });
  symlinkSync(join(u, "link"), join(root, "bin", "app"));
  symlinkSync("/bin/true", join(u, "link"));
  // nobody points the hop where it likes (here at a root program, so no later check of the file itself catches it).
  expect(await shAsNobody(`ln -sfn ${real} ${u}/link`)).toEqual({ code: 0, stdout: "", stderr: "" });
  t.world.writeService("chained", { process: { command: [join(root, "bin", "app")], stop_grace_ms: 1000 }, restart_policy: { policy: "never" } });
  const d = await t.world.daemon();
  await waitUntil(async () => (await t.world!.app("chained")).state === "failed" || existsSync(marker), "chained to fail (or run)");
  expect(existsSync(marker)).toBe(false);
  expect(d.output()).toContain(`refusing to run ${root}/bin/app for chained as root: its folder ${u} (holding the symlink ${u}/link) is owned by uid 65534 (nobody)`);
});
