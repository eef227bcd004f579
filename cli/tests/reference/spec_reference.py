#!/usr/bin/env python3
"""Independent reference implementation ("oracle") of `flowwatch replay`.

Written only from SPEC.md sections 1-6 and the `flowwatch replay` part of section 7.
Python 3.11, standard library only.

Usage:
    python3 spec_reference.py --data traffic.csv --config config.json \
        --from YYYY-MM-DD --to YYYY-MM-DD --out ticks.csv

Interpretation decisions (where the SPEC is ambiguous or silent; the most literal
reading was chosen):

 1. `expected` column = expected(i) of SPEC 3, i.e. expected_raw(i) * f(D,i) * lazy,
    WITHOUT the minimalExpectation floor (the floored value e^ is only used inside the
    difference formulas and is not written).
 2. `day_average` column = dayAverage(D) of SPEC 3 for the tick's local day D: the mean of
    expected_raw(j) * lazy over ALL existing ticks j of D (earlier and later ticks of the
    same day alike) that have a valid expectation (i.e. are not N_A). It is computed as the
    arithmetic mean of the products (each product first, then sum in tick order, then divide).
    dayAverage does not contain the duration factor f (per the SPEC formula).
 3. `day_difference` column = the value of dayDifference as defined in SPEC 4, i.e. when
    dayAverage <= 0 it holds tickDifference. `tick_difference` = a / e^. `difference` = the
    value chosen by the flow's `difference` mode.
 4. For an N_A tick all of expected, day_average, tick_difference, day_difference,
    difference are empty; `actual` is still written.
 5. Rates are computed literally as a(D', i) / f(D', i) with f = d / g as a float; expected
    as (expected_raw * f) * lazy; dayAverage as sum(expected_raw(j) * lazy) / count.
    Small floating point differences versus other evaluation orders are expected, so the
    comparison with another implementation should use a relative tolerance.
 6. The history day set of D is chosen per DAY (not per tick): walk D-1 .. D-lookbackDays,
    keep days with the same profile, not in the country's lazyDays list and not before the
    first day, stop as soon as medianDays days are kept. Days after the flow's first day that
    have no records are ordinary history days (their ticks have a = 0). A kept history day
    that lacks tick i (d = 0) simply gives no rate for tick i; it still counts towards
    medianDays.
 7. A day that is both a holiday and in lazyDays: its profile uses e = 6 (holiday); lazy = 1
    for it when it is the evaluated day (SPEC: "and not a holiday"); as a history candidate it
    is excluded because it IS in the lazy-day list (the history rule has no holiday
    exception).
 8. If there are zero rates for a tick it is N_A even when minHistoryDays <= 0 (the median of
    nothing is undefined).
 9. p (previous tick's difference) is taken from the flow's previous existing tick in time,
    which can be on the previous local day. Ticks before the flow's first day do not exist,
    so the very first evaluated tick has p = +infinity. Ticks before --from are evaluated
    (never written) so history and p are correct at --from.
10. If e^ = max(expected, minimalExpectation) is 0 (only possible with
    minimalExpectation = 0): tickDifference = +infinity when a > 0, and 1.0 when a = 0
    (nothing expected, nothing came). Infinite values would be written as `inf`.
11. Days evaluated for a flow: from its first day up to the day before --to. Only ticks of
    local days D with from <= D < to are written (for ticks of a day D, "start lies in
    [from, to)" is equivalent to from <= D < to). If --from >= --to, only the header is
    written. Records on local days >= --to are ignored (they can't be history of any
    written tick). The first day is computed from ALL records of the flow in the file.
12. The mapping local->UTC: the UTC instant is computed with both fold values and validated
    by a round trip; if one or more candidates are valid the earliest is used; if none (gap)
    the transition instant is found by bisection on whole seconds between the two
    candidate instants (the smallest instant whose local wall clock is >= the local time).
13. Record times may carry fractional seconds; since all tick boundaries are whole seconds,
    the time is floored to a whole second without changing tick membership. A record belongs
    to the tick [utc(start), utc(end)) with d > 0 that contains it.
14. Traffic CSV: the header must be exactly `time,country,lob,kind,flow,bytes` (a UTF-8 BOM
    is tolerated); otherwise the program exits with status 2. Fields are taken verbatim (no
    trimming). A line is refused (counted, reported on stderr with its line number and
    reason) when: it has not exactly 6 fields; time is not RFC 3339 (`T`/`t` separator,
    optional fraction, `Z`/`z` or +hh:mm/-hh:mm offset; leap second 60 refused); country,
    lob or flow is empty; kind is not exactly `input` or `forward`; bytes is not a
    non-negative decimal integer (digits only) <= 2^63-1; or the country has no time zone
    (not in the document and not one of CZ, DE, AT, NL). Completely empty lines are ignored
    and not counted. The refused count is printed to stderr as `refused lines: N` (plus the
    count of accepted lines).
15. A forward's input is the part of its name before the FIRST ':'. A forward whose name has
    no ':' is accepted but has no input (no input config is inherited).
16. Configuration inheritance, field by field: built-in defaults <- `defaults` <- LoB `config`
    <- (forward only) `config` of input INPUT of the same country and LoB if that input is in
    the document <- the flow's own `config`. This includes `enabled`: a forward inherits
    `enabled: false` from its input unless it sets `enabled` itself.
17. "A LoB with enabled: false" = the LoB's `config.enabled` is false; then every flow of that
    LoB is disabled, even if the flow's own config (or its input's) says `enabled: true`.
    A LoB object has only the keys `config`, `inputs`, `forwards`; anything else (also an
    `enabled` directly on the LoB object) is an unknown field and rejected.
18. Config validation (document rejected, exit status 2, message naming the field path such
    as `countries.CZ.lobs.SMS.config.granularity`): unknown fields at any level; wrong JSON
    types; granularity not "<positive int><s|m|h|d>" string or positive JSON integer (minutes,
    booleans and non-integral numbers refused) or not dividing 86400; levels not
    0 < hard <= soft, checked on the EFFECTIVE (inherited) config of `defaults`, every LoB,
    and every flow in the document; unknown time zone; invalid dates in holidays/lazyDays;
    `difference` not "day"/"tick"; independentDays entries not integers 0..6; medianDays and
    lookbackDays not integers >= 1; minHistoryDays and graceSeconds not integers >= 0;
    minimalExpectation and lazyDayDecrease not finite numbers >= 0; a country in the document
    without `timezone` whose code is not CZ/DE/AT/NL. graceSeconds is validated and ignored
    (live only).
19. A country present only in the data (CZ/DE/AT/NL) uses the default time zone and has no
    holidays and no lazy days. A flow present only in the data inherits built-in <- defaults
    <- its LoB's config (if that LoB is in the document) <- its input's config (forward).
20. Flows in the document without any record have no first day and produce no ticks.
21. Numbers are written with Python's shortest round-trip repr; if that uses exponent
    notation it is rewritten as a plain decimal with the same digits. `actual` is an integer.
    Times are written as YYYY-MM-DDTHH:MM:SSZ. Output is sorted by (country, lob, kind, flow)
    compared as strings, then by tick time. The CSV uses `\\n` line endings and minimal
    quoting.
22. --from / --to must be YYYY-MM-DD dates; they are interpreted as local dates of each
    flow's own country.
"""

import argparse
import bisect
import csv
import datetime as dt
import json
import math
import re
import sys
from decimal import Decimal
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc
EPOCH_NAIVE = dt.datetime(1970, 1, 1)
ONE_DAY = dt.timedelta(days=1)
DAY_SECONDS = 86400

DEFAULT_TIMEZONES = {
    "CZ": "Europe/Prague",
    "DE": "Europe/Berlin",
    "AT": "Europe/Vienna",
    "NL": "Europe/Amsterdam",
}

BUILTIN_DEFAULTS = {
    "granularity": 3600,
    "softAlarmLevel": 0.8,
    "hardAlarmLevel": 0.5,
    "difference": "day",
    "enabled": True,
    "independentDays": [],
    "minimalExpectation": 1.0,
    "lazyDayDecrease": 0.7,
    "medianDays": 5,
    "lookbackDays": 56,
    "minHistoryDays": 3,
    "graceSeconds": 120,
}

TRAFFIC_HEADER = ["time", "country", "lob", "kind", "flow", "bytes"]
TICK_HEADER = [
    "country", "lob", "kind", "flow", "tick_start", "tick_end", "actual", "expected",
    "day_average", "tick_difference", "day_difference", "difference", "status",
]

MAX_BYTES = 2 ** 63 - 1


class ConfigError(Exception):
    pass


# ----------------------------------------------------------------------------------------
# Time helpers
# ----------------------------------------------------------------------------------------

def naive_to_epoch(naive_utc):
    """Seconds since the epoch of a naive datetime that represents UTC (whole seconds)."""
    return (naive_utc - EPOCH_NAIVE) // dt.timedelta(seconds=1)


def epoch_to_local_naive(t, tz):
    return dt.datetime.fromtimestamp(t, tz).replace(tzinfo=None, fold=0)


def local_to_utc(local_naive, tz):
    """SPEC 2: local wall-clock time -> UTC instant (epoch seconds).

    exists once -> that instant; exists twice (fold) -> the earlier instant;
    does not exist (gap) -> the instant at which the gap begins (transition instant).
    """
    candidates = []
    for fold in (0, 1):
        offset = local_naive.replace(tzinfo=tz, fold=fold).utcoffset()
        utc_naive = local_naive - offset
        t = naive_to_epoch(utc_naive)
        # round trip: does this instant really show local_naive on the wall clock?
        if epoch_to_local_naive(t, tz) == local_naive:
            candidates.append(t)
    if candidates:
        return min(candidates)
    # Gap: local_naive is skipped.  Find the transition instant = the smallest instant
    # whose wall clock is >= local_naive, between the two candidate instants.
    t0 = naive_to_epoch(local_naive - local_naive.replace(tzinfo=tz, fold=0).utcoffset())
    t1 = naive_to_epoch(local_naive - local_naive.replace(tzinfo=tz, fold=1).utcoffset())
    lo, hi = min(t0, t1), max(t0, t1)
    assert epoch_to_local_naive(lo, tz) < local_naive <= epoch_to_local_naive(hi, tz), \
        (local_naive, tz)
    # invariant: local(lo) < local_naive <= local(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if epoch_to_local_naive(mid, tz) >= local_naive:
            hi = mid
        else:
            lo = mid
    return hi


class DayTicks:
    """Tick structure of one local day for one (time zone, granularity)."""

    __slots__ = ("bounds", "exists", "factor")

    def __init__(self, bounds, g):
        self.bounds = bounds  # n+1 epoch seconds: utc(start of tick i), last = utc(next midnight)
        n = len(bounds) - 1
        self.exists = [bounds[i + 1] > bounds[i] for i in range(n)]
        self.factor = [(bounds[i + 1] - bounds[i]) / g for i in range(n)]  # f = d / g


_day_ticks_cache = {}


def day_ticks(tz, g, day):
    key = (tz.key, g, day)
    r = _day_ticks_cache.get(key)
    if r is None:
        n = DAY_SECONDS // g
        midnight = dt.datetime(day.year, day.month, day.day)
        bounds = []
        for i in range(n):
            bounds.append(local_to_utc(midnight + dt.timedelta(seconds=i * g), tz))
        next_midnight = midnight + ONE_DAY
        bounds.append(local_to_utc(next_midnight, tz))
        r = DayTicks(bounds, g)
        _day_ticks_cache[key] = r
    return r


# ----------------------------------------------------------------------------------------
# Configuration document (SPEC 5)
# ----------------------------------------------------------------------------------------

GRANULARITY_RE = re.compile(r"^([0-9]+)(s|m|h|d)$")
DATE_RE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v):
    return (is_int(v) or isinstance(v, float)) and math.isfinite(v)


def parse_date(s):
    if not isinstance(s, str):
        return None
    m = DATE_RE.match(s)
    if not m:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def parse_granularity(v, path):
    if is_int(v):
        seconds = v * 60
    elif isinstance(v, str):
        m = GRANULARITY_RE.match(v)
        if not m:
            raise ConfigError(f"{path}: invalid granularity {v!r}")
        seconds = int(m.group(1)) * UNIT_SECONDS[m.group(2)]
    else:
        raise ConfigError(f"{path}: granularity must be a string like \"15m\" or an integer "
                          f"number of minutes")
    if seconds <= 0 or DAY_SECONDS % seconds != 0:
        raise ConfigError(f"{path}: granularity {v!r} does not divide a day")
    return seconds


def parse_flow_config(obj, path):
    """Validate one `config` object; returns dict with only the fields it sets."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise ConfigError(f"{path}: must be an object")
    out = {}
    for k, v in obj.items():
        p = f"{path}.{k}"
        if k == "granularity":
            out[k] = parse_granularity(v, p)
        elif k in ("softAlarmLevel", "hardAlarmLevel"):
            if not is_number(v):
                raise ConfigError(f"{p}: must be a number")
            out[k] = float(v)
        elif k == "difference":
            if v not in ("day", "tick"):
                raise ConfigError(f"{p}: must be \"day\" or \"tick\"")
            out[k] = v
        elif k == "enabled":
            if not isinstance(v, bool):
                raise ConfigError(f"{p}: must be a boolean")
            out[k] = v
        elif k == "independentDays":
            if not isinstance(v, list):
                raise ConfigError(f"{p}: must be a list of weekdays 0..6")
            for j, x in enumerate(v):
                if not is_int(x) or not 0 <= x <= 6:
                    raise ConfigError(f"{p}[{j}]: must be an integer 0..6")
            out[k] = list(v)
        elif k in ("minimalExpectation", "lazyDayDecrease"):
            if not is_number(v) or v < 0:
                raise ConfigError(f"{p}: must be a non-negative number")
            out[k] = float(v)
        elif k in ("medianDays", "lookbackDays"):
            if not is_int(v) or v < 1:
                raise ConfigError(f"{p}: must be an integer >= 1")
            out[k] = v
        elif k in ("minHistoryDays", "graceSeconds"):
            if not is_int(v) or v < 0:
                raise ConfigError(f"{p}: must be an integer >= 0")
            out[k] = v
        else:
            raise ConfigError(f"{p}: unknown field")
    return out


def merge(base, over):
    r = dict(base)
    r.update(over)
    return r


def check_levels(cfg, path):
    hard, soft = cfg["hardAlarmLevel"], cfg["softAlarmLevel"]
    if not (0 < hard <= soft):
        raise ConfigError(f"{path}: alarm levels must satisfy 0 < hardAlarmLevel <= "
                          f"softAlarmLevel (hard={hard}, soft={soft})")


def check_keys(obj, allowed, path):
    if not isinstance(obj, dict):
        raise ConfigError(f"{path or '<document>'}: must be an object")
    for k in obj:
        if k not in allowed:
            raise ConfigError(f"{path + '.' if path else ''}{k}: unknown field")


class Country:
    def __init__(self, code, tz, holidays, lazy_days):
        self.code = code
        self.tz = tz
        self.holidays = holidays
        self.lazy_days = lazy_days


class Lob:
    def __init__(self, config, disabled):
        self.config = config      # the LoB's own `config` fields (validated)
        self.disabled = disabled  # LoB config.enabled == false
        self.inputs = {}          # name -> own config dict
        self.forwards = {}        # name -> own config dict


class Config:
    def __init__(self, doc):
        check_keys(doc, {"defaults", "countries"}, "")
        self.defaults = parse_flow_config(doc.get("defaults"), "defaults")
        self.default_eff = merge(BUILTIN_DEFAULTS, self.defaults)
        check_levels(self.default_eff, "defaults")
        self.countries = {}
        self.lobs = {}  # (country, lob) -> Lob
        countries = doc.get("countries", {})
        if countries is None:
            countries = {}
        if not isinstance(countries, dict):
            raise ConfigError("countries: must be an object")
        for code, c in countries.items():
            cp = f"countries.{code}"
            check_keys(c, {"timezone", "holidays", "lazyDays", "lobs"}, cp)
            tzname = c.get("timezone")
            if tzname is None:
                tzname = DEFAULT_TIMEZONES.get(code)
                if tzname is None:
                    raise ConfigError(f"{cp}.timezone: missing, and {code} has no default "
                                      f"time zone")
            tz = load_tz(tzname, f"{cp}.timezone")
            holidays = self._dates(c.get("holidays", []), f"{cp}.holidays")
            lazy = self._dates(c.get("lazyDays", []), f"{cp}.lazyDays")
            self.countries[code] = Country(code, tz, holidays, lazy)
            lobs = c.get("lobs", {})
            if lobs is None:
                lobs = {}
            if not isinstance(lobs, dict):
                raise ConfigError(f"{cp}.lobs: must be an object")
            for lob_name, l in lobs.items():
                lp = f"{cp}.lobs.{lob_name}"
                check_keys(l, {"config", "inputs", "forwards"}, lp)
                lcfg = parse_flow_config(l.get("config"), f"{lp}.config")
                lob = Lob(lcfg, lcfg.get("enabled") is False)
                check_levels(merge(self.default_eff, lcfg), f"{lp}.config")
                for section, target in (("inputs", lob.inputs), ("forwards", lob.forwards)):
                    flows = l.get(section, {})
                    if flows is None:
                        flows = {}
                    if not isinstance(flows, dict):
                        raise ConfigError(f"{lp}.{section}: must be an object")
                    for fname, fobj in flows.items():
                        fp = f"{lp}.{section}.{fname}"
                        if fobj is None:
                            fobj = {}
                        check_keys(fobj, {"config"}, fp)
                        target[fname] = parse_flow_config(fobj.get("config"), f"{fp}.config")
                self.lobs[(code, lob_name)] = lob
                # levels on the effective config of every flow in the document
                for fname in lob.inputs:
                    check_levels(self.effective(code, lob_name, "input", fname),
                                 f"{lp}.inputs.{fname}.config")
                for fname in lob.forwards:
                    check_levels(self.effective(code, lob_name, "forward", fname),
                                 f"{lp}.forwards.{fname}.config")

    @staticmethod
    def _dates(v, path):
        if not isinstance(v, list):
            raise ConfigError(f"{path}: must be a list of dates")
        out = set()
        for j, s in enumerate(v):
            d = parse_date(s)
            if d is None:
                raise ConfigError(f"{path}[{j}]: invalid date {s!r}")
            out.add(d)
        return out

    def country(self, code):
        """Country info, or None if the country has no time zone."""
        c = self.countries.get(code)
        if c is not None:
            return c
        tzname = DEFAULT_TIMEZONES.get(code)
        if tzname is None:
            return None
        c = Country(code, ZoneInfo(tzname), set(), set())
        self.countries[code] = c
        return c

    def effective(self, country, lob_name, kind, name):
        """Effective configuration of a flow (SPEC 5 inheritance)."""
        cfg = dict(self.default_eff)
        lob = self.lobs.get((country, lob_name))
        if lob is not None:
            cfg = merge(cfg, lob.config)
            if kind == "forward":
                if ":" in name:
                    input_name = name.split(":", 1)[0]
                    if input_name in lob.inputs:
                        cfg = merge(cfg, lob.inputs[input_name])
                cfg = merge(cfg, lob.forwards.get(name, {}))
            else:
                cfg = merge(cfg, lob.inputs.get(name, {}))
            if lob.disabled:
                cfg["enabled"] = False
        return cfg


def load_tz(name, path):
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}: must be an IANA time zone name")
    try:
        return ZoneInfo(name)
    except Exception:
        raise ConfigError(f"{path}: unknown time zone {name!r}")


# ----------------------------------------------------------------------------------------
# Traffic CSV (SPEC 6)
# ----------------------------------------------------------------------------------------

TIME_RE = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$")
BYTES_RE = re.compile(r"^[0-9]+$")


def parse_rfc3339(s):
    """Epoch seconds (floored to a whole second) or raises ValueError."""
    m = TIME_RE.match(s)
    if not m:
        raise ValueError(f"time {s!r} is not RFC 3339")
    y, mo, d, hh, mi, ss = (int(m.group(k)) for k in range(1, 7))
    if hh > 23 or mi > 59 or ss > 59:
        raise ValueError(f"time {s!r} has an invalid time of day")
    try:
        days = dt.date(y, mo, d).toordinal() - dt.date(1970, 1, 1).toordinal()
    except ValueError:
        raise ValueError(f"time {s!r} has an invalid date")
    off = m.group(8)
    if off in ("Z", "z"):
        off_s = 0
    else:
        oh, om = int(off[1:3]), int(off[4:6])
        if oh > 23 or om > 59:
            raise ValueError(f"time {s!r} has an invalid offset")
        off_s = (oh * 3600 + om * 60) * (1 if off[0] == "+" else -1)
    # a fractional part is dropped: floor to the whole second (decision 13)
    return days * DAY_SECONDS + hh * 3600 + mi * 60 + ss - off_s


def read_traffic(path, config):
    """Returns dict flow_key -> list of (epoch_seconds, bytes); prints refusals to stderr."""
    flows = {}
    accepted = 0
    refused = 0
    with open(path, "r", encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise SystemExit_("traffic CSV is empty (header required)")
        if header != TRAFFIC_HEADER:
            raise SystemExit_(f"traffic CSV line 1: header must be {','.join(TRAFFIC_HEADER)}")
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                refused += 1
                report(reader.line_num, f"CSV error: {e}")
                continue
            line = reader.line_num
            if len(row) == 0:
                continue  # empty line (decision 14)
            if len(row) != 6:
                refused += 1
                report(line, f"expected 6 fields, got {len(row)}")
                continue
            time_s, country, lob, kind, name, bytes_s = row
            try:
                t = parse_rfc3339(time_s)
            except ValueError as e:
                refused += 1
                report(line, str(e))
                continue
            if not country or not lob or not name:
                refused += 1
                report(line, "empty country, lob or flow")
                continue
            if kind not in ("input", "forward"):
                refused += 1
                report(line, f"kind {kind!r} is not input or forward")
                continue
            if not BYTES_RE.match(bytes_s) or int(bytes_s) > MAX_BYTES:
                refused += 1
                report(line, f"bytes {bytes_s!r} is not a non-negative integer")
                continue
            if config.country(country) is None:
                refused += 1
                report(line, f"country {country!r} has no time zone")
                continue
            key = (country, lob, kind, name)
            lst = flows.get(key)
            if lst is None:
                lst = flows[key] = []
            lst.append((t, int(bytes_s)))
            accepted += 1
    print(f"accepted lines: {accepted}", file=sys.stderr)
    print(f"refused lines: {refused}", file=sys.stderr)
    return flows


_reported = 0


def report(line, msg):
    global _reported
    _reported += 1
    if _reported <= 50:
        print(f"traffic line {line}: {msg}", file=sys.stderr)
    elif _reported == 51:
        print("(further refused lines not shown)", file=sys.stderr)


class SystemExit_(Exception):
    pass


# ----------------------------------------------------------------------------------------
# Detection (SPEC 3 and 4)
# ----------------------------------------------------------------------------------------

def median(values):
    s = sorted(values)
    n = len(s)
    if n % 2 == 1:
        return s[n // 2]
    return (s[n // 2 - 1] + s[n // 2]) / 2


def profile(e, independent_days):
    if e in independent_days:
        return "day-" + str(e)
    if e in (5, 6):
        return "weekend"
    return "workday"


def evaluate_flow(key, cfg, country, records, from_d, to_d):
    """Returns the list of output rows (for ticks of days in [from_d, to_d))."""
    tz = country.tz
    g = cfg["granularity"]
    n = DAY_SECONDS // g
    holidays = country.holidays
    lazy_days = country.lazy_days
    independent = set(cfg["independentDays"])

    # first day = local day of the earliest record (all records in the file)
    t_min = min(t for t, _ in records)
    first_day = dt.datetime.fromtimestamp(t_min, tz).date()

    # actual per (day, tick): a = sum of bytes with utc(start) <= time < utc(end)
    actual = {}  # day -> list of n ints
    for t, b in records:
        day = dt.datetime.fromtimestamp(t, tz).date()
        while True:
            dtk = day_ticks(tz, g, day)
            if t < dtk.bounds[0]:
                day -= ONE_DAY
            elif t >= dtk.bounds[-1]:
                day += ONE_DAY
            else:
                break
        if day >= to_d:
            continue
        i = bisect.bisect_right(dtk.bounds, t) - 1  # largest i with bounds[i] <= t
        assert dtk.exists[i] and dtk.bounds[i] <= t < dtk.bounds[i + 1]
        lst = actual.get(day)
        if lst is None:
            lst = actual[day] = [0] * n
        lst[i] += b

    zeros = [0] * n

    def actual_of(day):
        return actual.get(day, zeros)

    def e_of(day):
        return 6 if day in holidays else day.weekday()

    soft = cfg["softAlarmLevel"]
    hard = cfg["hardAlarmLevel"]
    min_exp = cfg["minimalExpectation"]
    mode = cfg["difference"]
    median_days = cfg["medianDays"]
    lookback = cfg["lookbackDays"]
    min_hist = cfg["minHistoryDays"]

    rows = []
    prev_diff = None  # difference of the previous existing tick; None = N_A or absent
    day = first_day
    while day < to_d:
        ticks = day_ticks(tz, g, day)
        a_day = actual_of(day)
        prof = profile(e_of(day), independent)

        # history of D
        history = []
        for k in range(1, lookback + 1):
            hd = day - dt.timedelta(days=k)
            if hd < first_day:
                break
            if profile(e_of(hd), independent) == prof and hd not in lazy_days:
                history.append(hd)
                if len(history) == median_days:
                    break
        hist_data = [(day_ticks(tz, g, hd), actual_of(hd)) for hd in history]

        lazy = cfg["lazyDayDecrease"] if (day in lazy_days and day not in holidays) else 1.0

        # expected_raw for each tick of D
        raw = [None] * n
        for i in range(n):
            if not ticks.exists[i]:
                continue
            rates = []
            for hticks, hact in hist_data:
                if hticks.exists[i]:
                    rates.append(hact[i] / hticks.factor[i])
            if len(rates) < min_hist or len(rates) == 0:
                continue
            raw[i] = median(rates)

        # dayAverage(D)
        products = [raw[j] * lazy for j in range(n) if ticks.exists[j] and raw[j] is not None]
        day_average = (sum(products) / len(products)) if products else None

        write = day >= from_d
        for i in range(n):
            if not ticks.exists[i]:
                continue  # d = 0: the tick does not exist
            a = a_day[i]
            start, end = ticks.bounds[i], ticks.bounds[i + 1]
            if raw[i] is None:
                if write:
                    rows.append([*key, fmt_time(start), fmt_time(end), str(a),
                                 "", "", "", "", "", "N_A"])
                prev_diff = None
                continue
            f = ticks.factor[i]
            expected = raw[i] * f * lazy
            e_hat = max(expected, min_exp)
            if e_hat > 0:
                tick_diff = a / e_hat
            else:
                tick_diff = math.inf if a > 0 else 1.0  # decision 10
            if day_average > 0:
                day_diff = 1 + (a - e_hat) / day_average
            else:
                day_diff = tick_diff
            if mode == "tick":
                difference = tick_diff
            else:
                if a < 0.1 * e_hat:
                    difference = tick_diff
                else:
                    difference = max(tick_diff, day_diff)
            p = math.inf if prev_diff is None else prev_diff
            if difference >= soft:
                status = "OK"
            elif difference < hard:
                status = "OUTAGE"
            else:
                status = "OUTAGE" if p < soft else "WARNING"
            if write:
                rows.append([*key, fmt_time(start), fmt_time(end), str(a),
                             fmt_num(expected), fmt_num(day_average), fmt_num(tick_diff),
                             fmt_num(day_diff), fmt_num(difference), status])
            prev_diff = difference
        day += ONE_DAY
    return rows


# ----------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------

def fmt_time(t):
    return dt.datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_num(x):
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    r = repr(x)
    if "e" in r or "E" in r:
        r = format(Decimal(r), "f")
    return r


# ----------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description="reference implementation of flowwatch replay")
    ap.add_argument("--data", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--from", dest="from_", required=True)
    ap.add_argument("--to", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    from_d = parse_date(args.from_)
    to_d = parse_date(args.to)
    if from_d is None:
        print(f"--from: invalid date {args.from_!r}", file=sys.stderr)
        return 2
    if to_d is None:
        print(f"--to: invalid date {args.to!r}", file=sys.stderr)
        return 2

    try:
        with open(args.config, "r", encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError) as e:
        print(f"config {args.config}: {e}", file=sys.stderr)
        return 2
    try:
        config = Config(doc)
    except ConfigError as e:
        print(f"config {args.config}: {e}", file=sys.stderr)
        return 2

    try:
        flows = read_traffic(args.data, config)
    except SystemExit_ as e:
        print(str(e), file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError) as e:
        print(f"traffic {args.data}: {e}", file=sys.stderr)
        return 2

    all_rows = []
    for key in sorted(flows):
        country, lob, kind, name = key
        cfg = config.effective(country, lob, kind, name)
        if not cfg["enabled"]:
            continue
        all_rows.extend(evaluate_flow(key, cfg, config.country(country), flows[key],
                                      from_d, to_d))

    with open(args.out, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(TICK_HEADER)
        w.writerows(all_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
