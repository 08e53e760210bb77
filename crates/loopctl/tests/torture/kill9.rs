//! `kill -9` of a real `loopctl serve` on a SQLite file in the middle of ~1,000 concurrent
//! transitions: whatever was acknowledged is on disk after a restart, and the change feed
//! has neither a hole nor an event for a transition that did not happen.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::support::*;

const AGENTS: usize = 20;
/// Four steps each: 1,000 transitions.
const STORIES: usize = 250;

/// What one agent saw: the steps acknowledged (story id, step), in order, and the step that
/// was on the wire when the server died (it may or may not have been committed).
struct Worker {
    acked: Vec<(String, usize)>,
    unknown: Option<(String, usize)>,
}

/// Twenty agents take 250 stories through contract → claim → start → report concurrently;
/// the server is killed with SIGKILL after a random number of acknowledgements. After a
/// restart on the same file every acknowledged step is there (a story is at least as far as
/// its last acknowledged step, and at most one unacknowledged step further), the feed's
/// cursors run without a hole, and each story's transition events are exactly its steps.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_transition_survives_kill_9() {
    let started = Instant::now();
    let seed = seed("kill -9");
    let sandbox = Sandbox::new("loopctl-torture-kill-");
    let db = sandbox.data_dir().join("loopctl.db").to_string_lossy().into_owned();
    let t = admin_init(&sandbox, &db, "Crash");
    let mut served = serve(&sandbox, &db);
    let api = served.api.clone();
    unleash(&api, &t.user).await;
    let ids = seed_with(&api, &t.orch, "Crash course", &flat_doc(STORIES)).await;
    let keys = agents(&api, &t.user, AGENTS, "crasher").await;
    let stories: Vec<(String, String)> = ids.stories.clone().into_iter().collect();

    let acks = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for (i, (raw, _)) in keys.iter().cloned().enumerate() {
        let mine: Vec<(String, String)> = stories.iter().skip(i).step_by(AGENTS).cloned().collect();
        let (api, acks) = (api.clone(), acks.clone());
        set.spawn(async move {
            let mut me = Worker { acked: Vec::new(), unknown: None };
            for (number, story) in mine {
                for (step, (verb, _)) in STEPS.iter().enumerate() {
                    let path = format!("/api/v1/stories/{story}/{verb}");
                    let call = try_call(&api, reqwest::Method::POST, &raw, &path, &step_body(step, &number)).await;
                    match call.answer {
                        Ok(resp) if (200..300).contains(&resp.status) => {
                            me.acked.push((story.clone(), step));
                            acks.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(resp) => panic!("{}: refused before the kill: {} {}", resp.desc, resp.status, resp.body),
                        Err(_) => {
                            me.unknown = Some((story, step));
                            return me;
                        }
                    }
                }
            }
            me
        });
    }

    // A random moment in the middle: after 15 % to 85 % of the transitions.
    let total = STORIES * STEPS.len();
    let kill_after = total * 15 / 100 + (seed as usize) % (total * 70 / 100);
    let deadline = Instant::now() + Duration::from_secs(40);
    while acks.load(Ordering::SeqCst) < kill_after {
        assert!(Instant::now() < deadline, "only {} transitions within 40 s", acks.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    served.proc.kill();
    let killed_at = acks.load(Ordering::SeqCst);
    let workers = set.join_all().await;
    let in_flight = workers.iter().filter(|w| w.unknown.is_some()).count();
    assert!(in_flight > 0, "the kill landed while requests were on the wire");

    // The same file, a new process.
    let served = serve(&sandbox, &db);
    let api = served.api;
    let mut last_acked: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unknown: BTreeMap<&str, usize> = BTreeMap::new();
    let mut acked: BTreeSet<(&str, usize)> = BTreeSet::new();
    for w in &workers {
        for (story, step) in &w.acked {
            last_acked.insert(story, *step);
            acked.insert((story, *step));
        }
        if let Some((story, step)) = &w.unknown {
            unknown.insert(story, *step);
        }
    }
    let resp = api.get(&t.orch, &format!("/api/v1/stories?project_id={}&limit=500", ids.project)).await;
    let listed = resp.ok(200)["data"].as_array().expect("data is an array").clone();
    assert_eq!(listed.len(), STORIES);
    let mut state: BTreeMap<String, Option<usize>> = BTreeMap::new();
    for st in &listed {
        let id = s(&st["id"]);
        let now = reached(&st["agent_status"]);
        let floor = last_acked.get(id.as_str()).copied();
        let ceiling = match unknown.get(id.as_str()) {
            Some(&step) => Some(step),
            None => floor,
        };
        assert!(now >= floor, "story {id} is at {now:?} after the restart, but step {floor:?} was acknowledged");
        assert!(now <= ceiling, "story {id} is at {now:?}, past its last step sent ({ceiling:?})");
        state.insert(id, now);
    }

    // The feed: cursors without a hole, every acknowledged step with its event, and no event
    // for a step the story did not take.
    let feed = all_changes(&api, &t.orch, None).await;
    let cursors: Vec<i64> = feed.iter().map(|e| e["cursor"].as_i64().expect("cursor")).collect();
    for pair in cursors.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "the change feed has a hole or goes back between cursors {pair:?}");
    }
    let mut steps_of: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for event in feed.iter().filter(|e| e["entity_type"] == "story" && e["action"] == "status_changed") {
        let transition = event["new_state"]["transition"].as_str().expect("a transition name");
        let step = STEPS.iter().position(|(name, _)| *name == transition).expect("an implementer's step");
        steps_of.entry(s(&event["entity_id"])).or_default().push(step);
    }
    for (story, step) in &acked {
        assert!(
            steps_of.get(*story).is_some_and(|steps| steps.contains(step)),
            "acknowledged step {} of story {story} has no event",
            STEPS[*step].0
        );
    }
    for (story, now) in &state {
        let expected: Vec<usize> = now.map_or(Vec::new(), |n| (0..=n).collect());
        let got = steps_of.get(story).cloned().unwrap_or_default();
        assert_eq!(got, expected, "the events of story {story} are exactly the steps it took");
    }
    let survived: usize = state.values().map(|n| n.map_or(0, |n| n + 1)).sum();
    eprintln!(
        "kill -9 after {killed_at} of {total} acknowledgements ({in_flight} requests on the wire): \
         {survived} transitions on disk, {} events, in {:?}",
        cursors.len(),
        started.elapsed()
    );
}
