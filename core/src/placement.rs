//! Placement: which live worker evaluates each partition of the flows (a flow's partition is
//! [`crate::FlowId::partition`]). What the coordinator computes for every plan; pure, so its
//! properties are tested here.
//!
//! - **Balanced**: with `P` partitions and `N` workers every worker owns `P / N` or
//!   `P / N + 1` partitions (flows hash evenly over partitions, so flow counts follow).
//! - **Stable**: a partition stays with its owner while that owner is alive and within its
//!   quota. A worker joining takes only its quota, all from the others (≈ `P / (N + 1)`
//!   partitions move); a worker leaving (dead or drained) hands on only its own partitions.
//! - **Deterministic**: the same workers and previous placement give the same placement, in
//!   whatever order the workers are listed (a standby coordinator rebuilding the previous
//!   placement from the workers' heartbeats computes what the leader would have).
//!
//! Where a partition must go, it goes to the worker that ranks it highest among those with room
//! (rendezvous hashing: a weight of the pair partition–worker), so from scratch the placement is
//! a function of the workers alone.

use std::collections::BTreeMap;

use crate::id::fnv1a;

/// The weight of `partition` for `worker`: a partition goes to the worker with room that
/// weighs it most; one that must leave an over-full worker is the one it weighs least.
fn weight(partition: u32, worker: &str) -> u64 {
    let mut h = fnv1a(crate::id::FNV_OFFSET, worker.as_bytes());
    h ^= u64::from(partition).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // splitmix64's finaliser: FNV alone ranks similar names alike.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The owner of each of `partitions` partitions among `workers` (duplicates ignored), keeping
/// what `previous` placed (index = partition; a missing or unknown entry is unplaced) where it
/// may stay. Without workers nothing is placed.
pub fn place(
    partitions: u32,
    workers: &[String],
    previous: &[Option<String>],
) -> Vec<Option<String>> {
    let mut live: Vec<&str> = workers.iter().map(String::as_str).collect();
    live.sort_unstable();
    live.dedup();
    if live.is_empty() {
        return vec![None; partitions as usize];
    }
    let n = live.len() as u32;
    let (q, r) = (partitions / n, partitions % n);

    // What each live worker holds now.
    let mut held: BTreeMap<&str, Vec<u32>> = live.iter().map(|w| (*w, Vec::new())).collect();
    for p in 0..partitions {
        if let Some(Some(owner)) = previous.get(p as usize)
            && let Some(list) = held.get_mut(owner.as_str())
        {
            list.push(p);
        }
    }
    // Quotas: `r` workers may own one more; those holding most keep it (nobody gives up a
    // partition it may keep), ties by name.
    let mut by_holding: Vec<&str> = live.clone();
    by_holding.sort_by(|a, b| held[b].len().cmp(&held[a].len()).then(a.cmp(b)));
    let quota: BTreeMap<&str, usize> = by_holding
        .iter()
        .enumerate()
        .map(|(i, w)| (*w, (q + u32::from((i as u32) < r)) as usize))
        .collect();

    let mut owners: Vec<Option<String>> = vec![None; partitions as usize];
    let mut room: BTreeMap<&str, usize> = BTreeMap::new();
    for (w, list) in &mut held {
        // An over-full worker keeps the partitions it weighs most.
        list.sort_by_key(|p| std::cmp::Reverse(weight(*p, w)));
        list.truncate(quota[w]);
        for p in list.iter() {
            owners[*p as usize] = Some((*w).to_owned());
        }
        room.insert(w, quota[w] - list.len());
    }
    // Every partition without an owner goes to the worker with room that weighs it most.
    for p in 0..partitions {
        if owners[p as usize].is_some() {
            continue;
        }
        let to = live
            .iter()
            .filter(|w| room[*w] > 0)
            .max_by_key(|w| (weight(p, w), std::cmp::Reverse(**w)))
            .expect("the quotas add up to the partitions");
        *room.get_mut(to).expect("a live worker") -= 1;
        owners[p as usize] = Some((*to).to_owned());
    }
    owners
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// How many partitions change owner from `before` to `after`.
    fn moved(before: &[Option<String>], after: &[Option<String>]) -> usize {
        before.iter().zip(after).filter(|(a, b)| a != b).count()
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("worker-{i}")).collect()
    }

    fn counts(owners: &[Option<String>]) -> BTreeMap<String, usize> {
        let mut c = BTreeMap::new();
        for o in owners.iter().flatten() {
            *c.entry(o.clone()).or_default() += 1;
        }
        c
    }

    fn assert_balanced(partitions: u32, workers: &[String], owners: &[Option<String>]) {
        assert_eq!(owners.len(), partitions as usize);
        assert!(
            owners
                .iter()
                .all(|o| o.as_ref().is_some_and(|o| workers.contains(o)))
        );
        let n = workers.len() as u32;
        let c = counts(owners);
        for w in workers {
            let k = c.get(w).copied().unwrap_or(0) as u32;
            assert!(
                k == partitions / n || k == partitions / n + 1,
                "{w} owns {k} of {partitions} with {n} workers"
            );
        }
    }

    #[test]
    fn without_workers_nothing_is_placed() {
        assert_eq!(place(3, &[], &[]), vec![None, None, None]);
        assert!(place(0, &names(2), &[]).is_empty());
    }

    #[test]
    fn fewer_partitions_than_workers_leave_some_idle() {
        let owners = place(2, &names(5), &[]);
        assert_balanced(2, &names(5), &owners);
        assert_eq!(counts(&owners).len(), 2);
    }

    #[test]
    fn from_scratch_the_partitions_spread_by_weight_not_by_order() {
        // Not worker 0 takes partitions 0..q: a pure function of the workers scatters them.
        let owners = place(64, &names(4), &[]);
        let first: Vec<_> = owners[..16].iter().flatten().collect();
        assert!(first.iter().any(|w| *w != first[0]), "{owners:?}");
    }

    proptest! {
        #[test]
        fn balanced_within_one_partition(partitions in 0u32..600, n in 1usize..12) {
            let workers = names(n);
            assert_balanced(partitions, &workers, &place(partitions, &workers, &[]));
        }

        #[test]
        fn deterministic_whatever_the_order_of_the_workers(
            partitions in 1u32..300,
            n in 1usize..9,
            seed in any::<u64>(),
        ) {
            let workers = names(n);
            let previous = place(partitions, &names(n + 1), &[]);
            let mut shuffled = workers.clone();
            shuffled.rotate_left((seed % n as u64) as usize);
            shuffled.push(workers[0].clone());
            prop_assert_eq!(
                place(partitions, &workers, &previous),
                place(partitions, &shuffled, &previous)
            );
        }

        #[test]
        fn a_joining_worker_takes_only_its_quota(partitions in 1u32..600, n in 1usize..10) {
            let workers = names(n);
            let before = place(partitions, &workers, &[]);
            let mut more = workers.clone();
            more.push("newcomer".to_owned());
            let after = place(partitions, &more, &before);
            assert_balanced(partitions, &more, &after);
            // Every move is to the newcomer: about P / (N + 1) of the partitions.
            let taken = counts(&after).get("newcomer").copied().unwrap_or(0);
            prop_assert_eq!(moved(&before, &after), taken);
            prop_assert!(taken as u32 <= partitions.div_ceil(n as u32 + 1));
        }

        #[test]
        fn a_leaving_worker_hands_on_only_its_own(
            partitions in 1u32..600,
            n in 2usize..10,
            leaving in any::<prop::sample::Index>(),
        ) {
            let workers = names(n);
            let before = place(partitions, &workers, &[]);
            let gone = workers[leaving.index(n)].clone();
            let rest: Vec<String> = workers.iter().filter(|w| **w != gone).cloned().collect();
            let after = place(partitions, &rest, &before);
            assert_balanced(partitions, &rest, &after);
            for (b, a) in before.iter().zip(&after) {
                if b.as_ref() != Some(&gone) {
                    prop_assert_eq!(b, a, "only the leaver's partitions move");
                }
            }
        }

        #[test]
        fn a_placement_in_force_is_kept(partitions in 1u32..400, n in 1usize..9) {
            let workers = names(n);
            let once = place(partitions, &workers, &[]);
            prop_assert_eq!(place(partitions, &workers, &once), once);
        }

        #[test]
        fn any_previous_placement_is_repaired_with_few_moves(
            partitions in 1u32..200,
            n in 1usize..7,
            previous in prop::collection::vec(prop::option::of(0usize..10), 0..220),
        ) {
            // Owners unknown, dead, over-full or missing: the result is balanced, and a
            // partition whose owner is alive and within quota stays.
            let workers = names(n);
            let previous: Vec<Option<String>> =
                previous.into_iter().map(|o| o.map(|i| format!("worker-{i}"))).collect();
            let after = place(partitions, &workers, &previous);
            assert_balanced(partitions, &workers, &after);
            let (q, r) = ((partitions / n as u32) as usize, (partitions % n as u32) as usize);
            let before = counts(&previous[..previous.len().min(partitions as usize)]);
            let kept_by = |w: &String| {
                (0..partitions as usize)
                    .filter(|p| {
                        previous.get(*p).cloned().flatten().as_ref() == Some(w)
                            && after[*p].as_ref() == Some(w)
                    })
                    .count()
            };
            let mut kept = 0;
            for w in &workers {
                let had = before.get(w).copied().unwrap_or(0);
                prop_assert!(kept_by(w) >= had.min(q), "{w} had {had}, quota ≥ {q}");
                kept += kept_by(w);
            }
            // As few moves as balance allows: every worker keeps up to q, and the r slots of
            // q + 1 go to workers that held more than q.
            let at_most: usize = workers
                .iter()
                .map(|w| before.get(w).copied().unwrap_or(0).min(q))
                .sum::<usize>()
                + r.min(workers.iter().filter(|w| before.get(*w).copied().unwrap_or(0) > q).count());
            prop_assert_eq!(kept, at_most);
        }
    }
}
