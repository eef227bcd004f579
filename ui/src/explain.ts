// Why a tick has its status, in one sentence, under either detector (SPEC §4 and §10): what a
// flow's page says of the tick under the cursor and of each tick in its table.

import type { Tick } from "./api";
import { percent, rate } from "./format";

/** The alarm levels in force for the flow (its effective settings). */
export interface Levels {
  softAlarmLevel: number;
  hardAlarmLevel: number;
}

/** Why `tick` is what it is; `g` is the granularity its bytes are shown per. */
export function explain(tick: Tick, levels: Levels | undefined, g: string): string {
  if (tick.status === "N_A") return "No expectation yet: fewer similar past days than minHistoryDays.";
  if (tick.lower != null && tick.outageBelow != null && tick.evidence != null) {
    const band = `the flow's band here: not OK below ${rate(tick.lower, g)}, OUTAGE below ${rate(tick.outageBelow, g)}`;
    const evidence = `evidence ${tick.evidence.toFixed(1)}`;
    if (tick.status === "OK") return `Adaptive: ${rate(tick.actual, g)} is within ${band}.`;
    if (tick.status === "WARNING") return `Adaptive: ${rate(tick.actual, g)} is below ${band}; ${evidence} (2 warns, 4 alarms).`;
    return tick.actual < tick.outageBelow
      ? `Adaptive: ${rate(tick.actual, g)} is below ${band}; ${evidence}.`
      : `Adaptive: an outage holds while its evidence lasts (${evidence}, ends below 2 or at the soft level).`;
  }
  const d = percent(tick.difference);
  if (!levels) return `Difference ${d}.`;
  const soft = percent(levels.softAlarmLevel);
  const hard = percent(levels.hardAlarmLevel);
  if (tick.status === "OK") return `Difference ${d} is at or above the soft level ${soft}.`;
  if (tick.status === "WARNING") return `Difference ${d} is below the soft level ${soft} once.`;
  return tick.difference != null && tick.difference < levels.hardAlarmLevel
    ? `Difference ${d} is below the hard level ${hard}.`
    : `Difference ${d} is below the soft level ${soft} for the second tick in a row.`;
}
