//! The leader's high watermark: the smallest log end over the ISR, forward only, held under
//! min ISR.

use super::*;

#[test]
fn a_lone_leader_commits_each_append_at_once() {
    let mut n = node(1, 1, 0, 0);
    let mut m = meta(1, &[1]);
    m.replicas = vec![1];
    let actions = metadata(&mut n, m, 0);
    assert!(actions.contains(&Action::BecomeLeader { epoch: 1 }));
    assert_eq!(hw_moves(&appended(&mut n, 5)), [5]);
}

#[test]
fn the_high_watermark_waits_for_every_isr_member() {
    let mut n = node(1, 2, 10, 10);
    metadata(&mut n, meta(1, &[1, 2, 3]), 0);
    assert!(hw_moves(&appended(&mut n, 15)).is_empty(), "followers not heard from");
    assert!(hw_moves(&fetched(&mut n, 2, 15, 1)).is_empty(), "3 still unknown");
    assert_eq!(hw_moves(&fetched(&mut n, 3, 12, 2)), [12]);
    assert_eq!(hw_moves(&fetched(&mut n, 3, 15, 3)), [15]);
    assert_eq!(n.high_watermark(), 15);
}

#[test]
fn the_high_watermark_never_moves_back() {
    let mut n = node(1, 1, 10, 10);
    metadata(&mut n, meta(1, &[1, 2]), 0);
    fetched(&mut n, 2, 10, 1);
    // A follower that lost its unflushed tail fetches from lower down.
    assert!(hw_moves(&fetched(&mut n, 2, 4, 2)).is_empty());
    assert_eq!(n.high_watermark(), 10);
}

#[test]
fn under_min_isr_the_high_watermark_holds_still() {
    let mut n = node(1, 2, 0, 0);
    metadata(&mut n, meta(1, &[1]), 0);
    assert!(hw_moves(&appended(&mut n, 3)).is_empty());
    assert_eq!(n.high_watermark(), 0);
    // Back at min ISR, it moves.
    let mut m = meta(1, &[1, 2]);
    m.partition_epoch = 2;
    fetched(&mut n, 2, 3, 1);
    assert_eq!(hw_moves(&metadata(&mut n, m, 2)), [3]);
}

#[test]
fn a_caught_up_follower_outside_the_isr_also_holds_the_high_watermark() {
    // It is about to join; the HW must not run ahead of it.
    let mut n = node(1, 1, 10, 10);
    metadata(&mut n, meta(1, &[1]), 0);
    fetched(&mut n, 2, 10, 1);
    appended(&mut n, 20);
    // Follower 2 is caught up to the previous end, so it counts.
    assert_eq!(n.high_watermark(), 10);
}

#[test]
fn a_new_leader_keeps_its_high_watermark_until_followers_report() {
    let mut n = node(2, 1, 20, 12);
    assert_eq!(n.high_watermark(), 12);
    let mut m = meta(2, &[2, 3]);
    m.leader_epoch = 2;
    let actions = metadata(&mut n, m, 0);
    assert!(actions.contains(&Action::BecomeLeader { epoch: 2 }));
    assert!(hw_moves(&actions).is_empty());
    assert_eq!(hw_moves(&fetched(&mut n, 3, 20, 1)), [20]);
}
