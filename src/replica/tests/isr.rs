//! ISR shrink and expansion proposals, one at a time, and their settling by the metadata.

use super::*;

#[test]
fn a_follower_lagging_past_the_limit_is_proposed_out() {
    let mut n = node(1, 1, 10, 10);
    metadata(&mut n, meta(1, &[1, 2, 3]), 0);
    fetched(&mut n, 2, 10, 100);
    fetched(&mut n, 3, 10, 100);
    appended(&mut n, 20);
    fetched(&mut n, 2, 20, 200);
    // 3 never catches up again.
    assert!(proposals(&n.handle(Event::Tick { now_ms: 100 + LAG_MS })).is_empty());
    assert_eq!(proposals(&n.handle(Event::Tick { now_ms: 101 + LAG_MS })), [vec![1, 2]]);
}

#[test]
fn a_follower_fetching_steadily_but_never_at_the_end_stays_in() {
    // Each fetch reaches the log end of the previous one: caught up as of that previous fetch.
    let mut n = node(1, 1, 0, 0);
    metadata(&mut n, meta(1, &[1, 2]), 0);
    let mut now = 0;
    for round in 1..=100 {
        let end = round * 10;
        appended(&mut n, end);
        fetched(&mut n, 2, end - 10, now);
        now += 1_000;
    }
    assert!(proposals(&n.handle(Event::Tick { now_ms: now })).is_empty());
}

#[test]
fn a_follower_that_reaches_the_high_watermark_is_proposed_in_once() {
    let mut n = node(1, 1, 10, 10);
    metadata(&mut n, meta(1, &[1, 2]), 0);
    fetched(&mut n, 2, 10, 1);
    assert!(
        proposals(&fetched(&mut n, 3, 5, 2)).is_empty(),
        "below the high watermark"
    );
    assert_eq!(proposals(&fetched(&mut n, 3, 10, 3)), [vec![1, 2, 3]]);
    assert!(proposals(&fetched(&mut n, 3, 10, 4)).is_empty(), "already proposed");
    // The controller commits it: the next metadata carries a newer partition epoch.
    let mut m = meta(1, &[1, 2, 3]);
    m.partition_epoch = 2;
    metadata(&mut n, m, 5);
    assert_eq!(n.isr(), [1, 2, 3]);
}

#[test]
fn an_ineligible_follower_is_not_proposed_in() {
    let mut n = node(1, 1, 10, 10);
    metadata(&mut n, meta(1, &[1]), 0);
    let actions = n.handle(Event::FollowerFetched {
        replica: 3,
        fetch_offset: 10,
        log_start_offset: -1,
        eligible: false,
        now_ms: 1,
    });
    assert!(proposals(&actions).is_empty());
}

#[test]
fn a_refused_proposal_is_dropped_and_tried_again_later() {
    let mut n = node(1, 1, 10, 10);
    metadata(&mut n, meta(1, &[1]), 0);
    assert_eq!(proposals(&fetched(&mut n, 2, 10, 1)), [vec![1, 2]]);
    n.handle(Event::AlterPartitionFailed);
    assert_eq!(proposals(&fetched(&mut n, 2, 10, 2)), [vec![1, 2]]);
}

#[test]
fn while_an_expansion_is_pending_the_new_member_holds_the_high_watermark() {
    let mut n = node(1, 1, 10, 10);
    metadata(&mut n, meta(1, &[1]), 0);
    fetched(&mut n, 2, 10, 1);
    appended(&mut n, 30);
    fetched(&mut n, 2, 20, 2);
    assert_eq!(n.high_watermark(), 20);
}
