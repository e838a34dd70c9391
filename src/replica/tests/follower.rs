//! Followers: leadership changes, the leader's high watermark, truncation.

use super::*;

#[test]
fn a_follower_takes_its_leaders_high_watermark_up_to_its_own_log_end() {
    let mut n = node(2, 1, 5, 0);
    let actions = metadata(&mut n, meta(1, &[1, 2]), 0);
    assert_eq!(actions, [Action::BecomeFollower { leader: 1, epoch: 1 }]);
    assert_eq!(
        hw_moves(&n.handle(Event::LeaderHighWatermark { high_watermark: 9 })),
        [5]
    );
    appended(&mut n, 9);
    assert_eq!(
        hw_moves(&n.handle(Event::LeaderHighWatermark { high_watermark: 9 })),
        [9]
    );
}

#[test]
fn truncation_below_the_high_watermark_lowers_it() {
    let mut n = node(2, 1, 10, 0);
    metadata(&mut n, meta(1, &[1, 2]), 0);
    n.handle(Event::LeaderHighWatermark { high_watermark: 10 });
    assert_eq!(hw_moves(&appended(&mut n, 7)), [7]);
}

#[test]
fn losing_the_leader_or_the_replica_goes_offline_and_a_new_epoch_refollows() {
    let mut n = node(2, 1, 0, 0);
    metadata(&mut n, meta(1, &[1, 2]), 0);
    let mut m = meta(-1, &[2]);
    m.leader_epoch = 2;
    assert_eq!(metadata(&mut n, m, 1), [Action::Offline]);
    let mut m = meta(3, &[2, 3]);
    m.leader_epoch = 3;
    assert_eq!(metadata(&mut n, m, 2), [Action::BecomeFollower { leader: 3, epoch: 3 }]);
    // An ISR change under the same leader is not a new leadership.
    let mut m = meta(3, &[3]);
    m.leader_epoch = 3;
    m.partition_epoch = 5;
    assert!(metadata(&mut n, m, 3).is_empty());
}

#[test]
fn a_follower_elected_leader_becomes_leader_at_its_log_end() {
    let mut n = node(2, 1, 8, 6);
    metadata(&mut n, meta(1, &[1, 2]), 0);
    let mut m = meta(2, &[2]);
    m.leader_epoch = 2;
    let actions = metadata(&mut n, m, 1);
    assert_eq!(actions[0], Action::BecomeLeader { epoch: 2 });
    assert_eq!(hw_moves(&actions), [8], "alone in the ISR, its whole log is committed");
}
