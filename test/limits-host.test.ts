/**
 * Limits through a real daemon on this host. Where a controller is missing from the cgroup2
 * tree (this machine's hybrid cgroups have none), the limit must be listed in
 * `status --json` as not in force, logged once naming the controller, and the service must
 * still run. Where the controller exists, the value must be in the cgroup's file instead.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { waitUntil, World } from "./helpers/harness.ts";

let world: World;
afterEach(async () => { await world?.cleanup(); });

const MiB = 1 << 20;

function treeControllers(world: World): Set<string> {
  return new Set(readFileSync(join(world.cgroupRoot, "cgroup.controllers"), "utf8").split(/\s+/).filter(Boolean));
}

const count = (text: string, needle: string) => text.split(needle).length - 1;

interface StatusJson {
  apps: { name: string; state: string; pids: number[]; cpu_usage_usec: number | null; limits_not_in_force: { file: string; value: string; reason: string }[] }[];
  master: { cgroup: string; limits_not_in_force: { file: string; value: string; reason: string }[] };
}

describe("limits on this host", () => {
  test("configured limits are written or listed as not in force, logged once each; the services run", async () => {
    world = new World({ master: { cgroup_cpu_max: "150%", cgroup_memory_max: "1G" } });
    world.writeService("capped", { process: { command: ["sleep", "1000"], stop_grace_ms: 2000 }, resources: { cpu_max: "20%", cpu_weight: 50, memory_max: "64M", pids_max: 32 } });
    world.writeService("free", { process: { command: ["sleep", "1000"], stop_grace_ms: 2000 } });
    const d = await world.daemon();
    const have = treeControllers(world);
    const wanted: Record<string, string> = { "cpu.max": "20000 100000", "cpu.weight": "50", "memory.max": String(64 * MiB), "pids.max": "32" };

    const status = async () => JSON.parse((await world.pmctl(["status", "--json"])).stdout) as StatusJson;
    const s = await waitUntil(async () => { const j = await status(); return j.apps.every((a) => a.state === "running") && j; }, "both services to run");
    const capped = s.apps.find((a) => a.name === "capped")!;
    expect(capped.pids).toHaveLength(1);
    expect(typeof capped.cpu_usage_usec).toBe("number"); // cpu.stat is there without the cpu controller
    expect(s.apps.find((a) => a.name === "free")!.limits_not_in_force).toEqual([]);

    for (const [file, value] of Object.entries(wanted)) {
      const controller = file.split(".")[0]!;
      const listed = capped.limits_not_in_force.find((l) => l.file === file);
      if (have.has(controller)) {
        expect(listed).toBeUndefined();
        expect(readFileSync(join(world.serviceCgroup("capped"), file), "utf8").trim()).toBe(value);
      } else {
        expect(listed).toMatchObject({ file, value });
        expect(listed!.reason).toContain(`the ${controller} controller`);
        const line = `[capped] limit ${file}=${value} not in force: `;
        expect(count(d.output(), line)).toBe(1);
      }
    }
    for (const [file, value] of Object.entries({ "cpu.max": "150000 100000", "memory.max": String(1024 * MiB) })) {
      const listed = s.master.limits_not_in_force.find((l) => l.file === file);
      if (have.has(file.split(".")[0]!)) expect(readFileSync(join(world.masterCgroup, file), "utf8").trim()).toBe(value);
      else {
        expect(listed).toMatchObject({ file, value });
        expect(count(d.output(), `master limit ${file}=${value} not in force: the ${file.split(".")[0]} controller`)).toBe(1);
      }
    }

    // A restart writes the limits again into a fresh cgroup but does not repeat the warnings.
    expect((await world.pmctl(["restart", "capped"])).code).toBe(0);
    for (const [file, value] of Object.entries(wanted)) {
      if (!have.has(file.split(".")[0]!)) expect(count(d.output(), `[capped] limit ${file}=${value} not in force`)).toBe(1);
    }
    const table = await world.pmctl(["status"]);
    if (capped.limits_not_in_force.length) expect(table.stdout).toMatch(/capped .*limits not in force: /);
    if (s.master.limits_not_in_force.length) expect(table.stdout).toContain(`master cgroup ${world.masterCgroup}: limits not in force: `);
  });

  test("update changes and lifts a limit in place: no restart, status follows", async () => {
    world = new World();
    const spec = (resources: Record<string, unknown>) => ({ process: { command: ["sleep", "1000"], stop_grace_ms: 2000 }, resources });
    world.writeService("svc", spec({ memory_max: "64M", pids_max: 32 }));
    const d = await world.daemon();
    const before = await waitUntil(async () => { const a = await world.app("svc"); return a.state === "running" && a; }, "svc to run");
    const have = treeControllers(world);

    world.writeService("svc", spec({ memory_max: "128M" }));
    const res = await world.pmctl(["update", "--json"]);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout).resources_only).toEqual(["svc"]);
    const after = await world.app("svc");
    expect(after.pids).toEqual(before.pids); // not restarted
    const listed = (f: string) => after.limits_not_in_force.find((l) => l.file === f);
    expect(listed("pids.max")).toBeUndefined();
    if (have.has("memory")) expect(readFileSync(join(world.serviceCgroup("svc"), "memory.max"), "utf8").trim()).toBe(String(128 * MiB));
    else {
      expect(listed("memory.max")).toMatchObject({ value: String(128 * MiB) });
      expect(count(d.output(), `[svc] limit memory.max=${128 * MiB} not in force`)).toBe(1);
    }
    if (have.has("pids")) expect(readFileSync(join(world.serviceCgroup("svc"), "pids.max"), "utf8").trim()).toBe("max");
  });
});
