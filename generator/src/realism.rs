//! Shapes of real mediation traffic that the plain data set lacks, each switched on by a
//! [`Realism`] setting (all off by default, so the plain data set is what it always was):
//!
//! - **noisy small flows**: a file holds a Poisson count of calls, a few dozen at the peak of a
//!   tick and a handful at night, so a tick may hold half its usual traffic by chance;
//! - **late files**: a file held back one or two periods and stamped when it is sent, so a tick
//!   is short and the next one long;
//! - **unlisted holiday-like days**: a day on which every flow of a country is at 50–80 % (a
//!   regional holiday, a strike, a final on television) that no calendar lists;
//! - **day-to-day level**: every flow's day as a whole a few per cent above or below its norm;
//! - **long drops**: an input at 30–45 % for three to ten days, long enough for the seed's
//!   median to learn the outage.
//!
//! Each draw comes from its own keyed stream, so switching a shape on changes nothing else.

use flowwatch_core::time::EpochDay;

use crate::rng::Rng;

/// Which shapes of real traffic to add, and how much of each.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Realism {
    /// Share of the inputs that are small and noisy (Poisson counts of calls).
    pub noisy_share: f64,
    /// Share of the inputs whose files are often late.
    pub late_share: f64,
    /// Unlisted holiday-like days per country and 30 days.
    pub unlisted_days_per_month: f64,
    /// Standard deviation of the logarithm of a flow's day level.
    pub day_level_sd: f64,
    /// Long drops per input and 30 days.
    pub long_drops_per_flow_month: f64,
}

impl Realism {
    /// The settings of the quality report (`flowwatch-loadtest quality`, issue 20): what
    /// mediation traffic of an operator looks like, roughly.
    pub fn realistic() -> Realism {
        Realism {
            noisy_share: 0.3,
            late_share: 0.15,
            unlisted_days_per_month: 0.25,
            day_level_sd: 0.04,
            long_drops_per_flow_month: 0.04,
        }
    }
}

/// The shape of a flow's traffic (a forward has its input's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlowShape {
    /// Many calls a file, on time.
    Steady,
    /// Few calls a file ([`Realism::noisy_share`]).
    Noisy,
    /// Files often late ([`Realism::late_share`]).
    Late,
    /// One file a day.
    Daily,
}

impl FlowShape {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            FlowShape::Steady => "steady",
            FlowShape::Noisy => "noisy",
            FlowShape::Late => "late files",
            FlowShape::Daily => "daily",
        }
    }
}

/// An input's traits under [`Realism`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Traits {
    pub shape: FlowShape,
    /// Calls an hour at the flow's peak ([`FlowShape::Noisy`]).
    pub peak_calls_per_hour: f64,
}

impl Traits {
    /// The traits of input number `flow` of a data set of `seed`.
    pub fn draw(realism: &Realism, seed: u64, flow: usize, daily: bool) -> Traits {
        let mut rng = Rng::keyed(seed ^ 0x5EA1, flow as u64);
        let u = rng.unit();
        let shape = if daily {
            FlowShape::Daily
        } else if u < realism.noisy_share {
            FlowShape::Noisy
        } else if u < realism.noisy_share + realism.late_share {
            FlowShape::Late
        } else {
            FlowShape::Steady
        };
        Traits {
            shape,
            peak_calls_per_hour: rng.range(200.0, 2000.0),
        }
    }
}

/// A flow-day's level factor (1 when [`Realism::day_level_sd`] is 0).
pub(crate) fn day_level(realism: &Realism, seed: u64, flow: usize, day: EpochDay) -> f64 {
    if realism.day_level_sd == 0.0 {
        return 1.0;
    }
    let mut rng = Rng::keyed(seed ^ 0xDA1, ((flow as u64) << 32) | u64::from(day as u32));
    (realism.day_level_sd * rng.noise()).exp()
}

/// The unlisted holiday-like days of country number `country` among `days` (never one of
/// `listed`), each with the factor of its traffic.
pub(crate) fn unlisted_days(
    realism: &Realism,
    seed: u64,
    country: usize,
    days: std::ops::Range<EpochDay>,
    listed: impl Fn(EpochDay) -> bool,
) -> Vec<(EpochDay, f64)> {
    let p = realism.unlisted_days_per_month / 30.0;
    if p <= 0.0 {
        return Vec::new();
    }
    let mut rng = Rng::keyed(seed ^ 0x40D, country as u64);
    days.filter_map(|d| {
        let pick = rng.chance(p);
        let factor = rng.range(0.5, 0.8);
        (pick && !listed(d)).then_some((d, factor))
    })
    .collect()
}

/// A Poisson count of mean `mean`.
pub(crate) fn poisson(rng: &mut Rng, mean: f64) -> u64 {
    if mean <= 0.0 {
        return 0;
    }
    if mean > 50.0 {
        return (mean + mean.sqrt() * rng.noise()).round().max(0.0) as u64;
    }
    // Knuth: count uniforms until their product falls below e^-mean.
    let limit = (-mean).exp();
    let mut product = rng.unit();
    let mut count = 0;
    while product > limit {
        product *= rng.unit();
        count += 1;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_counts_have_their_mean_and_variance() {
        let mut rng = Rng::new(3);
        for mean in [0.5, 4.0, 30.0, 200.0] {
            let n = 20_000;
            let xs: Vec<f64> = (0..n).map(|_| poisson(&mut rng, mean) as f64).collect();
            let m = xs.iter().sum::<f64>() / n as f64;
            let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n as f64;
            assert!((m - mean).abs() < 0.05 * mean + 0.02, "mean {m} for {mean}");
            assert!(
                (v - mean).abs() < 0.1 * mean + 0.05,
                "variance {v} for {mean}"
            );
        }
    }

    #[test]
    fn shapes_take_their_shares() {
        let r = Realism::realistic();
        let shapes: Vec<FlowShape> = (0..4000)
            .map(|f| Traits::draw(&r, 9, f, false).shape)
            .collect();
        let share = |s| shapes.iter().filter(|&&x| x == s).count() as f64 / 4000.0;
        assert!((share(FlowShape::Noisy) - r.noisy_share).abs() < 0.03);
        assert!((share(FlowShape::Late) - r.late_share).abs() < 0.03);
        assert_eq!(Traits::draw(&r, 9, 1, true).shape, FlowShape::Daily);
        let none = Realism::default();
        assert!((0..100).all(|f| Traits::draw(&none, 9, f, false).shape == FlowShape::Steady));
    }

    #[test]
    fn unlisted_days_avoid_listed_ones_and_come_at_their_rate() {
        let r = Realism::realistic();
        let days = unlisted_days(&r, 4, 0, 0..3000, |d| d % 7 == 0);
        assert!(
            days.iter()
                .all(|(d, f)| d % 7 != 0 && (0.5..0.8).contains(f))
        );
        let per_month = days.len() as f64 / (3000.0 * 6.0 / 7.0) * 30.0;
        assert!(
            (per_month - r.unlisted_days_per_month).abs() < 0.15,
            "{per_month}"
        );
        assert!(unlisted_days(&Realism::default(), 4, 0, 0..3000, |_| false).is_empty());
    }
}
