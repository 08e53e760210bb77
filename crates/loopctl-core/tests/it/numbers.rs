//! Story order: the sort key of a story number orders stories exactly as their numbers
//! compare numerically, `(major, minor)` with a bare major first, and no two valid numbers
//! share a key — for every minor, the four-digit ones included (the reference's key gave
//! `1.1001` and `2.1` the same one).

use loopctl_core::StoryNumber;
use proptest::prelude::*;

/// Any valid number, written as people write them (`2.1`, `US-2.1`, `7`).
fn number() -> impl Strategy<Value = (u32, Option<u32>)> {
    (0u32..=9_999, proptest::option::of(0u32..=9_999))
}

fn text((major, minor): (u32, Option<u32>)) -> String {
    match minor {
        Some(minor) => format!("{major}.{minor}"),
        None => major.to_string(),
    }
}

/// The numeric order: by major, then the bare major before any minor, then by minor.
fn numeric((major, minor): (u32, Option<u32>)) -> (u32, i64) {
    (major, minor.map_or(-1, i64::from))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn sort_key_order_is_the_numeric_order_and_keys_never_collide(a in number(), b in number()) {
        let key = |n| StoryNumber::parse(&text(n)).expect("a valid number").sort_key();
        prop_assert_eq!(key(a).cmp(&key(b)), numeric(a).cmp(&numeric(b)), "{} vs {}", text(a), text(b));
        if a != b {
            prop_assert_ne!(key(a), key(b), "{} and {} share a key", text(a), text(b));
        }
    }

    #[test]
    fn the_us_prefix_and_leading_zeros_do_not_change_the_key(n in number()) {
        let plain = StoryNumber::parse(&text(n)).expect("valid");
        let prefixed = StoryNumber::parse(&format!("US-{}", text(n))).expect("valid");
        prop_assert_eq!(plain.sort_key(), prefixed.sort_key());
        prop_assert_eq!(StoryNumber::parse(&plain.to_string()).expect("round trip"), plain);
    }

    #[test]
    fn numbers_above_9999_are_refused_with_the_limit(major in 10_000u64..=u64::MAX, minor in 0u32..=9_999) {
        let err = StoryNumber::parse(&format!("{major}.{minor}")).expect_err("too large");
        prop_assert!(err.contains("at most 9999"), "{}", err);
        let err = StoryNumber::parse(&format!("{minor}.{major}")).expect_err("too large");
        prop_assert!(err.contains("at most 9999"), "{}", err);
    }
}

/// Every valid number, not a sample: 100 million keys would be slow, so every minor of the
/// majors at the edges and around the old key's breaking point, and every major's bare key.
#[test]
fn keys_are_unique_and_ordered_over_every_minor_of_the_edge_majors() {
    let mut keys = Vec::new();
    for major in [0u32, 1, 2, 9_998, 9_999] {
        keys.push(StoryNumber::parse(&major.to_string()).expect("valid").sort_key());
        for minor in 0..=9_999u32 {
            keys.push(StoryNumber::parse(&format!("{major}.{minor}")).expect("valid").sort_key());
        }
    }
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "keys rise strictly in numeric order");
    let bare: Vec<i64> =
        (0..=9_999u32).map(|major| StoryNumber::parse(&major.to_string()).expect("valid").sort_key()).collect();
    assert!(bare.windows(2).all(|w| w[0] < w[1]));
    let last = StoryNumber::parse("9999.9999").expect("valid").sort_key();
    assert!(i32::try_from(last).is_ok(), "the largest key fits 32 bits: {last}");
}
