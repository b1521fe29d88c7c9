/**
 * The typed, validated configuration. Everything here is already checked and has its
 * defaults filled in; paths are absolute. Produced by config/load.ts.
 */

export interface MasterConfig {
  /** Absolute path of the master config file. */
  file: string;
  /** Absolute path of the folder holding service files. Key `config_directory` (default `./config.d`). */
  configDirectory: string;
  /** Key `sock_path` (default `./processmaster.sock`, relative to the master file's folder). */
  sockPath: string;
  sockOwner?: string;
  sockGroup?: string;
  /** Group whose members may read (status, logs) but not change anything. Key `sock_read_group`. */
  sockReadGroup?: string;
  /** Key `sock_mode`, parsed from `660`/`0660`/`0o660` (default 0o600). */
  sockMode: number;
  /** Key `state_file` (default `./processmaster.state.json`). */
  stateFile: string;
  /**
   * Key `log_directory`: services without a working_directory log to `<it>/<service>/stdout.log`.
   * Default `/var/log/processmaster` when the master file is under /etc, else `./logs`.
   */
  logDirectory: string;
  /**
   * Key `cgroup_root`; undefined means: the daemon's own cgroup (a `_daemon` leaf it starts in is
   * skipped), or the cgroup2 mount from /proc/self/mountinfo when that is the root cgroup
   * (src/cgroup/mount.ts, defaultCgroupRoot).
   */
  cgroupRoot?: string;
  /** Key `cgroup_name` (default `processmaster`). */
  cgroupName: string;
  /** Kernel form for cpu.max, e.g. "150000 100000" or "max 100000". */
  cgroupCpuMax?: string;
  /** Kernel form for memory.max: bytes as decimal text, or "max". */
  cgroupMemoryMax?: string;
  cgroupMemorySwapMax?: string;
}

export type RotationMode = "time" | "size";
export type RotationFrequency = "minutely" | "hourly" | "daily" | "weekly" | "monthly" | "none";
export type RestartPolicyKind = "never" | "always" | "on-failure";

export interface ProcessConfig {
  /** argv; a string command is split like a shell splits words (quotes, no expansion). */
  command: string[];
  /** Absolute; default: the master config file's folder. */
  workingDirectory: string;
  user?: string;
  group?: string;
  /** Resolved from `user`/`group` at load time. */
  uid?: number;
  gid?: number;
  environment: Record<string, string>;
  stopCommand?: string[];
  /** Signal name like "SIGTERM" (default). */
  stopSignal: string;
  /** Default 30000. */
  stopGraceMs: number;
  /** Cron pattern, 5 or 6 fields. */
  schedule?: string;
  scheduleTimezone?: string;
  /** Key `allow_writable_command`: run as root even if the command file is writable by others. */
  allowWritableCommand: boolean;
  /** When the service has ended (`exit_type`, default auto): see supervisor/exit-type.ts. */
  exitType: ExitType;
  /** Key `stop_mode` (default all): the stop signal to every process, or to the main one only. */
  stopMode: StopMode;
  /** Key `reload_signal`: sent to the main process by `pmctl reload`. */
  reloadSignal?: string;
  /** Key `reload_command`: run by `pmctl reload` instead of a signal. */
  reloadCommand?: string[];
  /** Key `limits`: rlimits set in the child before exec (prlimit form, by resource name). */
  limits: Partial<Record<RlimitName, RlimitValue>>;
  /** Key `umask`: file mode creation mask (permission bits). */
  umask?: number;
  /** Key `environment_file`: read at each start; `optional` for a name that began with `-`. */
  environmentFiles: { path: string; optional: boolean }[];
  /** Key `supplementary_groups`, resolved: gids added to the user's groups. */
  supplementaryGroups: number[];
  /** Key `runtime_directory`: absolute folders under /run, created before start, removed after stop. */
  runtimeDirectories: string[];
  /** Key `runtime_directory_mode` (default 0755). */
  runtimeDirectoryMode: number;
  /**
   * Key `start_seconds`: the run must stay up this long before a start counts as successful.
   * Default 1000 ms, or 0 when `readiness:` is set (then readiness decides).
   */
  startMs?: number;
  /** Key `inherit_environment`: start from the daemon's environment (default: a clean one, supervisor/service-env.ts). */
  inheritEnvironment?: boolean;
  /** Key `no_new_privileges`; unset: true for a service run as a non-root user (supervisor/exec.ts). */
  noNewPrivileges?: boolean;
}

export type ExitType = "auto" | "main" | "cgroup";
export type StopMode = "all" | "main";
export const RLIMIT_NAMES = ["nofile", "nproc", "core", "memlock", "stack", "cpu", "fsize", "as"] as const;
export type RlimitName = (typeof RLIMIT_NAMES)[number];
/** Each side a whole number (bytes, seconds or a count) or "unlimited". */
export interface RlimitValue { soft: number | "unlimited"; hard: number | "unlimited" }

export interface LogsConfig {
  /** Absolute paths. */
  stdout: string;
  stderr: string;
  stopCommandStdout?: string;
  stopCommandStderr?: string;
  hints: string[];
  rotationMode: RotationMode;
  rotationFrequency: RotationFrequency;
  /** Default 30 days. */
  rotationMaxAgeMs: number;
  /** Bytes; required when rotationMode is "size". */
  rotationSizeBytes?: number;
  /** Default 10. */
  rotationBackups: number;
}

export interface RestartPolicyConfig {
  policy: RestartPolicyKind;
  /** Default 1000. */
  restartBackoffMs: number;
  /** Exponential backoff cap; undefined = constant backoff. */
  restartBackoffMaxMs?: number;
  /** Default 3. */
  maxRestarts: number;
  /** Key `tolerance.duration` (default 1m). */
  toleranceWindowMs: number;
}

export interface ResourcesConfig {
  /** Kernel forms, ready to write. */
  cpuMax?: string;
  cpuWeight?: number;
  memoryMax?: string;
  memoryHigh?: string;
  memorySwapMax?: string;
  pidsMax?: string;
}

/** How a probe checks a service (readiness.md in the README): exactly one kind. */
export type ProbeCheck =
  | { kind: "tcp"; host: string; port: number }
  | { kind: "http"; url: string }
  | { kind: "unix"; path: string }
  | { kind: "exec"; command: string[] }
  | { kind: "log"; pattern: string }
  | { kind: "notify" };

export interface ReadinessConfig {
  check: ProbeCheck;
  /** Between attempts. Default 1000. */
  intervalMs: number;
  /** One attempt. Default 2000. */
  probeTimeoutMs: number;
  /** How long a run may take to become ready. Default 60000. */
  timeoutMs: number;
  /** Whether not being ready within `timeoutMs` fails the start (the run is stopped). Default true. */
  failOnTimeout: boolean;
}

export interface LivenessConfig {
  check: ProbeCheck;
  /** Between attempts. Default 10000. */
  intervalMs: number;
  probeTimeoutMs: number;
  /** Consecutive failures that make the run failed. Default 3. */
  failureThreshold: number;
  /** notify: WATCHDOG=1 must come this often (else counts as a failure). */
  watchdogMs?: number;
}

export type DependencyCondition = "started" | "ready" | "completed";

export interface ServiceConfig {
  name: string;
  /** Absolute path of the file that defined it. */
  file: string;
  enabled: boolean;
  process: ProcessConfig;
  logs: LogsConfig;
  restartPolicy: RestartPolicyConfig;
  resources: ResourcesConfig;
  /** Key `readiness:`; undefined: ready once started. */
  readiness?: ReadinessConfig;
  /** Key `liveness:`. */
  liveness?: LivenessConfig;
  /** Key `depends_on:`: service name → condition. */
  dependsOn?: Record<string, DependencyCondition>;
}

export interface Config {
  master: MasterConfig;
  services: Map<string, ServiceConfig>;
  /** Problems with individual service files: those services are left out, the rest load. */
  serviceErrors: ConfigProblem[];
}

export interface ConfigProblem {
  file: string;
  line?: number;
  key?: string;
  message: string;
}

/** One line an operator reads: `file:line: key: message`. */
export function formatProblem(p: ConfigProblem): string {
  const where = p.line !== undefined ? `${p.file}:${p.line}` : p.file;
  return `${where}: ${p.key ? `${p.key}: ` : ""}${p.message}`;
}
