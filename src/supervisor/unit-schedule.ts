/** Arming a unit's `schedule:` (boot, update): a cron timer that sends the unit `cronTick`. */
import { CronSchedule, ScheduleTimer, systemTimerHost } from "../schedule/cron.ts";
import type { Clock } from "../util/clock.ts";
import { errorMessage } from "../util/errors.ts";
import type { Supervisor, Unit } from "./supervisor.ts";

/** Stops the unit's timer and starts one for its schedule as configured now (none without one). */
export function armUnitSchedule(unit: Unit, clock: Clock, dispatch: Supervisor["dispatch"]): void {
  unit.schedule?.stop();
  unit.schedule = null;
  const { schedule, scheduleTimezone } = unit.config.process;
  if (!schedule) return;
  let cron: CronSchedule;
  // config validation rejects bad patterns; should one slip through, one service loses its schedule, not the daemon.
  try { cron = new CronSchedule(schedule, scheduleTimezone); } catch (e) { unit.log.error(`${errorMessage(e)}; the service will not run on a schedule`); return; }
  unit.schedule = new ScheduleTimer(cron, clock, systemTimerHost,
    () => dispatch(unit, { type: "cronTick" }),
    { alignToMinuteTick: true, onClockJump: (drift) => unit.log.warn(`wall clock jumped by ${Math.round(drift)}ms; schedule re-planned`) });
  unit.schedule.start();
}
