/** Where the master cgroup goes when cgroup_root is not set (pure: fake /proc files). */
import { describe, expect, test } from "bun:test";
import { defaultCgroupRoot, parseOwnCgroup } from "../src/cgroup/mount.ts";

const mountinfo = (mountPoint: string, root = "/") => `35 24 0:30 ${root} ${mountPoint} rw,nosuid - cgroup2 cgroup2 rw\n`;
const proc = (path: string) => `12:memory:/x\n0::${path}\n`;

function choose(own: string, mount = "/sys/fs/cgroup", mountRoot = "/", existing: string[] = []) {
  return defaultCgroupRoot("processmaster", "_daemon", (p) => {
    if (p === "/proc/self/mountinfo") return mountinfo(mount, mountRoot);
    if (p === "/proc/self/cgroup") return proc(own);
    if (existing.includes(p)) return "";
    throw new Error("ENOENT");
  }).path;
}

describe("default cgroup_root", () => {
  const unit = "/sys/fs/cgroup/system.slice/pm.service";
  const cases: [string, string, string[], string][] = [
    ["the root cgroup: the mount", "/", [], "/sys/fs/cgroup"],
    ["a systemd unit's cgroup (Delegate=yes): that cgroup", "/system.slice/pm.service", [unit + "/cgroup.procs"], unit],
    ["DelegateSubgroup=_daemon: the unit's cgroup above it", "/system.slice/pm.service/_daemon", [unit + "/cgroup.procs"], unit],
    ["its own <cgroup_name>/_daemon leaf (re-exec): the same tree", "/system.slice/pm.service/processmaster/_daemon", [unit + "/cgroup.procs"], unit],
    ["a leaf directly under the root: the mount", "/processmaster/_daemon", [], "/sys/fs/cgroup"],
    ["an own cgroup not visible in this mount: the mount", "/elsewhere", [], "/sys/fs/cgroup"],
  ];
  for (const [what, own, existing, want] of cases) test(what, () => { expect(choose(own, "/sys/fs/cgroup", "/", existing)).toBe(want); });

  test("a hybrid host's unified mount", () => {
    expect(choose("/", "/sys/fs/cgroup/unified")).toBe("/sys/fs/cgroup/unified");
  });
  test("a mount of a subtree (mountinfo root): paths are taken relative to it", () => {
    expect(choose("/ns/system.slice/a.service", "/sys/fs/cgroup", "/ns", ["/sys/fs/cgroup/system.slice/a.service/cgroup.procs"])).toBe("/sys/fs/cgroup/system.slice/a.service");
  });
  test("parseOwnCgroup reads the unified line", () => {
    expect(parseOwnCgroup("1:cpu:/a\n0::/b/c\n")).toBe("/b/c");
    expect(parseOwnCgroup("1:cpu:/a\n")).toBeNull();
  });
});
