//! Free JSON a caller writes — metadata of projects, epics, stories and agents, review
//! findings, artifact details, orchestrator state — is bounded on every write, so that what
//! is stored reads back, exports and imports again on both stores, and no client or sum meets
//! a number it cannot hold:
//!
//! - at most [`MAX_DEPTH`] levels of objects and arrays (the outer object is level 1): an
//!   export wraps story metadata in five more levels, far below the 128 a JSON body may nest;
//! - a size bound per kind ([`MAX_METADATA_BYTES`] for metadata);
//! - numbers within ±[`MAX_SAFE_INTEGER`] (what every JSON reader, JavaScript's included,
//!   holds exactly), and `-0.0` stored as `0.0`.

use serde_json::{Number, Value};

use crate::{AppError, AppResult};

/// The deepest nesting a free JSON object may have, the object itself being level 1.
pub const MAX_DEPTH: usize = 32;
/// Metadata of one project, epic, story or agent, as JSON text.
pub const MAX_METADATA_BYTES: usize = 64 << 10;
/// Other free objects (findings, artifact details, orchestrator state): the body limit.
pub const MAX_FREE_JSON_BYTES: usize = 1 << 20;
/// 2^53 − 1.
pub const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

/// What is wrong, and where inside the value (`a.b[2]`).
struct Problem {
    what: String,
    path: Vec<String>,
}

/// Checks a free JSON object (absent or null is `{}`) and answers it with `-0.0` as `0.0`.
///
/// # Errors
/// `validation_failed` naming `field`, the limit, and where inside the value it is broken.
pub(crate) fn object(field: &str, value: Option<Value>, max_bytes: usize) -> AppResult<Value> {
    let mut value = match value {
        None | Some(Value::Null) => return Ok(Value::Object(serde_json::Map::new())),
        Some(v @ Value::Object(_)) => v,
        Some(_) => return Err(AppError::field(field, "must be a JSON object")),
    };
    if let Err(problem) = walk(&mut value, 1) {
        let inside: Vec<String> = problem.path.into_iter().rev().collect();
        let at = if inside.is_empty() { String::new() } else { format!(" at `{}`", inside.join("")) };
        return Err(AppError::field(field, format!("{}{at}", problem.what)));
    }
    let size = value.to_string().len();
    if size > max_bytes {
        return Err(AppError::field(
            field,
            format!(
                "is {size} bytes as JSON, more than the {} KiB allowed; keep large data elsewhere and link to it",
                max_bytes >> 10
            ),
        ));
    }
    Ok(value)
}

fn walk(value: &mut Value, depth: usize) -> Result<(), Problem> {
    let too_deep = || Problem {
        what: format!(
            "nests more than {MAX_DEPTH} levels of objects and arrays (the outer object is level 1); flatten it"
        ),
        path: Vec::new(),
    };
    match value {
        Value::Object(map) => {
            if depth > MAX_DEPTH {
                return Err(too_deep());
            }
            for (key, child) in map.iter_mut() {
                walk(child, depth + 1).map_err(|mut p| {
                    p.path.push(format!(".{key}"));
                    p
                })?;
            }
        }
        Value::Array(items) => {
            if depth > MAX_DEPTH {
                return Err(too_deep());
            }
            for (idx, child) in items.iter_mut().enumerate() {
                walk(child, depth + 1).map_err(|mut p| {
                    p.path.push(format!("[{idx}]"));
                    p
                })?;
            }
        }
        Value::Number(number) => {
            if let Some(normal) = bounded(number)? {
                *number = normal;
            }
        }
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
    Ok(())
}

/// Refuses a number outside ±(2^53 − 1); answers `0.0` for `-0.0`.
fn bounded(number: &Number) -> Result<Option<Number>, Problem> {
    let out_of_range = || Problem {
        what: format!(
            "holds the number {number}, outside ±{MAX_SAFE_INTEGER} (the integers every JSON reader holds exactly); send it as a string"
        ),
        path: Vec::new(),
    };
    if let Some(int) = number.as_i64() {
        return if int.unsigned_abs() > MAX_SAFE_INTEGER { Err(out_of_range()) } else { Ok(None) };
    }
    if let Some(unsigned) = number.as_u64() {
        return if unsigned > MAX_SAFE_INTEGER { Err(out_of_range()) } else { Ok(None) };
    }
    let float = number.as_f64().ok_or_else(out_of_range)?;
    #[expect(clippy::cast_precision_loss, reason = "2^53 - 1 is exact in an f64")]
    let limit = MAX_SAFE_INTEGER as f64;
    if !float.is_finite() || float.abs() > limit {
        return Err(out_of_range());
    }
    if float == 0.0 && float.is_sign_negative() {
        return Ok(Number::from_f64(0.0));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn nested(levels: usize) -> Value {
        let mut value = json!({"leaf": true});
        for _ in 1..levels {
            value = json!({ "a": value });
        }
        value
    }

    #[test]
    fn the_deepest_accepted_object_is_32_levels() {
        assert!(object("metadata", Some(nested(MAX_DEPTH)), MAX_METADATA_BYTES).is_ok());
        let err = object("metadata", Some(nested(MAX_DEPTH + 1)), MAX_METADATA_BYTES).expect_err("too deep");
        assert_eq!(err.code, loopctl_api::ErrorCode::ValidationFailed);
        assert!(err.message.starts_with("metadata: nests more than 32 levels"), "{}", err.message);
        assert!(err.details.is_some_and(|d| d["metadata"].is_array()));
        let mut list = json!(1);
        for _ in 1..MAX_DEPTH {
            list = json!([list]);
        }
        assert!(object("metadata", Some(json!({ "list": list.clone() })), MAX_METADATA_BYTES).is_ok());
        let deeper = json!({ "list": [list] });
        assert!(object("metadata", Some(deeper), MAX_METADATA_BYTES).is_err(), "arrays count as levels");
    }

    #[test]
    fn negative_zero_is_stored_as_zero_and_big_numbers_are_refused_where_they_are() {
        let value: Value = serde_json::from_str(r#"{"a": -0.0, "b": [-0], "c": 1.5}"#).expect("json");
        let stored = object("metadata", Some(value), MAX_METADATA_BYTES).expect("accepted");
        assert_eq!(stored.to_string(), r#"{"a":0.0,"b":[0.0],"c":1.5}"#);
        for big in ["9007199254740992", "-9007199254740992", "1e300", "18446744073709551615"] {
            let value: Value = serde_json::from_str(&format!(r#"{{"x": {{"y": [1, {big}]}}}}"#)).expect("json");
            let err = object("metadata", Some(value), MAX_METADATA_BYTES).expect_err(big);
            assert!(err.message.contains("at `.x.y[1]`") && err.message.contains("as a string"), "{}", err.message);
        }
        let edge = json!({"max": 9_007_199_254_740_991_i64, "min": -9_007_199_254_740_991_i64});
        assert!(object("metadata", Some(edge), MAX_METADATA_BYTES).is_ok());
    }

    #[test]
    fn metadata_larger_than_64_kib_is_refused_naming_the_limit() {
        let big = json!({"text": "x".repeat(MAX_METADATA_BYTES)});
        let err = object("metadata", Some(big), MAX_METADATA_BYTES).expect_err("too large");
        assert!(err.message.contains("64 KiB"), "{}", err.message);
        assert!(object("metadata", Some(json!([])), MAX_METADATA_BYTES).is_err(), "must be an object");
        assert_eq!(object("metadata", None, MAX_METADATA_BYTES).expect("empty"), json!({}));
    }
}
