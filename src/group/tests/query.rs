//! ListGroups and DescribeGroups views.

use super::super::state::GroupState;
use super::{Sim, GROUP};

#[test]
fn list_groups_filters_by_state_and_type_case_insensitively() {
    let mut sim = Sim::new();
    sim.stable_group(GROUP, 1);
    sim.commit("simple", "", -1, &[("t1", 0, 1)]);
    let all = sim.state.list_groups(&[], &[]);
    let listed: Vec<(&str, &str, &str)> = all
        .iter()
        .map(|g| (g.group_id.as_str(), g.state, g.protocol_type.as_str()))
        .collect();
    assert_eq!(listed, vec![(GROUP, "Stable", "consumer"), ("simple", "Empty", "")]);
    assert!(all.iter().all(|g| g.group_type == "classic"));
    let stable = sim.state.list_groups(&["STABLE".into()], &[]);
    assert_eq!(stable.len(), 1);
    assert_eq!(stable[0].group_id, GROUP);
    assert_eq!(
        sim.state
            .list_groups(&["empty".into(), "stable".into()], &["Classic".into()])
            .len(),
        2
    );
    assert!(sim.state.list_groups(&[], &["consumer".into()]).is_empty());
}

#[test]
fn describe_shows_member_metadata_only_when_stable() {
    let mut sim = Sim::new();
    let (leader, _, _) = sim.stable_group(GROUP, 2);
    let d = sim.state.describe_group(GROUP);
    assert_eq!(
        (d.state, d.protocol_type.as_str(), d.protocol_data.as_str()),
        ("Stable", "consumer", "range")
    );
    let m = d.members.iter().find(|m| m.member_id == leader).unwrap();
    assert_eq!(
        (m.member_id.as_str(), m.client_id.as_str(), m.client_host.as_str()),
        (leader.as_str(), "client", "/127.0.0.1")
    );
    assert!(!m.metadata.is_empty());
    assert_eq!(&m.assignment[..], format!("a-{leader}").as_bytes());

    sim.join(GROUP, &leader);
    assert_eq!(sim.state_of(GROUP), GroupState::PreparingRebalance);
    let d = sim.state.describe_group(GROUP);
    assert_eq!((d.state, d.protocol_data.as_str()), ("PreparingRebalance", ""));
    assert!(d.members[0].metadata.is_empty());

    let unknown = sim.state.describe_group("nope");
    assert_eq!((unknown.state, unknown.error, unknown.members.len()), ("Dead", None, 0));
}
