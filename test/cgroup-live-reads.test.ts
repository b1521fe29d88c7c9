/**
 * CgroupTree keeps cgroup.procs and cpu.stat open and re-reads them with pread (issue 15,
 * status of 1000 services). What it reports must still be the kernel's word at the moment of
 * the call: a PID forked a moment ago is listed, one that exited is not, and a cgroup removed
 * and made again (by the tree or behind its back) is read afresh. Real processes in a real
 * cgroup; each check runs right after the event it depends on is known to have happened.
 */
import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { CgroupTree, cgroupDirName, DAEMON_LEAF, defaultCgroupRoot } from "../src/cgroup/index.ts";
import { LiveFiles } from "../src/cgroup/live-files.ts";
import { pidAlive, waitUntil } from "./helpers/harness.ts";

const name = `pmtest-live-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
const started: number[] = [];
let tree: CgroupTree | null = null;

afterEach(async () => {
  for (const pid of started) { try { process.kill(pid, "SIGKILL"); } catch { /* gone */ } }
  await waitUntil(() => started.every((p) => !pidAlive(p)), "test processes to die");
  started.length = 0;
  if (tree && existsSync(tree.masterPath)) {
    try { writeFileSync(join(tree.masterPath, "cgroup.kill"), "1"); } catch { /* empty */ }
    const rm = (p: string) => { for (const e of readdirSync(p, { withFileTypes: true })) if (e.isDirectory()) rm(join(p, e.name)); rmdirSync(p); };
    await waitUntil(() => { try { rm(tree!.masterPath); return true; } catch { return false; } }, "test cgroup to be removed");
  }
  tree = null;
});

function makeTree(): CgroupTree {
  tree = new CgroupTree({ root: defaultCgroupRoot(name, DAEMON_LEAF).path, name });
  tree.ensureMaster();
  return tree;
}

/**
 * A shell in the service's cgroup that runs one command per line it is sent and answers one
 * line per command: we know a fork or a reap happened once its answer is read.
 */
class Shell {
  readonly proc: Subprocess<"pipe", "pipe", "ignore">;
  private lines: string[] = [];
  private waiting: ((line: string) => void) | null = null;
  constructor(cgroupPath: string) {
    const proc = Bun.spawn({ cmd: ["/bin/sh", "-c", "while read -r cmd; do eval \"$cmd\"; done"], cgroup: cgroupPath, stdin: "pipe", stdout: "pipe", stderr: "ignore" } as unknown as Parameters<typeof Bun.spawn>[1] & { cmd: string[] }) as unknown as Subprocess<"pipe", "pipe", "ignore">;
    this.proc = proc;
    started.push(proc.pid);
    void (async () => {
      let buf = "";
      for await (const chunk of proc.stdout) {
        buf += new TextDecoder().decode(chunk);
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) { this.lines.push(buf.slice(0, nl)); buf = buf.slice(nl + 1); this.flush(); }
      }
    })();
  }
  private flush() { if (this.waiting && this.lines.length) { const w = this.waiting; this.waiting = null; w(this.lines.shift()!); } }
  /** Runs one shell command line; resolves with the line it prints. */
  ask(cmd: string): Promise<string> {
    const answer = new Promise<string>((r) => { this.waiting = r; });
    this.proc.stdin.write(cmd + "\n");
    this.proc.stdin.flush();
    this.flush();
    return answer;
  }
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

test("a PID list is the kernel's at each call: a fork is listed at once, a reaped child is gone at once", async () => {
  const t = makeTree();
  const sh = new Shell(t.freshService("svc"));
  await waitUntil(() => t.pids("svc").includes(sh.proc.pid), "the shell in its cgroup");
  expect(t.pids("svc")).toEqual([sh.proc.pid]);
  expect(t.openFileCount).toBeGreaterThan(0); // the next reads go through the kept fd

  const child = Number(await sh.ask("sleep 1000 & echo $!"));
  started.push(child);
  expect(sorted(t.pids("svc"))).toEqual(sorted([sh.proc.pid, child]));

  const second = Number(await sh.ask("sleep 1000 & echo $!"));
  started.push(second);
  expect(sorted(t.pids("svc"))).toEqual(sorted([sh.proc.pid, child, second]));

  expect(await sh.ask(`kill -9 ${child}; wait ${child}; echo reaped`)).toBe("reaped");
  expect(sorted(t.pids("svc"))).toEqual(sorted([sh.proc.pid, second]));
  expect(t.stats("svc").cpuUsageUsec).toBeGreaterThan(0);
});

test("a cgroup removed and made again behind the tree's back is read afresh, not through the old fd", async () => {
  const t = makeTree();
  const path = t.freshService("svc");
  const first = new Shell(path);
  await waitUntil(() => t.pids("svc").length === 1, "the first shell");
  first.proc.kill("SIGKILL");
  await first.proc.exited;
  expect(t.pids("svc")).toEqual([]);
  // The kept fd now belongs to a removed cgroup (the kernel answers ENODEV through it).
  rmdirSync(path);
  expect(t.pids("svc")).toEqual([]);
  mkdirSync(path);
  const second = new Shell(path);
  await second.ask("echo up");
  expect(t.pids("svc")).toEqual([second.proc.pid]);
  expect(t.stats("svc").cpuUsageUsec).not.toBeNull();
});

test("a fresh cgroup for a new run and removal close the files kept for the old one", async () => {
  const t = makeTree();
  const sh = new Shell(t.freshService("svc"));
  await sh.ask("echo up");
  expect(t.pids("svc")).toEqual([sh.proc.pid]);
  t.stats("svc");
  expect(t.openFileCount).toBe(2);
  sh.proc.kill("SIGKILL");
  await sh.proc.exited;
  await waitUntil(() => !t.populated("svc"), "the cgroup to empty");
  const next = new Shell(t.freshService("svc")); // rmdir + mkdir: a new cgroup
  expect(t.openFileCount).toBe(0);
  await next.ask("echo up");
  expect(t.pids("svc")).toEqual([next.proc.pid]);
  next.proc.kill("SIGKILL");
  await next.proc.exited;
  await waitUntil(() => !t.populated("svc"), "the cgroup to empty");
  expect(t.removeService("svc")).toBe(true);
  expect(t.openFileCount).toBe(0);
  expect(t.pids("svc")).toEqual([]);
});

test("oomKills remembers a cgroup without memory.* until controllers change (no failed read per restart)", () => {
  // A fake cgroup root (plain folders and files): the kernel would make memory.* when the memory
  // controller is enabled in the parent; here the test makes them.
  const root = mkdtempSync(join(tmpdir(), "pm-oom-fake-"));
  try {
    for (const [f, v] of Object.entries({ "cgroup.procs": "", "cgroup.controllers": "memory", "cgroup.subtree_control": "" })) writeFileSync(join(root, f), v);
    const t = new CgroupTree({ root, name: "pm" });
    t.ensureMaster();
    writeFileSync(join(t.masterPath, "cgroup.controllers"), "memory");
    writeFileSync(join(t.masterPath, "cgroup.subtree_control"), "");
    const svc = t.freshService("db");
    expect(t.oomKills("db")).toBeNull();
    writeFileSync(join(svc, "memory.current"), "0\n");
    writeFileSync(join(svc, "memory.events"), "oom 1\noom_kill 2\n");
    expect(t.oomKills("db")).toBeNull(); // remembered: no memory controller when last looked
    t.freshService("db"); // a new run's cgroup: still the same parent, still remembered
    expect(t.oomKills("db")).toBeNull();
    t.enableControllers(["memory"]); // the parent's controllers change: look again
    writeFileSync(join(svc, "memory.current"), "0\n");
    writeFileSync(join(svc, "memory.events"), "oom 1\noom_kill 2\n");
    expect(t.oomKills("db")).toBe(2);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("a cgroup.procs longer than a page is read whole (pread stops early only on a short read)", async () => {
  const t = makeTree();
  const path = t.freshService("many");
  const sh = new Shell(path);
  // More than a 4 KiB page of cgroup.procs, so the kernel answers it in more than one read. How
  // many processes that takes depends on how many digits this machine's PIDs have: add them in
  // batches until the file is past a page and a half.
  let kernel = "";
  let children = 0;
  while (kernel.length <= 6144 && children < 4000) {
    expect(await sh.ask("i=0; while [ $i -lt 200 ]; do sleep 1000 & i=$((i+1)); done; echo started")).toBe("started");
    children += 200;
    kernel = readFileSync(join(path, "cgroup.procs"), "utf8");
  }
  expect(kernel.length).toBeGreaterThan(6144);
  const listed = t.pids("many");
  for (const pid of listed) if (pid !== sh.proc.pid) started.push(pid);
  expect(sorted(listed)).toEqual(sorted(kernel.split("\n").filter(Boolean).map(Number)));
  expect(listed.length).toBe(children + 1);
});

test("a seq_file far past the first buffer (16 KiB) is read whole, not cut where a read asked for less than a page", () => {
  // /proc/kallsyms is a seq_file of megabytes that does not change between two reads; the
  // same reads as a cgroup.procs of thousands of processes, which this machine cannot hold.
  const dir = mkdtempSync(join(tmpdir(), "pm-live-seq-"));
  try {
    symlinkSync("/proc/kallsyms", join(dir, "cgroup.procs"));
    const kernel = readFileSync("/proc/kallsyms", "latin1");
    expect(kernel.length).toBeGreaterThan(64 << 10);
    const live = new LiveFiles(8);
    for (let i = 0; i < 2; i++) expect(live.read(dir, "cgroup.procs") === kernel).toBe(true); // a second read from the grown buffer
    live.forget(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("while the boot's listing is kept, each cgroup is answered as the kernel would (existing, left empty, new, removed)", async () => {
  const t = makeTree();
  const busy = new Shell(t.freshService("old")); // a run the previous daemon left going
  await busy.ask("echo up");
  mkdirSync(join(t.masterPath, cgroupDirName("idle"))); // a cgroup left empty
  mkdirSync(join(t.masterPath, cgroupDirName("gone")));
  const memory = existsSync(join(t.servicePath("old"), "memory.current"));
  // The boot is synchronous, and so is the listing's lifetime.
  const sh = t.withListing(() => {
    expect(t.populated("old")).toBe(true);
    expect(t.pids("old")).toEqual([busy.proc.pid]);
    expect(t.hasService("idle")).toBe(true);
    expect(t.populated("idle")).toBe(false);
    expect(t.hasService("new")).toBe(false);
    expect(t.populated("new")).toBe(false);
    const path = t.freshService("new");
    expect(existsSync(path)).toBe(true);
    expect(t.hasService("new")).toBe(true);
    const shell = new Shell(path); // spawned into the cgroup (CLONE_INTO_CGROUP): populated at once
    expect(t.populated("new")).toBe(true);
    expect(t.oomKills("new")).toBe(memory ? 0 : null);
    expect(t.stats("new").memoryCurrent === null).toBe(!memory);
    expect(existsSync(t.freshService("idle"))).toBe(true); // removed and made again
    expect(t.removeService("gone")).toBe(true);
    expect(t.hasService("gone")).toBe(false);
    expect(t.populated("gone")).toBe(false);
    return shell;
  });
  await sh.ask("echo up");
  expect(t.pids("new")).toEqual([sh.proc.pid]);
  mkdirSync(join(t.masterPath, cgroupDirName("late"))); // after the boot: the kernel is asked again
  expect(t.hasService("late")).toBe(true);
});

test("a look with keep off (a run just spawned) reads the kernel's answer and keeps no fd; the next plain look keeps them", async () => {
  const t = makeTree();
  const sh = new Shell(t.freshService("svc"));
  expect(t.populated("svc", false)).toBe(true);
  expect(t.pids("svc", false)).toEqual([sh.proc.pid]);
  expect(t.openFileCount).toBe(0);
  expect(t.pids("svc")).toEqual([sh.proc.pid]);
  expect(t.populated("svc")).toBe(true);
  expect(t.openFileCount).toBe(2);
  const child = Number(await sh.ask("sleep 1000 & echo $!"));
  started.push(child);
  expect(sorted(t.pids("svc", false))).toEqual(sorted([sh.proc.pid, child])); // through the kept fd now
  expect(t.openFileCount).toBe(2);
});
