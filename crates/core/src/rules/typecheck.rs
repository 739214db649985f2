//! Type checking: every operator gets operands of the kinds it works on, before any SQL exists.
//!
//! The tree is typed by construction (see [`Expr::ty`]); this pass rejects the combinations that
//! would otherwise become nonsense SQL or silently-false conditions: comparing a count with a string,
//! `and` on a number, a bare duration where a number or timestamp is expected, ordering booleans.

use super::ast::{Expr, ExprKind, Literal, Type};
use super::error::RuleError;
use super::parser::MAX_DEPTH;

/// Deepest tree the passes accept: what the parser can build from [`MAX_DEPTH`] levels of
/// parentheses and `not` (each level adds at most an `or`, an `and`, a `not`, a comparison and a
/// group), with room to spare. The parser never exceeds it; a hand-built tree that does is refused
/// here instead of overflowing the stack of a recursive pass.
pub const MAX_TREE_DEPTH: usize = 5 * MAX_DEPTH + 8;

/// Checks a whole rule: all operators well-typed and the rule itself a condition.
pub fn check(expr: &Expr) -> Result<(), RuleError> {
    if expr.depth() > MAX_TREE_DEPTH {
        return Err(RuleError::at(
            expr.pos,
            format!("rule is nested too deeply (at most {MAX_DEPTH} levels)"),
        ));
    }
    check_node(expr)?;
    require_bool(expr, "as the rule")
}

/// Longest rendering of an expression quoted in an error message: a whole 10,000-term chain
/// would drown the message.
const MAX_QUOTE: usize = 80;

fn found(e: &Expr) -> String {
    let text = e.to_string();
    if text.chars().count() <= MAX_QUOTE {
        format!("{} ({text})", e.ty().describe())
    } else {
        let head: String = text.chars().take(MAX_QUOTE - 3).collect();
        format!("{} ({head}...)", e.ty().describe())
    }
}

fn require_bool(e: &Expr, place: &str) -> Result<(), RuleError> {
    if e.ty() == Type::Bool {
        Ok(())
    } else {
        Err(RuleError::at(
            e.pos,
            format!("expected a condition {place}, found {}", found(e)),
        ))
    }
}

fn duration_misuse(dur: &Expr, other: Type) -> RuleError {
    let hint = match &dur.kind {
        ExprKind::Literal(Literal::Duration(d)) if other == Type::Timestamp => {
            format!(" (did you mean \"{d} ago\"?)")
        }
        _ => " (a duration is only allowed as a window argument or before \"ago\")".to_string(),
    };
    let expected = match other {
        Type::Duration => "a number, string or timestamp".to_string(),
        t => t.describe().to_string(),
    };
    RuleError::at(
        dur.pos,
        format!("expected {expected}, found the duration {dur}{hint}"),
    )
}

fn check_node(e: &Expr) -> Result<(), RuleError> {
    match &e.kind {
        ExprKind::And(parts) | ExprKind::Or(parts) => {
            let op = if matches!(e.kind, ExprKind::And(..)) {
                "and"
            } else {
                "or"
            };
            for (i, p) in parts.iter().enumerate() {
                check_node(p)?;
                let side = if i == 0 { "left" } else { "right" };
                require_bool(p, &format!("on the {side} of \"{op}\""))?;
            }
            Ok(())
        }
        ExprKind::Not(a) => {
            check_node(a)?;
            require_bool(a, "after \"not\"")
        }
        ExprKind::Compare {
            op,
            op_pos,
            lhs,
            rhs,
        } => {
            check_node(lhs)?;
            check_node(rhs)?;
            let (lt, rt) = (lhs.ty(), rhs.ty());
            if lt == Type::Duration {
                return Err(duration_misuse(lhs, rt));
            }
            if rt == Type::Duration {
                return Err(duration_misuse(rhs, lt));
            }
            if lt != rt {
                return Err(RuleError::at(
                    *op_pos,
                    format!(
                        "cannot compare {} with {} using \"{}\"",
                        found(lhs),
                        found(rhs),
                        op.symbol()
                    ),
                ));
            }
            if lt == Type::Bool && op.is_ordering() {
                return Err(RuleError::at(
                    *op_pos,
                    format!(
                        "cannot order conditions with \"{}\" (only == and != compare true/false)",
                        op.symbol()
                    ),
                ));
            }
            Ok(())
        }
        ExprKind::In {
            negated,
            op_pos,
            lhs,
            items,
        } => {
            check_node(lhs)?;
            let lt = lhs.ty();
            let op = if *negated { "not in" } else { "in" };
            if !matches!(lt, Type::Number | Type::String) {
                if lt == Type::Duration {
                    return Err(duration_misuse(lhs, Type::Number));
                }
                return Err(RuleError::at(
                    *op_pos,
                    format!(
                        "expected a number or a string on the left of \"{op}\", found {}",
                        found(lhs)
                    ),
                ));
            }
            for item in items {
                if item.ty() != lt {
                    return Err(RuleError::at(
                        item.pos,
                        format!(
                            "expected {} in the \"{op}\" list (like {lhs}), found {}",
                            lt.describe(),
                            found(item)
                        ),
                    ));
                }
            }
            Ok(())
        }
        ExprKind::Literal(_) | ExprKind::Term(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::parse_rule;

    /// Ill-typed rules: (source, line, column, message). Positions point at the offending
    /// operator (mismatched comparison) or operand (non-condition under and/or/not, misplaced
    /// duration, wrong list item).
    #[test]
    fn reports_type_errors_with_position() {
        let cases: &[(&str, u32, u32, &str)] = &[
            ("orders.count() == \"x\"", 1, 16, "cannot compare a number (orders.count()) with a string (\"x\") using \"==\""),
            ("customer.country > 3", 1, 18, "cannot compare a string (customer.country) with a number (3) using \">\""),
            ("orders.last_at() > 5", 1, 18, "cannot compare a timestamp (orders.last_at()) with a number (5) using \">\""),
            ("orders.count() >= 7d", 1, 19, "expected a number, found the duration 7d (a duration is only allowed as a window argument or before \"ago\")"),
            ("orders.last_at() < 30d", 1, 20, "expected a timestamp, found the duration 30d (did you mean \"30d ago\"?)"),
            ("7d < orders.count()", 1, 1, "expected a number, found the duration 7d (a duration is only allowed as a window argument or before \"ago\")"),
            ("orders.count() and rfm.r >= 1", 1, 16, "expected a comparison operator after orders.count(), found \"and\""),
            ("(orders.count()) and rfm.r >= 1", 1, 18, "expected a comparison operator after orders.count(), found \"and\""),
            ("rfm.r >= 1 or (orders.sum())", 1, 29, "expected a comparison operator after orders.sum(), found end of input"),
            ("not (customer.country)", 1, 23, "expected a comparison operator after customer.country, found end of input"),
            ("customer.consent_ads < true", 1, 22, "cannot order conditions with \"<\" (only == and != compare true/false)"),
            ("customer.country in (\"US\", 1)", 1, 28, "expected a string in the \"in\" list (like customer.country), found a number (1)"),
            ("customer.created_at in (2025-01-01)", 1, 21, "expected a number or a string on the left of \"in\", found a timestamp (customer.created_at)"),
            ("customer.consent_ads not in (true)", 1, 22, "expected a number or a string on the left of \"not in\", found a condition (true/false) (customer.consent_ads)"),
            ("in_segment(\"a\") == 1", 1, 17, "cannot compare a condition (true/false) (in_segment(\"a\")) with a number (1) using \"==\""),
            ("rfm.r >= 4 and\n  orders.first_at(30d) != \"never\"", 2, 24, "cannot compare a timestamp (orders.first_at(30d)) with a string (\"never\") using \"!=\""),
            ("(rfm.r >= 4) >= (rfm.f >= 4)", 1, 14, "cannot order conditions with \">=\" (only == and != compare true/false)"),
        ];
        for (src, line, column, message) in cases {
            let err = parse_rule(src).expect_err(src);
            assert_eq!(
                (err.line, err.column, err.message.as_str()),
                (*line, *column, *message),
                "{src}"
            );
        }
    }

    /// The parser already refuses most non-conditions under `and`/`or`/`not`; the checker is the
    /// backstop for trees built by hand.
    #[test]
    fn checks_hand_built_trees() {
        use crate::rules::ast::{Expr, ExprKind, Literal, OrderFn, Pos, Term};
        let count = Expr::new(
            ExprKind::Term(Term::Orders {
                func: OrderFn::Count,
                window: None,
            }),
            Pos::new(1, 5),
        );
        let yes = Expr::new(ExprKind::Literal(Literal::Bool(true)), Pos::new(1, 1));
        let and = Expr::new(
            ExprKind::And(vec![yes.clone(), count.clone()]),
            Pos::new(1, 1),
        );
        let err = super::check(&and).expect_err("and on a number");
        assert_eq!(
            err.to_string(),
            "line 1, column 5: expected a condition on the right of \"and\", found a number (orders.count())"
        );
        let err = super::check(&count).expect_err("rule is a number");
        assert_eq!(
            err.to_string(),
            "line 1, column 5: expected a condition as the rule, found a number (orders.count())"
        );
        let not = Expr::new(ExprKind::Not(Box::new(count)), Pos::new(1, 1));
        let err = super::check(&not).expect_err("not on a number");
        assert_eq!(
            err.to_string(),
            "line 1, column 5: expected a condition after \"not\", found a number (orders.count())"
        );
        assert_eq!(super::check(&yes), Ok(()));
    }

    #[test]
    fn accepts_well_typed_rules() {
        for src in [
            "orders.count() >= 0.5",
            "orders.avg() == orders.sum() or rfm.m > rfm.f",
            "customer.city >= \"A\"",
            "orders.last_at() > customer.created_at",
            "customer.birth_date < 2000-01-01T00:00:00Z",
            "customer.consent_ads == (orders.count() > 2)",
            "customer.consent_ads != in_segment(\"vip\")",
            "rfm.r in (1, 2.0, -3)",
        ] {
            parse_rule(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        }
    }
}
