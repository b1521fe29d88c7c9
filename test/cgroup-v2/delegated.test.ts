/**
 * Under systemd with `Delegate=yes` and `DelegateSubgroup=_daemon` (examples/systemd): the daemon
 * is started in `system.slice/<unit>.service/_daemon` (controllers enabled down to the unit, as
 * systemd sets them up), and
 * must create and write cgroups only inside it (nor move a process out of it); limits hold there
 * (written, and pids_max enforced on a fork loop); a daemon SIGKILLed and started again in the
 * same cgroup adopts every service; an explicit `cgroup_root` still wins. Started in the unit's
 * cgroup itself (systemd < 254 ignores DelegateSubgroup), it warns that no process may join it.
 */
import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { waitUntil, World } from "../helpers/harness.ts";
import { CGROUP2_MOUNT, FULL_TREE, readCg } from "./v2-host.ts";

let world: World | undefined;
const madeCgroups: string[] = []; // removed deepest first
afterEach(async () => {
  await world?.cleanup();
  world = undefined;
  for (const dir of madeCgroups.splice(0).reverse()) { try { rmdirSync(dir); } catch { /* still used by another test */ } }
});

const MiB = 1 << 20;
const CONTROLLERS = ["cpu", "memory", "pids"];

function mkCgroup(path: string) {
  if (existsSync(path)) return;
  mkCgroup(join(path, ".."));
  mkdirSync(path);
  madeCgroups.push(path);
}

/** A unit cgroup as systemd makes it for a `Delegate=yes` service, with controllers enabled down to it. */
function systemdUnitCgroup(unit: string): string {
  const slice = join(CGROUP2_MOUNT, "system.slice");
  mkCgroup(slice);
  const svc = join(slice, unit);
  mkCgroup(svc);
  for (const dir of [CGROUP2_MOUNT, slice]) writeFileSync(join(dir, "cgroup.subtree_control"), CONTROLLERS.map((c) => `+${c}`).join(" "));
  return svc;
}

/** A user process (kernel threads, which come and go in the root cgroup, have no command line), not this test runner. */
const userProcess = (pid: string) => pid !== String(process.pid) && (readCg(`/proc/${pid}`, "cmdline") ?? "") !== "";

/** Every cgroup outside `inside`, with the interface files a daemon could write there and its user processes. */
function snapshotOutside(inside: string): Map<string, string> {
  const seen = new Map<string, string>();
  const walk = (dir: string) => {
    if (dir === inside) return;
    const files = ["cgroup.subtree_control", "cgroup.procs", "cpu.max", "memory.max", "memory.swap.max", "pids.max", "cpu.weight", "memory.high"];
    const read = (f: string) => f === "cgroup.procs" ? readCg(dir, f)?.split("\n").filter(userProcess).join(",") : readCg(dir, f);
    seen.set(relative(CGROUP2_MOUNT, dir) || "/", files.map((f) => `${f}=${read(f)}`).join(";"));
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name));
  };
  walk(CGROUP2_MOUNT);
  return seen;
}

const cgroupOf = (pid: number) => /^0::(.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, "utf8"))?.[1];

test.skipIf(!FULL_TREE)("inside its unit's cgroup: nothing written outside it, limits hold, adopted after SIGKILL", async () => {
  const unit = systemdUnitCgroup(`pmtest-${process.pid}-${Math.random().toString(36).slice(2, 8)}.service`);
  world = new World({ cgroupRoot: unit });
  world.writeService("capped", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 }, resources: { memory_max: "64M", pids_max: 16 } });
  world.writeService("tree", { process: { command: ["sh", "-c", "sleep 1000 & wait"], stop_grace_ms: 1000 } });
  // 20 background sleeps against pids_max 8: the kernel refuses the 9th task and the shell exits
  // at the failed fork (exit_type cgroup: the sleeps that got in are the service).
  world.writeService("forks", {
    process: { command: ["sh", "-c", "i=0; while [ $i -lt 20 ]; do sleep 1000 & i=$((i+1)); done; wait"], stop_grace_ms: 1000, exit_type: "cgroup" },
    resources: { pids_max: 8 },
  });
  const before = snapshotOutside(unit);

  const startLeaf = join(unit, "_daemon"); // DelegateSubgroup=_daemon
  mkCgroup(startLeaf);
  const first = await world.daemon([], { binary: true, cgroup: startLeaf });
  const pids = await waitUntil(() => { const c = world!.cgroupPids("capped"), t = world!.cgroupPids("tree"); return c.length === 1 && t.length === 2 && [...c, ...t].sort(); }, "both services to run", 30_000);
  expect(world.masterCgroup).toBe(join(unit, world.cgroupName));
  expect(cgroupOf(first.pid)).toBe("/" + relative(CGROUP2_MOUNT, join(world.masterCgroup, "_daemon")));
  const capped = world.serviceCgroup("capped");
  expect(readCg(capped, "cgroup.controllers")?.split(" ")).toEqual(expect.arrayContaining(["memory", "pids"]));
  expect([readCg(capped, "memory.max"), readCg(capped, "pids.max")]).toEqual([String(64 * MiB), "16"]);
  expect((await world.app("capped")).limits_not_in_force).toEqual([]);
  const forks = world.serviceCgroup("forks");
  const refusedForks = () => Number(/^max (\d+)$/m.exec(readCg(forks, "pids.events") ?? "")?.[1] ?? 0);
  await waitUntil(() => refusedForks() > 0, "pids.events of forks to count a fork refused by pids_max 8", 30_000);
  expect(Number(readCg(forks, "pids.current"))).toBeLessThanOrEqual(8);
  expect((await world.app("forks")).state).toBe("running");
  expect(snapshotOutside(unit)).toEqual(before);

  first.proc.kill("SIGKILL");
  await first.exited;
  await world.daemon([], { binary: true, cgroup: startLeaf }); // systemd's restart: the same subgroup
  const adopted = await world.status();
  expect(adopted.map((a) => [a.name, a.state])).toEqual([["capped", "running"], ["forks", "running"], ["tree", "running"]]);
  expect(adopted.filter((a) => a.name !== "forks").flatMap((a) => a.pids).sort()).toEqual(pids);
  expect(snapshotOutside(unit)).toEqual(before);
}, 120_000);

test.skipIf(!FULL_TREE)("started in the unit's cgroup itself (systemd < 254 ignores DelegateSubgroup): it warns once that no process can join that cgroup any more", async () => {
  const unit = systemdUnitCgroup(`pmtest-${process.pid}-${Math.random().toString(36).slice(2, 8)}.service`);
  world = new World({ cgroupRoot: unit });
  world.writeService("capped", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 }, resources: { memory_max: "64M" } });
  const d = await world.daemon([], { binary: true, cgroup: unit });
  await waitUntil(() => world!.cgroupPids("capped").length === 1, "capped to run", 30_000);
  expect(readCg(unit, "cgroup.subtree_control")?.split(" ")).toContain("memory");
  const warnings = d.output().match(/WARN .*started in \S+ itself, its default cgroup_root, and limits enabled controllers .*status=219\/CGROUP.*cgroup_root: \/sys\/fs\/cgroup.*/g) ?? [];
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toContain(`started in ${unit} itself`);
  // What systemd would meet starting the next daemon there: the kernel refuses the process.
  const next = Bun.spawn({ cmd: ["sleep", "1000"], stdio: ["ignore", "ignore", "ignore"] });
  try {
    expect(() => writeFileSync(join(unit, "cgroup.procs"), String(next.pid))).toThrow(/EBUSY|busy/i);
  } finally { next.kill("SIGKILL"); await next.exited; }
}, 120_000);

test.skipIf(!FULL_TREE)("an explicit cgroup_root wins over the daemon's own cgroup", async () => {
  const unit = systemdUnitCgroup(`pmtest-${process.pid}-${Math.random().toString(36).slice(2, 8)}.service`);
  const explicit = join(CGROUP2_MOUNT, `pmtest-explicit-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  mkCgroup(explicit);
  world = new World({ master: { cgroup_root: explicit }, cgroupRoot: explicit });
  world.writeService("web", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 } });
  const d = await world.daemon([], { binary: true, cgroup: unit });
  await waitUntil(() => world!.cgroupPids("web").length === 1, "web to run in the explicit root", 30_000);
  expect(existsSync(join(explicit, world.cgroupName, "web"))).toBe(true);
  expect(existsSync(join(unit, world.cgroupName))).toBe(false);
  // The variant for systemd < 254: the unit's cgroup keeps no controller enabled, so a next daemon can be started in it.
  expect(readCg(unit, "cgroup.subtree_control")).toBe("");
  expect(d.output()).not.toContain("its default cgroup_root");
}, 120_000);
