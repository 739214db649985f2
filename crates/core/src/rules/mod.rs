//! The rule language of segments (DESIGN §5): parse → typed AST → type check → one parameterised
//! SQL query per dialect, plus a plain-Rust reference evaluator with identical semantics.
//!
//! ```text
//! orders.count() >= 1 and orders.last_at() < 180d ago      # lapsed
//! customer.country in ("US", "CA") and customer.consent_ads
//! ```
//!
//! Use [`parse_rule`] to get a checked [`Rule`], then [`Rule::compile`] for the store or
//! [`Rule::evaluate`] in tests. Pure logic: no I/O.

pub mod ast;
pub mod compile;
pub mod deps;
pub mod error;
pub mod eval;
pub mod invariants;
pub mod lexer;
pub mod parser;
pub mod templates;
pub mod typecheck;

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};

pub use ast::{
    CmpOp, CustomerAttr, Duration, DurationUnit, EventFn, Expr, ExprKind, Literal, OrderFn, Pos,
    RfmScore, Term, Type,
};
pub use compile::{
    aggregate_table_name, compile_segment, AggregateTable, CompiledQuery, Dialect, RunCompiler,
    SqlParam, COLUMNS_PER_TABLE,
};
pub use deps::{order_segments, CycleError, DependencyError};
pub use error::RuleError;
pub use eval::{evaluate, Dataset, Memberships};
pub use parser::{MAX_DEPTH, MAX_NODES};
pub use templates::{Template, TemplateError, TemplateParam};

/// A parsed and type-checked rule: the only way to get one is [`parse_rule`], so holding a `Rule`
/// means it compiles.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    source: String,
    expr: Expr,
}

/// Parses and type-checks rule text. Errors carry line and column and say what was expected.
///
/// A rule is at most [`MAX_NODES`] nodes and [`MAX_DEPTH`] levels of parentheses and `not`, so
/// every later pass over it (type check, SQL, evaluation, printing) is bounded and its SQL stays
/// within SQLite's and Postgres' limits.
pub fn parse_rule(src: &str) -> Result<Rule, RuleError> {
    let expr = parser::parse(src)?;
    typecheck::check(&expr)?;
    Ok(Rule {
        source: src.to_string(),
        expr,
    })
}

impl Rule {
    /// The text the rule was parsed from (as configured, with comments).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The checked tree.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Segments read with `in_segment`, for dependency ordering.
    pub fn segment_refs(&self) -> Vec<String> {
        self.expr.segment_refs()
    }

    /// The membership query for `dialect` at `as_of`, minus the members of `excludes`.
    pub fn compile(
        &self,
        excludes: &[String],
        dialect: Dialect,
        as_of: DateTime<Utc>,
    ) -> CompiledQuery {
        compile_segment(&self.expr, excludes, dialect, as_of)
    }

    /// The members by the reference evaluator: what [`Rule::compile`]'s query returns on the same
    /// data.
    pub fn evaluate(
        &self,
        excludes: &[String],
        data: &Dataset<'_>,
        memberships: &Memberships,
        as_of: DateTime<Utc>,
    ) -> BTreeSet<String> {
        evaluate(&self.expr, excludes, data, memberships, as_of)
    }
}

/// The canonical form of the rule (no comments, minimal parentheses), as `segments show` prints it:
/// it parses back to the same rule ([`Expr::same_rule`]).
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.expr)
    }
}
