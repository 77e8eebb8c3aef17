//! The requests of `harden predict --serve-stdin`: one JSON object per line.
//!
//! ```text
//! {"texts": ["a fine film", "dull"]}
//! {"rows": [[5.1, 3.5, 1.4, 0.2]], "id": 7}
//! {"images": [[0.0, 0.5, ...], [[0.0, ...], ...]]}
//! ```
//!
//! Exactly one of `texts`, `rows` and `images`, with at least one input; `id` (any JSON value)
//! is echoed in the answer. Images are numbers in `[0, 1]`, flat or nested (`[H][W]`,
//! `[C][H][W]`); rows are the raw feature values the run's scaler reads. Everything else is
//! refused with a message that names what is wrong.

use serde_json::Value;

/// The inputs of one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Inputs {
    /// Texts, none empty.
    Texts(Vec<String>),
    /// Table rows of raw feature values, each finite.
    Rows(Vec<Vec<f32>>),
    /// Images, each flattened, values in `[0, 1]`.
    Images(Vec<Vec<f32>>),
}

impl Inputs {
    /// The request key of this kind of input.
    pub fn key(&self) -> &'static str {
        match self {
            Self::Texts(_) => "texts",
            Self::Rows(_) => "rows",
            Self::Images(_) => "images",
        }
    }
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The `id` to echo, if the request had one.
    pub id: Option<Value>,
    /// What to classify.
    pub inputs: Inputs,
}

/// The part of a bad request that a client can still use: its `id`, when it could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestError {
    /// The request's `id`, if the line was a JSON object with one.
    pub id: Option<Value>,
    /// What is wrong, in one line.
    pub message: String,
}

/// Keys a request may have.
const KEYS: [&str; 4] = ["id", "texts", "rows", "images"];

/// Nesting allowed in one image (`[C][H][W]` plus the flat case).
const MAX_IMAGE_DEPTH: usize = 3;

/// Parses one request line (bytes, as read; a trailing newline is allowed).
///
/// # Errors
///
/// A [`RequestError`] for a line that is not UTF-8, not JSON, not an object, has an unknown
/// key, not exactly one kind of input, no input, or an input of the wrong type.
pub fn parse(line: &[u8]) -> Result<Request, RequestError> {
    let text = std::str::from_utf8(line).map_err(|e| RequestError {
        id: None,
        message: format!(
            "the request is not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        ),
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| RequestError {
        id: None,
        message: format!("the request is not JSON: {e}"),
    })?;
    let Value::Object(map) = value else {
        return Err(RequestError {
            id: None,
            message: format!(
                "a request is a JSON object with one of \"texts\", \"rows\" or \"images\", not {}",
                kind_of(&value)
            ),
        });
    };
    let id = map.get("id").cloned();
    let fail = |message: String| RequestError {
        id: id.clone(),
        message,
    };
    if let Some(key) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(fail(format!(
            "unknown key {key:?}: a request has \"texts\", \"rows\" or \"images\", and \"id\""
        )));
    }
    let given: Vec<&str> = KEYS[1..]
        .iter()
        .copied()
        .filter(|k| map.contains_key(*k))
        .collect();
    let [key] = given[..] else {
        return Err(fail(format!(
            "a request has exactly one of \"texts\", \"rows\" or \"images\"; this one has {}",
            if given.is_empty() {
                "none".to_string()
            } else {
                given.join(" and ")
            }
        )));
    };
    let Some(Value::Array(items)) = map.get(key) else {
        return Err(fail(format!("\"{key}\" must be an array")));
    };
    if items.is_empty() {
        return Err(fail(format!("\"{key}\" is empty: nothing to classify")));
    }
    let inputs = match key {
        "texts" => Inputs::Texts(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) if s.trim().is_empty() => {
                        Err(format!("texts[{i}] is empty: there is nothing to classify"))
                    }
                    Value::String(s) => Ok(s.clone()),
                    other => Err(format!("texts[{i}] is {}, not a string", kind_of(other))),
                })
                .collect::<Result<_, _>>()
                .map_err(fail)?,
        ),
        "rows" => Inputs::Rows(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Array(values) => numbers(values, &format!("rows[{i}]")),
                    other => Err(format!(
                        "rows[{i}] is {}, not an array of numbers",
                        kind_of(other)
                    )),
                })
                .collect::<Result<_, _>>()
                .map_err(fail)?,
        ),
        _ => Inputs::Images(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| image(v, &format!("images[{i}]")))
                .collect::<Result<_, _>>()
                .map_err(fail)?,
        ),
    };
    Ok(Request { id, inputs })
}

/// `values` as finite `f32`s; `at` names them in errors.
fn numbers(values: &[Value], at: &str) -> Result<Vec<f32>, String> {
    values
        .iter()
        .enumerate()
        .map(|(j, v)| {
            let x = v
                .as_f64()
                .ok_or_else(|| format!("{at}[{j}] is {}, not a number", kind_of(v)))?;
            let x32 = x as f32;
            if x32.is_finite() {
                Ok(x32)
            } else {
                Err(format!("{at}[{j}] = {x} is outside the range of f32"))
            }
        })
        .collect()
}

/// One image, flat or nested, flattened; every value a number in `[0, 1]`.
fn image(value: &Value, at: &str) -> Result<Vec<f32>, String> {
    let mut out = Vec::new();
    flatten(value, at, 0, &mut out)?;
    if out.is_empty() {
        return Err(format!("{at} is empty"));
    }
    Ok(out)
}

fn flatten(value: &Value, at: &str, depth: usize, out: &mut Vec<f32>) -> Result<(), String> {
    match value {
        Value::Array(items) if depth < MAX_IMAGE_DEPTH => {
            for (j, item) in items.iter().enumerate() {
                flatten(item, &format!("{at}[{j}]"), depth + 1, out)?;
            }
            Ok(())
        }
        Value::Number(n) if depth > 0 => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if (0.0..=1.0).contains(&x) {
                out.push(x as f32);
                Ok(())
            } else {
                Err(format!(
                    "{at} = {n}: pixel values are in [0, 1] (divide 8-bit pixels by 255)"
                ))
            }
        }
        Value::Array(_) => Err(format!(
            "{at} is nested too deeply: an image is flat, [H][W] or [C][H][W]"
        )),
        other => Err(format!(
            "{at} is {}, not {}",
            kind_of(other),
            if depth == 0 {
                "an array of pixel values"
            } else {
                "a number"
            }
        )),
    }
}

/// `a string`, `an object`, ... for messages.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn count(inputs: &Inputs) -> usize {
        match inputs {
            Inputs::Texts(t) => t.len(),
            Inputs::Rows(r) | Inputs::Images(r) => r.len(),
        }
    }

    fn err(line: &str) -> String {
        parse(line.as_bytes()).unwrap_err().message
    }

    #[test]
    fn each_kind_of_request_parses() {
        let r = parse(br#"{"texts": ["a fine film", "dull"], "id": 3}"#).unwrap();
        assert_eq!(r.id, Some(serde_json::json!(3)));
        assert_eq!(
            r.inputs,
            Inputs::Texts(vec!["a fine film".into(), "dull".into()])
        );
        let r = parse(b"{\"rows\": [[1, -2.5, 1e3]]}\n").unwrap();
        assert_eq!(r.inputs, Inputs::Rows(vec![vec![1.0, -2.5, 1000.0]]));
        let r = parse(br#"{"images": [[0, 0.5, 1], [[0, 1], [1, 0]], [[[0.25]]]]}"#).unwrap();
        assert_eq!(
            r.inputs,
            Inputs::Images(vec![
                vec![0.0, 0.5, 1.0],
                vec![0.0, 1.0, 1.0, 0.0],
                vec![0.25]
            ])
        );
        assert_eq!(count(&r.inputs), 3);
        assert_eq!(r.inputs.key(), "images");
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        for (line, needle) in [
            ("", "not JSON"),
            ("texts: [a]", "not JSON"),
            ("[\"a\"]", "not an array"),
            ("42", "not a number"),
            ("{}", "has none"),
            (r#"{"id": 1}"#, "has none"),
            (r#"{"texts": ["a"], "rows": [[1]]}"#, "texts and rows"),
            (r#"{"text": ["a"]}"#, "unknown key \"text\""),
            (r#"{"texts": "a"}"#, "must be an array"),
            (r#"{"texts": []}"#, "empty"),
            (r#"{"texts": ["a", ""]}"#, "texts[1] is empty"),
            (r#"{"texts": ["a", "  "]}"#, "texts[1] is empty"),
            (r#"{"texts": ["a", 3]}"#, "texts[1] is a number"),
            (r#"{"rows": [1, 2]}"#, "rows[0] is a number"),
            (r#"{"rows": [[1, "2"]]}"#, "rows[0][1] is a string"),
            (r#"{"rows": [[1e39]]}"#, "outside the range of f32"),
            (r#"{"images": [[0.5, 2]]}"#, "images[0][1] = 2"),
            (r#"{"images": [[-0.1]]}"#, "pixel values are in [0, 1]"),
            (r#"{"images": [[[[[0]]]]]}"#, "nested too deeply"),
            (r#"{"images": [[]]}"#, "images[0] is empty"),
            (
                r#"{"images": [0.5]}"#,
                "images[0] is a number, not an array",
            ),
            (r#"{"images": [[null]]}"#, "images[0][0] is null"),
        ] {
            let message = err(line);
            assert!(message.contains(needle), "{line}: {message}");
            assert!(!message.contains('\n'), "{line}: {message}");
        }
        let e = parse(b"{\"texts\": [\"\\u00e9\", 1], \"id\": \"q7\"}").unwrap_err();
        assert_eq!(
            e.id,
            Some(serde_json::json!("q7")),
            "the id survives an error"
        );
        let e = parse(b"{\"texts\": [\"caf\xe9\"]}").unwrap_err();
        assert!(
            e.message.contains("not UTF-8") && e.message.contains("offset 15"),
            "{e:?}"
        );
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<f64>().prop_map(|x| serde_json::json!(x)),
            (-3i64..3).prop_map(|x| serde_json::json!(x)),
            "[a-z ]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop_oneof![
                            Just("texts".to_string()),
                            Just("rows".to_string()),
                            Just("images".to_string()),
                            Just("id".to_string()),
                            "[a-z]{1,5}"
                        ],
                        inner
                    ),
                    0..4
                )
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any bytes at all: an answer or a one-line error, never a panic.
        #[test]
        fn any_bytes_parse_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Err(e) = parse(&bytes) {
                prop_assert!(!e.message.is_empty() && !e.message.contains('\n'));
            }
        }

        /// Any JSON value: a parsed request keeps the invariants its consumers rely on.
        #[test]
        fn any_json_parses_to_a_valid_request_or_fails_cleanly(value in json_value()) {
            match parse(value.to_string().as_bytes()) {
                Ok(r) => {
                    prop_assert!(count(&r.inputs) > 0);
                    match &r.inputs {
                        Inputs::Texts(t) => prop_assert!(t.iter().all(|s| !s.trim().is_empty())),
                        Inputs::Rows(rows) => prop_assert!(rows.iter().flatten().all(|x| x.is_finite())),
                        Inputs::Images(images) => prop_assert!(images.iter().all(|i| !i.is_empty()
                            && i.iter().all(|x| (0.0..=1.0).contains(x)))),
                    }
                }
                Err(e) => prop_assert!(!e.message.is_empty() && !e.message.contains('\n')),
            }
        }
    }
}
