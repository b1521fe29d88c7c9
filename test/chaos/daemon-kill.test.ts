/**
 * Chaos 1: the daemon SIGKILLed at random moments — while it boots and starts its services, while
 * it stops or starts some, in the middle of `update` (services added, removed, changed) and of
 * `rotate` — and started again each time. After every restart:
 *
 * - every service that should run runs exactly once: its cgroup holds exactly one process, and
 *   no other cgroup under the master is populated (a removed service does not run on);
 * - a stop or start the daemon acknowledged holds (operator-stopped services stay stopped); one
 *   cut off by the kill may have happened or not, and the daemon's answer is taken from then on;
 * - the state file is valid JSON, and no half-written temporary file is left behind;
 * - no log file lost content: every line seen in a service's log (live file + archives) is
 *   still there (a rotation cut off by the kill may leave a line twice, never none).
 *
 * Short variant: 8 rounds with 20 services. PM_CHAOS_LONG=1: 100 rounds with 50.
 * PM_CHAOS_SEED replays a failing run (the seed is in the failure message).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { waitUntil, World, type DaemonProc } from "../helpers/harness.ts";
import { callDaemon } from "../../src/control/client.ts";
import type { Command } from "../../src/control/protocol.ts";
import type { AppStatus } from "../../src/supervisor/status.ts";
import { LONG, populatedServiceCgroups, procStat, seededRandom } from "./chaos-helpers.ts";

const ROUNDS = LONG ? 100 : 8;
const SERVICES = LONG ? 50 : 20;
const SETTLED = new Set(["running", "stopped", "exited", "failed", "suppressed"]);
const SHORT_PLAN = ["update", "boot", "stop", "update", "start", "rotate", "update", "boot"] as const;

let world: World | undefined;
afterEach(async () => { await world?.cleanup(); world = undefined; });

/** What the test knows the daemon must honour. `undefined`: a request cut off by the kill, either outcome is fine. */
type Intent = boolean | undefined;

describe("chaos: daemon SIGKILLed at random points", () => {
  test(`${ROUNDS} rounds with ${SERVICES} services: nothing runs twice, nothing is lost`, async () => {
    const rnd = seededRandom();
    const w = (world = new World());
    const version = new Map<string, number>();
    const stopped = new Map<string, Intent>(); // operator-stopped?
    const linesSeen = new Map<string, Set<string>>(); // log file → marker lines seen in it
    let nextId = 0;

    const writeService = (name: string) => {
      const v = version.get(name) ?? 1;
      version.set(name, v);
      const dir = w.appDir(name);
      // Per start: a marker line and 40 filler lines (4 KB: rotation moves whole blocks), each
      // unique by pid + nanoseconds. Then the instance: `sleep 100000` under a shell that takes
      // 300 ms to stop, so kills land in the middle of stops and removals too.
      const script = `t=$$-$(date +%s%N); echo "start $PM_SERVICE v${v} $t"; i=0; while [ $i -lt 40 ]; do echo "fill $PM_SERVICE $t $i ${"-".repeat(70)}"; i=$((i+1)); done; trap 'sleep 0.3; exit 0' TERM; sleep 100000 & wait`;
      w.writeService(name, {
        process: { command: ["sh", "-c", script], stop_grace_ms: 2000 },
        logs: { stdout: join(dir, "out.log"), stderr: join(dir, "err.log") },
      });
    };
    for (let i = 0; i < SERVICES; i++) { const n = `svc${String(nextId++).padStart(3, "0")}`; writeService(n); stopped.set(n, false); }

    let daemon: DaemonProc = await w.daemon();
    const log: string[] = [`seed ${rnd.seed}`];
    const context = () => `${log.join("\n")}\n--- daemon log tail:\n${daemon.output().split("\n").filter((l) => !/DEBUG|rotation by fallocate|adopted running/.test(l)).slice(-40).join("\n")}`;

    const kill = async (d: DaemonProc) => { d.proc.kill("SIGKILL"); await d.exited; };
    /** Sends a request, SIGKILLs the daemon `delayMs` later; true when the answer came first. */
    const requestThenKill = async (cmd: Command, names: string[], delayMs: number): Promise<boolean> => {
      let answered = false;
      const req = callDaemon(w.sockPath, cmd, names).then(() => { answered = true; }, () => {});
      await Promise.race([req, Bun.sleep(delayMs)]);
      await kill(daemon);
      await req;
      return answered;
    };

    for (let round = 1; round <= ROUNDS; round++) {
      const names = [...version.keys()];
      // The short variant covers every kind of round, updates most (they add, remove and change).
      const action = round <= SHORT_PLAN.length && !LONG ? SHORT_PLAN[round - 1]! : rnd.pick(["boot", "boot", "stop", "start", "update", "update", "rotate"] as const);
      let note = `round ${round}: ${action}`;
      switch (action) {
        case "boot": { // killed somewhere between process start and having started every service
          await kill(daemon);
          const delay = rnd.int(0, 600);
          daemon = w.startDaemon();
          await Bun.sleep(delay);
          await kill(daemon);
          note += ` killed ${delay}ms after exec`;
          break;
        }
        case "stop": case "start": {
          const pool = names.filter((n) => (action === "stop" ? stopped.get(n) !== true : stopped.get(n) !== false));
          const chosen = rnd.subset(pool.length ? pool : names, 0.3).slice(0, 8);
          if (chosen.length === 0) chosen.push(rnd.pick(names));
          const delay = rnd.int(0, 40);
          const acked = await requestThenKill(action, chosen, delay);
          for (const n of chosen) stopped.set(n, acked ? action === "stop" : undefined);
          note += ` [${chosen}] killed after ${delay}ms, ${acked ? "acknowledged" : "cut off"}`;
          break;
        }
        case "update": {
          const added = [0, 1].slice(0, rnd.int(1, 2)).map(() => `svc${String(nextId++).padStart(3, "0")}`);
          const removed = rnd.subset(names, 0.08).slice(0, 2);
          if (removed.length === 0) removed.push(rnd.pick(names));
          const changed = rnd.subset(names.filter((n) => !removed.includes(n)), 0.1).slice(0, 3);
          for (const n of added) { writeService(n); stopped.set(n, false); }
          for (const n of removed) { w.removeService(n); version.delete(n); stopped.delete(n); }
          for (const n of changed) { version.set(n, version.get(n)! + 1); writeService(n); }
          // Half the kills land before the daemon has taken the request in, half while it works on it.
          const delay = rnd.next() < 0.5 ? rnd.int(0, 6) : rnd.int(0, 120);
          const acked = await requestThenKill("update", [], delay);
          note += ` +[${added}] -[${removed}] ~[${changed}] killed after ${delay}ms, ${acked ? "acknowledged" : "cut off"}`;
          break;
        }
        case "rotate": {
          const delay = rnd.int(0, 20);
          const acked = await requestThenKill("rotate", [], delay);
          note += ` killed after ${delay}ms, ${acked ? "acknowledged" : "cut off"}`;
          break;
        }
      }
      log.push(note);

      // The state file, as the killed daemon left it: valid, nothing half-written beside it.
      const statePath = join(w.dir, "state.json");
      if (existsSync(statePath)) {
        const state = JSON.parse(readFileSync(statePath, "utf8"));
        expect(state.version, context()).toBe(1);
      }

      daemon = await w.daemon();
      const apps = await waitUntil(async () => {
        const a = await w.status();
        return a.every((x) => SETTLED.has(x.state)) && a;
      }, `every service to settle after round ${round}`, 20_000, 50).catch((e) => { throw new Error(`${e}\n${context()}`); });
      // A service that just started may still be in its start script: let it reach its shell + sleep.
      await waitUntil(() => [...populatedServiceCgroups(w.masterCgroup).values()].every((p) => p.length === 2 && p.some((pid) => cmdline(pid) === "sleep 100000")), "each started service to settle to its two processes", 10_000, 50).catch(() => {});
      checkRound(w, apps, version, stopped, context);
      // No temporary file of a killed daemon is left (the live one may be in the middle of a write).
      expect(readdirSync(w.dir).filter((n) => n.includes(".tmp") && !n.endsWith(`.tmp-${daemon.pid}`)), context()).toEqual([]);
      checkLogs(w, linesSeen, context);
    }
    console.log(`daemon-kill: ${ROUNDS} rounds, seed ${rnd.seed}, ${[...linesSeen.values()].reduce((n, s) => n + s.size, 0)} log lines tracked`);
  }, LONG ? 900_000 : 90_000);
});

/**
 * Kill points: the daemon SIGKILLed at one exact moment, right after it sent a stop signal. The
 * service's TERM trap freezes the daemon (SIGSTOP to its parent, once) before the daemon can do
 * anything more; the test then kills the frozen daemon. What the daemon wrote before signalling
 * is all the next one has.
 */
describe("chaos: daemon SIGKILLed right after it signals a stop", () => {
  const frozen = (d: DaemonProc) => procStat(d.pid)?.state === "T";
  const freezer = (dir: string) => `trap '[ -e ${dir}/froze ] || { touch ${dir}/froze; kill -STOP $PPID; }; sleep 0.3; exit 0' TERM; sleep 100000 & wait`;

  for (const cmd of ["stop", "restart"] as const) {
    test(`${cmd}: the intent is on disk before the first signal, so the next daemon finishes the ${cmd}`, async () => {
      const w = (world = new World());
      w.writeService("svc", { process: { command: ["sh", "-c", freezer(w.dir)], stop_grace_ms: 3000 } });
      const first = await w.daemon();
      const before = await waitUntil(() => { const p = w.cgroupPids("svc"); return p.length === 2 && p; }, "the service's shell and sleep");
      const pending = callDaemon(w.sockPath, cmd, ["svc"]).catch(() => "cut off");
      await waitUntil(() => frozen(first), "the service's trap to freeze the daemon", 15_000, 5);
      first.proc.kill("SIGKILL");
      await first.exited;
      expect(await pending).toBe("cut off");
      await w.daemon();
      const app = await waitUntil(async () => { const a = await w.app("svc"); return SETTLED.has(a.state) && a; }, "the service to settle", 10_000, 50);
      if (cmd === "stop") {
        expect(app).toMatchObject({ state: "stopped", operator_stopped: true });
        expect(w.cgroupPids("svc")).toEqual([]);
      } else {
        expect(app).toMatchObject({ state: "running", operator_stopped: false });
        const after = await waitUntil(() => { const p = w.cgroupPids("svc"); return p.length === 2 && p; }, "the restarted service");
        expect(after.some((p) => before.includes(p))).toBe(false);
      }
    }, 30_000);
  }

  test("update removing a service: killed right after the stop signal, the next daemon finishes the removal with its grace", async () => {
    const w = (world = new World());
    // Freezes the daemon on TERM, then ignores it (its sleep too): only cgroup.kill after the grace ends it.
    const script = `trap '[ -e ${w.dir}/froze ] || { touch ${w.dir}/froze; kill -STOP $PPID; }' TERM; (trap '' TERM; exec sleep 100000) & while :; do wait; done`;
    w.writeService("doomed", { process: { command: ["sh", "-c", script], stop_grace_ms: 1000 } });
    w.writeService("keeper", { process: { command: ["sleep", "100000"] } });
    const first = await w.daemon();
    await waitUntil(() => w.cgroupPids("doomed").length === 2, "the doomed service's shell and sleep");
    w.removeService("doomed");
    const pending = callDaemon(w.sockPath, "update").catch(() => "cut off");
    await waitUntil(() => frozen(first), "the service's trap to freeze the daemon", 15_000, 5);
    first.proc.kill("SIGKILL");
    await first.exited;
    expect(await pending).toBe("cut off");
    // A broken file beside it: only the removal that update marked may go ahead (the broken file
    // could define anything else).
    w.writeRawService("broken.yaml", "process: [unclosed\n");
    const t0 = performance.now();
    const second = await w.daemon();
    // With its own grace (1000 ms, from the state file; not the 30 s default), in order: the stop
    // signal, the grace runs out, the cgroup is killed, the service removed.
    const announced = await second.waitForLog(/'doomed' still runs but update was removing it .*cgroup.kill after \d+ms/, 30_000);
    expect(announced).toMatch(/SIGTERM, cgroup.kill after 1000ms$/);
    await waitUntil(() => !populatedServiceCgroups(w.masterCgroup).has("doomed"), "the removed service to be gone", 30_000, 20);
    await second.waitForLog(/'doomed' stopped and removed/, 30_000);
    console.log(`the next daemon's start until the removed service was gone (its grace: 1 s): ${(performance.now() - t0).toFixed(0)} ms`);
    expect(second.output()).toMatch(/'doomed' still runs but update was removing it .*\n(.*\n)*.*'doomed' still running after 1000ms grace, killing its cgroup\n(.*\n)*.*'doomed' stopped and removed/);
    expect((await w.status()).map((a) => a.name)).toEqual(["keeper"]);
  }, 60_000);

  test("a service file deleted while no daemon runs: the next daemon stops what it left running", async () => {
    const w = (world = new World());
    w.writeService("gone", { process: { command: ["sleep", "100000"], stop_grace_ms: 1500 } });
    w.writeService("keeper", { process: { command: ["sleep", "100000"] } });
    const first = await w.daemon();
    const keeperPid = (await w.app("keeper")).pids[0];
    first.proc.kill("SIGTERM"); // leaves the services running
    await first.exited;
    expect(w.cgroupPids("gone").length).toBe(1);
    w.removeService("gone");
    const second = await w.daemon();
    await waitUntil(() => !populatedServiceCgroups(w.masterCgroup).has("gone"), "the service without a file to be stopped", 30_000, 20);
    expect(second.output()).toMatch(/'gone' still runs but no service file defines it; stopping it: SIGTERM, cgroup.kill after 1500ms/);
    expect((await w.app("keeper")).pids).toEqual([keeperPid!]); // the others are untouched
  }, 60_000);
});

/** Every service that should run runs exactly once; nothing else runs; acknowledged intents hold. */
function checkRound(w: World, apps: AppStatus[], version: Map<string, number>, stopped: Map<string, Intent>, context: () => string) {
  expect(apps.map((a) => a.name).sort(), context()).toEqual([...version.keys()].sort());
  const shouldRun = new Set<string>();
  for (const a of apps) {
    const intent = stopped.get(a.name);
    if (intent !== undefined) expect(a.operator_stopped, `${a.name} ${context()}`).toBe(intent);
    else stopped.set(a.name, a.operator_stopped); // a cut-off request: the daemon's word from now on
    if (a.operator_stopped) {
      expect(a.state, `${a.name} ${context()}`).toBe("stopped");
    } else {
      expect(a.state, `${a.name} ${context()}`).toBe("running");
      shouldRun.add(a.name);
    }
  }
  const populated = populatedServiceCgroups(w.masterCgroup);
  for (const [name, pids] of populated) {
    const instances = pids.filter((pid) => cmdline(pid) === "sleep 100000").length;
    expect(instances, `${name} runs ${instances} instances (pids ${pids}) ${context()}`).toBe(1);
    expect(pids.length, `${name} runs ${pids.length} processes ${context()}`).toBe(2);
  }
  const extra = [...populated.keys()].filter((n) => !shouldRun.has(n));
  const detail = extra.map((n) => `${n}: pids ${populated.get(n)!.map((p) => `${p}(${cmdline(p)}, ppid ${procStat(p)?.ppid})`).join(" ")}`).join("\n");
  expect([...populated.keys()].sort(), `populated cgroups\n${detail}\n${context()}`).toEqual([...shouldRun].sort());
}

function cmdline(pid: number): string {
  try { return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" "); } catch { return ""; }
}

/** No log file lost a line it once had: archives + live file still hold every marker seen before. */
function checkLogs(w: World, seen: Map<string, Set<string>>, context: () => string) {
  const appsDir = join(w.dir, "apps");
  if (!existsSync(appsDir)) return;
  for (const app of readdirSync(appsDir)) {
    const dir = join(appsDir, app);
    const live = join(dir, "out.log");
    if (!existsSync(live)) continue;
    const archives = readdirSync(dir).filter((n) => n.startsWith("out.log.")).sort().map((n) => join(dir, n));
    // Byte-exact without a separator: an archive may end mid-line, the live file holds the rest.
    const text = [...archives, live].map((f) => readFileSync(f, "utf8")).join("");
    const known = seen.get(live) ?? new Set<string>();
    for (const line of known) expect(text.includes(line), `${live} lost '${line}' ${context()}`).toBe(true);
    for (const m of text.matchAll(/^(start \S+ v\d+|fill \S+) \d+-\d+( \d+ -+)?$/gm)) known.add(m[0]);
    seen.set(live, known);
  }
}
