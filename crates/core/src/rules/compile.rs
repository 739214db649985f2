//! Compiler: a checked rule → one parameterised `SELECT` per SQL dialect.
//!
//! The query returns the `customer_id` of every member and runs entirely in the database (set-based,
//! correlated subqueries on the `orders(customer_id, placed_at)` and
//! `events(customer_id, kind, occurred_at)` indexes). Every rule literal, every time bound derived
//! from `as_of`, and every segment name is a bound parameter, never SQL text, so no rule can inject
//! SQL. Semantics (mirrored exactly by [`super::eval`]):
//!
//! * only data at or before `as_of` (whole seconds) is visible; a window `7d` means
//!   `as_of - 7d < t <= as_of`; `D ago` is `as_of - D`;
//! * every comparison is `COALESCE((lhs op rhs), FALSE)`: two-valued logic, a missing value (no
//!   orders, NULL attribute, no RFM score) makes the comparison false and `not` of it true;
//! * sums are rounded to cents; averages are computed on exact cents and rounded half away from
//!   zero, so SQLite (REAL), Postgres (NUMERIC) and Rust (f64) agree to the last bit.

use chrono::{DateTime, Datelike, Timelike, Utc};

use super::ast::{CustomerAttr, EventFn, Expr, ExprKind, Literal, OrderFn, Term, Type};

/// The SQL dialect to generate: the two stores campaignd supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// SQLite: `?` placeholders, timestamps as INTEGER unix seconds, booleans as 0/1, totals REAL.
    Sqlite,
    /// Postgres: `$n` placeholders, TIMESTAMPTZ, BOOLEAN, NUMERIC(14,2) totals.
    Postgres,
}

/// A bound parameter of a compiled query, in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlParam {
    /// An integer literal.
    Int(i64),
    /// A decimal literal.
    Float(f64),
    /// A string literal, event kind or segment name.
    Text(String),
    /// A boolean literal (SQLite binds it as 0/1).
    Bool(bool),
    /// An instant, always whole seconds: the store binds it as i64 unix seconds on SQLite and as
    /// `timestamptz` on Postgres.
    Timestamp(DateTime<Utc>),
}

/// A compiled segment query: SQL text plus its parameters in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledQuery {
    /// `SELECT c.id AS customer_id FROM customers c ... WHERE ...`
    pub sql: String,
    /// The values for `?` / `$1..$n`, in order.
    pub params: Vec<SqlParam>,
}

/// Truncates an instant to whole seconds (toward the past): SQLite stores seconds, so rules see
/// time at that resolution on every backend.
pub fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

/// Compiles a checked rule into the membership query of a segment.
///
/// `excludes` are segments whose current members are removed (`NOT EXISTS` on
/// `segment_memberships`); `as_of` is "now" (truncated to whole seconds).
pub fn compile_segment(
    expr: &Expr,
    excludes: &[String],
    dialect: Dialect,
    as_of: DateTime<Utc>,
) -> CompiledQuery {
    let mut c = Compiler {
        dialect,
        as_of: whole_seconds(as_of),
        params: Vec::new(),
    };
    let mut sql = String::from("SELECT c.id AS customer_id FROM customers c");
    if expr.uses_rfm() {
        sql.push_str(&c.rfm_join());
    }
    let p = c.param(SqlParam::Timestamp(c.as_of));
    sql.push_str(&format!(
        " WHERE (c.created_at IS NULL OR c.created_at <= {p}) AND ({})",
        c.condition(expr)
    ));
    for name in excludes {
        let p = c.param(SqlParam::Text(name.clone()));
        sql.push_str(&format!(
            " AND NOT EXISTS (SELECT 1 FROM segment_memberships x WHERE x.segment = {p} AND x.customer_id = c.id)"
        ));
    }
    CompiledQuery {
        sql,
        params: c.params,
    }
}

/// Longest run of operands joined flat, as written (`a AND b AND c AND d`).
const FLAT_JUNCTION: usize = 4;

/// Joins `parts` with `word` (` AND ` / ` OR `) as a balanced tree of parenthesised halves once
/// there are more than [`FLAT_JUNCTION`] of them.
///
/// SQLite parses `a AND b AND c ...` into a left-deep binary tree and refuses expressions deeper
/// than 1000 (`SQLITE_MAX_EXPR_DEPTH`, "Expression tree is too large"), so a flat chain of 1000
/// conditions fails; halves keep the depth at about log2 of the number of operands (14 for
/// 10,000). Postgres flattens the left side of each `AND` into one list, which balancing keeps
/// shallow too, well inside its `max_stack_depth`.
fn balanced(parts: &[String], word: &str) -> String {
    if parts.len() <= FLAT_JUNCTION {
        return parts.join(word);
    }
    let (left, right) = parts.split_at(parts.len() / 2);
    format!(
        "({}){word}({})",
        balanced(left, word),
        balanced(right, word)
    )
}

struct Compiler {
    dialect: Dialect,
    as_of: DateTime<Utc>,
    params: Vec<SqlParam>,
}

impl Compiler {
    /// Adds a parameter and returns its placeholder.
    fn param(&mut self, p: SqlParam) -> String {
        self.params.push(p);
        match self.dialect {
            Dialect::Sqlite => "?".to_string(),
            Dialect::Postgres => format!("${}", self.params.len()),
        }
    }

    fn pg(&self) -> bool {
        self.dialect == Dialect::Postgres
    }

    /// Ordering by customer id must be bytewise everywhere (SQLite BINARY, Rust `str` order).
    fn id_order(&self, col: &str) -> String {
        if self.pg() {
            format!("{col} COLLATE \"C\"")
        } else {
            col.to_string()
        }
    }

    fn rfm_join(&mut self) -> String {
        let p = self.param(SqlParam::Timestamp(self.as_of));
        let id = self.id_order("o.customer_id");
        format!(
            " LEFT JOIN (SELECT o.customer_id AS customer_id, \
             NTILE(5) OVER (ORDER BY MAX(o.placed_at), {id}) AS r, \
             NTILE(5) OVER (ORDER BY COUNT(*), {id}) AS f, \
             NTILE(5) OVER (ORDER BY ROUND(SUM(o.total), 2), {id}) AS m \
             FROM orders o WHERE o.placed_at <= {p} GROUP BY o.customer_id) rfm ON rfm.customer_id = c.id"
        )
    }

    /// SQL for a boolean node, never NULL.
    fn condition(&mut self, e: &Expr) -> String {
        match &e.kind {
            ExprKind::And(parts) | ExprKind::Or(parts) => {
                let is_and = matches!(e.kind, ExprKind::And(..));
                let word = if is_and { " AND " } else { " OR " };
                let sql: Vec<String> = parts.iter().map(|p| self.junct_child(p)).collect();
                balanced(&sql, word)
            }
            ExprKind::Not(a) => {
                let inner = self.condition(a);
                if matches!(a.kind, ExprKind::And(..) | ExprKind::Or(..)) {
                    format!("NOT ({inner})")
                } else {
                    format!("NOT {inner}")
                }
            }
            ExprKind::Compare { op, lhs, rhs, .. } => {
                let string_order = self.pg() && op.is_ordering() && lhs.ty() == Type::String;
                let l = self.value(lhs);
                let r = self.value(rhs);
                let l = if string_order {
                    format!("{l} COLLATE \"C\"")
                } else {
                    l
                };
                format!("COALESCE(({l} {} {r}), FALSE)", op.sql())
            }
            ExprKind::In {
                negated,
                lhs,
                items,
                ..
            } => {
                let l = self.value(lhs);
                let list: Vec<String> = items.iter().map(|i| self.value(i)).collect();
                let op = if *negated { "NOT IN" } else { "IN" };
                format!("COALESCE(({l} {op} ({})), FALSE)", list.join(", "))
            }
            ExprKind::Term(Term::InSegment(name)) => self.in_segment(name),
            ExprKind::Term(_) | ExprKind::Literal(_) => {
                let v = self.value(e);
                format!("COALESCE({v} = TRUE, FALSE)")
            }
        }
    }

    /// An operand of `AND`/`OR`: a nested junction is parenthesised (also one of the same kind,
    /// which only a hand-built tree has, so it stays a single balanced operand).
    fn junct_child(&mut self, child: &Expr) -> String {
        let s = self.condition(child);
        if matches!(child.kind, ExprKind::Or(..) | ExprKind::And(..)) {
            format!("({s})")
        } else {
            s
        }
    }

    fn in_segment(&mut self, name: &str) -> String {
        let p = self.param(SqlParam::Text(name.to_string()));
        format!("EXISTS (SELECT 1 FROM segment_memberships sm WHERE sm.segment = {p} AND sm.customer_id = c.id)")
    }

    /// SQL for a value (operand of a comparison or `in`); may be NULL.
    fn value(&mut self, e: &Expr) -> String {
        match &e.kind {
            ExprKind::Literal(l) => {
                let p = match l {
                    Literal::Int(v) => SqlParam::Int(*v),
                    Literal::Float(v) => SqlParam::Float(*v),
                    Literal::Str(s) => SqlParam::Text(s.clone()),
                    Literal::Bool(b) => SqlParam::Bool(*b),
                    Literal::Timestamp(t) => SqlParam::Timestamp(whole_seconds(*t)),
                    Literal::Ago(d) => SqlParam::Timestamp(d.before(self.as_of)),
                    // Rejected by the type checker; bound as its length so the SQL stays valid.
                    Literal::Duration(d) => SqlParam::Int(d.seconds()),
                };
                self.param(p)
            }
            ExprKind::Term(t) => self.term(t),
            _ => format!("({})", self.condition(e)),
        }
    }

    fn term(&mut self, t: &Term) -> String {
        match t {
            Term::Customer(CustomerAttr::BirthDate) => match self.dialect {
                Dialect::Sqlite => "CAST(strftime('%s', c.birth_date) AS INTEGER)".to_string(),
                Dialect::Postgres => {
                    "(CAST(c.birth_date AS TIMESTAMP) AT TIME ZONE 'UTC')".to_string()
                }
            },
            Term::Customer(CustomerAttr::Age) => self.age(),
            Term::Customer(a) => format!("c.{}", a.name()),
            Term::Rfm(s) => format!("rfm.{}", s.name()),
            Term::InSegment(name) => self.in_segment(name),
            Term::Orders { func, window } => {
                let select = self.order_select(*func);
                let mut filter = String::from("o.customer_id = c.id");
                if let Some(w) = window {
                    let p = self.param(SqlParam::Timestamp(w.before(self.as_of)));
                    filter.push_str(&format!(" AND o.placed_at > {p}"));
                }
                let p = self.param(SqlParam::Timestamp(self.as_of));
                filter.push_str(&format!(" AND o.placed_at <= {p}"));
                format!("(SELECT {select} FROM orders o WHERE {filter})")
            }
            Term::Events { func, kind, window } => {
                let select = match func {
                    EventFn::Count => "COUNT(*)",
                    EventFn::LastAt => "MAX(e.occurred_at)",
                };
                let mut filter = String::from("e.customer_id = c.id");
                if let Some(k) = kind {
                    let p = self.param(SqlParam::Text(k.clone()));
                    filter.push_str(&format!(" AND e.kind = {p}"));
                }
                if let Some(w) = window {
                    let p = self.param(SqlParam::Timestamp(w.before(self.as_of)));
                    filter.push_str(&format!(" AND e.occurred_at > {p}"));
                }
                let p = self.param(SqlParam::Timestamp(self.as_of));
                filter.push_str(&format!(" AND e.occurred_at <= {p}"));
                format!("(SELECT {select} FROM events e WHERE {filter})")
            }
        }
    }

    /// `customer.age`: the year of `as_of` minus the birth year, minus one if the birthday (as
    /// month * 100 + day) is still to come in `as_of`'s year; NULL without a birth date. Integer
    /// arithmetic on both dialects (no `AGE()` interval or locale-dependent text), so it equals
    /// [`super::eval`]'s count of whole years exactly, 29 February included.
    fn age(&mut self) -> String {
        let year = self.param(SqlParam::Int(i64::from(self.as_of.year())));
        let today = i64::from(self.as_of.month() * 100 + self.as_of.day());
        let today = self.param(SqlParam::Int(today));
        let (birth_year, birthday) = match self.dialect {
            Dialect::Sqlite => (
                "CAST(strftime('%Y', c.birth_date) AS INTEGER)",
                "CAST(strftime('%m%d', c.birth_date) AS INTEGER)",
            ),
            Dialect::Postgres => (
                "CAST(EXTRACT(YEAR FROM c.birth_date) AS INTEGER)",
                "CAST(EXTRACT(MONTH FROM c.birth_date) * 100 + EXTRACT(DAY FROM c.birth_date) AS INTEGER)",
            ),
        };
        format!("({year} - {birth_year} - (CASE WHEN {today} < {birthday} THEN 1 ELSE 0 END))")
    }

    fn order_select(&self, func: OrderFn) -> String {
        let pg = self.pg();
        let double = |s: &str| {
            if pg {
                format!("CAST({s} AS DOUBLE PRECISION)")
            } else {
                s.to_string()
            }
        };
        let share = |cond: &str| {
            let real = if pg { "DOUBLE PRECISION" } else { "REAL" };
            format!("CAST(SUM(CASE WHEN {cond} THEN 1 ELSE 0 END) AS {real}) / NULLIF(COUNT(*), 0)")
        };
        match func {
            OrderFn::Count => "COUNT(*)".to_string(),
            OrderFn::Sum => double("ROUND(COALESCE(SUM(o.total), 0), 2)"),
            // Exact cents, divided, rounded half away from zero (see module docs).
            OrderFn::Avg => {
                if pg {
                    double("ROUND(ROUND(SUM(o.total) * 100) / NULLIF(COUNT(*), 0)) / 100")
                } else {
                    "ROUND(ROUND(SUM(o.total) * 100) / NULLIF(COUNT(*), 0)) / 100.0".to_string()
                }
            }
            OrderFn::LastAt => "MAX(o.placed_at)".to_string(),
            OrderFn::FirstAt => "MIN(o.placed_at)".to_string(),
            OrderFn::DiscountShare => {
                share("o.discount_code IS NOT NULL AND LENGTH(o.discount_code) > 0")
            }
            OrderFn::FreeShippingShare => share("o.free_shipping"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::parse_rule;
    use SqlParam::{Bool, Float, Int};

    fn ts(s: &str) -> SqlParam {
        SqlParam::Timestamp(
            DateTime::parse_from_rfc3339(s)
                .expect("test timestamp")
                .with_timezone(&Utc),
        )
    }

    fn text(s: &str) -> SqlParam {
        SqlParam::Text(s.to_string())
    }

    fn as_of() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z")
            .expect("as_of")
            .with_timezone(&Utc)
    }

    const SQLITE_HEAD: &str = "SELECT c.id AS customer_id FROM customers c WHERE (c.created_at IS NULL OR c.created_at <= ?) AND (";
    const PG_HEAD: &str = "SELECT c.id AS customer_id FROM customers c WHERE (c.created_at IS NULL OR c.created_at <= $1) AND (";

    /// (rule, SQLite condition, Postgres condition, params shared by both dialects). The full
    /// query is `HEAD + condition + ")"`; the first parameter is always `as_of` for `created_at`.
    #[allow(clippy::type_complexity)]
    fn cases() -> Vec<(&'static str, &'static str, &'static str, Vec<SqlParam>)> {
        vec![
        (
            "orders.count() >= 2",
            "COALESCE(((SELECT COUNT(*) FROM orders o WHERE o.customer_id = c.id AND o.placed_at <= ?) >= ?), FALSE)",
            "COALESCE(((SELECT COUNT(*) FROM orders o WHERE o.customer_id = c.id AND o.placed_at <= $2) >= $3), FALSE)",
            vec![ts("2025-06-01T00:00:00Z"), ts("2025-06-01T00:00:00Z"), Int(2)],
        ),
        (
            "orders.count() == 0 and events.count(\"visit\", 30d) >= 1",
            "COALESCE(((SELECT COUNT(*) FROM orders o WHERE o.customer_id = c.id AND o.placed_at <= ?) = ?), FALSE) AND COALESCE(((SELECT COUNT(*) FROM events e WHERE e.customer_id = c.id AND e.kind = ? AND e.occurred_at > ? AND e.occurred_at <= ?) >= ?), FALSE)",
            "COALESCE(((SELECT COUNT(*) FROM orders o WHERE o.customer_id = c.id AND o.placed_at <= $2) = $3), FALSE) AND COALESCE(((SELECT COUNT(*) FROM events e WHERE e.customer_id = c.id AND e.kind = $4 AND e.occurred_at > $5 AND e.occurred_at <= $6) >= $7), FALSE)",
            vec![ts("2025-06-01T00:00:00Z"), ts("2025-06-01T00:00:00Z"), Int(0), text("visit"), ts("2025-05-02T00:00:00Z"), ts("2025-06-01T00:00:00Z"), Int(1)],
        ),
        (
            "orders.sum(365d) >= 1000",
            "COALESCE(((SELECT ROUND(COALESCE(SUM(o.total), 0), 2) FROM orders o WHERE o.customer_id = c.id AND o.placed_at > ? AND o.placed_at <= ?) >= ?), FALSE)",
            "COALESCE(((SELECT CAST(ROUND(COALESCE(SUM(o.total), 0), 2) AS DOUBLE PRECISION) FROM orders o WHERE o.customer_id = c.id AND o.placed_at > $2 AND o.placed_at <= $3) >= $4), FALSE)",
            vec![ts("2025-06-01T00:00:00Z"), ts("2024-06-01T00:00:00Z"), ts("2025-06-01T00:00:00Z"), Int(1000)],
        ),
        (
            "orders.avg() > 49.5",
            "COALESCE(((SELECT ROUND(ROUND(SUM(o.total) * 100) / NULLIF(COUNT(*), 0)) / 100.0 FROM orders o WHERE o.customer_id = c.id AND o.placed_at <= ?) > ?), FALSE)",
            "COALESCE(((SELECT CAST(ROUND(ROUND(SUM(o.total) * 100) / NULLIF(COUNT(*), 0)) / 100 AS DOUBLE PRECISION) FROM orders o WHERE o.customer_id = c.id AND o.placed_at <= $2) > $3), FALSE)",
            vec![ts("2025-06-01T00:00:00Z"), ts("2025-06-01T00:00:00Z"), Float(49.5)],
        ),
        (
            "orders.count() >= 1 and orders.last_at() < 180d ago",
            "COALESCE(((SELECT COUNT(*) FROM orders o WHERE o.customer_id = c.id AND o.placed_at <= ?) >= ?), FALSE) AND COALESCE(((SELECT MAX(o.placed_at) FROM orders o WHERE o.customer_id = c.id AND o.placed_at <= ?) < ?), FALSE)",
            "COALESCE(((SELECT COUNT(*) FROM orders o WHERE o.customer_id = c.id AND o.placed_at <= $2) >= $3), FALSE) AND COALESCE(((SELECT MAX(o.placed_at) FROM orders o WHERE o.customer_id = c.id AND o.placed_at <= $4) < $5), FALSE)",
            vec![ts("2025-06-01T00:00:00Z"), ts("2025-06-01T00:00:00Z"), Int(1), ts("2025-06-01T00:00:00Z"), ts("2024-12-03T00:00:00Z")],
        ),
        (
            "orders.first_at(12w) >= 2025-01-01T00:00:00Z",
            "COALESCE(((SELECT MIN(o.placed_at) FROM orders o WHERE o.customer_id = c.id AND o.placed_at > ? AND o.placed_at <= ?) >= ?), FALSE)",
            "COALESCE(((SELECT MIN(o.placed_at) FROM orders o WHERE o.customer_id = c.id AND o.placed_at > $2 AND o.placed_at <= $3) >= $4), FALSE)",
            vec![ts("2025-06-01T00:00:00Z"), ts("2025-03-09T00:00:00Z"), ts("2025-06-01T00:00:00Z"), ts("2025-01-01T00:00:00Z")],
        ),
        (
            "orders.discount_share(365d) >= 0.5",
            "COALESCE(((SELECT CAST(SUM(CASE WHEN o.discount_code IS NOT NULL AND LENGTH(o.discount_code) > 0 THEN 1 ELSE 0 END) AS REAL) / NULLIF(COUNT(*), 0) FROM orders o WHERE o.customer_id = c.id AND o.placed_at > ? AND o.placed_at <= ?) >= ?), FALSE)",
            "COALESCE(((SELECT CAST(SUM(CASE WHEN o.discount_code IS NOT NULL AND LENGTH(o.discount_code) > 0 THEN 1 ELSE 0 END) AS DOUBLE PRECISION) / NULLIF(COUNT(*), 0) FROM orders o WHERE o.customer_id = c.id AND o.placed_at > $2 AND o.placed_at <= $3) >= $4), FALSE)",
            vec![ts("2025-06-01T00:00:00Z"), ts("2024-06-01T00:00:00Z"), ts("2025-06-01T00:00:00Z"), Float(0.5)],
        ),
        (
            "orders.free_shipping_share() > 0.25",
            "COALESCE(((SELECT CAST(SUM(CASE WHEN o.free_shipping THEN 1 ELSE 0 END) AS REAL) / NULLIF(COUNT(*), 0) FROM orders o WHERE o.customer_id = c.id AND o.placed_at <= ?) > ?), FALSE)",
            "COALESCE(((SELECT CAST(SUM(CASE WHEN o.free_shipping THEN 1 ELSE 0 END) AS DOUBLE PRECISION) / NULLIF(COUNT(*), 0) FROM orders o WHERE o.customer_id = c.id AND o.placed_at <= $2) > $3), FALSE)",
            vec![ts("2025-06-01T00:00:00Z"), ts("2025-06-01T00:00:00Z"), Float(0.25)],
        ),
        (
            "events.count() > 3 or events.count(24h) >= 1",
            "COALESCE(((SELECT COUNT(*) FROM events e WHERE e.customer_id = c.id AND e.occurred_at <= ?) > ?), FALSE) OR COALESCE(((SELECT COUNT(*) FROM events e WHERE e.customer_id = c.id AND e.occurred_at > ? AND e.occurred_at <= ?) >= ?), FALSE)",
            "COALESCE(((SELECT COUNT(*) FROM events e WHERE e.customer_id = c.id AND e.occurred_at <= $2) > $3), FALSE) OR COALESCE(((SELECT COUNT(*) FROM events e WHERE e.customer_id = c.id AND e.occurred_at > $4 AND e.occurred_at <= $5) >= $6), FALSE)",
            vec![ts("2025-06-01T00:00:00Z"), ts("2025-06-01T00:00:00Z"), Int(3), ts("2025-05-31T00:00:00Z"), ts("2025-06-01T00:00:00Z"), Int(1)],
        ),
        (
            "events.last_at(\"email_open\") > 90m ago",
            "COALESCE(((SELECT MAX(e.occurred_at) FROM events e WHERE e.customer_id = c.id AND e.kind = ? AND e.occurred_at <= ?) > ?), FALSE)",
            "COALESCE(((SELECT MAX(e.occurred_at) FROM events e WHERE e.customer_id = c.id AND e.kind = $2 AND e.occurred_at <= $3) > $4), FALSE)",
            vec![ts("2025-06-01T00:00:00Z"), text("email_open"), ts("2025-06-01T00:00:00Z"), ts("2025-05-31T22:30:00Z")],
        ),
        (
            "customer.country in (\"US\", \"CA\") and customer.consent_ads",
            "COALESCE((c.country IN (?, ?)), FALSE) AND COALESCE(c.consent_ads = TRUE, FALSE)",
            "COALESCE((c.country IN ($2, $3)), FALSE) AND COALESCE(c.consent_ads = TRUE, FALSE)",
            vec![ts("2025-06-01T00:00:00Z"), text("US"), text("CA")],
        ),
        (
            "customer.country not in (\"FR\")",
            "COALESCE((c.country NOT IN (?)), FALSE)",
            "COALESCE((c.country NOT IN ($2)), FALSE)",
            vec![ts("2025-06-01T00:00:00Z"), text("FR")],
        ),
        (
            "customer.city < \"M\"",
            "COALESCE((c.city < ?), FALSE)",
            "COALESCE((c.city COLLATE \"C\" < $2), FALSE)",
            vec![ts("2025-06-01T00:00:00Z"), text("M")],
        ),
        (
            "customer.birth_date < 1990-01-01",
            "COALESCE((CAST(strftime('%s', c.birth_date) AS INTEGER) < ?), FALSE)",
            "COALESCE(((CAST(c.birth_date AS TIMESTAMP) AT TIME ZONE 'UTC') < $2), FALSE)",
            vec![ts("2025-06-01T00:00:00Z"), ts("1990-01-01T00:00:00Z")],
        ),
        (
            "customer.age >= 30 and customer.age <= 50",
            "COALESCE(((? - CAST(strftime('%Y', c.birth_date) AS INTEGER) - (CASE WHEN ? < CAST(strftime('%m%d', c.birth_date) AS INTEGER) THEN 1 ELSE 0 END)) >= ?), FALSE) AND COALESCE(((? - CAST(strftime('%Y', c.birth_date) AS INTEGER) - (CASE WHEN ? < CAST(strftime('%m%d', c.birth_date) AS INTEGER) THEN 1 ELSE 0 END)) <= ?), FALSE)",
            "COALESCE((($2 - CAST(EXTRACT(YEAR FROM c.birth_date) AS INTEGER) - (CASE WHEN $3 < CAST(EXTRACT(MONTH FROM c.birth_date) * 100 + EXTRACT(DAY FROM c.birth_date) AS INTEGER) THEN 1 ELSE 0 END)) >= $4), FALSE) AND COALESCE((($5 - CAST(EXTRACT(YEAR FROM c.birth_date) AS INTEGER) - (CASE WHEN $6 < CAST(EXTRACT(MONTH FROM c.birth_date) * 100 + EXTRACT(DAY FROM c.birth_date) AS INTEGER) THEN 1 ELSE 0 END)) <= $7), FALSE)",
            vec![ts("2025-06-01T00:00:00Z"), Int(2025), Int(601), Int(30), Int(2025), Int(601), Int(50)],
        ),
        (
            "customer.created_at < 2y ago or orders.count(1y) > 0",
            "COALESCE((c.created_at < ?), FALSE) OR COALESCE(((SELECT COUNT(*) FROM orders o WHERE o.customer_id = c.id AND o.placed_at > ? AND o.placed_at <= ?) > ?), FALSE)",
            "COALESCE((c.created_at < $2), FALSE) OR COALESCE(((SELECT COUNT(*) FROM orders o WHERE o.customer_id = c.id AND o.placed_at > $3 AND o.placed_at <= $4) > $5), FALSE)",
            vec![ts("2025-06-01T00:00:00Z"), ts("2023-06-01T00:00:00Z"), ts("2024-06-01T00:00:00Z"), ts("2025-06-01T00:00:00Z"), Int(0)],
        ),
        (
            "customer.created_at >= 2024-01-01T12:30:00+02:00",
            "COALESCE((c.created_at >= ?), FALSE)",
            "COALESCE((c.created_at >= $2), FALSE)",
            vec![ts("2025-06-01T00:00:00Z"), ts("2024-01-01T10:30:00Z")],
        ),
        (
            "not customer.consent_email",
            "NOT COALESCE(c.consent_email = TRUE, FALSE)",
            "NOT COALESCE(c.consent_email = TRUE, FALSE)",
            vec![ts("2025-06-01T00:00:00Z")],
        ),
        (
            "customer.consent_ads == false",
            "COALESCE((c.consent_ads = ?), FALSE)",
            "COALESCE((c.consent_ads = $2), FALSE)",
            vec![ts("2025-06-01T00:00:00Z"), Bool(false)],
        ),
        (
            "in_segment(\"vip\") and not in_segment(\"lapsed\")",
            "EXISTS (SELECT 1 FROM segment_memberships sm WHERE sm.segment = ? AND sm.customer_id = c.id) AND NOT EXISTS (SELECT 1 FROM segment_memberships sm WHERE sm.segment = ? AND sm.customer_id = c.id)",
            "EXISTS (SELECT 1 FROM segment_memberships sm WHERE sm.segment = $2 AND sm.customer_id = c.id) AND NOT EXISTS (SELECT 1 FROM segment_memberships sm WHERE sm.segment = $3 AND sm.customer_id = c.id)",
            vec![ts("2025-06-01T00:00:00Z"), text("vip"), text("lapsed")],
        ),
        (
            "(orders.count() > 1 or orders.count(7d) in (4, 5)) and not (customer.gender == \"f\" or customer.id != \"x\")",
            "(COALESCE(((SELECT COUNT(*) FROM orders o WHERE o.customer_id = c.id AND o.placed_at <= ?) > ?), FALSE) OR COALESCE(((SELECT COUNT(*) FROM orders o WHERE o.customer_id = c.id AND o.placed_at > ? AND o.placed_at <= ?) IN (?, ?)), FALSE)) AND NOT (COALESCE((c.gender = ?), FALSE) OR COALESCE((c.id <> ?), FALSE))",
            "(COALESCE(((SELECT COUNT(*) FROM orders o WHERE o.customer_id = c.id AND o.placed_at <= $2) > $3), FALSE) OR COALESCE(((SELECT COUNT(*) FROM orders o WHERE o.customer_id = c.id AND o.placed_at > $4 AND o.placed_at <= $5) IN ($6, $7)), FALSE)) AND NOT (COALESCE((c.gender = $8), FALSE) OR COALESCE((c.id <> $9), FALSE))",
            vec![ts("2025-06-01T00:00:00Z"), ts("2025-06-01T00:00:00Z"), Int(1), ts("2025-05-25T00:00:00Z"), ts("2025-06-01T00:00:00Z"), Int(4), Int(5), text("f"), text("x")],
        ),
        (
            "orders.avg() <= -1.5",
            "COALESCE(((SELECT ROUND(ROUND(SUM(o.total) * 100) / NULLIF(COUNT(*), 0)) / 100.0 FROM orders o WHERE o.customer_id = c.id AND o.placed_at <= ?) <= ?), FALSE)",
            "COALESCE(((SELECT CAST(ROUND(ROUND(SUM(o.total) * 100) / NULLIF(COUNT(*), 0)) / 100 AS DOUBLE PRECISION) FROM orders o WHERE o.customer_id = c.id AND o.placed_at <= $2) <= $3), FALSE)",
            vec![ts("2025-06-01T00:00:00Z"), ts("2025-06-01T00:00:00Z"), Float(-1.5)],
        ),
        ]
    }

    #[test]
    fn compiles_each_feature_exactly() {
        for (src, sqlite, pg, params) in cases() {
            let rule = parse_rule(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            let q = rule.compile(&[], Dialect::Sqlite, as_of());
            assert_eq!(q.sql, format!("{SQLITE_HEAD}{sqlite})"), "sqlite: {src}");
            assert_eq!(q.params, params, "sqlite params: {src}");
            let q = rule.compile(&[], Dialect::Postgres, as_of());
            assert_eq!(q.sql, format!("{PG_HEAD}{pg})"), "postgres: {src}");
            assert_eq!(q.params, params, "postgres params: {src}");
        }
    }

    /// Long chains become balanced halves so SQLite's expression tree stays shallow; short ones
    /// stay as written.
    #[test]
    fn long_chains_compile_to_balanced_halves() {
        let src = (1..=9)
            .map(|i| format!("in_segment(\"s{i}\")"))
            .collect::<Vec<_>>()
            .join(" or ");
        let q = parse_rule(&src)
            .expect("rule")
            .compile(&[], Dialect::Sqlite, as_of());
        let seg = "EXISTS (SELECT 1 FROM segment_memberships sm WHERE sm.segment = ? AND sm.customer_id = c.id)";
        let four = [seg; 4].join(" OR ");
        let five = format!("({seg} OR {seg}) OR ({})", [seg; 3].join(" OR "));
        assert_eq!(q.sql, format!("{SQLITE_HEAD}({four}) OR ({five}))"));
        assert_eq!(q.params.len(), 10);
        assert_eq!(
            balanced(&["a".to_string(), "b".to_string()], " AND "),
            "a AND b"
        );
        // 10,000 operands: 12 levels of parenthesised halves.
        let parts: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
        let sql = balanced(&parts, " AND ");
        let mut depth: i32 = 0;
        let mut deepest = 0;
        for c in sql.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            deepest = deepest.max(depth);
        }
        assert_eq!(deepest, 12);
    }

    #[test]
    fn rfm_join_and_excludes_full_query() {
        let rule = parse_rule("rfm.r >= 4 and rfm.f >= 4").expect("rule");
        let excludes = ["lapsed".to_string(), "staff".to_string()];
        let q = rule.compile(&excludes, Dialect::Sqlite, as_of());
        assert_eq!(
            q.sql,
            "SELECT c.id AS customer_id FROM customers c \
             LEFT JOIN (SELECT o.customer_id AS customer_id, \
             NTILE(5) OVER (ORDER BY MAX(o.placed_at), o.customer_id) AS r, \
             NTILE(5) OVER (ORDER BY COUNT(*), o.customer_id) AS f, \
             NTILE(5) OVER (ORDER BY ROUND(SUM(o.total), 2), o.customer_id) AS m \
             FROM orders o WHERE o.placed_at <= ? GROUP BY o.customer_id) rfm ON rfm.customer_id = c.id \
             WHERE (c.created_at IS NULL OR c.created_at <= ?) \
             AND (COALESCE((rfm.r >= ?), FALSE) AND COALESCE((rfm.f >= ?), FALSE)) \
             AND NOT EXISTS (SELECT 1 FROM segment_memberships x WHERE x.segment = ? AND x.customer_id = c.id) \
             AND NOT EXISTS (SELECT 1 FROM segment_memberships x WHERE x.segment = ? AND x.customer_id = c.id)"
        );
        let params = vec![
            ts("2025-06-01T00:00:00Z"),
            ts("2025-06-01T00:00:00Z"),
            Int(4),
            Int(4),
            text("lapsed"),
            text("staff"),
        ];
        assert_eq!(q.params, params);
        let q = rule.compile(&excludes, Dialect::Postgres, as_of());
        assert_eq!(
            q.sql,
            "SELECT c.id AS customer_id FROM customers c \
             LEFT JOIN (SELECT o.customer_id AS customer_id, \
             NTILE(5) OVER (ORDER BY MAX(o.placed_at), o.customer_id COLLATE \"C\") AS r, \
             NTILE(5) OVER (ORDER BY COUNT(*), o.customer_id COLLATE \"C\") AS f, \
             NTILE(5) OVER (ORDER BY ROUND(SUM(o.total), 2), o.customer_id COLLATE \"C\") AS m \
             FROM orders o WHERE o.placed_at <= $1 GROUP BY o.customer_id) rfm ON rfm.customer_id = c.id \
             WHERE (c.created_at IS NULL OR c.created_at <= $2) \
             AND (COALESCE((rfm.r >= $3), FALSE) AND COALESCE((rfm.f >= $4), FALSE)) \
             AND NOT EXISTS (SELECT 1 FROM segment_memberships x WHERE x.segment = $5 AND x.customer_id = c.id) \
             AND NOT EXISTS (SELECT 1 FROM segment_memberships x WHERE x.segment = $6 AND x.customer_id = c.id)"
        );
        assert_eq!(q.params, params);
    }

    #[test]
    fn as_of_is_truncated_to_whole_seconds() {
        let rule = parse_rule("orders.count(1d) > 0").expect("rule");
        let as_of = as_of() + chrono::Duration::milliseconds(999);
        let q = rule.compile(&[], Dialect::Sqlite, as_of);
        assert_eq!(
            q.params,
            vec![
                ts("2025-06-01T00:00:00Z"),
                ts("2025-05-31T00:00:00Z"),
                ts("2025-06-01T00:00:00Z"),
                Int(0)
            ]
        );
    }

    #[test]
    fn literals_never_reach_the_sql_text() {
        let rule = parse_rule(r#"customer.email == "x'); DROP TABLE customers; --" or customer.consent_ads == true or orders.sum() > 0.25"#)
            .expect("rule");
        for d in [Dialect::Sqlite, Dialect::Postgres] {
            let q = rule.compile(&[], d, as_of());
            assert!(!q.sql.contains("DROP"), "{}", q.sql);
            assert_eq!(
                q.params[1..],
                [
                    text("x'); DROP TABLE customers; --"),
                    Bool(true),
                    ts("2025-06-01T00:00:00Z"),
                    Float(0.25)
                ]
            );
        }
    }
}
