//! Type checking: every operator gets operands of the kinds it works on, before any SQL exists.
//!
//! The tree is typed by construction (see [`Expr::ty`]); this pass rejects the combinations that
//! would otherwise become nonsense SQL or silently-false conditions: comparing a count with a string,
//! `and` on a number, a bare duration where a number or timestamp is expected, ordering booleans.

use super::ast::{Expr, ExprKind, Literal, Type};
use super::error::RuleError;

/// Checks a whole rule: all operators well-typed and the rule itself a condition.
pub fn check(expr: &Expr) -> Result<(), RuleError> {
    check_node(expr)?;
    require_bool(expr, "as the rule")
}

fn found(e: &Expr) -> String {
    format!("{} ({e})", e.ty().describe())
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
        ExprKind::And(a, b) | ExprKind::Or(a, b) => {
            let op = if matches!(e.kind, ExprKind::And(..)) {
                "and"
            } else {
                "or"
            };
            check_node(a)?;
            check_node(b)?;
            require_bool(a, &format!("on the left of \"{op}\""))?;
            require_bool(b, &format!("on the right of \"{op}\""))
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
