//! Ordering segments so each is recomputed after the segments it reads.
//!
//! `in_segment("x")` and `exclude = ["x"]` read x's *current* membership, so recompute must compute
//! x first in the same run; a cycle has no such order and is a configuration error, as is a
//! reference to a segment that does not exist (it would silently read as empty).

use std::collections::HashMap;

use thiserror::Error;

/// Why no recompute order exists.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DependencyError {
    /// Segments that (transitively) read themselves; the path starts and ends with the same name.
    #[error("segment dependency cycle: {}", .path.join(" -> "))]
    Cycle {
        /// e.g. `["a", "b", "a"]`.
        path: Vec<String>,
    },
    /// A segment reads a segment that is not defined.
    #[error("segment \"{segment}\" depends on unknown segment \"{missing}\"")]
    UnknownSegment {
        /// The segment whose rule or `exclude` names the missing one.
        segment: String,
        /// The name that is not defined.
        missing: String,
    },
    /// Two definitions share a name.
    #[error("segment \"{0}\" is defined more than once")]
    Duplicate(String),
}

/// The name the brief of this module gave the error; kept so callers can use either.
pub type CycleError = DependencyError;

/// Orders segment names so every segment comes after its dependencies.
///
/// `defs` pairs each segment with the names it depends on (its rule's [`super::Expr::segment_refs`]
/// plus its `exclude` list). The order is a depth-first post-order over the input order: segments
/// with no dependency relation keep their input order, and a segment is moved only as far as needed
/// to follow its dependencies.
pub fn order_segments(defs: &[(String, Vec<String>)]) -> Result<Vec<String>, DependencyError> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, (name, _)) in defs.iter().enumerate() {
        if index.insert(name.as_str(), i).is_some() {
            return Err(DependencyError::Duplicate(name.clone()));
        }
    }
    for (name, deps) in defs {
        if let Some(missing) = deps.iter().find(|d| !index.contains_key(d.as_str())) {
            return Err(DependencyError::UnknownSegment {
                segment: name.clone(),
                missing: missing.clone(),
            });
        }
    }
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        Visiting,
        Done,
    }
    let mut state = vec![State::New; defs.len()];
    let mut order = Vec::with_capacity(defs.len());
    // Explicit stack of (segment, next dependency to look at) instead of recursion: deep chains of
    // segments cannot overflow the stack.
    for root in 0..defs.len() {
        if state[root] != State::New {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        state[root] = State::Visiting;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let deps = &defs[node].1;
            if let Some(dep) = deps.get(*next) {
                *next += 1;
                // Every dependency was checked to exist above.
                let Some(&d) = index.get(dep.as_str()) else {
                    continue;
                };
                match state[d] {
                    State::Done => {}
                    State::New => {
                        state[d] = State::Visiting;
                        stack.push((d, 0));
                    }
                    State::Visiting => {
                        let start = stack.iter().position(|(n, _)| *n == d).unwrap_or(0);
                        let mut path: Vec<String> = stack[start..]
                            .iter()
                            .map(|(n, _)| defs[*n].0.clone())
                            .collect();
                        path.push(defs[d].0.clone());
                        return Err(DependencyError::Cycle { path });
                    }
                }
            } else {
                state[node] = State::Done;
                order.push(defs[node].0.clone());
                stack.pop();
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Defs = [(&'static str, &'static [&'static str])];

    fn defs(list: &Defs) -> Vec<(String, Vec<String>)> {
        list.iter()
            .map(|(n, d)| (n.to_string(), d.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn orders_dependencies_first_and_keeps_input_order() {
        let cases: &[(&Defs, &[&str])] = &[
            (&[], &[]),
            (&[("a", &[]), ("b", &[]), ("c", &[])], &["a", "b", "c"]),
            (&[("a", &["c"]), ("b", &[]), ("c", &[])], &["c", "a", "b"]),
            (
                &[
                    ("vip_not_lapsed", &["vip", "lapsed"]),
                    ("lapsed", &[]),
                    ("vip", &["big"]),
                    ("big", &[]),
                ],
                &["big", "vip", "lapsed", "vip_not_lapsed"],
            ),
            (&[("a", &["b", "b"]), ("b", &[])], &["b", "a"]),
            (
                &[("d", &["b", "c"]), ("b", &["a"]), ("c", &["a"]), ("a", &[])],
                &["a", "b", "c", "d"],
            ),
        ];
        for (input, expected) in cases {
            let got = order_segments(&defs(input)).expect("acyclic");
            assert_eq!(
                got,
                expected.iter().map(|s| s.to_string()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn reports_cycles_unknown_and_duplicate_segments() {
        let cases: &[(&Defs, &str)] = &[
            (
                &[("a", &["b"]), ("b", &["a"])],
                "segment dependency cycle: a -> b -> a",
            ),
            (&[("a", &["a"])], "segment dependency cycle: a -> a"),
            (
                &[("x", &[]), ("a", &["b"]), ("b", &["c"]), ("c", &["x", "b"])],
                "segment dependency cycle: b -> c -> b",
            ),
            (
                &[("a", &["ghost"])],
                "segment \"a\" depends on unknown segment \"ghost\"",
            ),
            (
                &[("a", &[]), ("a", &[])],
                "segment \"a\" is defined more than once",
            ),
        ];
        for (input, message) in cases {
            let err = order_segments(&defs(input)).expect_err(message);
            assert_eq!(err.to_string(), *message);
        }
        let err = order_segments(&defs(&[("a", &["b"]), ("b", &["a"])])).expect_err("cycle");
        assert_eq!(
            err,
            DependencyError::Cycle {
                path: vec!["a".into(), "b".into(), "a".into()]
            }
        );
    }

    #[test]
    fn long_chains_do_not_overflow() {
        let n = 20_000;
        let input: Vec<(String, Vec<String>)> = (0..n)
            .map(|i| {
                let deps = if i + 1 < n {
                    vec![format!("s{}", i + 1)]
                } else {
                    vec![]
                };
                (format!("s{i}"), deps)
            })
            .collect();
        let order = order_segments(&input).expect("chain");
        assert_eq!(order.first().map(String::as_str), Some("s19999"));
        assert_eq!(order.last().map(String::as_str), Some("s0"));
    }
}
