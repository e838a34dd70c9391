//! Tests of the replication core, one file per concern, driven through small helpers that
//! build the metadata a controller would publish.

mod follower;
mod high_watermark;
mod isr;
mod simulation;

use super::core::{Action, Core, Event, LeaderAndIsr};

pub(super) const LAG_MS: i64 = 30_000;

/// Leader and ISR at leader epoch 1, partition epoch 1, replicas 1, 2, 3.
pub(super) fn meta(leader: i32, isr: &[i32]) -> LeaderAndIsr {
    LeaderAndIsr {
        leader,
        leader_epoch: 1,
        partition_epoch: 1,
        replicas: vec![1, 2, 3],
        isr: isr.to_vec(),
    }
}

/// Node `id` with a log ending at `log_end` and high watermark `hw`, min ISR `min_isr`.
pub(super) fn node(id: i32, min_isr: usize, log_end: i64, hw: i64) -> Core {
    Core::new(id, LAG_MS, min_isr, log_end, hw)
}

pub(super) fn metadata(core: &mut Core, state: LeaderAndIsr, now_ms: i64) -> Vec<Action> {
    core.handle(Event::Metadata { state, now_ms })
}

pub(super) fn fetched(core: &mut Core, replica: i32, fetch_offset: i64, now_ms: i64) -> Vec<Action> {
    core.handle(Event::FollowerFetched {
        replica,
        fetch_offset,
        log_start_offset: -1,
        eligible: true,
        now_ms,
    })
}

pub(super) fn appended(core: &mut Core, log_end: i64) -> Vec<Action> {
    core.handle(Event::LogEnd { log_end })
}

pub(super) fn hw_moves(actions: &[Action]) -> Vec<i64> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::HighWatermark(hw) => Some(*hw),
            _ => None,
        })
        .collect()
}

pub(super) fn proposals(actions: &[Action]) -> Vec<Vec<i32>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ProposeIsr { isr, .. } => Some(isr.clone()),
            _ => None,
        })
        .collect()
}
