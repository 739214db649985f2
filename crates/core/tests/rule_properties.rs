//! Bounded property tests of the rule language, run in CI (the unbounded search is the cargo-fuzz
//! target in `fuzz/`; both use [`invariants::check`] as their oracle):
//!
//! * random token streams — keywords, terms, operators and the literals that broke the canonical
//!   form before (floats ≥ 1e16, control characters and combining marks in strings, instants
//!   outside years 0000..=9999 in UTC, leap seconds) — never panic, and every accepted rule
//!   type-checks or errors cleanly, prints, re-parses to the same rule and compiles;
//! * random trees of every node kind print to text that parses back to the same tree.
//!
//! A fixed number of cases and a fixed seed keep the run short and reproducible.

use campaignd_core::rules::ast::{
    CmpOp, CustomerAttr, Duration, DurationUnit, EventFn, Expr, ExprKind, Literal, OrderFn, Pos,
    RfmScore, Term,
};
use campaignd_core::rules::{invariants, parser};
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Pieces of rule text, valid and not: the token streams are made of these.
const FRAGMENTS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "ago",
    "true",
    "false",
    "(",
    ")",
    ",",
    ".",
    "-",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "=",
    "!",
    "&&",
    "#c\n",
    "\n",
    "customer.age",
    "customer.country",
    "customer.birth_date",
    "customer.created_at",
    "customer.consent_ads",
    "customer.colour",
    "customer.",
    "orders.count()",
    "orders.sum(30d)",
    "orders.last_at(1y)",
    "orders.avg(",
    "orders",
    "events.count(\"visit\", 7d)",
    "events.count(24h)",
    "events.last_at(\"open\")",
    "events.last_at(7d)",
    "rfm.r",
    "rfm.m",
    "rfm.x",
    "in_segment(\"vip\")",
    "in_segment(\"\")",
    "0",
    "1",
    "30",
    "-5",
    "2.5",
    "10000000000000000.0",
    "123456789012345678901.25",
    "1e16",
    "99999999999999999999",
    "7d",
    "30y",
    "100000d",
    "273y",
    "274y",
    "90m",
    "12w",
    "1.5d",
    "7x",
    "\"US\"",
    "'CA'",
    "\"a\\\"b\"",
    "\"\\u{1b}\\u{301}\"",
    "\"e\u{301}\"",
    "\"\u{7}\"",
    "\"\\q\"",
    "\"open",
    "\"tab\\t\\r\\n\"",
    "2025-01-01",
    "2025-13-01",
    "2025-01-01T00:00:00Z",
    "9999-12-31T23:30:00-05:00",
    "0000-01-01T00:30:00+01:00",
    "2016-12-31T23:59:60Z",
    "2024-02-29T12:00:00.123456789+23:59",
    "@",
    "\u{2028}",
];

fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]))
}

/// Values and conditions for streams shaped like rules, including the literals that used to
/// break the canonical form.
const VALUES: &[&str] = &[
    "customer.age",
    "orders.count()",
    "orders.sum(1y)",
    "30",
    "-5",
    "2.5",
    "10000000000000000.0",
    "123456789012345678901.25",
    "\"e\u{301}\"",
    "\"\\u{1b}\\r\"",
    "'CA'",
    "\"US\"",
    "9999-12-31T23:30:00-05:00",
    "0000-01-01T00:30:00+01:00",
    "2016-12-31T23:59:60Z",
    "2024-02-29",
    "30y ago",
    "7d",
    "customer.country",
    "customer.birth_date",
    "events.count(\"visit\", 7d)",
    "orders.last_at(1y)",
    "rfm.r",
    "customer.consent_ads",
];
const CONDITIONS: &[&str] = &[
    "customer.consent_ads",
    "in_segment(\"vip\")",
    "true",
    "(rfm.r >= 1 or customer.age in (30, 31.0))",
    "not customer.consent_email",
];

/// Rule-shaped token streams (`value op value` or a condition, joined by `and`/`or`), with one
/// random fragment inserted into some of them.
fn near_rules() -> impl Strategy<Value = String> {
    let value = proptest::sample::select(VALUES);
    let cmp = proptest::sample::select(&["==", "!=", "<", "<=", ">", ">=", "in", "not in"][..]);
    let clause = prop_oneof![
        (value.clone(), cmp, value).prop_map(|(l, op, r)| if op.ends_with("in") {
            format!("{l} {op} ({r})")
        } else {
            format!("{l} {op} {r}")
        }),
        proptest::sample::select(CONDITIONS).prop_map(str::to_string),
    ];
    let joiner = proptest::sample::select(&[" and ", " or ", "\n  and ", " or not "][..]);
    let noise =
        proptest::option::weighted(0.3, (proptest::sample::select(FRAGMENTS), any::<usize>()));
    (
        clause.clone(),
        proptest::collection::vec((joiner, clause), 0..6),
        noise,
    )
        .prop_map(|(first, rest, noise)| {
            let mut text = first;
            for (j, c) in rest {
                text.push_str(j);
                text.push_str(&c);
            }
            if let Some((fragment, at)) = noise {
                let cut = text
                    .char_indices()
                    .map(|(i, _)| i)
                    .nth(at % text.chars().count())
                    .unwrap_or(0);
                text.insert_str(cut, &format!(" {fragment} "));
            }
            text
        })
}

/// Runs the oracle over `cases` values of `strategy`; returns how many were valid rules.
fn check_all(strategy: impl Strategy<Value = String>, cases: u32) -> u32 {
    let accepted = std::cell::Cell::new(0u32);
    runner(cases)
        .run(&strategy, |src| {
            let result = invariants::check(&src);
            prop_assert!(result.is_ok(), "{src:?}: {}", result.unwrap_err());
            if let Ok(Some(_)) = result {
                accepted.set(accepted.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    accepted.get()
}

#[test]
fn random_token_streams_keep_every_invariant() {
    let fragment = proptest::sample::select(FRAGMENTS);
    let separator = proptest::sample::select(&[" ", "", "\n  "][..]);
    let soup = proptest::collection::vec((fragment, separator), 1..24).prop_map(|parts| {
        parts
            .into_iter()
            .map(|(f, s)| format!("{f}{s}"))
            .collect::<String>()
    });
    check_all(soup, 3000);
    // Not vacuous: a good share of the rule-shaped streams are valid rules.
    let accepted = check_all(near_rules(), 3000);
    assert!(
        accepted >= 300,
        "only {accepted} of 3000 streams were rules"
    );
}

#[test]
fn random_text_never_panics() {
    runner(2000)
        .run(&"\\PC{0,64}", |src| {
            let result = invariants::check(&src);
            prop_assert!(result.is_ok(), "{src:?}: {}", result.unwrap_err());
            Ok(())
        })
        .unwrap();
}

fn at(kind: ExprKind) -> Expr {
    Expr::new(kind, Pos::default())
}

fn duration() -> impl Strategy<Value = Duration> {
    let unit = proptest::sample::select(
        &[
            DurationUnit::Minutes,
            DurationUnit::Hours,
            DurationUnit::Days,
            DurationUnit::Weeks,
            DurationUnit::Years,
        ][..],
    );
    (0i64..=273, unit).prop_map(|(amount, unit)| Duration { amount, unit })
}

/// Every instant a literal can name: local years 0000..=9999 at offsets up to ±23:59.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    const MARGIN: i64 = 23 * 3600 + 59 * 60;
    let first = -62_167_219_200 - MARGIN;
    let last = 253_402_300_799 + MARGIN;
    (first..=last, 0u32..1_000_000_000)
        .prop_map(|(s, n)| DateTime::<Utc>::from_timestamp(s, n).expect("in range"))
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        (i64::MIN + 1..=i64::MAX).prop_map(Literal::Int),
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(Literal::Float),
        any::<String>().prop_map(Literal::Str),
        any::<bool>().prop_map(Literal::Bool),
        instant().prop_map(Literal::Timestamp),
        duration().prop_map(Literal::Duration),
        duration().prop_map(Literal::Ago),
    ]
}

fn segment_name() -> impl Strategy<Value = String> {
    any::<String>().prop_filter("non-blank", |s| !s.trim().is_empty())
}

fn term() -> impl Strategy<Value = Term> {
    prop_oneof![
        proptest::sample::select(&CustomerAttr::ALL[..]).prop_map(Term::Customer),
        (
            proptest::sample::select(&OrderFn::ALL[..]),
            proptest::option::of(duration())
        )
            .prop_map(|(func, window)| Term::Orders { func, window }),
        (
            proptest::option::of(any::<String>()),
            proptest::option::of(duration())
        )
            .prop_map(|(kind, window)| Term::Events {
                func: EventFn::Count,
                kind,
                window
            }),
        proptest::option::of(any::<String>()).prop_map(|kind| Term::Events {
            func: EventFn::LastAt,
            kind,
            window: None
        }),
        proptest::sample::select(&[RfmScore::R, RfmScore::F, RfmScore::M][..]).prop_map(Term::Rfm),
        segment_name().prop_map(Term::InSegment),
    ]
}

fn op() -> impl Strategy<Value = CmpOp> {
    proptest::sample::select(
        &[
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Gt,
            CmpOp::Ge,
        ][..],
    )
}

/// `parts` joined by one flat junction, splicing operands of the same kind as the parser does.
/// `lhs [not] in (items…)`.
fn in_list(lhs: Expr, negated: bool, items: Vec<Literal>) -> Expr {
    at(ExprKind::In {
        negated,
        op_pos: Pos::default(),
        lhs: Box::new(lhs),
        items: items
            .into_iter()
            .map(|i| at(ExprKind::Literal(i)))
            .collect(),
    })
}

fn junction(is_and: bool, parts: Vec<Expr>) -> Expr {
    let mut flat = Vec::new();
    for p in parts {
        match p.kind {
            ExprKind::And(inner) if is_and => flat.extend(inner),
            ExprKind::Or(inner) if !is_and => flat.extend(inner),
            kind => flat.push(at(kind)),
        }
    }
    at(if is_and {
        ExprKind::And(flat)
    } else {
        ExprKind::Or(flat)
    })
}

/// Trees of the shapes the parser builds (types unchecked: the printer must not care), rooted at
/// a condition.
fn condition() -> impl Strategy<Value = Expr> {
    let value_leaf = prop_oneof![
        literal().prop_map(|l| at(ExprKind::Literal(l))),
        term().prop_map(|t| at(ExprKind::Term(t))),
    ];
    let leaf = prop_oneof![
        (value_leaf.clone(), op(), value_leaf.clone()).prop_map(|(l, op, r)| at(
            ExprKind::Compare {
                op,
                op_pos: Pos::default(),
                lhs: Box::new(l),
                rhs: Box::new(r)
            }
        )),
        (
            value_leaf.clone(),
            any::<bool>(),
            proptest::collection::vec(literal(), 1..4)
        )
            .prop_map(|(l, negated, items)| in_list(l, negated, items)),
        any::<bool>().prop_map(|b| at(ExprKind::Literal(Literal::Bool(b)))),
        segment_name().prop_map(|n| at(ExprKind::Term(Term::InSegment(n)))),
    ];
    leaf.prop_recursive(6, 48, 4, move |inner| {
        let value = prop_oneof![value_leaf.clone(), inner.clone()];
        prop_oneof![
            (
                any::<bool>(),
                proptest::collection::vec(inner.clone(), 2..5)
            )
                .prop_map(|(is_and, parts)| junction(is_and, parts)),
            inner.clone().prop_map(|e| at(ExprKind::Not(Box::new(e)))),
            (value.clone(), op(), value.clone()).prop_map(|(l, op, r)| at(ExprKind::Compare {
                op,
                op_pos: Pos::default(),
                lhs: Box::new(l),
                rhs: Box::new(r)
            })),
            (inner, proptest::collection::vec(literal(), 1..3))
                .prop_map(|(l, items)| in_list(l, false, items)),
        ]
    })
}

#[test]
fn random_trees_print_to_text_that_parses_back_to_them() {
    runner(3000)
        .run(&condition(), |tree| {
            let text = tree.to_string();
            let parsed = parser::parse(&text);
            prop_assert!(parsed.is_ok(), "{text:?}: {}", parsed.unwrap_err());
            let parsed = parsed.unwrap();
            prop_assert!(
                parsed.same_rule(&tree),
                "{text:?} parses to\n{parsed:?}\nnot\n{tree:?}"
            );
            let again = invariants::check(&text);
            prop_assert!(again.is_ok(), "{text:?}: {}", again.unwrap_err());
            Ok(())
        })
        .unwrap();
}
