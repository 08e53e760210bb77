//! The dependency graph of a project: cycle checks, and which stories are ready or blocked.
//!
//! Edge meaning throughout: `(x, y)` says *x depends on y* (y must be verified first).

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::{AgentStatus, VerifiedStatus};

/// Whether adding the edge `from` depends on `to` would close a cycle in `edges`.
pub fn would_cycle(edges: &[(Uuid, Uuid)], from: Uuid, to: Uuid) -> bool {
    if from == to {
        return true;
    }
    let adjacency = adjacency(edges);
    reachable(&adjacency, to, from)
}

/// A cycle in `edges` if there is one, as the list of nodes around it.
pub fn find_cycle(edges: &[(Uuid, Uuid)]) -> Option<Vec<Uuid>> {
    let adjacency = adjacency(edges);
    // Iterative three-colour DFS so a deep chain of 100,000 stories cannot overflow the stack.
    let mut colour: HashMap<Uuid, u8> = HashMap::new();
    let mut starts: Vec<Uuid> = adjacency.keys().copied().collect();
    starts.sort();
    for start in starts {
        if colour.contains_key(&start) {
            continue;
        }
        let mut stack: Vec<(Uuid, usize)> = vec![(start, 0)];
        colour.insert(start, 1);
        while let Some(&mut (node, ref mut next_idx)) = stack.last_mut() {
            let neighbours = adjacency.get(&node).map(Vec::as_slice).unwrap_or(&[]);
            if let Some(&neighbour) = neighbours.get(*next_idx) {
                *next_idx += 1;
                match colour.get(&neighbour) {
                    Some(1) => {
                        let from = stack.iter().position(|(n, _)| *n == neighbour).unwrap_or(0);
                        return Some(stack[from..].iter().map(|(n, _)| *n).collect());
                    }
                    Some(_) => {}
                    None => {
                        colour.insert(neighbour, 1);
                        stack.push((neighbour, 0));
                    }
                }
            } else {
                colour.insert(node, 2);
                stack.pop();
            }
        }
    }
    None
}

fn adjacency(edges: &[(Uuid, Uuid)]) -> HashMap<Uuid, Vec<Uuid>> {
    let mut adjacency: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for &(from, to) in edges {
        adjacency.entry(from).or_default().push(to);
    }
    adjacency
}

fn reachable(adjacency: &HashMap<Uuid, Vec<Uuid>>, start: Uuid, target: Uuid) -> bool {
    let mut seen = HashSet::from([start]);
    let mut stack = vec![start];
    while let Some(node) = stack.pop() {
        if node == target {
            return true;
        }
        for &next in adjacency.get(&node).map(Vec::as_slice).unwrap_or(&[]) {
            if seen.insert(next) {
                stack.push(next);
            }
        }
    }
    false
}

/// One story as the ready/blocked computation sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoryNode {
    pub id: Uuid,
    pub epic_id: Uuid,
    pub agent_status: AgentStatus,
    pub verified_status: VerifiedStatus,
    pub escalation_locked: bool,
    /// Claimed, but the lease ran out (`StoryState::lease_expired`): available to take over.
    pub lease_expired: bool,
}

/// A project's stories and both levels of dependency edges.
#[derive(Debug, Default)]
pub struct ProjectGraph {
    stories: HashMap<Uuid, StoryNode>,
    stories_by_epic: HashMap<Uuid, Vec<Uuid>>,
    story_deps: HashMap<Uuid, Vec<Uuid>>,
    epic_deps: HashMap<Uuid, Vec<Uuid>>,
}

impl ProjectGraph {
    pub fn new(
        stories: impl IntoIterator<Item = StoryNode>,
        story_edges: &[(Uuid, Uuid)],
        epic_edges: &[(Uuid, Uuid)],
    ) -> ProjectGraph {
        let mut graph = ProjectGraph::default();
        for story in stories {
            graph.stories_by_epic.entry(story.epic_id).or_default().push(story.id);
            graph.stories.insert(story.id, story);
        }
        graph.story_deps = adjacency(story_edges);
        graph.epic_deps = adjacency(epic_edges);
        graph
    }

    /// The stories that keep `story_id` from being ready: unverified direct dependencies,
    /// and unverified stories of every epic its epic depends on. Sorted, without repeats.
    pub fn blockers(&self, story_id: Uuid) -> Vec<Uuid> {
        let Some(story) = self.stories.get(&story_id) else {
            return Vec::new();
        };
        let direct = self.story_deps.get(&story_id).into_iter().flatten().copied();
        let via_epics = self
            .epic_deps
            .get(&story.epic_id)
            .into_iter()
            .flatten()
            .flat_map(|epic| self.stories_by_epic.get(epic).into_iter().flatten().copied());
        let mut blockers: Vec<Uuid> = direct
            .chain(via_epics)
            .filter(|id| self.stories.get(id).is_some_and(|dep| dep.verified_status != VerifiedStatus::Verified))
            .collect();
        blockers.sort();
        blockers.dedup();
        blockers
    }

    /// Ready (available to an agent): pending or contracted and not yet claimed, or claimed
    /// with a lease that ran out; not locked by escalation; nothing blocking it.
    pub fn is_ready(&self, story_id: Uuid) -> bool {
        self.stories.get(&story_id).is_some_and(|story| {
            let available = matches!(story.agent_status, AgentStatus::Pending | AgentStatus::Contracted)
                || (story.agent_status.in_flight() && story.lease_expired);
            available && !story.escalation_locked && self.blockers(story_id).is_empty()
        })
    }

    /// Blocked: not yet claimed, and waiting for at least one unverified dependency.
    pub fn is_blocked(&self, story_id: Uuid) -> bool {
        self.stories.get(&story_id).is_some_and(|story| {
            matches!(story.agent_status, AgentStatus::Pending | AgentStatus::Contracted)
                && !self.blockers(story_id).is_empty()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<Uuid> {
        (0..n).map(|i| Uuid::from_u128(i as u128 + 1)).collect()
    }

    fn node(id: Uuid, epic_id: Uuid, verified: bool) -> StoryNode {
        StoryNode {
            id,
            epic_id,
            agent_status: if verified { AgentStatus::ReportedDone } else { AgentStatus::Pending },
            verified_status: if verified { VerifiedStatus::Verified } else { VerifiedStatus::Unverified },
            escalation_locked: false,
            lease_expired: false,
        }
    }

    #[test]
    fn self_edge_and_back_edge_are_cycles() {
        let n = ids(3);
        assert!(would_cycle(&[], n[0], n[0]));
        let chain = [(n[0], n[1]), (n[1], n[2])];
        assert!(would_cycle(&chain, n[2], n[0]));
        assert!(!would_cycle(&chain, n[0], n[2]));
    }

    #[test]
    fn find_cycle_names_the_loop() {
        let n = ids(4);
        assert_eq!(find_cycle(&[(n[0], n[1]), (n[1], n[2])]), None);
        let cycle = find_cycle(&[(n[0], n[1]), (n[1], n[2]), (n[2], n[0]), (n[3], n[0])]).expect("a cycle");
        assert_eq!(cycle.len(), 3);
        assert!(cycle.contains(&n[0]) && cycle.contains(&n[1]) && cycle.contains(&n[2]));
    }

    #[test]
    fn find_cycle_survives_a_very_long_chain() {
        let n = ids(100_001);
        let edges: Vec<_> = n.windows(2).map(|w| (w[0], w[1])).collect();
        assert_eq!(find_cycle(&edges), None);
    }

    #[test]
    fn story_waits_for_direct_and_epic_dependencies() {
        let n = ids(6);
        let (epic_a, epic_b) = (n[4], n[5]);
        let graph = ProjectGraph::new(
            [node(n[0], epic_a, false), node(n[1], epic_a, true), node(n[2], epic_b, false), node(n[3], epic_b, false)],
            &[(n[3], n[2])],
            &[(epic_b, epic_a)],
        );
        assert!(graph.is_ready(n[0]));
        assert_eq!(graph.blockers(n[2]), vec![n[0]]);
        assert_eq!(graph.blockers(n[3]), vec![n[0], n[2]]);
        assert!(graph.is_blocked(n[3]));
        assert!(!graph.is_ready(n[3]));
    }

    #[test]
    fn locked_stories_are_not_ready() {
        let n = ids(2);
        let mut story = node(n[0], n[1], false);
        story.escalation_locked = true;
        let graph = ProjectGraph::new([story], &[], &[]);
        assert!(!graph.is_ready(n[0]));
    }

    #[test]
    fn epic_dependency_on_an_empty_epic_is_satisfied() {
        let n = ids(3);
        let graph = ProjectGraph::new([node(n[0], n[1], false)], &[], &[(n[1], n[2])]);
        assert!(graph.is_ready(n[0]));
    }
}
