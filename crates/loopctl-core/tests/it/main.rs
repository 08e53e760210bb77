//! The one integration-test binary of `loopctl-core`: table-driven transition tests through
//! one `check` helper, custody and claim-fence stories, escalation, property tests over random
//! command sequences, and the dependency graph.

mod contract;
mod custody;
mod escalation;
mod fence;
mod flows;
mod graph;
mod matrix;
mod numbers;
mod properties;
mod roles;
mod support;
