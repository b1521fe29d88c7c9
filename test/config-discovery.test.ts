/**
 * Which master config the daemon and pmctl read: -c, then $PROCESSMASTER_CONFIG, then
 * ./config.yaml if it exists, then /etc/processmaster/config.yaml; an error names every place.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { discoverConfig, ETC_CONFIG } from "../src/config/discover.ts";
import { pmctlCommand, runPm, World } from "./helpers/harness.ts";

describe("discoverConfig", () => {
  const none = () => false;
  const cases: [string, string | undefined, Record<string, string>, string[], string][] = [
    ["-c wins over everything", "/a/c.yaml", { PROCESSMASTER_CONFIG: "/env.yaml" }, [resolve("config.yaml"), ETC_CONFIG], "/a/c.yaml"],
    ["a relative -c is taken from the working directory", "rel.yaml", {}, [], resolve("rel.yaml")],
    ["then $PROCESSMASTER_CONFIG", undefined, { PROCESSMASTER_CONFIG: "/env.yaml" }, [resolve("config.yaml"), ETC_CONFIG], "/env.yaml"],
    ["then ./config.yaml when it exists", undefined, {}, [resolve("config.yaml"), ETC_CONFIG], resolve("config.yaml")],
    ["then /etc/processmaster/config.yaml", undefined, {}, [ETC_CONFIG], ETC_CONFIG],
    ["an empty $PROCESSMASTER_CONFIG counts as not set", undefined, { PROCESSMASTER_CONFIG: "" }, [ETC_CONFIG], ETC_CONFIG],
  ];
  for (const [what, given, env, existing, want] of cases) {
    test(what, () => { expect(discoverConfig(given, env, (p) => existing.includes(p), () => null)).toBe(want); });
  }
  test("as root, a ./config.yaml that someone else could have written is refused, naming why", () => {
    expect(() => discoverConfig(undefined, {}, () => true, (f) => `${f} is owned by uid 1000`)).toThrow(
      `not using ${resolve("config.yaml")} found in the working directory: ${resolve("config.yaml")} is owned by uid 1000; pass -c FILE to use it anyway`);
  });
  test("nothing found: one error naming every place tried", () => {
    expect(() => discoverConfig(undefined, {}, none)).toThrow(
      `no master config found: tried -c (not given), $PROCESSMASTER_CONFIG (not set), ${resolve("config.yaml")} (not found), ${ETC_CONFIG} (not found); pass -c FILE`);
  });
});

describe("the daemon and pmctl find the config through $PROCESSMASTER_CONFIG", () => {
  let world: World | undefined;
  afterEach(async () => { await world?.cleanup(); world = undefined; });

  test("without -c", async () => {
    world = new World();
    world.writeService("web", { process: { command: ["sleep", "1000"], stop_grace_ms: 1000 } });
    const d = world.startDaemon([], { PROCESSMASTER_CONFIG: world.configPath }, { noConfigFlag: true });
    await d.waitForLog(/serving /, 20_000);
    const r = await runPm(pmctlCommand(["status", "--json"]), { PROCESSMASTER_CONFIG: world.configPath });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).apps.map((a: { name: string }) => a.name)).toEqual(["web"]);
  });
});
