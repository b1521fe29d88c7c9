/**
 * The composition root: boot, the control socket's request handler, signals, reload, shutdown.
 * On SIGTERM/SIGINT the daemon exits and leaves every service running; the next daemon adopts
 * them from their cgroups. As PID 1 of a PID namespace (a container) it reaps orphans, and on
 * SIGTERM/SIGINT stops every service before it exits, since the namespace dies with it.
 */
import { CgroupTree, type LimitProblem } from "../cgroup/index.ts";
import { loadConfig } from "../config/load.ts";
import { formatProblem, type Config } from "../config/types.ts";
import { listenControl, type RequestContext } from "../control/server.ts";
import { MUTATING, type Request } from "../control/protocol.ts";
import { PidWatcher } from "../linux/pidwatch.ts";
import { OrphanReaper } from "../linux/reaper.ts";
import { LogRotator, LogSizes, withSharedLogFolders, type ManagedLog, type TickReport } from "../logs/index.ts";
import { Supervisor, type Unit } from "../supervisor/supervisor.ts";
import { StateStore } from "../supervisor/state-store.ts";
import { healthStatus, statusRow, unitStatus } from "../supervisor/status.ts";
import { GateRunner } from "../supervisor/start-gate.ts";
import { NotifyHub, setNotifyFolder } from "../supervisor/notify.ts";
import { Orchestrator, type StartResult } from "../supervisor/orchestrate.ts";
import { restartTargets, stopProgressLine } from "../supervisor/selection.ts";
import { controllersFor, masterLimitFiles, resourceLimitFiles } from "../supervisor/limits.ts";
import { msUntilMinuteTick, systemClock } from "../util/clock.ts";
import { PmError, errorMessage } from "../util/errors.ts";
import { logger } from "../util/log.ts";
import { serviceReloads, serviceSignals } from "./reload-requests.ts";
import { accessWarnings, authorize, describePeer, socketPermissions } from "./access.ts";
import { VERSION } from "../version.ts";
import { EXIT } from "../util/exit-codes.ts";
import { describeRequest, RefusalLog } from "./request-log.ts";
import { plural } from "../util/plural.ts";

const log = logger("daemon");

export interface DaemonHandle {
  supervisor: Supervisor;
  /** Stops serving and exits the process, leaving services running. */
  shutdown(reason: string): never;
}

/** Every log file the rotator looks after. */
function managedLogs(config: Config): ManagedLog[] {
  const files: ManagedLog[] = [];
  for (const svc of config.services.values()) {
    const paths = new Set([svc.logs.stdout, svc.logs.stderr, svc.logs.stopCommandStdout, svc.logs.stopCommandStderr]);
    const owner = { uid: svc.process.uid, gid: svc.process.gid };
    for (const path of paths) if (path) files.push({ app: svc.name, path, config: svc.logs, owner });
  }
  return files;
}

/**
 * The binary is built to tier up to the optimizing JITs 100× later (scripts/compile-flags.ts:
 * the daemon's code is mostly cold; the JITs' output cost ~10 MB of RSS). The boot is the
 * exception: the config parse and the start path run once per service, 5000 times in a row.
 * With the normal policy during boot and this one after it, a 5000-service boot took 3.7-3.8 s
 * of user CPU instead of 4.9-5.8 s (interleaved runs), for 0.4-4.8 MB more RssAnon (issue 15).
 */
export const BUILT_JIT_POLICY = 100;

/**
 * Parts the composition root otherwise makes itself. src/main.ts passes none; only a test entry
 * (test/helpers/daemon-entry.ts) hands in a PidWatcher it breaks on purpose.
 */
export interface DaemonParts { watcher?: PidWatcher }

/**
 * The daemon command: boots, then serves until a signal ends the process. A boot that fails
 * prints why on stderr and exits with EXIT.failed; a failed watcher start has touched nothing
 * by then (no cgroup, no socket, no service started).
 */
export async function serveDaemon(configPath: string, parts: DaemonParts = {}): Promise<never> {
  try {
    await startDaemon(configPath, parts);
  } catch (e) {
    process.stderr.write(`processmaster: ${errorMessage(e)}\n`);
    process.exit(EXIT.failed);
  }
  return new Promise<never>(() => {});
}

export async function startDaemon(configPath: string, parts: DaemonParts = {}): Promise<DaemonHandle> {
  Bun.unsafe.setJITPolicy(1); // until releaseBootLeftovers
  const config = loadConfig(configPath);
  const { master } = config;
  for (const p of config.serviceErrors) log.error(`service file skipped: ${formatProblem(p)}`);
  const watcher = parts.watcher ?? new PidWatcher();
  // Exit detection for processes that are not our children. Without it services would run
  // untracked, so a watcher that cannot start stops the boot before anything is made (no
  // cgroup, no socket), and one that dies ends the daemon (services keep running; the next
  // daemon adopts them). test/shipped-binary.test.ts checks both through a real daemon.
  await watcher.start((e) => {
    log.error(`${e.message}; exiting so that a new daemon adopts the services`);
    process.exit(EXIT.failed);
  });

  const cgroups = new CgroupTree({ root: master.cgroupRoot, name: master.cgroupName });
  cgroups.ensureMaster();

  const perms = socketPermissions(master);
  for (const w of accessWarnings(master)) log.warn(w);
  const clock = systemClock;
  const rotator = new LogRotator({ clock, log: logger("logs") });
  const store = new StateStore(master.stateFile, logger("state"));
  store.prepareFolder();
  // As PID 1 (a container, `unshare --pid`) every orphan in the namespace becomes our child.
  const asInit = process.pid === 1;
  if (asInit) new OrphanReaper((e) => log.error(`reaping orphans failed: ${errorMessage(e)}`)).start();
  // Readiness and health of each run (start-gate.ts); dependency order and outcomes (orchestrate.ts).
  setNotifyFolder(master.sockPath);
  const notify: NotifyHub = new NotifyHub({
    cgroups,
    deliver: (u, msg) => gates.notify(u, msg),
    managed: (u) => supervisor.units.get(u.name) === u,
    waitingForReady: (u): boolean => u.state.phase === "running" && gates.view(u).state?.active === true && !gates.view(u).state?.ready,
  });
  const gates: GateRunner = new GateRunner({ cgroups, clock, notify, fail: (u, reason) => supervisor.dispatch(u, { type: "fail", reason }) });
  let orchestrator: Orchestrator | null = null;
  const supervisor = new Supervisor({
    config, cgroups, watcher, store, clock,
    observer: (u, before, event) => gates.observe(u, before, event),
    holdStart: (u, go) => orchestrator?.holdStart(u, go) ?? false,
  });
  orchestrator = new Orchestrator(supervisor, gates);
  const orch = orchestrator;
  const refusals = new RefusalLog(log, () => clock.monotonicMs());

  const handle = async (req: Request, ctx: RequestContext): Promise<unknown> => {
    try { authorize(req, ctx.peer, master); }
    catch (e) { refusals.refused(req, ctx.peer, () => describePeer(ctx.peer)); throw e; }
    if (MUTATING.has(req.cmd)) log.info(`${describeRequest(req)} by ${describePeer(ctx.peer)}`);
    if (shuttingDown && MUTATING.has(req.cmd)) throw new PmError("SHUTTING_DOWN", "the daemon is shutting down (pmctl shutdown): it stops every service and exits; nothing else changes meanwhile");
    switch (req.cmd) {
      case "ping": return { pid: process.pid, version: VERSION };
      case "status": {
        const units = supervisor.resolve(req.names);
        // The table's rows alone (pmctl status without --json): no log sizes, no unused fields (issue 15).
        const apps = req.options?.view === "table" ? units.map((u) => statusRow(u, cgroups, clock.wallMs(), healthStatus(u, gates.view(u), orch.waitingFor(u)))) : statusesOf(units);
        return { apps, master: masterStatus() };
      }
      case "start": return runAndReport(req, ctx, (u) => orch.start(u));
      case "restart": return runAndReport(req, ctx, (u) => orch.restart(u), restartTargets);
      case "shutdown": {
        shuttingDown = true;
        const report = await runAndReport(req, ctx, () => supervisor.stopAllForExit((units) => orch.stop(units, false)));
        // The reply is written to the socket in this turn of the event loop (server.ts sends it
        // as soon as this promise settles, before any timer), so exit on the next one.
        setTimeout(() => exitAfterShutdown(), 0);
        return report;
      }
      case "stop": return runAndReport(req, ctx, async (u) => {
        const { warnings } = await orch.stop(u, req.options?.withDependents === true);
        for (const w of warnings) ctx.progress(`warning: ${w}`);
      });
      case "wait": {
        const results = await orch.wait(supervisor.resolve(req.names), req.options?.ready === true, req.options?.timeoutMs ?? 30_000);
        return { results, apps: statusesOf(supervisor.resolve(req.names)) };
      }
      case "update": return reload(ctx);
      case "reload": return serviceReloads(supervisor.resolve(req.names), cgroups);
      case "signal": return serviceSignals(supervisor.resolve(req.names), cgroups, req);
      case "rotate": {
        const names = req.names.length && !req.names.includes("all") ? supervisor.resolve(req.names).map((u) => u.name) : undefined;
        const report = await rotator.rotateNow(names);
        logRotation(report, "pmctl rotate");
        return report;
      }
    }
  };

  let masterLimitsNotInForce: LimitProblem[] = [];
  const masterStatus = () => ({ cgroup: cgroups.masterPath, limits_not_in_force: masterLimitsNotInForce });
  const statusesOf = (units: Unit[]) => {
    const sizes = new LogSizes(); // each log folder opened once for the whole reply (issue 15)
    try {
      return units.map((u) => ({ ...unitStatus(u, cgroups, clock.wallMs(), (p) => rotator.probeMode(p), (p) => sizes.size(p)), ...healthStatus(u, gates.view(u), orch.waitingFor(u)) }));
    } finally { sizes.close(); }
  };

  let shuttingDown = false;
  async function runAndReport(req: Request, ctx: RequestContext, act: (units: Unit[]) => Promise<StartResult[] | void>, select = (u: Unit[], _names: string[]) => u) {
    const units = select(supervisor.resolve(req.names), req.names);
    const started = clock.monotonicMs();
    const ticker = setInterval(() => {
      const waitedMs = clock.monotonicMs() - started;
      for (const u of units) {
        const line = stopProgressLine(u.name, u.state.phase, cgroups.pids(u.name).length, waitedMs, u.config.process.stopGraceMs);
        if (line) ctx.progress(line);
      }
    }, 1000);
    // Flush before answering: what the operator was told (stopped, last exit) survives a SIGKILL right after.
    let results: StartResult[] | void;
    try { results = await act(units); } finally { clearInterval(ticker); store.flush(); }
    return { apps: statusesOf(units), ...(results ? { results } : {}) };
  }

  let reloading: Promise<unknown> | null = null;
  async function reload(ctx?: RequestContext) {
    // Updates run one after another: each diffs against the config the previous one left.
    while (reloading) { ctx?.progress("an update is already running; waiting for it"); await reloading.catch(() => {}); }
    const work = (async () => {
      const next = loadConfig(configPath);
      enableNeededControllers(next); // before update: a new limit is written while applying it
      const report = await supervisor.update(next);
      rotator.setFiles(managedLogs(supervisor.config));
      rotator.probeModes();
      log.info(`update: added [${report.added}] removed [${report.removed}] changed [${report.changed}] limits/settings [${report.resourcesOnly}] unchanged ${report.unchanged.length}`);
      releaseBootLeftovers(); // the parse and the starts mapped code an idle daemon does not use
      return report;
    })();
    reloading = work;
    try { return await work; } finally { if (reloading === work) reloading = null; }
  }

  let warnedStartedInRoot = false;
  function enableNeededControllers(cfg: Config) {
    const wanted = new Set<string>();
    for (const svc of cfg.services.values()) for (const c of controllersFor(resourceLimitFiles(svc.resources))) wanted.add(c);
    cgroups.enableControllers([...wanted]);
    // Started in the unit's cgroup itself (systemd < 254 ignores DelegateSubgroup): said once.
    const warning = warnedStartedInRoot ? null : cgroups.startedInRootWarning();
    if (warning) { warnedStartedInRoot = true; log.warn(warning); }
  }

  // State writes are coalesced (state-store.ts); what a reply reports is on disk before it goes.
  const server = await listenControl(master.sockPath, perms, async (req, ctx) => {
    try { return await handle(req, ctx); } finally { store.flushPending(); }
  });
  try {
    cgroups.moveIntoDaemonLeaf(process.pid);
  } catch (e) {
    server.stop(true);
    throw e;
  }
  const masterFiles = masterLimitFiles(master);
  const masterControllers = controllersFor(masterFiles);
  cgroups.enableControllers(masterControllers, { for: "master" });
  const masterReport = cgroups.writeLimits(cgroups.masterPath, masterFiles);
  masterLimitsNotInForce = masterReport.notApplied;
  for (const p of masterReport.notApplied) log.warn(`master limit ${p.file}=${p.value} not in force: ${p.reason}`);
  enableNeededControllers(config);

  rotator.setFiles(managedLogs(config));
  // The boot walks to each log folder once, and lists the master cgroup once (absent cgroups cost no failed calls).
  withSharedLogFolders(() => cgroups.withListing(() => {
    cgroups.sweepHelperCgroups(); // a previous daemon that died mid-stop left its stop command's cgroup
    supervisor.boot();
  }));
  rotator.setFiles(managedLogs(supervisor.config));
  rotator.probeModes(); // says how the log files are rotated (collapse or copy+truncate)

  /** Says in the daemon log what a rotation did and what went wrong (each run is retried at the next tick). */
  function logRotation(report: TickReport, by: string) {
    for (const r of report.rotated) {
      if (r.bytesMoved > 0) log.info(`${r.app}: ${r.path}: ${r.bytesMoved} bytes rotated to ${r.archive ?? "nowhere (rotation_backups: 0)"} by ${r.mode} (${by})`);
    }
    for (const d of report.deleted) log.info(`${d.app}: deleted ${d.path} (${d.reason === "max-age" ? "older than rotation_max_age_ms" : "beyond rotation_backups"})`);
    for (const e of report.errors) log.warn(`log rotation of ${e.path} (${e.app}) failed, retrying next minute: ${e.message}`);
    for (const m of report.missing) if (m.firstTime) log.warn(`log file ${m.path} of ${m.app} is gone; it is recreated on the service's next start`);
    for (const m of report.replaced) if (m.firstTime) log.warn(`log file ${m.path} of ${m.app} is not the file the service writes to (replaced since its start); not rotated until the service's next start`);
  }

  // One timer for all log files, aligned to the minute: an idle daemon wakes once a minute.
  let rotationTimer: ReturnType<typeof setTimeout>;
  let ticking = false;
  const armRotation = () => {
    rotationTimer = setTimeout(() => {
      // A rotation of a huge file can outlast a minute (it runs in a worker): skip, not queue, the tick.
      if (!ticking) {
        ticking = true;
        rotator.tick()
          .then((report) => logRotation(report, "minute tick"))
          .catch((e) => log.error(`log rotation failed: ${errorMessage(e)}`))
          .finally(() => { ticking = false; });
      }
      armRotation();
    }, msUntilMinuteTick(clock.wallMs()));
  };
  armRotation();

  /** After `pmctl shutdown` stopped every service: the daemon goes too, exit 0. */
  const exitAfterShutdown = (): never => {
    log.info("pmctl shutdown: every service stopped; exiting");
    clearTimeout(rotationTimer);
    server.stop(true);
    supervisor.shutdown();
    process.exit(0);
  };
  const shutdown = (reason: string): never => {
    log.info(`${reason}: exiting; services keep running`);
    clearTimeout(rotationTimer);
    server.stop(true);
    supervisor.shutdown();
    process.exit(0);
  };
  // As PID 1, leaving services running is impossible: the kernel kills every process of the
  // namespace when PID 1 exits. So stop them all gracefully (stop_command/stop_signal, grace,
  // cgroup.kill), keeping operator intent so the next container start starts them again.
  let exitingAsInit = false;
  const exitAsInit = async (reason: string) => {
    if (exitingAsInit) { log.info(`${reason}: already stopping every service before exit`); return; }
    exitingAsInit = true;
    log.info(`${reason}: running as PID 1: stopping every service, then exiting`);
    clearTimeout(rotationTimer);
    server.stop(true);
    // With the socket closed, exits are reported by the PidWatcher's unref'd worker, which does
    // not keep the event loop alive: without this, Bun would exit mid-stop, state unwritten.
    setInterval(() => {}, 1000);
    try { await supervisor.stopAllForExit((units) => orch.stop(units, false)); } catch (e) { log.error(`stopping services before exit failed: ${errorMessage(e)}`); }
    supervisor.shutdown();
    log.info("every service stopped; exiting");
    process.exit(0);
  };
  process.on("SIGTERM", () => (asInit ? void exitAsInit("SIGTERM") : shutdown("SIGTERM")));
  process.on("SIGINT", () => (asInit ? void exitAsInit("SIGINT") : shutdown("SIGINT")));
  process.on("SIGHUP", () => {
    log.info("SIGHUP: re-reading the config");
    reload().catch((e) => log.error(`update failed, old config kept: ${errorMessage(e)}`));
  });

  releaseBootLeftovers();
  log.info(`processmaster ${VERSION} pid ${process.pid} serving ${master.sockPath}, cgroup ${cgroups.masterPath} (root: ${cgroups.rootChoice}), ${plural(config.services.size, "service")}, config ${configPath}`);
  return { supervisor, shutdown };
}

/**
 * What a boot (or an update) leaves behind goes as soon as it is over: the JIT policy is the
 * built one again, and its garbage (the parse of every service file) is collected and the freed
 * heap returned to the kernel (Bun.shrink). Measured (issue 15): RssAnon of 200 services
 * 22.6 -> 19.1 MB, of 1000 34.4 -> 32.4 MB. (Dropping the executable's clean pages with madvise
 * was tried and left out: each minute tick maps most of them again, so it only moved the figure
 * sampled right after boot.)
 */
function releaseBootLeftovers(): void {
  Bun.unsafe.setJITPolicy(BUILT_JIT_POLICY);
  Bun.gc(true);
  Bun.shrink();
}

export { PmError };
