//! The typed abstract syntax tree of a rule.
//!
//! Every node carries the position of its first token so later stages (type checking) can point at
//! the exact place a user has to fix. Every node also has a statically known [`Type`]: terms have a
//! fixed type by name, so the parser already produces a typed tree and the type checker only has to
//! verify that operators are applied to the right kinds of values.

use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, Months, SecondsFormat, Utc};

/// A 1-based line and column (in characters) in the rule source, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    /// 1-based line number.
    pub line: u32,
    /// 1-based column, counted in Unicode characters.
    pub column: u32,
}

impl Pos {
    /// Builds a position; used by tests and by the lexer.
    pub fn new(line: u32, column: u32) -> Self {
        Pos { line, column }
    }
}

/// The static type of a value in the rule language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// Integers and decimals alike (counts, sums, shares, RFM scores).
    Number,
    /// Text (customer attributes, event kinds).
    String,
    /// A condition: what `and`, `or`, `not` and the whole rule need.
    Bool,
    /// A point in time (UTC, second resolution).
    Timestamp,
    /// A length of time; only meaningful as a window argument or before `ago`.
    Duration,
}

impl Type {
    /// The noun with its article, as used in error messages ("a number").
    pub fn describe(self) -> &'static str {
        match self {
            Type::Number => "a number",
            Type::String => "a string",
            Type::Bool => "a condition (true/false)",
            Type::Timestamp => "a timestamp",
            Type::Duration => "a duration",
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::Number => "number",
            Type::String => "string",
            Type::Bool => "bool",
            Type::Timestamp => "timestamp",
            Type::Duration => "duration",
        })
    }
}

/// The unit of a duration literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationUnit {
    /// `m`
    Minutes,
    /// `h`
    Hours,
    /// `d`
    Days,
    /// `w`
    Weeks,
    /// `y`: calendar years (`30y ago` is the same date and time 30 years earlier; from 29 February
    /// it lands on 28 February), so `customer.birth_date <= 30y ago` means `customer.age >= 30`.
    Years,
}

impl DurationUnit {
    /// Seconds in one unit; for years the nominal 365 days, used only to bound a duration's length
    /// (windows and `ago` subtract calendar years, see [`Duration::before`]).
    pub fn seconds(self) -> i64 {
        match self {
            DurationUnit::Minutes => 60,
            DurationUnit::Hours => 3_600,
            DurationUnit::Days => 86_400,
            DurationUnit::Weeks => 7 * 86_400,
            DurationUnit::Years => 365 * 86_400,
        }
    }

    /// The suffix letter, so durations print back the way they were written.
    pub fn suffix(self) -> char {
        match self {
            DurationUnit::Minutes => 'm',
            DurationUnit::Hours => 'h',
            DurationUnit::Days => 'd',
            DurationUnit::Weeks => 'w',
            DurationUnit::Years => 'y',
        }
    }
}

/// A duration literal such as `7d`; kept as written (amount and unit) so it prints back unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration {
    /// The number before the unit, non-negative.
    pub amount: i64,
    /// The unit letter.
    pub unit: DurationUnit,
}

impl Duration {
    /// Length in seconds (years counted as 365 days): windows and `ago` are computed at second
    /// resolution (SQLite stores seconds).
    pub fn seconds(self) -> i64 {
        self.amount.saturating_mul(self.unit.seconds())
    }

    /// `as_of - self`, saturating at the earliest representable instant instead of panicking.
    ///
    /// Years are calendar years (same month, day and time of day; 29 February → 28 February), so
    /// SQL and the reference evaluator, which both take this bound from here, agree on them.
    pub fn before(self, as_of: DateTime<Utc>) -> DateTime<Utc> {
        let earlier = match self.unit {
            DurationUnit::Years => u32::try_from(self.amount.saturating_mul(12))
                .ok()
                .and_then(|months| as_of.checked_sub_months(Months::new(months))),
            _ => as_of.checked_sub_signed(chrono::Duration::seconds(self.seconds())),
        };
        earlier.unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.suffix())
    }
}

/// A literal value written in the rule. All of them become bound SQL parameters, never SQL text.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// An integer such as `2`.
    Int(i64),
    /// A decimal such as `0.5`.
    Float(f64),
    /// A double- or single-quoted string.
    Str(String),
    /// `true` or `false`.
    Bool(bool),
    /// An RFC 3339 timestamp (or a bare date, meaning midnight UTC).
    Timestamp(DateTime<Utc>),
    /// A bare duration: only valid as a window argument; anywhere else a type error.
    Duration(Duration),
    /// `DURATION ago`: a timestamp relative to the evaluation instant (`as_of`).
    Ago(Duration),
}

impl Literal {
    /// The static type of the literal.
    pub fn ty(&self) -> Type {
        match self {
            Literal::Int(_) | Literal::Float(_) => Type::Number,
            Literal::Str(_) => Type::String,
            Literal::Bool(_) => Type::Bool,
            Literal::Timestamp(_) | Literal::Ago(_) => Type::Timestamp,
            Literal::Duration(_) => Type::Duration,
        }
    }
}

/// Writes `s` as a double-quoted rule string using only the escapes the lexer reads (`\"`, `\\`,
/// `\n`, `\t`, `\r`, `\u{..}` for other control characters), so it lexes back to exactly `s`.
/// Rust's `{:?}` would not: it writes escapes such as `\u{301}` for combining marks and `\0`.
pub fn write_quoted(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// A decimal in plain notation that lexes back as the same `f64`: Rust's `Display` gives the
/// shortest digits that round-trip without an exponent (`{:?}` would write `1e16`, which the
/// language has no syntax for), and a `.0` is added to integral values so they stay decimals.
fn write_float(f: &mut fmt::Formatter<'_>, v: f64) -> fmt::Result {
    let text = v.to_string();
    f.write_str(&text)?;
    if text.contains('.') || !v.is_finite() {
        Ok(())
    } else {
        f.write_str(".0")
    }
}

/// An instant as an RFC 3339 literal the lexer reads back: `Z` when its UTC year has four digits;
/// otherwise (a literal like `9999-12-31T23:00:00-05:00` is in year 10000 in UTC) with the
/// largest offset RFC 3339 allows, which brings every instant the lexer accepts back into years
/// 0000..=9999.
fn write_timestamp(f: &mut fmt::Formatter<'_>, t: DateTime<Utc>) -> fmt::Result {
    const MAX_OFFSET: i32 = 23 * 3_600 + 59 * 60;
    let offset = match t.year() {
        y if y > 9999 => FixedOffset::west_opt(MAX_OFFSET),
        y if y < 0 => FixedOffset::east_opt(MAX_OFFSET),
        _ => None,
    };
    match offset {
        Some(o) => f.write_str(
            &t.with_timezone(&o)
                .to_rfc3339_opts(SecondsFormat::AutoSi, false),
        ),
        None => f.write_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Int(v) => write!(f, "{v}"),
            Literal::Float(v) => write_float(f, *v),
            Literal::Str(s) => write_quoted(f, s),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Timestamp(t) => write_timestamp(f, *t),
            Literal::Duration(d) => write!(f, "{d}"),
            Literal::Ago(d) => write!(f, "{d} ago"),
        }
    }
}

/// A customer attribute (a column of `customers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerAttr {
    /// `customer.id`
    Id,
    /// `customer.email`
    Email,
    /// `customer.phone`
    Phone,
    /// `customer.first_name`
    FirstName,
    /// `customer.last_name`
    LastName,
    /// `customer.country` (ISO-3166 alpha-2)
    Country,
    /// `customer.city`
    City,
    /// `customer.postal_code`
    PostalCode,
    /// `customer.gender`
    Gender,
    /// `customer.birth_date`, a timestamp at midnight UTC of the date.
    BirthDate,
    /// `customer.age`: whole years from `birth_date` to the UTC date of "now" (`as_of`); missing
    /// without a birth date. Not a column: computed per dialect from `birth_date`.
    Age,
    /// `customer.created_at`
    CreatedAt,
    /// `customer.consent_ads`, usable bare as a condition.
    ConsentAds,
    /// `customer.consent_email`, usable bare as a condition.
    ConsentEmail,
}

impl CustomerAttr {
    /// Every attribute, in the order error messages list them.
    pub const ALL: [CustomerAttr; 14] = [
        CustomerAttr::Id,
        CustomerAttr::Email,
        CustomerAttr::Phone,
        CustomerAttr::FirstName,
        CustomerAttr::LastName,
        CustomerAttr::Country,
        CustomerAttr::City,
        CustomerAttr::PostalCode,
        CustomerAttr::Gender,
        CustomerAttr::BirthDate,
        CustomerAttr::Age,
        CustomerAttr::CreatedAt,
        CustomerAttr::ConsentAds,
        CustomerAttr::ConsentEmail,
    ];

    /// The attribute's name in rules, which is also its column name (except for the computed
    /// `age`).
    pub fn name(self) -> &'static str {
        match self {
            CustomerAttr::Id => "id",
            CustomerAttr::Email => "email",
            CustomerAttr::Phone => "phone",
            CustomerAttr::FirstName => "first_name",
            CustomerAttr::LastName => "last_name",
            CustomerAttr::Country => "country",
            CustomerAttr::City => "city",
            CustomerAttr::PostalCode => "postal_code",
            CustomerAttr::Gender => "gender",
            CustomerAttr::BirthDate => "birth_date",
            CustomerAttr::Age => "age",
            CustomerAttr::CreatedAt => "created_at",
            CustomerAttr::ConsentAds => "consent_ads",
            CustomerAttr::ConsentEmail => "consent_email",
        }
    }

    /// Looks an attribute up by its rule name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The attribute's static type.
    pub fn ty(self) -> Type {
        match self {
            CustomerAttr::BirthDate | CustomerAttr::CreatedAt => Type::Timestamp,
            CustomerAttr::ConsentAds | CustomerAttr::ConsentEmail => Type::Bool,
            CustomerAttr::Age => Type::Number,
            _ => Type::String,
        }
    }
}

/// An aggregate over the customer's orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderFn {
    /// Number of orders (0 when none).
    Count,
    /// Sum of totals rounded to cents (0 when none).
    Sum,
    /// Average total rounded to cents (absent when none).
    Avg,
    /// Time of the latest order (absent when none).
    LastAt,
    /// Time of the earliest order (absent when none).
    FirstAt,
    /// Share of orders with a non-empty discount code (absent when none).
    DiscountShare,
    /// Share of orders with free shipping (absent when none).
    FreeShippingShare,
}

impl OrderFn {
    /// Every order function, in the order error messages list them.
    pub const ALL: [OrderFn; 7] = [
        OrderFn::Count,
        OrderFn::Sum,
        OrderFn::Avg,
        OrderFn::LastAt,
        OrderFn::FirstAt,
        OrderFn::DiscountShare,
        OrderFn::FreeShippingShare,
    ];

    /// The function's name after `orders.`.
    pub fn name(self) -> &'static str {
        match self {
            OrderFn::Count => "count",
            OrderFn::Sum => "sum",
            OrderFn::Avg => "avg",
            OrderFn::LastAt => "last_at",
            OrderFn::FirstAt => "first_at",
            OrderFn::DiscountShare => "discount_share",
            OrderFn::FreeShippingShare => "free_shipping_share",
        }
    }

    /// Looks a function up by name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The result type.
    pub fn ty(self) -> Type {
        match self {
            OrderFn::LastAt | OrderFn::FirstAt => Type::Timestamp,
            _ => Type::Number,
        }
    }
}

/// An aggregate over the customer's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFn {
    /// Number of events (of a kind, in a window); 0 when none.
    Count,
    /// Time of the latest event (of a kind); absent when none.
    LastAt,
}

impl EventFn {
    /// Every event function, in the order error messages list them.
    pub const ALL: [EventFn; 2] = [EventFn::Count, EventFn::LastAt];

    /// The function's name after `events.`.
    pub fn name(self) -> &'static str {
        match self {
            EventFn::Count => "count",
            EventFn::LastAt => "last_at",
        }
    }

    /// Looks a function up by name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The result type.
    pub fn ty(self) -> Type {
        match self {
            EventFn::Count => Type::Number,
            EventFn::LastAt => Type::Timestamp,
        }
    }
}

/// One of the RFM quintile scores (1..5, absent for customers without orders).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RfmScore {
    /// Recency: 5 = ordered most recently.
    R,
    /// Frequency: 5 = most orders.
    F,
    /// Monetary: 5 = largest total spend.
    M,
}

impl RfmScore {
    /// The name after `rfm.`, also the column of the derived RFM table.
    pub fn name(self) -> &'static str {
        match self {
            RfmScore::R => "r",
            RfmScore::F => "f",
            RfmScore::M => "m",
        }
    }
}

/// A value read from the shop's data.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    /// `customer.<attr>`
    Customer(CustomerAttr),
    /// `orders.<fn>([window])`; `window` = trailing window ending at `as_of`, `None` = all time.
    Orders {
        /// The aggregate.
        func: OrderFn,
        /// The trailing window, if any.
        window: Option<Duration>,
    },
    /// `events.count([kind][, window])` / `events.last_at([kind])`.
    Events {
        /// The aggregate.
        func: EventFn,
        /// Only events of this kind, if given.
        kind: Option<String>,
        /// The trailing window, if any (only `count` takes one).
        window: Option<Duration>,
    },
    /// `rfm.r`, `rfm.f`, `rfm.m`
    Rfm(RfmScore),
    /// `in_segment("name")`: membership in another segment's last computed membership.
    InSegment(String),
}

impl Term {
    /// The term's static type.
    pub fn ty(&self) -> Type {
        match self {
            Term::Customer(a) => a.ty(),
            Term::Orders { func, .. } => func.ty(),
            Term::Events { func, .. } => func.ty(),
            Term::Rfm(_) => Type::Number,
            Term::InSegment(_) => Type::Bool,
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Customer(a) => write!(f, "customer.{}", a.name()),
            Term::Orders { func, window } => {
                write!(f, "orders.{}(", func.name())?;
                if let Some(w) = window {
                    write!(f, "{w}")?;
                }
                f.write_str(")")
            }
            Term::Events { func, kind, window } => {
                write!(f, "events.{}(", func.name())?;
                let mut args = Vec::new();
                if let Some(k) = kind {
                    let mut quoted = String::new();
                    write_quoted(&mut quoted, k)?;
                    args.push(quoted);
                }
                if let Some(w) = window {
                    args.push(w.to_string());
                }
                write!(f, "{})", args.join(", "))
            }
            Term::Rfm(s) => write!(f, "rfm.{}", s.name()),
            Term::InSegment(name) => {
                f.write_str("in_segment(")?;
                write_quoted(f, name)?;
                f.write_str(")")
            }
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator as written in rules.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// The operator in SQL.
    pub fn sql(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// Whether the operator orders values (and so is meaningless on booleans).
    pub fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }

    /// Applies the operator to an [`std::cmp::Ordering`]; used by the reference evaluator.
    pub fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => ord == Equal,
            CmpOp::Ne => ord != Equal,
            CmpOp::Lt => ord == Less,
            CmpOp::Le => ord != Greater,
            CmpOp::Gt => ord == Greater,
            CmpOp::Ge => ord != Less,
        }
    }
}

/// A node of the rule tree together with the position of its first token.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What the node is.
    pub kind: ExprKind,
    /// Where it starts in the source.
    pub pos: Pos,
}

/// The kinds of rule nodes.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// `a and b and ...`: two or more operands, flat. A chain of any length is one node, so the
    /// tree's depth is bounded by the nesting of parentheses and `not` (which the parser limits),
    /// never by the number of terms; no operand is itself an `And` (the parser splices groups in).
    And(Vec<Expr>),
    /// `a or b or ...`: two or more operands, flat, none itself an `Or` (see [`ExprKind::And`]).
    Or(Vec<Expr>),
    /// `not operand`
    Not(Box<Expr>),
    /// `lhs op rhs`; `op_pos` is where the operator is, for type errors.
    Compare {
        /// The operator.
        op: CmpOp,
        /// Position of the operator.
        op_pos: Pos,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// `lhs [not] in (items...)`; items are literals.
    In {
        /// `not in` rather than `in`.
        negated: bool,
        /// Position of `in` (or of `not` in `not in`).
        op_pos: Pos,
        /// The value tested.
        lhs: Box<Expr>,
        /// The literal list.
        items: Vec<Expr>,
    },
    /// A literal value.
    Literal(Literal),
    /// A value read from the data.
    Term(Term),
}

impl Expr {
    /// Builds a node; used by the parser and tests.
    pub fn new(kind: ExprKind, pos: Pos) -> Self {
        Expr { kind, pos }
    }

    /// The node's static type (what it evaluates to); well-defined for every node, checked or not.
    pub fn ty(&self) -> Type {
        match &self.kind {
            ExprKind::And(..)
            | ExprKind::Or(..)
            | ExprKind::Not(_)
            | ExprKind::Compare { .. }
            | ExprKind::In { .. } => Type::Bool,
            ExprKind::Literal(l) => l.ty(),
            ExprKind::Term(t) => t.ty(),
        }
    }

    /// Names of the segments this rule reads with `in_segment`, deduplicated, in order of first
    /// appearance: recompute must compute those first (see [`super::deps::order_segments`]).
    pub fn segment_refs(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let ExprKind::Term(Term::InSegment(name)) = &e.kind {
                if !out.contains(name) {
                    out.push(name.clone());
                }
            }
        });
        out
    }

    /// Whether the rule reads an RFM score, so the compiled query needs the RFM derived table.
    pub fn uses_rfm(&self) -> bool {
        let mut found = false;
        self.walk(&mut |e| {
            if let ExprKind::Term(Term::Rfm(_)) = e.kind {
                found = true;
            }
        });
        found
    }

    /// Visits every node, parents before children, left to right.
    pub fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match &self.kind {
            ExprKind::And(parts) | ExprKind::Or(parts) => {
                for p in parts {
                    p.walk(f);
                }
            }
            ExprKind::Not(a) => a.walk(f),
            ExprKind::Compare { lhs, rhs, .. } => {
                lhs.walk(f);
                rhs.walk(f);
            }
            ExprKind::In { lhs, items, .. } => {
                lhs.walk(f);
                for i in items {
                    i.walk(f);
                }
            }
            ExprKind::Literal(_) | ExprKind::Term(_) => {}
        }
    }

    /// Whether two trees are the same rule, ignoring where their nodes were written: what "the
    /// canonical form parses back to the same rule" means (the fuzz target and property tests).
    pub fn same_rule(&self, other: &Expr) -> bool {
        use ExprKind::*;
        let all_same = |a: &[Expr], b: &[Expr]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_rule(y))
        };
        match (&self.kind, &other.kind) {
            (And(a), And(b)) | (Or(a), Or(b)) => all_same(a, b),
            (Not(a), Not(b)) => a.same_rule(b),
            (
                Compare {
                    op: o1,
                    lhs: l1,
                    rhs: r1,
                    ..
                },
                Compare {
                    op: o2,
                    lhs: l2,
                    rhs: r2,
                    ..
                },
            ) => o1 == o2 && l1.same_rule(l2) && r1.same_rule(r2),
            (
                In {
                    negated: n1,
                    lhs: l1,
                    items: i1,
                    ..
                },
                In {
                    negated: n2,
                    lhs: l2,
                    items: i2,
                    ..
                },
            ) => n1 == n2 && l1.same_rule(l2) && all_same(i1, i2),
            (Literal(a), Literal(b)) => a == b,
            (Term(a), Term(b)) => a == b,
            _ => false,
        }
    }

    /// How deeply nested the tree is (a leaf is 1). Bounded by the parser's limits; the type
    /// checker re-checks it so a hand-built tree cannot take a recursive pass past them.
    pub fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut stack = vec![(self, 1usize)];
        while let Some((e, d)) = stack.pop() {
            deepest = deepest.max(d);
            match &e.kind {
                ExprKind::And(parts) | ExprKind::Or(parts) => {
                    stack.extend(parts.iter().map(|p| (p, d + 1)))
                }
                ExprKind::Not(a) => stack.push((a, d + 1)),
                ExprKind::Compare { lhs, rhs, .. } => {
                    stack.push((lhs, d + 1));
                    stack.push((rhs, d + 1));
                }
                ExprKind::In { lhs, items, .. } => {
                    stack.push((lhs, d + 1));
                    stack.extend(items.iter().map(|p| (p, d + 1)));
                }
                ExprKind::Literal(_) | ExprKind::Term(_) => {}
            }
        }
        deepest
    }

    fn precedence(&self) -> u8 {
        match self.kind {
            ExprKind::Or(..) => 1,
            ExprKind::And(..) => 2,
            ExprKind::Not(_) => 3,
            ExprKind::Compare { .. } | ExprKind::In { .. } => 4,
            ExprKind::Literal(_) | ExprKind::Term(_) => 5,
        }
    }

    fn fmt_child(&self, child: &Expr, min: u8, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if child.precedence() < min {
            write!(f, "({child})")
        } else {
            write!(f, "{child}")
        }
    }
}

/// Prints the rule in canonical form with the minimal parentheses; parsing the output gives the
/// same tree (shown by `segments show`, and used by tests to check precedence).
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            // An operand of the same kind is parenthesised, so the flat shape prints back as is.
            ExprKind::Or(parts) | ExprKind::And(parts) => {
                let (word, min) = match self.kind {
                    ExprKind::Or(_) => (" or ", 2),
                    _ => (" and ", 3),
                };
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(word)?;
                    }
                    self.fmt_child(p, min, f)?;
                }
                Ok(())
            }
            ExprKind::Not(a) => {
                f.write_str("not ")?;
                self.fmt_child(a, 3, f)
            }
            ExprKind::Compare { op, lhs, rhs, .. } => {
                self.fmt_child(lhs, 5, f)?;
                write!(f, " {} ", op.symbol())?;
                self.fmt_child(rhs, 5, f)
            }
            ExprKind::In {
                negated,
                lhs,
                items,
                ..
            } => {
                self.fmt_child(lhs, 5, f)?;
                f.write_str(if *negated { " not in (" } else { " in (" })?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str(")")
            }
            ExprKind::Literal(l) => write!(f, "{l}"),
            ExprKind::Term(t) => write!(f, "{t}"),
        }
    }
}
