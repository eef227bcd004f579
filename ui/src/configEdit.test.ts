import { describe, expect, it } from "vitest";
import type { EffectiveConfig } from "./api";
import { check, FIELD_NAMES, inheritedSettings, lineColumn, ownSettings, settingsText } from "./configEdit";

const effective: EffectiveConfig = {
  config: {
    granularity: "15m",
    softAlarmLevel: 0.7,
    hardAlarmLevel: 0.5,
    difference: "day",
    enabled: true,
    independentDays: [6],
    minimalExpectation: 1,
    lazyDayDecrease: 0.7,
    medianDays: 5,
    lookbackDays: 56,
    minHistoryDays: 3,
    graceSeconds: 120,
    detector: "seed",
    flappingChanges: 6,
  },
  sources: {
    granularity: "lob",
    softAlarmLevel: "own",
    hardAlarmLevel: "defaults",
    difference: "builtIn",
    enabled: "builtIn",
    independentDays: "own",
    minimalExpectation: "builtIn",
    lazyDayDecrease: "builtIn",
    medianDays: "builtIn",
    lookbackDays: "builtIn",
    minHistoryDays: "builtIn",
    graceSeconds: "input",
    detector: "builtIn",
    flappingChanges: "lob",
  },
};

const problems = (text: string, inherited = {}) => {
  const c = check(text, inherited);
  return c.ok ? [] : c.problems;
};

describe("a flow's own settings", () => {
  it("are the effective fields whose source is the flow", () => {
    expect(ownSettings(effective)).toEqual({ softAlarmLevel: 0.7, independentDays: [6] });
    expect(inheritedSettings(effective).hardAlarmLevel).toBe(0.5);
    expect(inheritedSettings(effective).softAlarmLevel).toBeUndefined();
  });
  it("are written in SPEC order and read back", () => {
    const text = settingsText({ independentDays: [6], softAlarmLevel: 0.7 });
    expect(text).toBe('{\n  "softAlarmLevel": 0.7,\n  "independentDays": [\n    6\n  ]\n}');
    expect(check(text)).toEqual({ ok: true, settings: { softAlarmLevel: 0.7, independentDays: [6] } });
    expect(FIELD_NAMES).toHaveLength(14);
  });
});

describe("validation", () => {
  it("takes the detectors of SPEC §10 and names a wrong one", () => {
    expect(problems('{"detector": "adaptive"}')).toEqual([]);
    expect(problems('{"detector": "magic"}')).toEqual([{ path: "detector", message: 'detector: must be "seed" or "adaptive"' }]);
  });
  it("takes a whole number of changes for flap damping, 0 turning it off", () => {
    expect(problems('{"flappingChanges": 6}')).toEqual([]);
    expect(problems('{"flappingChanges": 0}')).toEqual([]);
    for (const v of ["-1", "2.5", '"6"', "null"])
      expect(problems(`{"flappingChanges": ${v}}`)).toEqual([{ path: "flappingChanges", message: "flappingChanges: must be a whole number, 0 or more" }]);
    expect(inheritedSettings(effective).flappingChanges).toBe(6);
    expect(settingsText({ flappingChanges: 0, detector: "seed" })).toBe('{\n  "detector": "seed",\n  "flappingChanges": 0\n}');
  });
  it("places a JSON syntax error at its line and column", () => {
    const [p] = problems('{\n  "softAlarmLevel": 0.7,\n}');
    expect(p.path).toBe("");
    expect(p.message).toMatch(/^not valid JSON at line 3, column 1/);
    expect(lineColumn("ab\ncd", 4)).toEqual({ line: 2, column: 2 });
  });
  it("wants an object", () => {
    expect(problems("[1]")[0].message).toMatch(/must be a JSON object/);
    expect(problems("null")[0].message).toMatch(/must be a JSON object/);
  });
  it("names every unknown or wrongly typed field", () => {
    const ps = problems('{"softAlarmLevl": 0.7, "granularity": "7m", "enabled": "yes", "independentDays": [7], "medianDays": 2.5}');
    expect(ps.map((p) => p.path)).toEqual(["softAlarmLevl", "granularity", "enabled", "independentDays", "medianDays"]);
    expect(ps[0].message).toMatch(/unknown field "softAlarmLevl": expected one of granularity, softAlarmLevel/);
    expect(ps[1].message).toBe('granularity: invalid granularity "7m": must divide one day');
  });
  it("takes SPEC §5's granularity forms", () => {
    for (const g of ['"30s"', '"15m"', '"2h"', '"1d"', "20", '"20"']) expect(problems(`{"granularity": ${g}}`)).toEqual([]);
    expect(problems('{"granularity": "1w"}')[0].path).toBe("granularity");
  });
  it("keeps hard at or below soft, counting the inherited level", () => {
    expect(problems('{"hardAlarmLevel": 0.9, "softAlarmLevel": 0.8}')[0].message).toMatch(/0 < hard <= soft/);
    expect(problems('{"hardAlarmLevel": 0.75}', { softAlarmLevel: 0.7 })[0].path).toBe("hardAlarmLevel");
    expect(problems('{"softAlarmLevel": 0.4}', { hardAlarmLevel: 0.5 })[0].path).toBe("softAlarmLevel");
    expect(problems('{"hardAlarmLevel": 0.7}', { softAlarmLevel: 0.7 })).toEqual([]);
    expect(problems('{"hardAlarmLevel": 0}')[0].message).toMatch(/greater than 0/);
  });
  it("keeps minHistoryDays at or below medianDays, counting the inherited one", () => {
    expect(problems('{"minHistoryDays": 30}', { medianDays: 5 })[0].message).toBe(
      "minHistoryDays (30) must not exceed medianDays (5): every tick would be N_A",
    );
    expect(problems('{"medianDays": 2}', { minHistoryDays: 3 })[0].path).toBe("medianDays");
    expect(problems('{"medianDays": 30, "minHistoryDays": 30}', { medianDays: 5 })).toEqual([]);
    expect(problems('{"minHistoryDays": 0}')[0].message).toMatch(/1 or more/);
    expect(problems('{"minimalExpectation": 0}')[0].path).toBe("minimalExpectation");
  });
});
