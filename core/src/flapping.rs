//! Flap damping: a flow whose status changed more than `flappingChanges` times within 24 h
//! (by its ticks' starts) is *flapping*. The change that makes it flap is sent as usual (it
//! tells that the flow flaps); the changes after it are stored, marked `flapping`, and not
//! sent, until the flow settles: at most half as many changes within 24 h. If its status then
//! differs from the last one sent, one summary change says so.
//!
//! Only changes as they happen count (not revisions); `0` turns damping off.

use std::collections::BTreeSet;

use crate::detection::Status;
use crate::time::Instant;

/// The window changes are counted in.
pub const WINDOW: Instant = 86_400;

/// One flow's recent changes and whether its notifications are held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flapping {
    /// Starts of the ticks that changed status, within the window.
    changes: BTreeSet<Instant>,
    /// Whether notifications are held.
    flapping: bool,
    /// The status last sent, if any.
    heard: Option<Status>,
}

impl Flapping {
    /// Whether notifications are held now.
    pub fn is_flapping(&self) -> bool {
        self.flapping
    }

    /// How many changes the window holds (as of the newest tick seen).
    pub fn changes(&self) -> usize {
        self.changes.len()
    }

    /// Forgets the changes of ticks from `from` on: they are evaluated again.
    pub fn forget_from(&mut self, from: Instant) {
        self.changes.split_off(&from);
    }

    fn prune(&mut self, tick_start: Instant) {
        self.changes = self.changes.split_off(&(tick_start - WINDOW + 1));
    }

    /// A change of the tick starting at `tick_start`, as it happens; whether it is held (not
    /// sent). `limit`: the flow's `flappingChanges`.
    pub fn change(&mut self, tick_start: Instant, limit: u32) -> bool {
        self.prune(tick_start);
        self.changes.insert(tick_start);
        if limit == 0 {
            self.flapping = false;
            return false;
        }
        if self.flapping {
            return true;
        }
        // The change that makes it flap is sent: it is the news.
        self.flapping = self.changes.len() > limit as usize;
        false
    }

    /// After the tick starting at `tick_start` was evaluated with `status`: when the flow
    /// settles with a status other than the one last sent, that last one (the summary's
    /// previous status; `N_A` if none was sent).
    pub fn settle(&mut self, tick_start: Instant, status: Status, limit: u32) -> Option<Status> {
        self.prune(tick_start);
        if !self.flapping || self.changes.len() > (limit / 2) as usize {
            return None;
        }
        self.flapping = false;
        let heard = self.heard.unwrap_or(Status::NotAvailable);
        (heard != status).then_some(heard)
    }

    /// A change to `status` was sent.
    pub fn sent(&mut self, status: Status) {
        self.heard = Some(status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Instant = 3600;

    /// Drives a flow through `statuses` (one hourly tick each, from 0), as the worker does;
    /// the changes sent (tick hour, previous, new).
    fn run(statuses: &[Status], limit: u32) -> Vec<(Instant, Status, Status)> {
        let mut f = Flapping::default();
        let mut sent = Vec::new();
        let mut current = Status::Ok;
        f.sent(current);
        for (hour, &status) in statuses.iter().enumerate() {
            let start = hour as Instant * H;
            if status != current && !f.change(start, limit) {
                sent.push((hour as Instant, current, status));
                f.sent(status);
            }
            current = status;
            if let Some(previous) = f.settle(start, status, limit) {
                sent.push((hour as Instant, previous, status));
                f.sent(status);
            }
        }
        sent
    }

    use Status::{Ok as O, Outage as X, Warning as W};

    #[test]
    fn a_flow_that_flaps_is_told_once_then_held_until_it_settles() {
        // OK and OUTAGE in turn for 10 hours (9 changes), then OUTAGE for a day.
        let mut statuses = vec![X, O, X, O, X, O, X, O, X, X];
        statuses.extend(std::iter::repeat_n(X, 30));
        let sent = run(&statuses, 4);
        // Changes 1–4 sent, the 5th (the one that makes it flap) sent, the rest held.
        assert_eq!(
            sent[..5],
            [(0, O, X), (1, X, O), (2, O, X), (3, X, O), (4, O, X)]
        );
        // It settles once at most 2 changes are within 24 h (hour 6 + 24 = 30: changes at 7
        // and 8 remain); it is OUTAGE, and the last sent was OUTAGE: nothing more to say.
        assert_eq!(sent.len(), 5, "{sent:?}");
    }

    #[test]
    fn a_flow_that_settles_in_another_status_than_last_sent_gets_one_summary() {
        // Flaps, the last change held is to OK, and it stays OK.
        let mut statuses = vec![X, O, X, O, X, O];
        statuses.extend(std::iter::repeat_n(O, 30));
        let sent = run(&statuses, 4);
        assert_eq!(sent.len(), 6, "{sent:?}");
        // Held: the change to OK at 5. The summary when it settles: OUTAGE (last sent) → OK.
        let (hour, previous, new) = sent[5];
        assert_eq!((previous, new), (X, O));
        assert_eq!(hour, 3 + 24, "two changes (4 and 5) remain within 24 h");
    }

    #[test]
    fn few_changes_and_no_limit_hold_nothing() {
        let statuses = [W, O, W, X, O];
        assert_eq!(run(&statuses, 6).len(), 5);
        let many: Vec<Status> = (0..40).map(|i| if i % 2 == 0 { X } else { O }).collect();
        assert_eq!(run(&many, 0).len(), 40);
        // Changes more than 24 h apart never add up.
        let mut spaced = Vec::new();
        for i in 0..10 {
            spaced.extend(std::iter::repeat_n(if i % 2 == 0 { X } else { O }, 7));
        }
        assert_eq!(run(&spaced, 4).len(), 10);
    }

    #[test]
    fn ticks_evaluated_again_are_not_counted_twice() {
        let mut f = Flapping::default();
        for h in 0..4 {
            f.change(h * H, 4);
        }
        f.forget_from(2 * H);
        f.change(2 * H, 4);
        f.change(3 * H, 4);
        assert_eq!((f.changes(), f.is_flapping()), (4, false));
    }
}
