/**
 * Resource limits: config forms → interface files, and what CgroupTree and the supervisor write
 * where, against a FAKE cgroup root (a temp folder with the interface files). Nothing here
 * needs controllers; scripts/limits-check.sh checks enforcement on a real cgroup v2 host.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CgroupTree } from "../src/cgroup/index.ts";
import { loadConfig } from "../src/config/load.ts";
import { parseServiceText } from "../src/config/service.ts";
import type { PidWatcher } from "../src/linux/pidwatch.ts";
import { controllersFor, KERNEL_DEFAULTS, limitChanges, masterLimitFiles, resourceLimitFiles } from "../src/supervisor/limits.ts";
import { StateStore } from "../src/supervisor/state-store.ts";
import { Supervisor } from "../src/supervisor/supervisor.ts";
import { systemClock } from "../src/util/clock.ts";
import { logger } from "../src/util/log.ts";

let dirs: string[] = [];
afterEach(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); dirs = []; });

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "pmlimits-"));
  dirs.push(d);
  return d;
}

/** A folder shaped like a cgroup: the interface files the code reads, with these controllers. */
function fakeCgroup(path: string, controllers: string, extra: Record<string, string> = {}) {
  mkdirSync(path, { recursive: true });
  const files = { "cgroup.controllers": controllers, "cgroup.subtree_control": "", "cgroup.procs": "", "cgroup.events": "populated 0\nfrozen 0\n", ...extra };
  for (const [f, v] of Object.entries(files)) writeFileSync(join(path, f), v);
}

const read = (path: string) => readFileSync(path, "utf8");

function resourcesOf(yaml: string) {
  const r = parseServiceText("/etc/pm/svc.yaml", `process:\n  command: sleep 1\nresources:\n${yaml}`, "/tmp");
  expect(r.problems).toEqual([]);
  return r.service!.resources;
}

describe("config forms → interface files", () => {
  test("per-service resources map to the kernel's files and forms", () => {
    const files = resourceLimitFiles(resourcesOf(`  cpu_max: 20%\n  cpu_weight: 50\n  memory_max: 64M\n  memory_high: 48M\n  memory_swap_max: 0\n  pids_max: 32\n`));
    expect(files).toEqual({
      "cpu.max": "20000 100000", "cpu.weight": "50", "memory.max": String(64 << 20), "memory.high": String(48 << 20),
      "memory.swap.max": "0", "pids.max": "32",
    });
    expect(controllersFor(files).sort()).toEqual(["cpu", "memory", "pids"]);
    expect(resourceLimitFiles(resourcesOf(`  memory_max: max\n  pids_max: max\n  cpu_max: max\n`)))
      .toEqual({ "memory.max": "max", "pids.max": "max", "cpu.max": "max 100000" });
  });

  test("master limits accept the kernel form, max and a friendly percentage", () => {
    const dir = tempDir();
    const forms: [string, string][] = [['"50000 100000"', "50000 100000"], ['"max 100000"', "max 100000"], ["150%", "150000 100000"], ["max", "max 100000"]];
    for (const [text, kernel] of forms) {
      writeFileSync(join(dir, "config.yaml"), `cgroup_cpu_max: ${text}\ncgroup_memory_max: 512M\ncgroup_memory_swap_max: max\n`);
      mkdirSync(join(dir, "config.d"), { recursive: true });
      const { master } = loadConfig(join(dir, "config.yaml"));
      expect(masterLimitFiles(master)).toEqual({ "cpu.max": kernel, "memory.max": String(512 << 20), "memory.swap.max": "max" });
    }
  });

  test("a limit removed from the config is reset to the kernel default", () => {
    expect(limitChanges({ "memory.max": "1", "pids.max": "32" }, { "memory.max": "2" })).toEqual({ "memory.max": "2", "pids.max": "max" });
    expect(limitChanges({}, { "cpu.weight": "50" })).toEqual({ "cpu.weight": "50" });
    // Nothing known about the cgroup yet: every unconfigured limit is reset.
    expect(limitChanges(KERNEL_DEFAULTS, { "pids.max": "10" })).toEqual({ ...KERNEL_DEFAULTS, "pids.max": "10" });
  });
});

describe("CgroupTree against a fake cgroup root", () => {
  function fakeTree(rootControllers = "cpu memory pids io") {
    const root = tempDir();
    fakeCgroup(root, rootControllers);
    const tree = new CgroupTree({ root, name: "pm" });
    tree.ensureMaster();
    return { root, tree, master: join(root, "pm") };
  }

  test("enableControllers writes only the needed, available, not yet enabled controllers, root first", () => {
    const { root, tree, master } = fakeTree();
    writeFileSync(join(root, "cgroup.subtree_control"), "cpu"); // already on: not written again
    fakeCgroup(master, "cpu memory io");
    tree.enableControllers(["cpu", "memory", "pids"]);
    expect(read(join(root, "cgroup.subtree_control"))).toBe("+memory +pids");
    // pids is not in the master's cgroup.controllers (not enabled above it): not asked for.
    expect(read(join(master, "cgroup.subtree_control"))).toBe("+cpu +memory");
  });

  test("controllers for master limits only are enabled in the root, not for the services", () => {
    const { root, tree, master } = fakeTree();
    fakeCgroup(master, "cpu memory pids io");
    tree.enableControllers(["memory"], { for: "master" });
    expect(read(join(root, "cgroup.subtree_control"))).toBe("+memory");
    expect(read(join(master, "cgroup.subtree_control"))).toBe("");
  });

  test("enableControllers writes nothing for controllers the tree lacks, and survives a refused write", () => {
    const { root, tree, master } = fakeTree("hugetlb");
    fakeCgroup(master, "");
    expect(tree.enableControllers(["cpu", "memory"]).size).toBe(0);
    expect(read(join(root, "cgroup.subtree_control"))).toBe("");
    // A subtree_control the kernel refuses (here: not writable as a file) is reported later, not thrown.
    const other = fakeTree();
    rmSync(join(other.root, "cgroup.subtree_control"));
    mkdirSync(join(other.root, "cgroup.subtree_control"));
    expect(() => other.tree.enableControllers(["memory"])).not.toThrow();
  });

  test("writeLimits writes each file whose controller is there and reports the others, naming the controller", () => {
    const { tree, master } = fakeTree("cpu memory pids io");
    fakeCgroup(master, "cpu memory pids io");
    const svc = tree.createService("web");
    fakeCgroup(svc, "cpu memory"); // pids not enabled for the services
    const report = tree.writeLimits(svc, { "cpu.max": "20000 100000", "memory.max": "67108864", "pids.max": "32" });
    expect(read(join(svc, "cpu.max"))).toBe("20000 100000");
    expect(read(join(svc, "memory.max"))).toBe("67108864");
    expect(existsSync(join(svc, "pids.max"))).toBe(false);
    expect(report.applied).toEqual(["cpu.max", "memory.max"]);
    expect(report.notApplied).toHaveLength(1);
    expect(report.notApplied[0]).toMatchObject({ file: "pids.max", value: "32" });
    expect(report.notApplied[0]!.reason).toMatch(/the pids controller is not enabled for .*web/);
  });

  test("a controller missing from the whole tree is reported as such (a hybrid host)", () => {
    const { tree, master } = fakeTree("hugetlb");
    fakeCgroup(master, "");
    const report = tree.writeLimits(master, { "memory.max": "1073741824" });
    expect(report.applied).toEqual([]);
    expect(report.notApplied[0]!.reason).toMatch(/the memory controller is not available in the cgroup2 tree at .*lists: hugetlb/);
    expect(existsSync(join(master, "memory.max"))).toBe(false);
  });

  test("a write the kernel refuses is reported with its error", () => {
    const { tree, master } = fakeTree();
    fakeCgroup(master, "memory");
    mkdirSync(join(master, "memory.max")); // writing it fails like an invalid value would
    const report = tree.writeLimits(master, { "memory.max": "1" });
    expect(report.notApplied[0]!.reason).toMatch(/^write failed: /);
  });

  test("stats read cpu.stat, memory.current, memory.peak and memory.events", () => {
    const { tree } = fakeTree();
    const svc = tree.createService("db");
    fakeCgroup(svc, "cpu memory", {
      "cpu.stat": "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n",
      "memory.current": "4096\n", "memory.peak": "8192\n",
      "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
    });
    expect(tree.stats("db")).toEqual({ cpuUsageUsec: 123456, memoryCurrent: 4096, memoryPeak: 8192, oomKills: 1 });
    const bare = tree.createService("bare");
    fakeCgroup(bare, "");
    expect(tree.stats("bare")).toEqual({ cpuUsageUsec: null, memoryCurrent: null, memoryPeak: null, oomKills: null });
  });
});

describe("the supervisor writes limits before a start and re-applies them on update", () => {
  test("limits are written at boot, changed and lifted by update without a restart", async () => {
    const dir = tempDir();
    const root = join(dir, "cgroot");
    fakeCgroup(root, "cpu memory pids");
    fakeCgroup(join(root, "pm"), "cpu memory pids");
    // The fake has no kernel to create interface files in new cgroups: pre-create the service's.
    fakeCgroup(join(root, "pm", "web"), "cpu memory pids");
    mkdirSync(join(dir, "config.d"));
    writeFileSync(join(dir, "config.yaml"), `cgroup_root: ${root}\ncgroup_name: pm\nstate_file: ./state.json\n`);
    const svcFile = join(dir, "config.d", "web.yaml");
    // Disabled: boot applies limits but starts nothing (a fake cgroup cannot hold a process).
    writeFileSync(svcFile, "enabled: false\nprocess:\n  command: sleep 1000\nresources:\n  memory_max: 64M\n  pids_max: 32\n");
    const config = loadConfig(join(dir, "config.yaml"));
    const cgroups = new CgroupTree({ root, name: "pm" });
    const supervisor = new Supervisor({
      config, cgroups, watcher: {} as PidWatcher, store: new StateStore(join(dir, "state.json"), logger("state")), clock: systemClock,
    });
    supervisor.boot();
    const web = join(root, "pm", "web");
    expect(read(join(web, "memory.max"))).toBe(String(64 << 20));
    expect(read(join(web, "pids.max"))).toBe("32");
    // Boot knows nothing of what an earlier daemon wrote: unconfigured limits are reset.
    expect(read(join(web, "cpu.max"))).toBe("max 100000");
    expect(supervisor.units.get("web")!.limits).toEqual({ applied: ["memory.max", "pids.max"], notApplied: [] });

    writeFileSync(svcFile, "enabled: false\nprocess:\n  command: sleep 1000\nresources:\n  memory_max: 128M\n  cpu_weight: 50\n");
    const report = await supervisor.update(loadConfig(join(dir, "config.yaml")));
    expect(report.resourcesOnly).toEqual(["web"]);
    expect(read(join(web, "memory.max"))).toBe(String(128 << 20));
    expect(read(join(web, "cpu.weight"))).toBe("50");
    expect(read(join(web, "pids.max"))).toBe("max"); // lifted in place
    supervisor.shutdown();
  });
});
