/**
 * `pmctl completion bash` loaded into a real bash: `complete -p` names the function, and calling
 * it the way bash does (COMP_WORDS/COMP_CWORD, compgen inside) completes commands, options and the
 * service names of a running daemon, or of the config files when the daemon is down.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MAIN, pmctlCommand, TARGET, World } from "./helpers/harness.ts";

setDefaultTimeout(60_000);

let world: World;
afterEach(async () => { await world?.cleanup(); });

/** A folder with a `pmctl` in it, for PATH: the binary lane's symlink, or a wrapper around the source. */
function pmctlOnPath(dir: string): string {
  const bin = join(dir, "bin");
  mkdirSync(bin, { recursive: true });
  if (TARGET === "binary") symlinkSync(pmctlCommand([])[0]!, join(bin, "pmctl"));
  else {
    writeFileSync(join(bin, "pmctl"), `#!/bin/sh\nexec ${process.execPath} ${MAIN} ctl "$@"\n`);
    chmodSync(join(bin, "pmctl"), 0o755);
  }
  return bin;
}

/** Completes `words` (the last one being completed) in bash with the script loaded; returns the candidates. */
async function complete(script: string, bin: string, words: string[]): Promise<{ spec: string; candidates: string[] }> {
  const file = join(world.dir, "pmctl.bash");
  writeFileSync(file, script);
  const quoted = words.map((w) => `'${w.replace(/'/g, "'\\''")}'`).join(" ");
  const program = [
    `source ${file}`,
    `spec=$(complete -p pmctl)`,
    `echo "SPEC $spec"`,
    `fn=$(sed -E 's/.*-F ([^ ]+).*/\\1/' <<<"$spec")`,
    `COMP_WORDS=(${quoted}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); COMPREPLY=()`,
    `"$fn"`,
    `printf 'CAND %s\\n' "\${COMPREPLY[@]}"`,
  ].join("\n");
  const proc = Bun.spawn({ cmd: ["bash", "--norc", "--noprofile", "-c", program], env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, stdout: "pipe", stderr: "pipe" });
  const [out, errText, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect(code, errText).toBe(0);
  const lines = out.split("\n");
  return { spec: lines.find((l) => l.startsWith("SPEC "))!.slice(5), candidates: lines.filter((l) => l.startsWith("CAND ")).map((l) => l.slice(5)).filter(Boolean) };
}

describe("bash completion", () => {
  test("service names come from the running daemon; commands and options from pmctl itself", async () => {
    world = new World();
    world.writeService("alpha", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 } });
    world.writeService("beta", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 } });
    await world.daemon();
    const bin = pmctlOnPath(world.dir);
    const r = await world.pmctl(["completion", "bash"]);
    expect(r.code).toBe(0);
    const script = r.stdout;

    const names = await complete(script, bin, ["pmctl", "-c", world.configPath, "start", ""]);
    expect(names.spec).toMatch(/^complete -F \S+ pmctl$/);
    expect(names.candidates.sort()).toEqual(["all", "alpha", "beta"]);

    // A service added to the files but not yet to the daemon: the daemon's list wins.
    world.writeService("gamma", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 } });
    expect((await complete(script, bin, ["pmctl", "-c", world.configPath, "status", ""])).candidates.sort()).toEqual(["alpha", "beta"]);
    expect((await complete(script, bin, ["pmctl", "-c", world.configPath, "logs", "al"])).candidates).toEqual(["alpha"]);

    expect((await complete(script, bin, ["pmctl", "sh"])).candidates.sort()).toEqual(["show", "shutdown"]);
    expect((await complete(script, bin, ["pmctl", "status", "--w"])).candidates).toEqual(["--watch"]);
    expect((await complete(script, bin, ["pmctl", "completion", ""])).candidates.sort()).toEqual(["bash", "fish", "zsh"]);
  });

  test("with the daemon down, service names come from the config files", async () => {
    world = new World();
    world.writeService("alpha", { process: { command: ["sleep", "1000"] } });
    world.writeService("delta", { process: { command: ["sleep", "1000"] } });
    const bin = pmctlOnPath(world.dir);
    const script = (await world.pmctl(["completion", "bash"])).stdout;
    expect(script).toContain("complete -F");
    expect((await complete(script, bin, ["pmctl", "-c", world.configPath, "show", ""])).candidates.sort()).toEqual(["alpha", "delta"]);
  });

  test("names from the socket are never expanded by the shell: a fake daemon answering '$(touch …)' runs nothing", async () => {
    // The attack of the review: a socket (here a fake daemon, as a local user could run one)
    // answers status with a service named like a command substitution; compgen -W would run it.
    world = new World();
    const marker = join(world.dir, "EXPANDED");
    const fakeSock = join(world.dir, "fake.sock");
    writeFileSync(world.configPath, JSON.stringify({ config_directory: "./config.d", sock_path: fakeSock }));
    const fake = Bun.listen({
      unix: fakeSock,
      socket: {
        data(sock) {
          const apps = [{ name: `$(touch ${marker})` }, { name: "web" }, { name: "`touch ${marker}`" }];
          sock.write(JSON.stringify({ type: "result", data: { apps } }) + "\n");
          sock.end();
        },
      },
    });
    try {
      const bin = pmctlOnPath(world.dir);
      const script = (await world.pmctl(["completion", "bash"])).stdout;
      expect((await complete(script, bin, ["pmctl", "-c", world.configPath, "status", ""])).candidates).toEqual(["web"]);
      expect((await complete(script, bin, ["pmctl", "-c", world.configPath, "stop", ""])).candidates.sort()).toEqual(["all", "web"]);
      expect(existsSync(marker)).toBe(false);
    } finally {
      fake.stop(true);
      rmSync(fakeSock, { force: true });
    }
  });

  test("zsh and fish scripts are printed; an unknown shell is a usage error", async () => {
    world = new World();
    const zsh = await world.pmctl(["completion", "zsh"]);
    expect(zsh.stdout).toMatch(/^#compdef pmctl/);
    expect(zsh.stdout).toContain("__complete services");
    const fish = await world.pmctl(["completion", "fish"]);
    expect(fish.stdout).toContain("complete -c pmctl");
    expect(fish.stdout).toContain("__complete services");
    expect((await world.pmctl(["completion", "tcsh"])).code).toBe(2);
  });
});
