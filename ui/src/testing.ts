// What the unit tests share: a status change as the events API lists it.

import type { StatusEvent } from "./api";

/** A change of CZ/GSM input A from OK to OUTAGE, with `over` set. */
export const statusEvent = (id: string, over: Partial<StatusEvent> = {}): StatusEvent => ({
  id,
  country: "CZ",
  lobName: "GSM",
  kind: "input",
  flowName: "A",
  tickTime: "2026-12-02T10:00:00Z",
  time: "2026-12-02T11:02:00Z",
  previousStatus: "OK",
  newStatus: "OUTAGE",
  actual: 0,
  expected: 100,
  difference: 0,
  ...over,
});
