//! The adaptive detector (SPEC §10, `detector: "adaptive"`): the seed's expectation, judged
//! against the flow's own variability, with evidence that accumulates over ticks.
//!
//! `README.md` beside this file explains it with a worked example. For a tick with actual `a`
//! and expectation `ê` (floored by `minimalExpectation`), `x = a / ê`, `soft` and `hard` the
//! flow's alarm levels:
//!
//! - **Expectation**: the seed's median of the similar days, without the history values that
//!   look like an outage: below `hard` times the median in a run of two ticks or more (one tick
//!   for daily flows), as long as `minHistoryDays` values remain. A past outage neither lowers
//!   the expectation nor widens the band of the days after it.
//! - **Spread** `σ` (a log ratio): how far this flow strays from its median on those days, at
//!   this tick and its [`NEIGHBOURS`] on each side: the larger of a robust spread (the median
//!   absolute log ratio) and one read from the lower tail (so batchy flows whose ticks sometimes
//!   hold one file of three get a wide band), never less than [`min_spread`] — at which a steady
//!   flow's tick below `hard` is an outage at once, as in the seed mode.
//! - **Grain** `g` ([`grain`]): the flow's bytes per call if its traffic were a Poisson count.
//!   A tick expecting `λ = ê / g <` [`FEW_EVENTS`] calls also measures its shortfall as a count,
//!   `2 (√(soft λ) − √(x λ))` standard deviations, and the smaller measure counts: four calls
//!   expected and none come is unusual, not twenty spreads low.
//! - **Evidence** `S` (a one-sided CUSUM in units of `σ` over the last [`window`] ticks): each
//!   tick contributes `c = ln(soft / max(x, 5 %)) / σ − κ` (or the count's, if smaller; at most
//!   [`MAX_CONTRIBUTION`]), and `S` is the largest sum of contributions ending at the tick (0 at
//!   least). A tick at [`clear_level`] or above, and an `N_A` tick, clear it.
//! - **Status**: `x ≥ soft` → `OK`. Otherwise `S ≥` [`OUTAGE`] → `OUTAGE` when `x < hard` or
//!   the tick before was below `soft` too (a shallow drop must persist); after such a tick,
//!   `OUTAGE` holds while `S ≥` [`WARN`] for a window (recovery hysteresis); `S ≥ WARN` →
//!   `WARNING`; else `OK`.
//!
//! Everything a tick's status depends on lies within the flow's `lookbackDays` and the last
//! `2 · window` ticks, so a live flow rebuilt from that far back agrees with replay
//! ([`rebuild_days`]).

use super::{Band, DetectionParams, Status, median};

/// Ticks on each side of a tick whose history also tells its spread.
pub const NEIGHBOURS: usize = 2;
/// Allowance per tick (in `σ`): shortfalls smaller than this do not accumulate.
pub const KAPPA: f64 = 0.5;
/// Evidence from which a tick is `WARNING` (and below which an `OUTAGE` ends).
pub const WARN: f64 = 2.0;
/// Evidence from which a tick is `OUTAGE`.
pub const OUTAGE: f64 = 4.0;
/// The most evidence one tick brings: an empty tick is an outage, and no more, so the evidence
/// drains soon after traffic returns.
pub const MAX_CONTRIBUTION: f64 = OUTAGE + WARN;
/// Ratios below this count as this: an empty tick is "very low", not infinitely so.
pub const RATIO_FLOOR: f64 = 0.05;
/// Spread below this is not trusted: a handful of days cannot prove a flow that steady.
const SPREAD_FLOOR: f64 = 0.02;
/// The fewest ticks a day from which a flow's [`grain`] is told: only across levels (night and
/// day) does spread that shrinks as the level grows (counts) show apart from spread that does
/// not (a whole day higher or lower).
pub const GRAIN_TICKS: usize = 12;
/// Below this many expected events a tick is also judged as a count (see [`Evidence::rate`]):
/// above it, a Poisson count strays like the log ratio the spread measures.
pub const FEW_EVENTS: f64 = 10.0;
/// The longest evidence window, in ticks.
pub const MAX_WINDOW: usize = 16;

/// The evidence window of a flow with `ticks_per_day` ticks a day: a day's ticks, at least 2
/// and at most [`MAX_WINDOW`].
pub fn window(ticks_per_day: usize) -> usize {
    ticks_per_day.clamp(2, MAX_WINDOW)
}

/// How many days before the first tick to evaluate a rebuild must start, beyond the seed mode's
/// `lookbackDays + 1`: the days the last `2 · window` ticks span (see the module documentation).
pub fn rebuild_days(ticks_per_day: usize) -> i32 {
    (2 * window(ticks_per_day)).div_ceil(ticks_per_day.max(1)) as i32 + 1
}

/// The ratio from which a tick clears all evidence: halfway between the soft level and the
/// expectation.
pub fn clear_level(soft: f64) -> f64 {
    (1.0 + soft) / 2.0
}

/// The least spread: the one at which a steady flow's single tick below `hard` gathers
/// [`OUTAGE`] evidence at once, as the seed mode would alarm.
pub fn min_spread(soft: f64, hard: f64) -> f64 {
    ((soft / hard).ln() / (OUTAGE + KAPPA)).max(SPREAD_FLOOR)
}

/// The state carried from tick to tick: the contributions of the last ticks since the evidence
/// was last cleared, and which of them reached the outage level on their own account.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    /// Contributions, oldest first; `len` of them are valid.
    contributions: [f64; MAX_WINDOW],
    /// Bit `k` set: tick `k` of `contributions` reached the outage level itself (a tick held in
    /// `OUTAGE` by an earlier one does not hold the next: what holds stays within a window).
    outages: u16,
    len: u8,
    /// Whether the previous tick was below the soft level.
    below: bool,
    /// The previous tick's status.
    status: Status,
}

impl Default for Evidence {
    fn default() -> Evidence {
        Evidence {
            contributions: [0.0; MAX_WINDOW],
            outages: 0,
            len: 0,
            below: false,
            status: Status::NotAvailable,
        }
    }
}

impl Evidence {
    /// The status of the last tick rated.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The largest sum of the newest contributions (at most `keep` of them), 0 at least.
    fn carried(&self, keep: usize) -> f64 {
        let n = self.len as usize;
        let (mut sum, mut best) = (0.0, 0.0f64);
        for c in self.contributions[n.saturating_sub(keep)..n].iter().rev() {
            sum += c;
            best = best.max(sum);
        }
        best
    }

    /// Whether a tick that reached the outage level is among the newest `keep` ticks.
    fn outage_within(&self, keep: usize) -> bool {
        let n = self.len as usize;
        let mask = if keep >= n {
            u16::MAX
        } else {
            !((1u16 << (n - keep)) - 1)
        };
        self.outages & mask != 0
    }

    /// Rates ratio `x = a / ê` with spread `sigma` and `events` expected (calls, by the
    /// [`grain`]; infinite when unknown) under `params`, for a flow of `ticks_per_day`; returns the band in ratios (multiply the bounds by `ê` for bytes) and
    /// keeps the tick's status ([`Evidence::status`]) and evidence for the next tick.
    pub fn rate(
        &mut self,
        x: f64,
        sigma: f64,
        events: f64,
        params: &DetectionParams,
        ticks_per_day: usize,
    ) -> Band {
        let (soft, hard) = (params.soft_alarm_level, params.hard_alarm_level);
        let window = window(ticks_per_day);
        // The evidence the ticks before leave within the window (this tick is its newest).
        let carried = self.carried(window - 1);
        let held = self.outage_within(window - 1);
        // A shortfall counts as whichever tells it less: the log ratio in spreads, or the
        // deviation of a Poisson count of `events` (variance-stabilised: `2 (√(soft λ) −
        // √(x λ))` standard deviations), so a tick that should hold three calls and holds
        // none is unusual, not "20 spreads low".
        let root = events.sqrt();
        let mut shortfall = (soft / x.max(RATIO_FLOOR)).ln() / sigma;
        if x < soft && events < FEW_EVENTS {
            shortfall = shortfall.min(2.0 * root * (soft.sqrt() - x.sqrt()));
        }
        let contribution = (shortfall - KAPPA).min(MAX_CONTRIBUTION);
        let below = x < soft;
        let cleared = x >= clear_level(soft);
        let level = if cleared {
            0.0
        } else {
            (carried + contribution).max(0.0)
        };
        // Reached the outage level on its own account (not held by an earlier tick): below the
        // hard level at once, as the seed mode, or after another tick below the soft level.
        let triggered = below && level >= OUTAGE && (x < hard || self.below);
        let status = if !below {
            Status::Ok
        } else if triggered || (level >= WARN && held) {
            Status::Outage
        } else if level >= WARN {
            Status::Warning
        } else {
            Status::Ok
        };
        // The ratio under which the tick reaches `target` evidence: under both bounds.
        let under = |target: f64| {
            let need = target - carried + KAPPA;
            let in_spreads = soft * (-sigma * need).exp();
            let in_counts = if events < FEW_EVENTS {
                (soft.sqrt() - need / (2.0 * root)).max(0.0).powi(2)
            } else {
                soft
            };
            in_spreads.min(in_counts).min(soft)
        };
        let outage_below = if held {
            under(WARN)
        } else if self.below {
            under(OUTAGE)
        } else {
            under(OUTAGE).min(hard)
        };
        if cleared {
            self.len = 0;
            self.outages = 0;
        } else {
            if self.len as usize == MAX_WINDOW {
                self.contributions.copy_within(1.., 0);
                self.outages >>= 1;
                self.len -= 1;
            }
            self.contributions[self.len as usize] = contribution;
            if triggered {
                self.outages |= 1 << self.len;
            }
            self.len += 1;
        }
        self.below = below;
        self.status = status;
        Band {
            lower: under(WARN),
            outage_below,
            evidence: level,
            spread: sigma,
        }
    }
}

/// Adjusts a day's plan for the adaptive detector: `history` are the similar days' rates (per
/// tick index, NaN where absent), `expected_raw` the seed's medians (NaN where `N_A`), which
/// lose the values that look like an outage; `spread` gets every tick's spread (NaN where
/// `N_A`). Returns the day's [`grain`].
pub fn plan_day(
    history: &[&[f64]],
    params: &DetectionParams,
    expected_raw: &mut [f64],
    spread: &mut Vec<f64>,
) -> f64 {
    let n = expected_raw.len();
    let days = history.len();
    let grain = grain(history, expected_raw);
    // Which history values are below `hard` times their tick's median.
    let low: Vec<bool> = (0..days * n)
        .map(|k| history[k / n][k % n] < params.hard_alarm_level * expected_raw[k % n])
        .collect();
    let low = |d: usize, i: usize| low[d * n + i];
    // Ratio of each kept history value to its tick's median (at least `RATIO_FLOOR`); NaN where
    // none. Logarithms are taken of the few order statistics only: ln is monotonic.
    let mut ratios = vec![f64::NAN; days * n];
    let mut kept = Vec::with_capacity(days);
    let mut values = Vec::with_capacity(days);
    for i in 0..n {
        if expected_raw[i].is_nan() {
            continue;
        }
        let present = (0..days).filter(|&d| !history[d][i].is_nan());
        kept.clear();
        kept.extend(present.clone().filter(|&d| {
            let run = n == 1 || (i > 0 && low(d, i - 1)) || (i + 1 < n && low(d, i + 1));
            !(low(d, i) && run)
        }));
        if kept.len() < params.min_history_days as usize {
            // Mostly outage: it has become the flow's normal.
            kept.clear();
            kept.extend(present);
        }
        values.clear();
        values.extend(kept.iter().map(|&d| history[d][i]));
        let m = median(&mut values);
        expected_raw[i] = m;
        if m > 0.0 {
            for &d in &kept {
                ratios[d * n + i] = (history[d][i] / m).max(RATIO_FLOOR);
            }
        }
    }
    let floor = min_spread(params.soft_alarm_level, params.hard_alarm_level);
    spread.clear();
    spread.resize(n, f64::NAN);
    let count = days.max(1) as f64;
    // A history day's ratio to a median of its own days strays less than a new day's will.
    let predictive = (1.0 + std::f64::consts::FRAC_PI_2 / count).sqrt();
    let small_sample = count / (count - 0.8).max(0.2);
    let mut pool: Vec<f64> = Vec::with_capacity(days * (2 * NEIGHBOURS + 1));
    for (i, slot) in spread.iter_mut().enumerate() {
        if expected_raw[i].is_nan() {
            continue;
        }
        pool.clear();
        let near = i.saturating_sub(NEIGHBOURS)..(i + NEIGHBOURS + 1).min(n);
        for d in 0..days {
            pool.extend(
                ratios[d * n..(d + 1) * n][near.clone()]
                    .iter()
                    .filter(|v| !v.is_nan()),
            );
        }
        *slot = if pool.is_empty() {
            floor
        } else {
            let tail = lower_tail(&mut pool);
            let robust = 1.4826 * small_sample * median_abs(&mut pool);
            (robust.max(tail) * predictive).max(floor)
        };
    }
    grain
}

/// The flow's grain: its bytes per event (call, session) if its traffic were a Poisson count of
/// events (the variance over the mean), where that shows best. Per tick, the median of the
/// squared deviations from the median over the median, at the tick and its [`NEIGHBOURS`], over
/// the median of χ² with one degree of freedom; then the lower quartile over the day's ticks,
/// since deviations that grow with the level (a whole day higher or lower) only add to it. A
/// steady flow's grain is a sliver of its traffic; a flow of a few calls a tick has one call's
/// bytes. 0 when no tick has enough history to tell.
pub fn grain(history: &[&[f64]], expected: &[f64]) -> f64 {
    // The median of χ² with one degree of freedom.
    const CHI2_1_MEDIAN: f64 = 0.454_936;
    let n = expected.len();
    if n < GRAIN_TICKS {
        return 0.0;
    }
    let mut squares = vec![f64::NAN; n * history.len()];
    for (i, &m) in expected.iter().enumerate() {
        if m > 0.0 {
            let tick = &mut squares[i * history.len()..(i + 1) * history.len()];
            for (slot, day) in tick.iter_mut().zip(history) {
                *slot = (day[i] - m).powi(2) / m;
            }
            // The value the median is (or is nearest to) strays least by construction: without
            // it, the others stray about as a new day will.
            if let Some(least) = (0..tick.len())
                .filter(|&d| !tick[d].is_nan())
                .min_by(|&a, &b| tick[a].total_cmp(&tick[b]))
            {
                tick[least] = f64::NAN;
            }
        }
    }
    let mut local = Vec::with_capacity(n);
    let mut pool = Vec::with_capacity(history.len() * (2 * NEIGHBOURS + 1));
    for (i, m) in expected.iter().enumerate() {
        if m.is_nan() {
            continue;
        }
        let near = i.saturating_sub(NEIGHBOURS)..(i + NEIGHBOURS + 1).min(n);
        pool.clear();
        pool.extend(
            squares[near.start * history.len()..near.end * history.len()]
                .iter()
                .filter(|v| !v.is_nan()),
        );
        if pool.len() >= 4 {
            let k = pool.len() / 2;
            let (_, mid, _) = pool.select_nth_unstable_by(k, f64::total_cmp);
            local.push(*mid / CHI2_1_MEDIAN);
        }
    }
    if local.is_empty() {
        return 0.0;
    }
    let k = local.len() / 4;
    *local.select_nth_unstable_by(k, f64::total_cmp).1
}

/// The median of `|ln r|` of the ratios `values` (reorders them and turns each into
/// `max(r, 1 / r)`, whose logarithm is `|ln r|`).
fn median_abs(values: &mut [f64]) -> f64 {
    for v in values.iter_mut() {
        *v = v.max(1.0 / *v);
    }
    let (n, k) = (values.len(), values.len() / 2);
    let (below, mid, _) = values.select_nth_unstable_by(k, f64::total_cmp);
    let upper = mid.ln();
    if n % 2 == 1 {
        upper
    } else {
        let lower = below.iter().copied().fold(f64::NEG_INFINITY, f64::max).ln();
        (lower + upper) / 2.0
    }
}

/// The spread the lowest log ratios imply: the `k`-th lowest (one value in twelve may be an
/// unmarked anomaly, so `k = 1 + n / 12`) over where the `k`-th lowest of `n` normal values
/// lies (Blom's plotting position). `values` are ratios, reordered; 0 when the `k`-th lowest is
/// not low or there are too few values to tell a tail.
fn lower_tail(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n < 4 {
        return 0.0;
    }
    let k = 1 + n / 12;
    let (_, low, _) = values.select_nth_unstable_by(k - 1, f64::total_cmp);
    let low = low.ln();
    let z = normal_quantile_low((k as f64 - 0.375) / (n as f64 + 0.25));
    if low < 0.0 { low / z } else { 0.0 }
}

/// `Φ⁻¹(p)` for `0 < p < 0.5` (Abramowitz & Stegun 26.2.23; error below 4.5e-4).
pub fn normal_quantile_low(p: f64) -> f64 {
    let t = (-2.0 * p.ln()).sqrt();
    let z = t
        - (2.515517 + 0.802853 * t + 0.010328 * t * t)
            / (1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
    -z
}

#[cfg(test)]
mod tests;
