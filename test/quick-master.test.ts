/**
 * pmctl's fast read of sock_path (src/cli/quick-master.ts) must agree with the real master
 * parser whenever it answers, and step aside (null) whenever it is not sure.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { quickSockPath } from "../src/cli/quick-master.ts";
import { loadMasterConfig } from "../src/config/load.ts";

const dir = mkdtempSync(join(tmpdir(), "pm-quick-master-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function master(text: string): string {
  const file = join(dir, `m${n++}.yaml`);
  writeFileSync(file, text);
  return file;
}

describe("quickSockPath", () => {
  const agree = [
    ["JSON", `{"config_directory": "./config.d", "sock_path": "/run/pm/pm.sock", "cgroup_name": "x"}`],
    ["JSON, relative", `{"sock_path": "run/pm.sock"}`],
    ["JSON, no sock_path", `{"cgroup_name": "x"}`],
    ["flat YAML", "# master\nconfig_directory: ./config.d\nsock_path: ./run/processmaster.sock\nsock_mode: \"0660\"\n"],
    ["comment after the value", "sock_path: /tmp/a.sock   # the socket\n"],
    ["double quotes", `sock_path: "/tmp/with space.sock"\n`],
    ["single quotes", "sock_path: '/tmp/b.sock' # c\n"],
    ["CRLF", "cgroup_name: x\r\nsock_path: /tmp/c.sock\r\n"],
    ["no sock_path", "cgroup_name: x\n"],
    ["comments only", "# nothing here\n\n"],
    ["indented comment", "sock_path: /tmp/d.sock\n  # note\n"],
  ] as const;
  for (const [what, text] of agree) {
    test(`${what}: same answer as the master parser`, () => {
      const file = master(text);
      const quick = quickSockPath(file);
      expect(quick).not.toBeNull();
      expect(quick).toBe(loadMasterConfig(file).sockPath);
    });
  }

  const unsure = [
    ["nested mapping", "sock_path: /tmp/a.sock\nlimits:\n  cpu: 1\n"],
    ["block scalar", "sock_path: |\n  /tmp/a.sock\n"],
    ["anchor", "sock_path: &s /tmp/a.sock\n"],
    ["alias", "base: &b /tmp\nsock_path: *b\n"],
    ["escape", `sock_path: "/tmp/\\x41.sock"\n`],
    ["repeated key", "sock_path: /a.sock\nsock_path: /b.sock\n"],
    ["document marker", "---\nsock_path: /a.sock\n"],
    ["empty value", "sock_path:\n"],
    ["null", "sock_path: ~\n"],
    ["flow mapping", "{sock_path: /a.sock}\n"],
    ["JSON number", `{"sock_path": 5}`],
    ["bad JSON", `{"sock_path": "/a.sock",}`],
  ] as const;
  for (const [what, text] of unsure) {
    test(`${what}: leaves it to the parser`, () => {
      expect(quickSockPath(master(text))).toBeNull();
    });
  }

  test("a missing file leaves it to the parser (which reports it)", () => {
    expect(quickSockPath(join(dir, "absent.yaml"))).toBeNull();
  });
});
