/**
 * Under systemd: the shipped unit file has what the daemon relies on, and a daemon started in
 * its unit's cgroup itself (systemd < 254 ignores DelegateSubgroup) says what that breaks once
 * controllers are enabled there (pure: fake /proc files).
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { defaultCgroupRoot, startedInRootWarning } from "../src/cgroup/mount.ts";
import { REPO } from "./helpers/harness.ts";

describe("examples/systemd/processmaster.service", () => {
  const unit = readFileSync(join(REPO, "examples", "systemd", "processmaster.service"), "utf8");
  /** The [Service] section's settings, comments left out. */
  const service = new Map(
    (/^\[Service\]\n([\s\S]*?)(?=^\[|(?![\s\S]))/m.exec(unit)?.[1] ?? "").split("\n")
      .filter((l) => l.includes("=") && !l.startsWith("#"))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] as const),
  );

  test("delegates its cgroup, leaves the services running when the daemon stops, reloads by SIGHUP, restarts on failure", () => {
    expect(service.get("Delegate")).toBe("yes");
    expect(service.get("DelegateSubgroup")).toBe("_daemon");
    expect(service.get("KillMode")).toBe("process");
    expect(service.get("ExecReload")).toMatch(/^\S*kill -HUP \$MAINPID$/);
    expect(service.get("Restart")).toBe("on-failure");
    expect(service.get("ExecStart")).toMatch(/^\/\S+\/processmaster daemon -c \/etc\/processmaster\/config\.yaml$/);
  });

  test("its comment gives the variant for systemd before 254", () => {
    expect(unit).toMatch(/^# .*systemd older than 254.*$/m);
    expect(unit).toContain("cgroup_root: /sys/fs/cgroup");
  });
});

describe("a daemon started in its default cgroup_root itself", () => {
  const mount = "/sys/fs/cgroup";
  const unitCgroup = "/system.slice/processmaster.service";
  const choose = (own: string) => defaultCgroupRoot("processmaster", "_daemon", (p) => {
    if (p === "/proc/self/mountinfo") return `35 24 0:30 / ${mount} rw,nosuid - cgroup2 cgroup2 rw\n`;
    if (p === "/proc/self/cgroup") return `0::${own}\n`;
    if (p === mount + unitCgroup + "/cgroup.procs") return "";
    throw new Error("ENOENT");
  });

  const cases: [string, string, string[], boolean][] = [
    ["the unit's cgroup (systemd < 254), controllers enabled there: warned", unitCgroup, ["memory", "pids"], true],
    ["the unit's cgroup, no controller enabled there (no limits): not warned", unitCgroup, [], false],
    ["DelegateSubgroup=_daemon: not warned", unitCgroup + "/_daemon", ["memory"], false],
    ["its own <cgroup_name>/_daemon leaf (a restart from there): not warned", unitCgroup + "/processmaster/_daemon", ["memory"], false],
    ["the root cgroup (the mount: no internal-process rule): not warned", "/", ["memory"], false],
  ];
  for (const [what, own, enabled, warned] of cases) {
    test(what, () => { expect(startedInRootWarning(choose(own), enabled) !== null).toBe(warned); });
  }

  test("an explicit cgroup_root: not warned", () => {
    expect(startedInRootWarning({ path: mount + unitCgroup, why: "cgroup_root", startedHere: false }, ["memory"])).toBeNull();
  });

  test("the warning names the cgroup, the controllers, what fails and both remedies", () => {
    const w = startedInRootWarning(choose(unitCgroup), ["memory", "pids"])!;
    expect(w).toContain(`${mount}${unitCgroup} itself`);
    expect(w).toContain("(memory pids)");
    expect(w).toContain("status=219/CGROUP");
    expect(w).toContain("DelegateSubgroup=_daemon");
    expect(w).toContain("cgroup_root: /sys/fs/cgroup");
  });
});
