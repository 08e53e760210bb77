//! The dependency graph: cycle checks, blockers, ready and blocked. Edge `(x, y)` reads
//! "x depends on y". (The basic cases live next to the code in `graph.rs`.)

use std::collections::HashSet;

use loopctl_core::graph::{ProjectGraph, StoryNode, find_cycle, would_cycle};
use loopctl_core::{AgentStatus, VerifiedStatus};
use proptest::prelude::*;
use uuid::Uuid;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn node(story: u128, epic: u128, agent_status: AgentStatus, verified_status: VerifiedStatus) -> StoryNode {
    StoryNode {
        id: id(story),
        epic_id: id(epic),
        agent_status,
        verified_status,
        escalation_locked: false,
        lease_expired: false,
    }
}

fn pending(story: u128, epic: u128) -> StoryNode {
    node(story, epic, AgentStatus::Pending, VerifiedStatus::Unverified)
}

fn verified(story: u128, epic: u128) -> StoryNode {
    node(story, epic, AgentStatus::ReportedDone, VerifiedStatus::Verified)
}

fn edges(pairs: &[(u128, u128)]) -> Vec<(Uuid, Uuid)> {
    pairs.iter().map(|&(from, to)| (id(from), id(to))).collect()
}

/// Asserts that `cycle` is a real loop in `edges`: each node depends on the next, the last
/// on the first, no node twice.
fn assert_is_cycle(cycle: &[Uuid], edges: &[(Uuid, Uuid)]) {
    assert!(!cycle.is_empty());
    let distinct: HashSet<_> = cycle.iter().collect();
    assert_eq!(distinct.len(), cycle.len(), "{cycle:?} repeats a node");
    let set: HashSet<_> = edges.iter().copied().collect();
    for (i, &from) in cycle.iter().enumerate() {
        let to = cycle[(i + 1) % cycle.len()];
        assert!(set.contains(&(from, to)), "{from} -> {to} is not an edge of {edges:?}");
    }
}

// ---- would_cycle ---------------------------------------------------------------------------

#[test]
fn no_edges_no_cycle_between_distinct_stories() {
    assert!(!would_cycle(&[], id(1), id(2)));
}

#[test]
fn the_reverse_of_an_existing_edge_is_a_two_node_cycle() {
    assert!(would_cycle(&edges(&[(1, 2)]), id(2), id(1)));
}

#[test]
fn repeating_an_existing_edge_is_not_a_cycle() {
    assert!(!would_cycle(&edges(&[(1, 2)]), id(1), id(2)));
}

#[test]
fn a_diamond_is_not_a_cycle_until_its_bottom_depends_on_its_top() {
    let diamond = edges(&[(1, 2), (1, 3), (2, 4), (3, 4)]);
    assert!(!would_cycle(&diamond, id(1), id(4)), "a shortcut is fine");
    assert!(!would_cycle(&diamond, id(2), id(3)), "a cross edge is fine");
    assert!(!would_cycle(&diamond, id(3), id(2)), "and the other way");
    assert!(would_cycle(&diamond, id(4), id(1)));
    assert!(would_cycle(&diamond, id(4), id(2)));
}

#[test]
fn a_cycle_elsewhere_does_not_refuse_an_unrelated_edge() {
    let existing = edges(&[(1, 2), (2, 1)]);
    assert!(!would_cycle(&existing, id(3), id(4)));
    assert!(!would_cycle(&existing, id(3), id(1)), "depending on a cycle does not close one");
}

#[test]
fn closing_a_very_long_chain_is_detected_without_overflowing() {
    let chain: Vec<_> = (1..=100_000u128).map(|n| (id(n), id(n + 1))).collect();
    assert!(would_cycle(&chain, id(100_001), id(1)));
    assert!(!would_cycle(&chain, id(1), id(100_001)));
}

// ---- find_cycle ----------------------------------------------------------------------------

#[test]
fn no_edges_no_cycle() {
    assert_eq!(find_cycle(&[]), None);
}

#[test]
fn a_self_edge_is_a_cycle_of_one() {
    assert_eq!(find_cycle(&edges(&[(1, 2), (3, 3)])), Some(vec![id(3)]));
}

#[test]
fn a_two_node_cycle_is_found() {
    let pairs = edges(&[(5, 6), (6, 5)]);
    let cycle = find_cycle(&pairs).expect("a cycle");
    assert_eq!(cycle.len(), 2);
    assert_is_cycle(&cycle, &pairs);
}

#[test]
fn a_diamond_has_no_cycle() {
    assert_eq!(find_cycle(&edges(&[(1, 2), (1, 3), (2, 4), (3, 4)])), None);
}

#[test]
fn a_cycle_reached_only_through_a_tail_is_reported_without_the_tail() {
    // 1 -> 2 -> 3 -> 4 -> 2: the loop is 2, 3, 4.
    let pairs = edges(&[(1, 2), (2, 3), (3, 4), (4, 2)]);
    let cycle = find_cycle(&pairs).expect("a cycle");
    assert_is_cycle(&cycle, &pairs);
    assert_eq!(cycle.iter().copied().collect::<HashSet<_>>(), HashSet::from([id(2), id(3), id(4)]));
}

#[test]
fn a_cycle_in_a_second_component_is_found() {
    let pairs = edges(&[(1, 2), (2, 3), (10, 11), (11, 12), (12, 10)]);
    let cycle = find_cycle(&pairs).expect("a cycle");
    assert_is_cycle(&cycle, &pairs);
    assert!(cycle.contains(&id(10)));
}

#[test]
fn a_long_cycle_is_found_without_overflowing() {
    let mut pairs: Vec<_> = (1..100_000u128).map(|n| (id(n), id(n + 1))).collect();
    pairs.push((id(100_000), id(1)));
    let cycle = find_cycle(&pairs).expect("a cycle");
    assert_eq!(cycle.len(), 100_000);
    assert_is_cycle(&cycle, &pairs);
}

// ---- ProjectGraph --------------------------------------------------------------------------

const EPIC_A: u128 = 100;
const EPIC_B: u128 = 200;
const EPIC_C: u128 = 300;

#[test]
fn an_unknown_story_has_no_blockers_and_is_neither_ready_nor_blocked() {
    let graph = ProjectGraph::new([pending(1, EPIC_A)], &[], &[]);
    assert_eq!(graph.blockers(id(9)), Vec::<Uuid>::new());
    assert!(!graph.is_ready(id(9)));
    assert!(!graph.is_blocked(id(9)));
}

#[test]
fn an_empty_project_answers_nothing() {
    let graph = ProjectGraph::new([], &[], &[]);
    assert!(graph.blockers(id(1)).is_empty());
    assert!(!graph.is_ready(id(1)));
}

#[test]
fn a_reported_but_unverified_dependency_still_blocks() {
    for (agent_status, verified_status) in [
        (AgentStatus::ReportedDone, VerifiedStatus::Unverified),
        (AgentStatus::Implementing, VerifiedStatus::Unverified),
        (AgentStatus::Pending, VerifiedStatus::Rejected),
        (AgentStatus::ReportedDone, VerifiedStatus::Rejected),
    ] {
        let graph = ProjectGraph::new(
            [pending(1, EPIC_A), node(2, EPIC_A, agent_status, verified_status)],
            &edges(&[(1, 2)]),
            &[],
        );
        assert_eq!(graph.blockers(id(1)), vec![id(2)], "{agent_status}/{verified_status}");
        assert!(graph.is_blocked(id(1)));
        assert!(!graph.is_ready(id(1)));
    }
}

#[test]
fn blockers_come_sorted_and_once_even_when_named_twice() {
    // Story 1 (epic B) depends directly on 4 and 2, which are also in epic A that B depends on.
    let graph = ProjectGraph::new(
        [pending(1, EPIC_B), pending(4, EPIC_A), pending(2, EPIC_A), verified(3, EPIC_A)],
        &edges(&[(1, 4), (1, 2), (1, 4)]),
        &edges(&[(EPIC_B, EPIC_A), (EPIC_B, EPIC_A)]),
    );
    assert_eq!(graph.blockers(id(1)), vec![id(2), id(4)]);
}

#[test]
fn a_story_is_not_held_up_by_its_own_epic_or_by_those_depending_on_it() {
    let graph = ProjectGraph::new(
        [pending(1, EPIC_A), pending(2, EPIC_A), pending(3, EPIC_B)],
        &edges(&[(3, 1)]),
        &edges(&[(EPIC_B, EPIC_A)]),
    );
    assert!(graph.is_ready(id(1)));
    assert!(graph.is_ready(id(2)));
    assert_eq!(graph.blockers(id(3)), vec![id(1), id(2)]);
}

#[test]
fn epic_dependencies_are_direct_not_transitive() {
    // C depends on B, B on A. B is all verified, A is not: C's stories wait for nothing.
    let graph = ProjectGraph::new(
        [pending(1, EPIC_A), verified(2, EPIC_B), pending(3, EPIC_C)],
        &[],
        &edges(&[(EPIC_C, EPIC_B), (EPIC_B, EPIC_A)]),
    );
    assert!(graph.is_ready(id(3)));
    assert_eq!(graph.blockers(id(2)), vec![id(1)]);
}

#[test]
fn story_dependencies_are_direct_not_transitive() {
    // 3 depends on 2, 2 on 1; 2 is verified (backfilled, say) while 1 is not.
    let graph = ProjectGraph::new(
        [pending(1, EPIC_A), verified(2, EPIC_A), pending(3, EPIC_A)],
        &edges(&[(3, 2), (2, 1)]),
        &[],
    );
    assert!(graph.is_ready(id(3)));
}

#[test]
fn every_story_of_a_prerequisite_epic_must_be_verified() {
    let mut stories = vec![pending(1, EPIC_B), verified(2, EPIC_A), verified(3, EPIC_A), pending(4, EPIC_A)];
    let epic_edges = edges(&[(EPIC_B, EPIC_A)]);
    let graph = ProjectGraph::new(stories.clone(), &[], &epic_edges);
    assert_eq!(graph.blockers(id(1)), vec![id(4)]);
    stories[3] = verified(4, EPIC_A);
    let graph = ProjectGraph::new(stories, &[], &epic_edges);
    assert!(graph.is_ready(id(1)));
}

#[test]
fn ready_means_available_unlocked_and_unblocked() {
    use AgentStatus::*;
    for status in AgentStatus::ALL {
        let graph = ProjectGraph::new([node(1, EPIC_A, status, VerifiedStatus::Unverified)], &[], &[]);
        assert_eq!(graph.is_ready(id(1)), matches!(status, Pending | Contracted), "{status}");
        assert!(!graph.is_blocked(id(1)), "nothing to wait for: {status}");
    }
    // A claim whose lease ran out is available again; a live claim is not.
    for status in [Assigned, Implementing] {
        let stale = StoryNode { lease_expired: true, ..node(1, EPIC_A, status, VerifiedStatus::Unverified) };
        assert!(ProjectGraph::new([stale], &[], &[]).is_ready(id(1)), "{status}");
    }
    // A rejected story back in the queue is ready again.
    let graph = ProjectGraph::new([node(1, EPIC_A, Pending, VerifiedStatus::Rejected)], &[], &[]);
    assert!(graph.is_ready(id(1)));
}

#[test]
fn blocked_means_not_yet_claimed_and_waiting() {
    use AgentStatus::*;
    for status in AgentStatus::ALL {
        let graph = ProjectGraph::new(
            [node(1, EPIC_A, status, VerifiedStatus::Unverified), pending(2, EPIC_A)],
            &edges(&[(1, 2)]),
            &[],
        );
        assert_eq!(graph.is_blocked(id(1)), matches!(status, Pending | Contracted), "{status}");
        assert!(!graph.is_ready(id(1)));
        assert_eq!(graph.blockers(id(1)), vec![id(2)], "blockers do not depend on status");
    }
}

#[test]
fn a_locked_story_with_verified_dependencies_is_neither_ready_nor_blocked() {
    let mut locked = pending(1, EPIC_A);
    locked.escalation_locked = true;
    let graph = ProjectGraph::new([locked, verified(2, EPIC_A)], &edges(&[(1, 2)]), &[]);
    assert!(!graph.is_ready(id(1)));
    assert!(!graph.is_blocked(id(1)));
}

// ---- properties ------------------------------------------------------------------------------

fn random_edges(nodes: u128, max_edges: usize) -> impl Strategy<Value = Vec<(Uuid, Uuid)>> {
    prop::collection::vec((1..=nodes, 1..=nodes), 0..max_edges)
        .prop_map(|pairs| pairs.into_iter().map(|(from, to)| (id(from), id(to))).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Adding edges one by one, refusing none, leaves an acyclic graph exactly when
    /// `would_cycle` never fired; any cycle found is a real one.
    #[test]
    fn find_cycle_agrees_with_would_cycle(pairs in random_edges(8, 20)) {
        let mut accepted = Vec::new();
        let mut closed = false;
        for &(from, to) in &pairs {
            if would_cycle(&accepted, from, to) {
                closed = true;
            }
            accepted.push((from, to));
        }
        match find_cycle(&pairs) {
            None => prop_assert!(!closed),
            Some(cycle) => {
                prop_assert!(closed);
                assert_is_cycle(&cycle, &pairs);
            }
        }
    }

    /// Keeping only the edges `would_cycle` accepts always leaves a graph without cycles.
    #[test]
    fn accepting_only_safe_edges_keeps_the_graph_acyclic(pairs in random_edges(8, 30)) {
        let mut accepted: Vec<(Uuid, Uuid)> = Vec::new();
        for (from, to) in pairs {
            if !would_cycle(&accepted, from, to) {
                accepted.push((from, to));
            }
        }
        prop_assert_eq!(find_cycle(&accepted), None);
    }

    /// Ready and blocked follow from blockers, which are sorted, unique, unverified, and each a
    /// direct dependency or a story of an epic this story's epic depends on.
    #[test]
    fn ready_and_blocked_follow_from_blockers(
        stories in prop::collection::vec((0u128..3, 0usize..5, 0usize..3, any::<bool>(), any::<bool>()), 1..10),
        story_pairs in prop::collection::vec((0usize..10, 0usize..10), 0..15),
        epic_pairs in prop::collection::vec((0u128..3, 0u128..3), 0..4),
    ) {
        let nodes: Vec<StoryNode> = stories.iter().enumerate().map(|(n, &(epic, status, verdict, locked, expired))| StoryNode {
            id: id(n as u128 + 1),
            epic_id: id(EPIC_A + epic),
            agent_status: AgentStatus::ALL[status],
            verified_status: VerifiedStatus::ALL[verdict],
            escalation_locked: locked,
            lease_expired: expired && AgentStatus::ALL[status].in_flight(),
        }).collect();
        let story_edges: Vec<_> = story_pairs.iter().map(|&(a, b)| (id(a as u128 + 1), id(b as u128 + 1))).collect();
        let epic_edges: Vec<_> = epic_pairs.iter().map(|&(a, b)| (id(EPIC_A + a), id(EPIC_A + b))).collect();
        let graph = ProjectGraph::new(nodes.clone(), &story_edges, &epic_edges);
        for story in &nodes {
            let blockers = graph.blockers(story.id);
            prop_assert!(blockers.windows(2).all(|w| w[0] < w[1]), "sorted and unique: {:?}", blockers);
            for blocker in &blockers {
                let dep = nodes.iter().find(|n| n.id == *blocker).expect("a blocker is a known story");
                prop_assert!(dep.verified_status != VerifiedStatus::Verified);
                let direct = story_edges.contains(&(story.id, *blocker));
                let via_epic = epic_edges.contains(&(story.epic_id, dep.epic_id));
                prop_assert!(direct || via_epic);
            }
            // Every unverified direct dependency and prerequisite-epic story is a blocker.
            for dep in &nodes {
                let direct = story_edges.contains(&(story.id, dep.id));
                let via_epic = epic_edges.contains(&(story.epic_id, dep.epic_id));
                if (direct || via_epic) && dep.verified_status != VerifiedStatus::Verified {
                    prop_assert!(blockers.contains(&dep.id));
                }
            }
            let waiting = !blockers.is_empty();
            prop_assert_eq!(
                graph.is_ready(story.id),
                (matches!(story.agent_status, AgentStatus::Pending | AgentStatus::Contracted) || story.lease_expired)
                    && !story.escalation_locked
                    && !waiting
            );
            prop_assert_eq!(
                graph.is_blocked(story.id),
                matches!(story.agent_status, AgentStatus::Pending | AgentStatus::Contracted) && waiting
            );
        }
    }
}
