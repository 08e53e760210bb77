//! `/projects/<slug>/graph`: epics and stories as an SVG, in layers (a story sits one layer
//! right of the last thing it waits for), coloured by status, the ready frontier outlined,
//! each blocked story saying what it waits for. Above [`ONE_EPIC_ABOVE`] stories the page
//! shows one epic at a time.

use std::collections::{HashMap, HashSet};

use loopctl_api::{DependencyGraph, GraphStory, ProjectView};
use maud::{Markup, html};
use uuid::Uuid;

use crate::format::words;
use crate::{Section, Viewer, page};

/// Past this many stories the graph is drawn one epic at a time.
pub const ONE_EPIC_ABOVE: usize = 200;

const NODE_W: f64 = 170.0;
const NODE_H: f64 = 44.0;
const GAP_X: f64 = 70.0;
const GAP_Y: f64 = 14.0;
const MARGIN: f64 = 16.0;

/// Where each story is drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub id: Uuid,
    pub layer: usize,
    pub row: usize,
}

/// The layer of every story: 0 for one that waits for nothing, else one more than the
/// highest layer of the stories it waits for (directly, or through its epic's dependencies).
/// Rows follow the epics' and stories' work order within a layer. Edges into a cycle (which
/// the server refuses to store) would not terminate a naive walk, so depth is capped.
pub fn layout(graph: &DependencyGraph) -> Vec<Placed> {
    let epic_of: HashMap<Uuid, Uuid> =
        graph.epics.iter().flat_map(|e| e.stories.iter().map(move |s| (s.id, e.id))).collect();
    let mut waits: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    // Only edges between the stories drawn: one epic's graph does not walk the project.
    for edge in graph.story_dependencies.iter().filter(|e| epic_of.contains_key(&e.from) && epic_of.contains_key(&e.to))
    {
        waits.entry(edge.from).or_default().push(edge.to);
    }
    let epic_waits: HashMap<Uuid, Vec<Uuid>> = graph.epic_dependencies.iter().fold(HashMap::new(), |mut m, e| {
        m.entry(e.from).or_default().push(e.to);
        m
    });
    let stories_of: HashMap<Uuid, Vec<Uuid>> =
        graph.epics.iter().map(|e| (e.id, e.stories.iter().map(|s| s.id).collect())).collect();
    for (story, epic) in &epic_of {
        for waited_epic in epic_waits.get(epic).into_iter().flatten() {
            waits.entry(*story).or_default().extend(stories_of.get(waited_epic).into_iter().flatten());
        }
    }
    let order: Vec<Uuid> = graph.epics.iter().flat_map(|e| e.stories.iter().map(|s| s.id)).collect();
    let mut layer: HashMap<Uuid, usize> = HashMap::new();
    let cap = order.len();
    fn depth(
        id: Uuid,
        waits: &HashMap<Uuid, Vec<Uuid>>,
        layer: &mut HashMap<Uuid, usize>,
        on_path: &mut HashSet<Uuid>,
        cap: usize,
    ) -> usize {
        if let Some(known) = layer.get(&id) {
            return *known;
        }
        if !on_path.insert(id) || on_path.len() > cap {
            return 0;
        }
        let deepest = waits
            .get(&id)
            .into_iter()
            .flatten()
            .map(|to| depth(*to, waits, layer, on_path, cap) + 1)
            .max()
            .unwrap_or(0);
        on_path.remove(&id);
        layer.insert(id, deepest);
        deepest
    }
    let mut rows: HashMap<usize, usize> = HashMap::new();
    order
        .iter()
        .map(|id| {
            let l = depth(*id, &waits, &mut layer, &mut HashSet::new(), cap);
            let row = rows.entry(l).or_insert(0);
            let placed = Placed { id: *id, layer: l, row: *row };
            *row += 1;
            placed
        })
        .collect()
}

/// A layer taller than this is drawn in several columns side by side, so 200 stories with
/// few dependencies make a wide page rather than one column thousands of pixels tall.
pub const ROWS_PER_COLUMN: usize = 20;

/// Each placed story's (column, row) on the page: the layers left to right, each in as many
/// columns of [`ROWS_PER_COLUMN`] as it needs.
pub fn grid(placed: &[Placed]) -> Vec<(Uuid, usize, usize)> {
    let layers = placed.iter().map(|p| p.layer + 1).max().unwrap_or(0);
    let mut first_column = vec![0; layers + 1];
    for layer in 0..layers {
        let rows = placed.iter().filter(|p| p.layer == layer).count();
        first_column[layer + 1] = first_column[layer] + rows.div_ceil(ROWS_PER_COLUMN).max(1);
    }
    placed.iter().map(|p| (p.id, first_column[p.layer] + p.row / ROWS_PER_COLUMN, p.row % ROWS_PER_COLUMN)).collect()
}

/// What the graph page draws.
pub struct GraphPage<'a> {
    pub project: &'a ProjectView,
    pub graph: &'a DependencyGraph,
    /// The ready frontier (outlined).
    pub ready: &'a HashSet<Uuid>,
    /// Each blocked story's unverified blockers, as numbers.
    pub blocked: &'a HashMap<Uuid, Vec<String>>,
    /// The epic drawn alone (large projects).
    pub epic: Option<i64>,
}

fn status_class(story: &GraphStory) -> &'static str {
    match (story.verified_status.as_str(), story.agent_status.as_str()) {
        ("verified", _) => "st-verified",
        (_, "reported_done") => "st-reported",
        (_, "assigned" | "implementing") => "st-flight",
        ("rejected", _) => "st-rejected",
        (_, "contracted") => "st-contracted",
        _ => "st-pending",
    }
}

/// The graph as SVG, for the stories of `only` (one epic) or all.
fn svg(view: &GraphPage, only: Option<Uuid>) -> Markup {
    let graph = if let Some(epic) = only {
        let epic = view.graph.epics.iter().filter(|e| e.id == epic).cloned().collect();
        DependencyGraph {
            epics: epic,
            epic_dependencies: Vec::new(),
            story_dependencies: view.graph.story_dependencies.clone(),
        }
    } else {
        view.graph.clone()
    };
    let cells = grid(&layout(&graph));
    let at: HashMap<Uuid, (f64, f64)> = cells
        .iter()
        .map(|(id, col, row)| (*id, (MARGIN + *col as f64 * (NODE_W + GAP_X), MARGIN + *row as f64 * (NODE_H + GAP_Y))))
        .collect();
    let cols = cells.iter().map(|c| c.1 + 1).max().unwrap_or(1);
    let rows = cells.iter().map(|c| c.2 + 1).max().unwrap_or(1);
    let width = 2.0 * MARGIN + cols as f64 * NODE_W + (cols - 1) as f64 * GAP_X;
    let height = 2.0 * MARGIN + rows as f64 * NODE_H + (rows - 1) as f64 * GAP_Y;
    let stories: Vec<&GraphStory> = graph.epics.iter().flat_map(|e| e.stories.iter()).collect();
    let edges: Vec<((f64, f64), (f64, f64))> =
        graph.story_dependencies.iter().filter_map(|e| Some((*at.get(&e.to)?, *at.get(&e.from)?))).collect();
    let slug = &view.project.slug;
    html! {
        svg.graph xmlns="http://www.w3.org/2000/svg" width=(width) height=(height) viewBox=(format!("0 0 {width} {height}"))
            role="img" aria-label=(format!("Dependency graph of {} stories", stories.len())) {
            defs {
                marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path.arrowhead d="M 0 0 L 10 5 L 0 10 z" {}
                }
            }
            @for ((x1, y1), (x2, y2)) in &edges {
                @let (sx, sy, ex, ey) = (x1 + NODE_W, y1 + NODE_H / 2.0, *x2, y2 + NODE_H / 2.0);
                @let mid = (sx + ex) / 2.0;
                path.edge d=(format!("M {sx} {sy} C {mid} {sy}, {mid} {ey}, {ex} {ey}")) marker-end="url(#arrow)" {}
            }
            @for story in &stories {
                @if let Some((x, y)) = at.get(&story.id) {
                    @let ready = view.ready.contains(&story.id);
                    @let waits = view.blocked.get(&story.id);
                    a href=(format!("/projects/{slug}/stories/{}", story.number)) {
                        g.node.ready[ready].blocked[waits.is_some()] id=(format!("node-{}", story.number)) data-story=(story.number) {
                            title {
                                (story.number) " " (story.title) " — " (words(&story.agent_status)) ", " (words(&story.verified_status))
                                @if ready { " — ready" }
                                @if let Some(waits) = waits { " — waits for " (waits.join(", ")) }
                            }
                            rect class=(status_class(story)) x=(x) y=(y) width=(NODE_W) height=(NODE_H) rx="6" {}
                            text x=(x + 8.0) y=(y + 18.0) { (story.number) @if ready { " · ready" } }
                            text.sub x=(x + 8.0) y=(y + 35.0) { (story.title.chars().take(22).collect::<String>()) }
                        }
                    }
                }
            }
        }
    }
}

pub fn graph_page(viewer: &Viewer, view: &GraphPage) -> Markup {
    let slug = &view.project.slug;
    let total: usize = view.graph.epics.iter().map(|e| e.stories.len()).sum();
    let one_at_a_time = total > ONE_EPIC_ABOVE;
    let epic = view
        .epic
        .and_then(|n| view.graph.epics.iter().find(|e| e.number == n))
        .or_else(|| one_at_a_time.then(|| view.graph.epics.first()).flatten());
    let numbers: Vec<(Uuid, &str)> =
        view.graph.epics.iter().flat_map(|e| e.stories.iter().map(|s| (s.id, s.number.as_str()))).collect();
    let epic_titles: HashMap<Uuid, String> =
        view.graph.epics.iter().map(|e| (e.id, format!("{} {}", e.number, e.title))).collect();
    let live = format!("/dashboard/events?project_id={}", view.project.id);
    page(
        viewer,
        Some(Section::Projects),
        &format!("{} graph", view.project.name),
        Some(&live),
        html! {
            h1 { (view.project.name) ": dependency graph" }
            p.links { a href=(format!("/projects/{slug}")) { "Board" } " · " strong { "Dependency graph" } }
            ul.legend {
                @for (class, name) in [("st-pending", "pending"), ("st-contracted", "contracted"), ("st-flight", "in flight"), ("st-reported", "reported"), ("st-verified", "verified"), ("st-rejected", "rejected")] {
                    li { span class=(format!("swatch {class}")) {} (name) }
                }
                li { span.swatch.ready-mark {} "ready (outlined)" }
            }
            @if one_at_a_time || view.epic.is_some() {
                nav.epics aria-label="Epics" {
                    "Epic: "
                    @for e in &view.graph.epics {
                        @if epic.is_some_and(|shown| shown.id == e.id) { strong { (e.number) " " (e.title) } } @else {
                            a href=(format!("/projects/{slug}/graph?epic={}", e.number)) { (e.number) " " (e.title) }
                        }
                        " "
                    }
                    @if !one_at_a_time { a href=(format!("/projects/{slug}/graph")) { "all" } }
                }
            }
            @if !view.graph.epic_dependencies.is_empty() {
                p.muted {
                    "Epic dependencies: "
                    @for e in &view.graph.epic_dependencies {
                        (epic_titles.get(&e.from).map_or("?", String::as_str)) " waits for " (epic_titles.get(&e.to).map_or("?", String::as_str)) "; "
                    }
                }
            }
            div.graph-scroll { (svg(view, epic.map(|e| e.id))) }
            @if !view.blocked.is_empty() {
                h2 { "Blocked" }
                ul.blocked {
                    @for (id, number) in &numbers {
                        @if let Some(waits) = view.blocked.get(id) {
                            li { a href=(format!("/projects/{slug}/stories/{number}")) { (number) } " waits for " (waits.join(", ")) }
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use loopctl_api::{Edge, GraphEpic};

    use super::*;

    fn story(n: &str) -> GraphStory {
        GraphStory {
            id: Uuid::now_v7(),
            number: n.into(),
            title: n.into(),
            agent_status: "pending".into(),
            verified_status: "unverified".into(),
            sort_key: 0,
        }
    }

    fn epic(number: i64, stories: Vec<GraphStory>) -> GraphEpic {
        GraphEpic { id: Uuid::now_v7(), number, title: format!("E{number}"), phase: None, position: number, stories }
    }

    #[test]
    fn a_story_sits_one_layer_right_of_the_last_thing_it_waits_for_through_stories_and_epics() {
        let (a, b, c, d) = (story("1.1"), story("1.2"), story("1.3"), story("2.1"));
        let (ids, one) = ([a.id, b.id, c.id, d.id], epic(1, vec![a, b, c]));
        let two = epic(2, vec![d]);
        let graph = DependencyGraph {
            epic_dependencies: vec![Edge { from: two.id, to: one.id }],
            epics: vec![one, two],
            story_dependencies: vec![Edge { from: ids[1], to: ids[0] }, Edge { from: ids[2], to: ids[1] }],
        };
        let layers: Vec<usize> = layout(&graph).iter().map(|p| p.layer).collect();
        assert_eq!(layers, vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_cycle_no_store_would_keep_still_lays_out() {
        let (a, b) = (story("1.1"), story("1.2"));
        let (x, y) = (a.id, b.id);
        let graph = DependencyGraph {
            epics: vec![epic(1, vec![a, b])],
            epic_dependencies: Vec::new(),
            story_dependencies: vec![Edge { from: x, to: y }, Edge { from: y, to: x }],
        };
        assert_eq!(layout(&graph).len(), 2);
    }

    #[test]
    fn a_tall_layer_wraps_into_columns_and_the_next_layer_starts_right_of_them() {
        let (one, two) = (Uuid::now_v7(), Uuid::now_v7());
        let mut placed: Vec<Placed> = (0..45).map(|row| Placed { id: Uuid::now_v7(), layer: 0, row }).collect();
        placed[44].id = one;
        placed.push(Placed { id: two, layer: 1, row: 0 });
        let cells = grid(&placed);
        let of = |id: Uuid| cells.iter().find(|c| c.0 == id).map(|c| (c.1, c.2));
        assert_eq!(of(one), Some((2, 4)), "row 44 is the fifth of the third column");
        assert_eq!(of(two), Some((3, 0)), "layer 1 starts after layer 0's three columns");
    }

    #[test]
    fn stories_of_one_layer_stack_in_rows() {
        let graph = DependencyGraph {
            epics: vec![epic(1, vec![story("1.1"), story("1.2"), story("1.3")])],
            epic_dependencies: Vec::new(),
            story_dependencies: Vec::new(),
        };
        let rows: Vec<(usize, usize)> = layout(&graph).iter().map(|p| (p.layer, p.row)).collect();
        assert_eq!(rows, vec![(0, 0), (0, 1), (0, 2)]);
    }
}
