//! The rule language's invariants as one function over arbitrary text: the oracle of the fuzz
//! target (`fuzz/fuzz_targets/rule.rs`, run with `cargo +nightly fuzz run rule`) and of the bounded
//! property tests that run in CI (`crates/core/tests/rule_properties.rs`), so both check the same
//! things:
//!
//! * parsing never panics, and a refused rule's error points inside the text;
//! * an accepted rule is within the size and depth limits, and type-checks or fails cleanly;
//! * a checked rule's canonical form (what `segments show` prints) parses back to the same rule,
//!   and printing that again gives the same text;
//! * it compiles for both dialects with exactly one bound parameter per placeholder, and the
//!   reference evaluator runs it.

use chrono::{DateTime, NaiveDate, Utc};

use super::ast::Expr;
use super::compile::Dialect;
use super::error::RuleError;
use super::eval::{Dataset, Memberships};
use super::parser::{self, MAX_NODES};
use super::typecheck::{self, MAX_TREE_DEPTH};
use super::{parse_rule, Rule};
use crate::model::{Contact, Customer, Event, Order};

/// Checks every invariant on `src`. `Ok(Some(rule))` when it is a valid rule, `Ok(None)` when it is
/// cleanly refused, `Err(what broke)` when an invariant does not hold (a bug to fix).
pub fn check(src: &str) -> Result<Option<Rule>, String> {
    let expr = match parser::parse(src) {
        Ok(expr) => expr,
        Err(e) => return error_points_inside(src, &e).map(|()| None),
    };
    let nodes = count_nodes(&expr);
    if nodes > MAX_NODES || expr.depth() > MAX_TREE_DEPTH {
        return Err(format!(
            "the parser accepted {nodes} nodes at depth {} (limits {MAX_NODES}, {MAX_TREE_DEPTH})",
            expr.depth()
        ));
    }
    if let Err(e) = typecheck::check(&expr) {
        return error_points_inside(src, &e).map(|()| None);
    }
    let rule = parse_rule(src).map_err(|e| format!("checks alone but parse_rule says: {e}"))?;
    let canonical = rule.to_string();
    let again = parse_rule(&canonical)
        .map_err(|e| format!("canonical form {canonical:?} does not parse: {e}"))?;
    if !again.expr().same_rule(rule.expr()) {
        return Err(format!(
            "canonical form {canonical:?} parses to another rule:\n{:?}\nwas\n{:?}",
            again.expr(),
            rule.expr()
        ));
    }
    if again.to_string() != canonical {
        return Err(format!(
            "canonical form is not stable: {canonical:?} prints as {:?}",
            again.to_string()
        ));
    }
    let as_of = fixed_as_of();
    for dialect in [Dialect::Sqlite, Dialect::Postgres] {
        let excludes = ["x".to_string()];
        let q = rule.compile(&excludes, dialect, as_of);
        let placeholders = match dialect {
            Dialect::Sqlite => q.sql.matches('?').count(),
            Dialect::Postgres => q.sql.matches('$').count(),
        };
        if placeholders != q.params.len() {
            return Err(format!(
                "{dialect:?}: {placeholders} placeholders but {} parameters in {}",
                q.params.len(),
                q.sql
            ));
        }
    }
    let (customers, orders, events) = tiny_shop(as_of);
    let data = Dataset {
        customers: &customers,
        orders: &orders,
        events: &events,
    };
    rule.evaluate(&[], &data, &Memberships::new(), as_of);
    Ok(Some(rule))
}

/// Nodes in the tree, counted without recursion.
pub fn count_nodes(expr: &Expr) -> usize {
    let mut n = 0;
    expr.walk(&mut |_| n += 1);
    n
}

/// A refusal must name a place in the text: line 1..=lines, column 1..=line length + 1.
fn error_points_inside(src: &str, e: &RuleError) -> Result<(), String> {
    let line = src.split('\n').nth(e.line.saturating_sub(1) as usize);
    let inside = e.line >= 1
        && e.column >= 1
        && line.is_some_and(|l| e.column as usize <= l.chars().count() + 1);
    if inside {
        Ok(())
    } else {
        Err(format!("error outside the text: {e}"))
    }
}

fn fixed_as_of() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + chrono::TimeDelta::seconds(1_750_000_000)
}

/// One customer with an order, an event and a birthday, one with nothing: enough for every term
/// to take a value and a missing value.
fn tiny_shop(as_of: DateTime<Utc>) -> (Vec<Customer>, Vec<Order>, Vec<Event>) {
    let full = Customer {
        contact: Contact {
            customer_id: "a".into(),
            country: Some("US".into()),
            birth_date: NaiveDate::from_ymd_opt(1992, 2, 29),
            ..Contact::default()
        },
        consent_ads: true,
        ..Customer::default()
    };
    let empty = Customer {
        contact: Contact {
            customer_id: "b".into(),
            ..Contact::default()
        },
        ..Customer::default()
    };
    let order = Order {
        id: "o".into(),
        customer_id: "a".into(),
        placed_at: as_of,
        total: 12.5,
        currency: None,
        discount_code: Some("X".into()),
        free_shipping: true,
    };
    let event = Event {
        id: None,
        customer_id: "a".into(),
        kind: "visit".into(),
        occurred_at: as_of,
        properties: None,
    };
    (vec![full, empty], vec![order], vec![event])
}
