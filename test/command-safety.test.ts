/**
 * A root daemon runs only command files that only root (or the service's user) can change,
 * unless `process.allow_writable_command: true`. Commands are found through PATH as execvp does.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveCommand, unsafeCommandReason } from "../src/supervisor/exec.ts";
import { waitUntil, World } from "./helpers/harness.ts";
import { perTest } from "./helpers/per-test.ts";

const t = perTest();

/** A private folder (0755, root) holding an executable script `name` with `mode`. */
function scriptIn(name = "app", mode = 0o755): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), "pmcmd-"));
  t.dirs.push(dir);
  chmodSync(dir, 0o755);
  const file = join(dir, name);
  writeFileSync(file, "#!/bin/sh\nexec sleep 1000\n");
  chmodSync(file, mode);
  return { dir, file };
}

describe("resolving a command like execvp", () => {
  test("a bare word is looked up in PATH in order; an empty entry is the working directory", () => {
    const a = scriptIn("tool");
    const b = scriptIn("tool");
    expect(resolveCommand("tool", { PATH: `${a.dir}:${b.dir}`, cwd: "/" })).toBe(a.file);
    expect(resolveCommand("tool", { PATH: `/nonexistent::${b.dir}`, cwd: a.dir })).toBe(a.file);
    expect(resolveCommand("sh", { PATH: undefined, cwd: "/" })).toMatch(/^\/(usr\/)?bin\/sh$/);
  });

  test("a word with a slash is a path relative to the working directory", () => {
    const a = scriptIn("run.sh");
    expect(resolveCommand("./run.sh", { PATH: "/usr/bin", cwd: a.dir })).toBe(a.file);
    expect(resolveCommand(a.file, { PATH: "", cwd: "/" })).toBe(a.file);
  });

  test("not found and not executable are told apart; a non-executable match is skipped", () => {
    const plain = scriptIn("tool", 0o644);
    const good = scriptIn("tool");
    expect(resolveCommand("tool", { PATH: `${plain.dir}:${good.dir}`, cwd: "/" })).toBe(good.file);
    expect(() => resolveCommand("tool", { PATH: plain.dir, cwd: "/" })).toThrow(`cannot run 'tool': ${plain.file}: not executable`);
    expect(() => resolveCommand("no-such-tool", { PATH: "/usr/bin:/bin", cwd: "/" })).toThrow("command 'no-such-tool' not found in PATH (/usr/bin:/bin)");
    expect(() => resolveCommand(plain.dir, { PATH: "", cwd: "/" })).toThrow("not a regular file");
  });
});

describe("who can change the command file", () => {
  test("root-owned and not writable by others: fine", () => {
    expect(unsafeCommandReason(scriptIn().file)).toBeNull();
    expect(unsafeCommandReason("/bin/sh")).toBeNull();
  });

  test("group- or world-writable files are refused", () => {
    expect(unsafeCommandReason(scriptIn("app", 0o777).file)).toMatch(/app is writable by everyone \(mode 0777\)/);
    expect(unsafeCommandReason(scriptIn("app", 0o775).file)).toMatch(/app is writable by its group, gid 0 \(mode 0775\)/);
  });

  test("a file owned by another user is refused, unless that user is the service's", () => {
    const { file } = scriptIn();
    chownSync(file, 65534, 65534);
    expect(unsafeCommandReason(file)).toMatch(/is owned by uid 65534 \(nobody\)/);
    expect(unsafeCommandReason(file, 65534)).toBeNull();
  });

  test("a folder others can write (without the sticky bit) is refused; a sticky one is fine", () => {
    const { dir, file } = scriptIn();
    chmodSync(dir, 0o777);
    expect(unsafeCommandReason(file)).toContain(`its folder ${dir} is writable by everyone (mode 0777)`);
    chmodSync(dir, 0o1777);
    expect(unsafeCommandReason(file)).toBeNull();
  });

  test("a symlink is judged by its target and the folders on both paths", () => {
    const target = scriptIn("real", 0o777);
    const link = scriptIn("unused");
    const linkPath = join(link.dir, "app");
    symlinkSync(target.file, linkPath);
    expect(unsafeCommandReason(linkPath)).toContain(`${linkPath} (-> ${target.file}) is writable by everyone`);
    const open = join(link.dir, "open");
    mkdirSync(open, { mode: 0o777 });
    chmodSync(open, 0o777);
    const good = scriptIn("good");
    symlinkSync(good.file, join(open, "app"));
    expect(unsafeCommandReason(join(open, "app"))).toContain(`its folder ${open} is writable by everyone`);
  });
});

describe("the daemon (root) refuses such a service", () => {
  test("a world-writable command is refused with a clear message; allow_writable_command overrides", async () => {
    t.world = new World();
    const { file } = scriptIn("app", 0o777);
    t.world.writeService("risky", { process: { command: [file], stop_grace_ms: 1000 }, restart_policy: { policy: "never" } });
    t.world.writeService("allowed", { process: { command: [file], stop_grace_ms: 1000, allow_writable_command: true } });
    const d = await t.world.daemon();
    const risky = await waitUntil(async () => { const a = await t.world!.app("risky"); return a.state === "failed" && a; }, "risky to fail");
    expect(risky.last_exit).toBe("spawn-failed");
    expect(risky.pids).toEqual([]);
    expect(d.output()).toContain(`refusing to run ${file} for risky as root: ${file} is writable by everyone (mode 0777)`);
    expect(d.output()).toContain("set process.allow_writable_command: true in");
    await waitUntil(async () => (await t.world!.app("allowed")).state === "running", "allowed to run");
  });

  test("the command is found through the service's PATH before it is checked", async () => {
    t.world = new World();
    const { dir, file } = scriptIn("mytool", 0o755);
    chownSync(file, 65534, 65534);
    t.world.writeService("via-path", { process: { command: "mytool", environment: { PATH: `${dir}:/usr/bin:/bin` } }, restart_policy: { policy: "never" } });
    const d = await t.world.daemon();
    await waitUntil(async () => (await t.world!.app("via-path")).state === "failed", "via-path to fail");
    expect(d.output()).toContain(`refusing to run ${file} for via-path as root: ${file} is owned by uid 65534 (nobody)`);
    const started = await t.world.pmctl(["start", "via-path"]);
    expect(started.code).toBe(1);
  });
});
