//! Hand-written recursive-descent parser: tokens → typed [`Expr`] tree.
//!
//! Grammar (lowest precedence first):
//!
//! ```text
//! rule     := or EOF
//! or       := and ("or" and)*
//! and      := unary ("and" unary)*
//! unary    := "not" unary | compare
//! compare  := operand [ cmp_op operand | ["not"] "in" "(" literal ("," literal)* ")" ]
//! operand  := "(" or ")" | term | literal | "-" number | duration ["ago"]
//! term     := "customer" "." attr
//!           | "orders" "." fn "(" [duration] ")"
//!           | "events" "." "count" "(" [string] [","] [duration] ")" | "events" "." "last_at" "(" [string] ")"
//!           | "rfm" "." ("r" | "f" | "m")
//!           | "in_segment" "(" string ")"
//! ```
//!
//! Names are resolved here (an unknown attribute or function is reported at its own token), so the
//! tree is typed from the start; [`super::typecheck`] then checks operators against operand types.

use super::ast::{
    CmpOp, CustomerAttr, Duration, EventFn, Expr, ExprKind, Literal, OrderFn, Pos, RfmScore, Term,
    Type,
};
use super::error::RuleError;
use super::lexer::{tokenize, Token, TokenKind};

/// Deepest nesting of parentheses / `not` accepted. Together with flat `and`/`or` chains this
/// bounds the tree's depth, so every recursive pass (type check, SQL, evaluator, printing, drop)
/// stays far from the stack's end, and the SQL stays under SQLite's expression depth of 1000.
pub const MAX_DEPTH: usize = 64;

/// Most nodes (conditions, operators, values, list items) a rule may have. A compiled node binds at
/// most two parameters, so the query stays under SQLite's 32,766 bound parameters; rules this big
/// are better split into segments combined with `in_segment`.
pub const MAX_NODES: usize = 10_000;

/// Parses rule text into an (unchecked) expression tree; [`super::parse_rule`] also type-checks.
pub fn parse(src: &str) -> Result<Expr, RuleError> {
    let tokens = tokenize(src)?;
    let mut p = Parser {
        tokens,
        i: 0,
        depth: 0,
        nodes: 0,
    };
    if p.peek().kind == TokenKind::Eof {
        return Err(RuleError::at(
            p.peek().pos,
            "expected a condition, found an empty rule",
        ));
    }
    let expr = p.or()?;
    let t = p.peek();
    if t.kind != TokenKind::Eof {
        return Err(RuleError::at(
            t.pos,
            format!(
                "expected \"and\", \"or\" or end of input, found {}",
                t.describe()
            ),
        ));
    }
    Ok(expr)
}

struct Parser {
    tokens: Vec<Token>,
    i: usize,
    depth: usize,
    /// Nodes built so far, against [`MAX_NODES`].
    nodes: usize,
}

fn cmp_op(kind: &TokenKind) -> Option<CmpOp> {
    Some(match kind {
        TokenKind::EqEq => CmpOp::Eq,
        TokenKind::Ne => CmpOp::Ne,
        TokenKind::Lt => CmpOp::Lt,
        TokenKind::Le => CmpOp::Le,
        TokenKind::Gt => CmpOp::Gt,
        TokenKind::Ge => CmpOp::Ge,
        _ => return None,
    })
}

fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> String {
    all.iter().map(|a| name(*a)).collect::<Vec<_>>().join(", ")
}

impl Parser {
    fn peek(&self) -> &Token {
        // The token list always ends with Eof and `i` never passes it.
        &self.tokens[self.i.min(self.tokens.len() - 1)]
    }

    fn peek_kind_at(&self, n: usize) -> &TokenKind {
        &self.tokens[(self.i + n).min(self.tokens.len() - 1)].kind
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if t.kind != TokenKind::Eof {
            self.i += 1;
        }
        t
    }

    fn eat(&mut self, kind: &TokenKind) -> bool {
        if &self.peek().kind == kind {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, kind: &TokenKind, what: &str) -> Result<Token, RuleError> {
        if &self.peek().kind == kind {
            Ok(self.next())
        } else {
            let t = self.peek();
            Err(RuleError::at(
                t.pos,
                format!("expected {what}, found {}", t.describe()),
            ))
        }
    }

    fn enter(&mut self, pos: Pos) -> Result<(), RuleError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(RuleError::at(
                pos,
                format!("rule is nested too deeply (at most {MAX_DEPTH} levels)"),
            ));
        }
        Ok(())
    }

    /// Builds a node, counting it against [`MAX_NODES`]; `pos` is where the error points.
    fn node(&mut self, kind: ExprKind, pos: Pos) -> Result<Expr, RuleError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(RuleError::at(
                pos,
                format!(
                    "rule is too large (more than {MAX_NODES} conditions, operators and values; split it into segments combined with in_segment)"
                ),
            ));
        }
        Ok(Expr::new(kind, pos))
    }

    fn or(&mut self) -> Result<Expr, RuleError> {
        self.chain(TokenKind::Or)
    }

    /// `operand (word operand)*` as one flat node: a parenthesised operand of the same kind is
    /// spliced in (`(a or b) or c` is `a or b or c`), so chains never nest.
    fn chain(&mut self, word: TokenKind) -> Result<Expr, RuleError> {
        let is_or = word == TokenKind::Or;
        let first = self.chain_operand(is_or)?;
        if self.peek().kind != word {
            return Ok(first);
        }
        let pos = first.pos;
        let mut parts = Vec::new();
        let mut next = first;
        loop {
            match next.kind {
                ExprKind::Or(inner) if is_or => parts.extend(inner),
                ExprKind::And(inner) if !is_or => parts.extend(inner),
                kind => parts.push(Expr::new(kind, next.pos)),
            }
            if !self.eat(&word) {
                break;
            }
            next = self.chain_operand(is_or)?;
        }
        let kind = if is_or {
            ExprKind::Or(parts)
        } else {
            ExprKind::And(parts)
        };
        self.node(kind, pos)
    }

    fn chain_operand(&mut self, is_or: bool) -> Result<Expr, RuleError> {
        if is_or {
            self.chain(TokenKind::And)
        } else {
            self.unary()
        }
    }

    fn unary(&mut self) -> Result<Expr, RuleError> {
        if self.peek().kind == TokenKind::Not {
            let t = self.next();
            self.enter(t.pos)?;
            let operand = self.unary()?;
            self.depth -= 1;
            return self.node(ExprKind::Not(Box::new(operand)), t.pos);
        }
        self.compare()
    }

    fn compare(&mut self) -> Result<Expr, RuleError> {
        let lhs = self.operand()?;
        let pos = lhs.pos;
        let t = self.peek().clone();
        if let Some(op) = cmp_op(&t.kind) {
            self.next();
            let rhs = self.operand()?;
            return self.node(
                ExprKind::Compare {
                    op,
                    op_pos: t.pos,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
                pos,
            );
        }
        let negated = t.kind == TokenKind::Not && *self.peek_kind_at(1) == TokenKind::In;
        if t.kind == TokenKind::In || negated {
            self.next();
            if negated {
                self.next();
            }
            let items = self.in_list()?;
            return self.node(
                ExprKind::In {
                    negated,
                    op_pos: t.pos,
                    lhs: Box::new(lhs),
                    items,
                },
                pos,
            );
        }
        match lhs.ty() {
            // A value closing a group, as in `(orders.count()) >= 1`: the caller continues.
            _ if t.kind == TokenKind::RParen => Ok(lhs),
            Type::Bool => Ok(lhs),
            Type::Duration => Err(RuleError::at(
                t.pos,
                format!(
                    "expected \"ago\" or a comparison operator after {lhs}, found {}",
                    t.describe()
                ),
            )),
            _ => Err(RuleError::at(
                t.pos,
                format!(
                    "expected a comparison operator after {lhs}, found {}",
                    t.describe()
                ),
            )),
        }
    }

    fn in_list(&mut self) -> Result<Vec<Expr>, RuleError> {
        self.expect(&TokenKind::LParen, "\"(\" after \"in\"")?;
        let mut items = Vec::new();
        loop {
            let t = self.peek().clone();
            let item = match self.literal()? {
                Some(lit) => lit,
                None => {
                    return Err(RuleError::at(
                        t.pos,
                        format!(
                            "expected a literal value in the \"in\" list, found {}",
                            t.describe()
                        ),
                    ))
                }
            };
            items.push(item);
            if self.eat(&TokenKind::Comma) {
                continue;
            }
            self.expect(&TokenKind::RParen, "\",\" or \")\" in the \"in\" list")?;
            return Ok(items);
        }
    }

    /// A literal value, or `None` (consuming nothing) when the next token does not start one.
    fn literal(&mut self) -> Result<Option<Expr>, RuleError> {
        let t = self.peek().clone();
        let lit = match &t.kind {
            TokenKind::Int(v) => Literal::Int(*v),
            TokenKind::Float(v) => Literal::Float(*v),
            TokenKind::Str(s) => Literal::Str(s.clone()),
            TokenKind::True => Literal::Bool(true),
            TokenKind::False => Literal::Bool(false),
            TokenKind::Timestamp(ts) => Literal::Timestamp(*ts),
            TokenKind::Minus => {
                self.next();
                let n = self.next();
                let lit = match n.kind {
                    TokenKind::Int(v) => Literal::Int(-v),
                    TokenKind::Float(v) => Literal::Float(-v),
                    _ => {
                        return Err(RuleError::at(
                            n.pos,
                            format!("expected a number after \"-\", found {}", n.describe()),
                        ))
                    }
                };
                return self.node(ExprKind::Literal(lit), t.pos).map(Some);
            }
            TokenKind::Duration(d) => {
                let d = *d;
                self.next();
                let lit = if self.eat(&TokenKind::Ago) {
                    Literal::Ago(d)
                } else {
                    Literal::Duration(d)
                };
                return self.node(ExprKind::Literal(lit), t.pos).map(Some);
            }
            _ => return Ok(None),
        };
        self.next();
        self.node(ExprKind::Literal(lit), t.pos).map(Some)
    }

    fn operand(&mut self) -> Result<Expr, RuleError> {
        let t = self.peek().clone();
        if t.kind == TokenKind::LParen {
            self.next();
            self.enter(t.pos)?;
            let mut inner = self.or()?;
            self.depth -= 1;
            self.expect(&TokenKind::RParen, "\"and\", \"or\" or \")\"")?;
            // The group starts at its parenthesis, so errors about it point there.
            inner.pos = t.pos;
            return Ok(inner);
        }
        if let Some(lit) = self.literal()? {
            return Ok(lit);
        }
        if let TokenKind::Ident(name) = &t.kind {
            self.next();
            let term = self.term(name, &t)?;
            return self.node(ExprKind::Term(term), t.pos);
        }
        Err(RuleError::at(
            t.pos,
            format!("expected a condition or a value, found {}", t.describe()),
        ))
    }

    /// Reads `.name` after `root`, returning the name token.
    fn member(&mut self, root: &str, what: &str) -> Result<(String, Token), RuleError> {
        self.expect(&TokenKind::Dot, &format!("\".\" after \"{root}\""))?;
        let t = self.next();
        match &t.kind {
            TokenKind::Ident(n) => Ok((n.clone(), t)),
            _ => Err(RuleError::at(
                t.pos,
                format!("expected {what} after \"{root}.\", found {}", t.describe()),
            )),
        }
    }

    fn term(&mut self, root: &str, root_tok: &Token) -> Result<Term, RuleError> {
        match root {
            "customer" => {
                let (name, t) = self.member("customer", "a customer attribute")?;
                CustomerAttr::from_name(&name)
                    .map(Term::Customer)
                    .ok_or_else(|| {
                        RuleError::at(
                            t.pos,
                            format!(
                                "unknown customer attribute \"{name}\" (expected one of {})",
                                names(&CustomerAttr::ALL, CustomerAttr::name)
                            ),
                        )
                    })
            }
            "orders" => {
                let (name, t) = self.member("orders", "an orders function")?;
                let func = OrderFn::from_name(&name).ok_or_else(|| {
                    RuleError::at(
                        t.pos,
                        format!(
                            "unknown function orders.{name} (expected one of {})",
                            names(&OrderFn::ALL, OrderFn::name)
                        ),
                    )
                })?;
                let label = format!("orders.{name}");
                self.expect(&TokenKind::LParen, &format!("\"(\" after {label}"))?;
                let window = if self.eat(&TokenKind::RParen) {
                    None
                } else {
                    let w = self.window_arg(&format!(
                        "a window duration such as 30d as the argument of {label}"
                    ))?;
                    self.expect(
                        &TokenKind::RParen,
                        &format!("\")\" after the window of {label}"),
                    )?;
                    Some(w)
                };
                Ok(Term::Orders { func, window })
            }
            "events" => {
                let (name, t) = self.member("events", "an events function")?;
                let func = EventFn::from_name(&name).ok_or_else(|| {
                    RuleError::at(
                        t.pos,
                        format!(
                            "unknown function events.{name} (expected one of {})",
                            names(&EventFn::ALL, EventFn::name)
                        ),
                    )
                })?;
                let label = format!("events.{name}");
                self.expect(&TokenKind::LParen, &format!("\"(\" after {label}"))?;
                let (kind, window) = match func {
                    EventFn::Count => self.event_count_args(&label)?,
                    EventFn::LastAt => {
                        let kind = self.kind_arg(false, &label)?;
                        self.expect(
                            &TokenKind::RParen,
                            &format!("\")\" after the event kind of {label}"),
                        )?;
                        (kind, None)
                    }
                };
                Ok(Term::Events { func, kind, window })
            }
            "rfm" => {
                let (name, t) = self.member("rfm", "an RFM score (r, f or m)")?;
                let score = match name.as_str() {
                    "r" => RfmScore::R,
                    "f" => RfmScore::F,
                    "m" => RfmScore::M,
                    _ => {
                        return Err(RuleError::at(
                            t.pos,
                            format!("unknown RFM score rfm.{name} (expected r, f or m)"),
                        ))
                    }
                };
                Ok(Term::Rfm(score))
            }
            "in_segment" => {
                self.expect(&TokenKind::LParen, "\"(\" after in_segment")?;
                let t = self.next();
                let name = match t.kind {
                    TokenKind::Str(s) if !s.trim().is_empty() => s,
                    TokenKind::Str(_) => {
                        return Err(RuleError::at(t.pos, "segment name must not be empty"))
                    }
                    _ => {
                        return Err(RuleError::at(
                            t.pos,
                            format!(
                                "expected a segment name in quotes as the argument of in_segment, found {}",
                                t.describe()
                            ),
                        ))
                    }
                };
                self.expect(&TokenKind::RParen, "\")\" after the segment name")?;
                Ok(Term::InSegment(name))
            }
            other => {
                let hint = if CustomerAttr::from_name(other).is_some() {
                    format!(" (did you mean customer.{other}?)")
                } else {
                    " (expected customer.<attribute>, orders.<function>(...), events.<function>(...), rfm.<score>, in_segment(...), a literal or \"not\")".to_string()
                };
                Err(RuleError::at(
                    root_tok.pos,
                    format!("unknown name \"{other}\"{hint}"),
                ))
            }
        }
    }

    fn window_arg(&mut self, what: &str) -> Result<Duration, RuleError> {
        let t = self.next();
        match t.kind {
            TokenKind::Duration(d) => Ok(d),
            _ => Err(RuleError::at(
                t.pos,
                format!("expected {what}, found {}", t.describe()),
            )),
        }
    }

    /// An optional event-kind string; `None` when the next token is `)` (or, if `then_window`, a
    /// duration).
    fn kind_arg(&mut self, then_window: bool, label: &str) -> Result<Option<String>, RuleError> {
        let t = self.peek().clone();
        match t.kind {
            TokenKind::Str(s) => {
                self.next();
                Ok(Some(s))
            }
            TokenKind::RParen => Ok(None),
            TokenKind::Duration(_) if then_window => Ok(None),
            _ => {
                let what = if then_window {
                    "an event kind string or a window duration"
                } else {
                    "an event kind string"
                };
                Err(RuleError::at(
                    t.pos,
                    format!(
                        "expected {what} as the argument of {label}, found {}",
                        t.describe()
                    ),
                ))
            }
        }
    }

    fn event_count_args(
        &mut self,
        label: &str,
    ) -> Result<(Option<String>, Option<Duration>), RuleError> {
        let kind = self.kind_arg(true, label)?;
        if self.eat(&TokenKind::RParen) {
            return Ok((kind, None));
        }
        if kind.is_some() {
            self.expect(
                &TokenKind::Comma,
                &format!("\",\" or \")\" after the event kind of {label}"),
            )?;
        }
        let window = self.window_arg(&format!(
            "a window duration such as 30d as an argument of {label}"
        ))?;
        self.expect(
            &TokenKind::RParen,
            &format!("\")\" after the window of {label}"),
        )?;
        Ok((kind, Some(window)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::parse_rule;

    /// Valid rules and their canonical form (which shows how precedence grouped them).
    #[test]
    fn parses_valid_rules() {
        let cases = [
            ("orders.count() >= 2", "orders.count() >= 2"),
            (
                "orders.count() == 0 and events.count(\"visit\", 30d) >= 1   # first-time visitors",
                "orders.count() == 0 and events.count(\"visit\", 30d) >= 1",
            ),
            (
                "not in_segment(\"a\") or in_segment(\"b\") and in_segment(\"c\")",
                "not in_segment(\"a\") or in_segment(\"b\") and in_segment(\"c\")",
            ),
            (
                "(in_segment(\"a\") or in_segment(\"b\")) and not (rfm.r >= 4)",
                "(in_segment(\"a\") or in_segment(\"b\")) and not rfm.r >= 4",
            ),
            (
                "customer.country in ('US', \"CA\") and customer.consent_ads",
                "customer.country in (\"US\", \"CA\") and customer.consent_ads",
            ),
            (
                "customer.country not in (\"FR\")",
                "customer.country not in (\"FR\")",
            ),
            ("orders.last_at() < 180d ago", "orders.last_at() < 180d ago"),
            ("orders.sum(12w) > -0.5", "orders.sum(12w) > -0.5"),
            (
                "events.count(24h) >= 1 or events.count(\"visit\") > 0 or events.count() > 9",
                "events.count(24h) >= 1 or events.count(\"visit\") > 0 or events.count() > 9",
            ),
            (
                "events.last_at(\"email_open\") >= 90m ago",
                "events.last_at(\"email_open\") >= 90m ago",
            ),
            (
                "customer.created_at >= 2025-01-01T00:00:00Z",
                "customer.created_at >= 2025-01-01T00:00:00Z",
            ),
            (
                "customer.birth_date < 1990-01-01",
                "customer.birth_date < 1990-01-01T00:00:00Z",
            ),
            (
                "customer.first_name == \"Zo\\\"e\\\\\"",
                "customer.first_name == \"Zo\\\"e\\\\\"",
            ),
            ("true", "true"),
            ("(orders.count()) >= (1)", "orders.count() >= 1"),
            (
                "not not customer.consent_email",
                "not not customer.consent_email",
            ),
            (
                "# leading comment\n  rfm.r >= 4 # recent\n  and rfm.f >= 4\n",
                "rfm.r >= 4 and rfm.f >= 4",
            ),
            (
                "(orders.count() > 1) == customer.consent_ads",
                "(orders.count() > 1) == customer.consent_ads",
            ),
        ];
        for (src, canonical) in cases {
            let rule = parse_rule(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(rule.to_string(), canonical, "{src}");
            // The canonical form parses back to the same tree (positions aside).
            let again = parse_rule(canonical).unwrap_or_else(|e| panic!("{canonical}: {e}"));
            assert_eq!(again.to_string(), canonical);
        }
    }

    #[test]
    fn and_binds_tighter_than_or_and_records_positions() {
        let e = parse("in_segment(\"a\") or\n  in_segment(\"b\") and in_segment(\"c\")")
            .expect("parse");
        let ExprKind::Or(parts) = &e.kind else {
            panic!("expected or at the top: {e:?}");
        };
        let [lhs, rhs] = parts.as_slice() else {
            panic!("expected two operands: {parts:?}");
        };
        assert_eq!(lhs.pos, Pos::new(1, 1));
        assert!(matches!(rhs.kind, ExprKind::And(..)));
        assert_eq!(rhs.pos, Pos::new(2, 3));
    }

    #[test]
    fn durations_keep_their_unit() {
        let e = parse("orders.count(90m) > 0").expect("parse");
        let ExprKind::Compare { lhs, .. } = e.kind else {
            panic!("compare");
        };
        assert_eq!(
            lhs.kind,
            ExprKind::Term(Term::Orders {
                func: OrderFn::Count,
                window: Some(Duration {
                    amount: 90,
                    unit: super::super::ast::DurationUnit::Minutes
                })
            })
        );
    }

    /// Invalid rules: (source, line, column, message).
    #[test]
    fn reports_syntax_errors_with_position() {
        let cases: &[(&str, u32, u32, &str)] = &[
            ("orders.count() foo", 1, 16, "expected a comparison operator after orders.count(), found \"foo\""),
            ("orders.count()", 1, 15, "expected a comparison operator after orders.count(), found end of input"),
            ("orders.cnt() > 1", 1, 8, "unknown function orders.cnt (expected one of count, sum, avg, last_at, first_at, discount_share, free_shipping_share)"),
            ("events.sum() > 1", 1, 8, "unknown function events.sum (expected one of count, last_at)"),
            ("customer.colour == \"red\"", 1, 10, "unknown customer attribute \"colour\" (expected one of id, email, phone, first_name, last_name, country, city, postal_code, gender, birth_date, age, created_at, consent_ads, consent_email)"),
            ("customer.country == \"US", 1, 21, "unterminated string"),
            ("customer.country == \"US\n  and true", 1, 21, "unterminated string"),
            ("rfm.x >= 4", 1, 5, "unknown RFM score rfm.x (expected r, f or m)"),
            ("country == \"US\"", 1, 1, "unknown name \"country\" (did you mean customer.country?)"),
            ("orders.count(30) > 1", 1, 14, "expected a window duration such as 30d as the argument of orders.count, found \"30\""),
            ("orders.count(30d, 7d) > 1", 1, 17, "expected \")\" after the window of orders.count, found \",\""),
            ("orders.count > 1", 1, 14, "expected \"(\" after orders.count, found \">\""),
            ("events.count(7d, \"visit\") > 1", 1, 16, "expected \")\" after the window of events.count, found \",\""),
            ("events.count(\"visit\" 7d) > 1", 1, 22, "expected \",\" or \")\" after the event kind of events.count, found \"7d\""),
            ("events.count(3) > 1", 1, 14, "expected an event kind string or a window duration as the argument of events.count, found \"3\""),
            ("events.last_at(7d) > 1d ago", 1, 16, "expected an event kind string as the argument of events.last_at, found \"7d\""),
            ("orders.count(7x) > 1", 1, 14, "invalid duration \"7x\" (expected a whole number followed by m, h, d, w or y, e.g. 30d)"),
            ("orders.count(1.5d) > 1", 1, 14, "invalid duration \"1.5d\" (durations take a whole number, e.g. 36h)"),
            ("customer.created_at > 2025-13-01T00:00:00Z", 1, 23, "invalid timestamp \"2025-13-01T00:00:00Z\" (expected RFC 3339 like 2025-01-01T00:00:00Z, or a date like 2025-01-01)"),
            ("orders.count() = 1", 1, 16, "unexpected \"=\" (did you mean \"==\"?)"),
            ("orders.count() >= 1 && rfm.r > 1", 1, 21, "unexpected \"&&\" (did you mean \"and\"?)"),
            ("orders.count() >= 1 @", 1, 21, "unexpected character \"@\""),
            ("(orders.count() >= 1", 1, 21, "expected \"and\", \"or\" or \")\", found end of input"),
            ("orders.count() >= 1)", 1, 20, "expected \"and\", \"or\" or end of input, found \")\""),
            ("orders.count() >= 1 and", 1, 24, "expected a condition or a value, found end of input"),
            ("   # only a comment\n", 2, 1, "expected a condition, found an empty rule"),
            ("customer.country in \"US\"", 1, 21, "expected \"(\" after \"in\", found string \"US\""),
            ("customer.country in ()", 1, 22, "expected a literal value in the \"in\" list, found \")\""),
            ("customer.country in (\"US\" \"CA\")", 1, 27, "expected \",\" or \")\" in the \"in\" list, found string \"CA\""),
            ("in_segment(vip)", 1, 12, "expected a segment name in quotes as the argument of in_segment, found \"vip\""),
            ("in_segment(\"\")", 1, 12, "segment name must not be empty"),
            ("orders.count() >= 1\nand orders.sum(30d) >= 100\nand orders.last_at() < 30 ago", 3, 27, "expected \"and\", \"or\" or end of input, found \"ago\""),
            ("# vip buyers\norders.sum(365d) >= 1000\n   or customer.tier == \"gold\"", 3, 16, "unknown customer attribute \"tier\" (expected one of id, email, phone, first_name, last_name, country, city, postal_code, gender, birth_date, age, created_at, consent_ads, consent_email)"),
            ("orders.count() >= 1 and\n  7d", 2, 5, "expected \"ago\" or a comparison operator after 7d, found end of input"),
            ("rfm.r >= - 4x", 1, 12, "invalid duration \"4x\" (expected a whole number followed by m, h, d, w or y, e.g. 30d)"),
            ("rfm.r >= -rfm.f", 1, 11, "expected a number after \"-\", found \"rfm\""),
            ("orders.count() > 99999999999999999999", 1, 18, "number \"99999999999999999999\" is too large"),
            ("orders.count(99999999w) > 1", 1, 14, "duration \"99999999w\" is too long (at most 100000d)"),
            ("customer.email == \"a\\qb\"", 1, 21, "invalid escape \"\\q\" in string (expected \\\", \\', \\\\, \\n, \\t, \\r or \\u{...})"),
            ("customer.", 1, 10, "expected a customer attribute after \"customer.\", found end of input"),
        ];
        for (src, line, column, message) in cases {
            let err = parse_rule(src).expect_err(src);
            assert_eq!(
                (err.line, err.column, err.message.as_str()),
                (*line, *column, *message),
                "{src}"
            );
            assert_eq!(
                err.to_string(),
                format!("line {line}, column {column}: {message}")
            );
        }
    }

    /// Rules whose canonical form did not parse back to the same rule before the printer wrote
    /// only what the lexer reads: (source, canonical form).
    #[test]
    fn canonical_form_round_trips_the_known_failures() {
        let cases = [
            // Floats ≥ 1e16 printed as `1e16` (no exponent syntax), integral ones as `2`.
            ("rfm.m > 10000000000000000.0", "rfm.m > 10000000000000000.0"),
            ("rfm.m > 12345678901234567890.5", "rfm.m > 12345678901234567000.0"),
            ("rfm.m in (2.0, -0.5, 0.000001)", "rfm.m in (2.0, -0.5, 0.000001)"),
            // Rust's `{:?}` escapes combining marks and NUL as `\u{301}` / `\0`.
            ("customer.city == \"Mont-Ste-Anne\u{301}\"", "customer.city == \"Mont-Ste-Anne\u{301}\""),
            ("customer.city == \"a\u{0}b\u{1b}c\"", "customer.city == \"a\\u{0}b\\u{1b}c\""),
            ("customer.city == 'it\\'s \\\"x\\\"\\r\\n\\t\\\\'", "customer.city == \"it's \\\"x\\\"\\r\\n\\t\\\\\""),
            ("events.count(\"\u{7f}\u{301}\") > 1", "events.count(\"\\u{7f}\u{301}\") > 1"),
            ("in_segment(\"a\\u{2028}b\")", "in_segment(\"a\u{2028}b\")"),
            // Instants after 9999 or before 0000 in UTC, written with an offset.
            ("customer.created_at < 9999-12-31T23:30:00-05:00", "customer.created_at < 9999-12-31T04:31:00-23:59"),
            ("customer.created_at > 0000-01-01T00:00:00+01:00", "customer.created_at > 0000-01-01T22:59:00+23:59"),
            ("customer.created_at > 9999-12-31T23:59:59.5Z", "customer.created_at > 9999-12-31T23:59:59.500Z"),
            ("customer.created_at > 2016-12-31T23:59:60Z", "customer.created_at > 2016-12-31T23:59:60Z"),
            ("orders.count(30y) >= 1 and customer.birth_date <= 18y ago", "orders.count(30y) >= 1 and customer.birth_date <= 18y ago"),
            ("(in_segment(\"a\") and in_segment(\"b\")) and (in_segment(\"c\") or in_segment(\"d\") or (in_segment(\"e\")))", "in_segment(\"a\") and in_segment(\"b\") and (in_segment(\"c\") or in_segment(\"d\") or in_segment(\"e\"))"),
        ];
        for (src, canonical) in cases {
            let rule = parse_rule(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(rule.to_string(), canonical, "{src}");
            let again = parse_rule(canonical).unwrap_or_else(|e| panic!("{canonical}: {e}"));
            assert!(again.expr().same_rule(rule.expr()), "{src}: {again:?}");
            assert_eq!(again.to_string(), canonical);
            assert_eq!(
                crate::rules::invariants::check(src).map(|r| r.is_some()),
                Ok(true)
            );
        }
    }

    #[test]
    fn lexer_refuses_infinite_decimals_and_bad_unicode_escapes() {
        let huge = format!("rfm.m > {}.5", "9".repeat(400));
        let err = parse_rule(&huge).expect_err("infinite");
        assert_eq!((err.line, err.column), (1, 9));
        assert!(err.message.contains("is too large"), "{err}");
        for bad in [
            "\"\\u{}\"",
            "\"\\u{110000}\"",
            "\"\\u{d800}\"",
            "\"\\u{1234567}\"",
            "\"\\u12\"",
            "\"\\u{12\"",
        ] {
            let err = parse_rule(&format!("customer.city == {bad}")).expect_err(bad);
            assert_eq!((err.line, err.column), (1, 19), "{bad}");
            assert!(
                err.message.starts_with("invalid escape \"\\u\""),
                "{bad}: {err}"
            );
        }
    }

    /// `a and b and c`, however long, is one node: the tree is as deep as its nesting, not its
    /// length, and a parenthesised chain of the same kind is spliced in.
    #[test]
    fn chains_are_flat() {
        let src = vec!["customer.consent_ads"; 5000].join(" and ");
        let e = parse(&src).expect("parse");
        let ExprKind::And(parts) = &e.kind else {
            panic!("and");
        };
        assert_eq!(parts.len(), 5000);
        assert_eq!(e.depth(), 2);
        let e = parse("(rfm.r > 1 or rfm.f > 1) or ((rfm.m > 1 or rfm.m < 0))").expect("parse");
        let ExprKind::Or(parts) = &e.kind else {
            panic!("or");
        };
        assert_eq!(parts.len(), 4);
    }

    /// The size and depth limits: the largest accepted rule passes, one more node or level is a
    /// positioned error, and the 25,000-term chain that used to overflow the stack is refused.
    #[test]
    fn size_and_depth_are_bounded_with_a_position() {
        // 3,333 comparisons of 3 nodes each plus the chain: 10,000 nodes.
        let term = "rfm.r >= 1";
        let max = vec![term; 3333].join(" and ");
        let rule = parse_rule(&max).expect("largest rule");
        assert_eq!(
            crate::rules::invariants::count_nodes(rule.expr()),
            MAX_NODES
        );
        // One more comparison is too many: the error points at the value that crosses the limit.
        let over = format!("{}\nand\n rfm.r >= 1", vec![term; 3333].join(" and "));
        let err = parse_rule(&over).expect_err("too large");
        assert_eq!((err.line, err.column), (3, 11), "{err}");
        assert_eq!(
            err.message,
            "rule is too large (more than 10000 conditions, operators and values; split it into segments combined with in_segment)"
        );
        let huge = vec![term; 25_000].join("\nor ");
        let err = parse_rule(&huge).expect_err("25,000 terms");
        assert!(err.message.starts_with("rule is too large"), "{err}");
        assert_eq!(err.line, 3334);

        let deepest = format!("{}true{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        parse_rule(&deepest).expect("deepest rule");
        let nots = format!("{}customer.consent_ads", "not ".repeat(MAX_DEPTH));
        parse_rule(&nots).expect("deepest not");
        let err = parse_rule(&format!("not {nots}")).expect_err("too deep");
        assert_eq!((err.line, err.column), (1, 4 * MAX_DEPTH as u32 + 1));
        assert_eq!(err.message, "rule is nested too deeply (at most 64 levels)");
        let err = parse_rule(&format!("(({deepest}))")).expect_err("too deep");
        assert_eq!((err.line, err.column), (1, 1 + MAX_DEPTH as u32));
    }

    /// A worst case for every recursive pass: the deepest nesting the parser accepts, with wide
    /// chains at every level, comparisons of conditions and `not`s. Parse, check, print, re-parse,
    /// compile, evaluate and drop all run on a thread with a 512 KiB stack in a debug build (a
    /// tokio worker has 2 MiB, the main thread 8 MiB).
    #[test]
    fn every_pass_fits_a_small_stack_at_the_limits() {
        let mut src = String::from("customer.consent_ads");
        // Even levels nest twice (`not` and a parenthesis), odd ones once: 63 levels in all.
        for level in 0..42 {
            let chain = vec!["rfm.r >= 1"; 40].join(" or ");
            src = if level % 2 == 0 {
                format!("not ({src} and {chain}) == true")
            } else {
                format!("({chain} or {src}) != false")
            };
        }
        let handle = std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(move || {
                let rule = parse_rule(&src).unwrap_or_else(|e| panic!("{e}"));
                assert!(rule.expr().depth() > 120, "{}", rule.expr().depth());
                let err = parse_rule(&format!("(({src}))")).expect_err("one level too deep");
                assert!(err.message.contains("nested too deeply"), "{err}");
                crate::rules::invariants::check(&src).map(|r| r.is_some())
            })
            .expect("spawn");
        assert_eq!(handle.join().expect("no overflow"), Ok(true));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let src = format!("{}true{}", "(".repeat(500), ")".repeat(500));
        let err = parse_rule(&src).expect_err("too deep");
        assert!(err.message.contains("nested too deeply"), "{err}");
    }
}
