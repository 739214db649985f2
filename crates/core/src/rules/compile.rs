//! Compiler: checked rules → parameterised SQL per dialect, as one shared aggregate pass per run plus
//! one cheap filter per segment.
//!
//! A recompute run compiles all its rules with one [`RunCompiler`]. Every value a rule reads from the
//! shop (a customer attribute, `orders.<fn>(window)`, `events.<fn>(kind, window)`, the RFM scores)
//! becomes a column of a per-run aggregate table, `segment_aggregates_N`, with one row per customer
//! visible at `as_of` (created at or before it). [`RunCompiler::tables`] gives the statements that
//! build those tables: one `GROUP BY customer_id` pass over `orders` and one over `events` (windows
//! and kinds as `CASE` inside the aggregates, RFM as `NTILE(5)` over the grouped orders), each into a
//! scratch table keyed by customer id, then the visible customers `LEFT JOIN` those keys. The shop's
//! rows are read once per run whatever the number of segments. Each segment's query
//! ([`RunCompiler::segment`]) is then a filter over those tables: `SELECT a0.customer_id FROM
//! segment_aggregates_0 a0 WHERE <rule over columns>`, a scan with no subquery per term. A run with
//! more than [`COLUMNS_PER_TABLE`] distinct values spreads them over several tables, joined by
//! customer id (SQLite allows 2,000 columns, Postgres 1,600). [`compile_segment`] compiles one rule on
//! its own: the same tables as `WITH` clauses in front of the same filter, so it runs anywhere.
//!
//! Every rule literal, every time bound derived from `as_of`, and every segment name and event kind
//! is a bound parameter, never SQL text, so no rule can inject SQL. Semantics (mirrored exactly by
//! [`super::eval`]):
//!
//! * only data at or before `as_of` (whole seconds) is visible; a window `7d` means
//!   `as_of - 7d < t <= as_of`; `D ago` is `as_of - D`;
//! * every comparison is `COALESCE((lhs op rhs), FALSE)`: two-valued logic, a missing value (no
//!   orders, NULL attribute, no RFM score) makes the comparison false and `not` of it true; counts
//!   and sums of customers without rows are 0, not missing;
//! * sums are rounded to cents; averages are computed on exact cents and rounded half away from
//!   zero, so SQLite (REAL), Postgres (NUMERIC) and Rust (f64) agree to the last bit;
//! * RFM scores are `NTILE(5)` over every customer with an order at or before `as_of`, ties broken
//!   by bytewise customer id.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Datelike, Timelike, Utc};

use super::ast::{
    CustomerAttr, Duration, EventFn, Expr, ExprKind, Literal, OrderFn, RfmScore, Term, Type,
};

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

/// A compiled query: SQL text plus its parameters in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledQuery {
    /// The SQL; a segment query is `[WITH ...] SELECT a0.customer_id AS customer_id FROM ...`.
    pub sql: String,
    /// The values for `?` / `$1..$n`, in order.
    pub params: Vec<SqlParam>,
}

/// One per-run aggregate table and how to build it before the run's segment queries, which read it.
/// It lives on one connection only (temporary tables) and for one run only.
///
/// The orders pass and the events pass are each written into a scratch table keyed by customer id
/// first, and the aggregate table is the visible customers `LEFT JOIN` those keys: every join is on
/// a primary key, so the plan is linear whatever the planner guesses about a derived table (SQLite
/// 3.40 scans a materialised window-function subquery once per customer instead).
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateTable {
    /// The table's name, `segment_aggregates_N`.
    pub name: String,
    /// Every table the statements create, scratch tables included: dropped (if they exist) before
    /// the build, and the aggregate table again when the run ends.
    pub tables: Vec<String>,
    /// The statements that build it, in order: `CREATE TEMP TABLE` with the column types spelled
    /// out (Postgres takes no bound parameters in `CREATE TABLE ... AS`), `INSERT ... SELECT` for
    /// each pass, on Postgres `ANALYZE` (autovacuum never sees temporary tables), on SQLite the RFM
    /// keys' indexes and bounds table (see [`RunCompiler::tables`]), the scratch tables' `DROP`,
    /// and for tables after the first, which filters join by id, a unique index.
    pub statements: Vec<CompiledQuery>,
}

/// Most value columns in one aggregate table; a run reading more distinct values gets more tables.
pub const COLUMNS_PER_TABLE: usize = 250;

/// The name of the `n`-th aggregate table of a run.
pub fn aggregate_table_name(n: usize) -> String {
    format!("segment_aggregates_{n}")
}

/// The scratch table of the `n`-th aggregate table's orders pass.
fn orders_table_name(n: usize) -> String {
    format!("segment_aggregates_{n}_orders")
}

/// The first row of each RFM tile after the first, per score, of the `n`-th aggregate table
/// (SQLite, [`Rfm::Bounds`]).
fn rfm_bounds_table_name(n: usize) -> String {
    format!("segment_aggregates_{n}_rfm_bounds")
}

/// Tiles of an RFM score (`NTILE(5)`: quintiles).
const RFM_TILES: usize = 5;

/// How the RFM scores are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rfm {
    /// `NTILE(5)` window functions in the orders pass (Postgres, and the self-contained query).
    Window,
    /// The orders pass keeps each score's key; an index per key finds each tile's first row, and
    /// the aggregate table compares every customer's `(key, id)` against those (SQLite runs).
    Bounds,
}

/// The value an RFM score ranks customers with orders by (ties broken by customer id).
fn rfm_key(score: RfmScore) -> &'static str {
    match score {
        RfmScore::R => "MAX(o.placed_at)",
        RfmScore::F => "COUNT(*)",
        RfmScore::M => "ROUND(SUM(o.total), 2)",
    }
}

/// The scratch table of the `n`-th aggregate table's events pass.
fn events_table_name(n: usize) -> String {
    format!("segment_aggregates_{n}_events")
}

/// `, name type, ...` for a column definition list (an empty type leaves the name alone).
fn column_list(cols: &[(String, &'static str)]) -> String {
    cols.iter()
        .map(|(col, ty)| {
            if ty.is_empty() {
                format!(", {col}")
            } else {
                format!(", {col} {ty}")
            }
        })
        .collect()
}

/// Truncates an instant to whole seconds (toward the past): SQLite stores seconds, so rules see
/// time at that resolution on every backend.
pub fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

/// Compiles one checked rule into a self-contained membership query: the run's aggregate tables as
/// `WITH` clauses in front of the filter [`RunCompiler::segment`] gives.
///
/// `excludes` are segments whose current members are removed (`NOT EXISTS` on
/// `segment_memberships`); `as_of` is "now" (truncated to whole seconds).
pub fn compile_segment(
    expr: &Expr,
    excludes: &[String],
    dialect: Dialect,
    as_of: DateTime<Utc>,
) -> CompiledQuery {
    let mut run = RunCompiler::new(dialect, as_of);
    // The first pass registers the columns the rule reads; the tables come from them; the filter is
    // compiled again after the tables' parameters so Postgres' `$n` numbers follow on.
    run.segment(expr, excludes);
    let mut ctes = Vec::new();
    let mut params = Vec::new();
    for t in 0..run.table_count() {
        if let Some(select) = run.orders_select(t, params.len(), Rfm::Window) {
            ctes.push(format!("{} AS ({})", orders_table_name(t), select.sql));
            params.extend(select.params);
        }
        if let Some(select) = run.events_select(t, params.len()) {
            ctes.push(format!("{} AS ({})", events_table_name(t), select.sql));
            params.extend(select.params);
        }
        let main = run.main_select(t, params.len(), Rfm::Window);
        ctes.push(format!("{} AS ({})", aggregate_table_name(t), main.sql));
        params.extend(main.params);
    }
    let mut sql = format!("WITH {}", ctes.join(", "));
    let filter = run.filter(expr, excludes, params.len());
    sql.push(' ');
    sql.push_str(&filter.sql);
    params.extend(filter.params);
    CompiledQuery { sql, params }
}

/// One value a rule reads, stored as a column of an aggregate table.
#[derive(Debug, Clone, PartialEq)]
enum Column {
    /// A `customers` column, copied as is.
    Attr(CustomerAttr),
    /// `orders.<func>(window)`.
    Orders(OrderFn, Option<Duration>),
    /// `events.<func>(kind, window)`.
    Events(EventFn, Option<String>, Option<Duration>),
    /// One RFM score (`r`, `f` or `m`): each is its own sort of the customers with orders, so a run
    /// computes only the scores its rules read.
    Rfm(RfmScore),
}

/// Compiles the rules of one recompute run against shared aggregate tables: call
/// [`RunCompiler::segment`] for every segment, then [`RunCompiler::tables`] for the statements that
/// build what those queries read.
#[derive(Debug, Clone)]
pub struct RunCompiler {
    dialect: Dialect,
    as_of: DateTime<Utc>,
    /// Registered columns, with the table each lives in and its column name there.
    columns: Vec<(Column, usize, String)>,
    /// Column key (the term as printed) → index into `columns`.
    index: HashMap<String, usize>,
    /// Slots used in the last table.
    last_slots: usize,
}

impl RunCompiler {
    /// A compiler for a run at `as_of` (truncated to whole seconds) on `dialect`.
    pub fn new(dialect: Dialect, as_of: DateTime<Utc>) -> Self {
        RunCompiler {
            dialect,
            as_of: whole_seconds(as_of),
            columns: Vec::new(),
            index: HashMap::new(),
            last_slots: 0,
        }
    }

    /// The membership query of one segment of the run: a filter over the run's aggregate tables
    /// (which must be built from [`RunCompiler::tables`], called after the run's last `segment`).
    pub fn segment(&mut self, expr: &Expr, excludes: &[String]) -> CompiledQuery {
        self.register(expr);
        self.filter(expr, excludes, 0)
    }

    /// The aggregate tables every segment compiled so far reads, in build order.
    ///
    /// On SQLite the RFM scores are not `NTILE` window functions but bounds: SQLite runs
    /// each window over a buffered copy of the grouped rows and wrote them back in the last window's
    /// order, which made the orders pass of 1M customers (500k with orders) cost about three times the
    /// `GROUP BY` itself. An index per score and four `LIMIT 1 OFFSET` lookups find each tile's
    /// first row instead, and the join compares against those (the same scores: `NTILE(5)` puts
    /// the rows at 0-based positions `start(t) ..` in tile `t`, ties broken by customer id).
    pub fn tables(&self) -> Vec<AggregateTable> {
        let pg = self.dialect == Dialect::Postgres;
        let rfm = if pg { Rfm::Window } else { Rfm::Bounds };
        let plain = |sql: String| CompiledQuery {
            sql,
            params: Vec::new(),
        };
        (0..self.table_count())
            .map(|t| {
                let name = aggregate_table_name(t);
                let mut tables = Vec::new();
                let mut statements = Vec::new();
                let passes = [
                    (orders_table_name(t), self.orders_select(t, 0, rfm), true),
                    (events_table_name(t), self.events_select(t, 0), false),
                ];
                for (scratch, select, orders) in &passes {
                    let Some(select) = select else { continue };
                    let key = if pg {
                        "customer_id TEXT PRIMARY KEY"
                    } else {
                        "customer_id TEXT PRIMARY KEY NOT NULL"
                    };
                    let cols = self.scratch_columns(t, *orders);
                    let rowid = if pg { "" } else { " WITHOUT ROWID" };
                    statements.push(plain(format!(
                        "CREATE TEMP TABLE {scratch} ({key}{}){rowid}",
                        column_list(&cols)
                    )));
                    statements.push(CompiledQuery {
                        sql: format!("INSERT INTO {scratch} {}", select.sql),
                        params: select.params.clone(),
                    });
                    if pg {
                        statements.push(plain(format!("ANALYZE {scratch}")));
                    }
                    tables.push(scratch.clone());
                    if *orders && rfm == Rfm::Bounds {
                        if let Some(bounds) = self.rfm_bounds(t, scratch) {
                            statements.extend(bounds.into_iter().map(plain));
                            tables.push(rfm_bounds_table_name(t));
                        }
                    }
                }
                let main = self.main_select(t, 0, rfm);
                let cols = self.table_columns(t);
                statements.push(plain(format!(
                    "CREATE TEMP TABLE {name} (customer_id TEXT NOT NULL{})",
                    column_list(&cols)
                )));
                statements.push(CompiledQuery {
                    sql: format!("INSERT INTO {name} {}", main.sql),
                    params: main.params,
                });
                for scratch in &tables {
                    statements.push(plain(format!("DROP TABLE {scratch}")));
                }
                if t > 0 {
                    statements.push(plain(format!(
                        "CREATE UNIQUE INDEX {name}_id ON {name} (customer_id)"
                    )));
                }
                if pg {
                    statements.push(plain(format!("ANALYZE {name}")));
                }
                tables.push(name.clone());
                AggregateTable {
                    name,
                    tables,
                    statements,
                }
            })
            .collect()
    }

    /// The statements that index each RFM key of table `t`'s orders scratch table and fill its
    /// bounds table with the first `(key, customer id)` of tiles 2 to 5 (none for a tile past the
    /// last row); `None` when the table reads no RFM score.
    fn rfm_bounds(&self, t: usize, scratch: &str) -> Option<Vec<String>> {
        let scores: Vec<&str> = self
            .columns_of(t)
            .into_iter()
            .filter_map(|(col, _, name)| matches!(col, Column::Rfm(_)).then_some(name.as_str()))
            .collect();
        if scores.is_empty() {
            return None;
        }
        let bounds = rfm_bounds_table_name(t);
        let mut out = vec![format!(
            "CREATE TEMP TABLE {bounds} (score TEXT NOT NULL, tile INTEGER NOT NULL, key, \
             customer_id TEXT NOT NULL, PRIMARY KEY (score, tile)) WITHOUT ROWID"
        )];
        let n = format!("(SELECT COUNT(*) FROM {scratch})");
        for s in scores {
            out.push(format!(
                "CREATE INDEX {scratch}_{s} ON {scratch} ({s}, customer_id)"
            ));
            // NTILE(5) over n rows: the first n % 5 tiles hold n / 5 + 1 rows, the others n / 5.
            let firsts: Vec<String> = (2..=RFM_TILES)
                .map(|tile| {
                    let before = tile - 1;
                    format!(
                        "SELECT * FROM (SELECT '{s}', {tile}, {s}, customer_id FROM {scratch} \
                         ORDER BY {s}, customer_id LIMIT 1 OFFSET \
                         {before} * ({n} / {RFM_TILES}) + MIN({before}, {n} % {RFM_TILES}))"
                    )
                })
                .collect();
            out.push(format!(
                "INSERT INTO {bounds} (score, tile, key, customer_id) {}",
                firsts.join(" UNION ALL ")
            ));
        }
        Some(out)
    }

    /// Tables the registered columns need; the first always exists (the visible customers).
    fn table_count(&self) -> usize {
        self.columns.last().map_or(1, |(_, t, _)| t + 1)
    }

    /// Registers every column `expr` reads.
    fn register(&mut self, expr: &Expr) {
        expr.walk(&mut |e| {
            if let ExprKind::Term(t) = &e.kind {
                if let Some(col) = Self::column_of(t) {
                    self.add(col, t);
                }
            }
        });
    }

    /// The column a term reads, if it reads one (`customer.id` is the key, `in_segment` reads the
    /// memberships).
    fn column_of(t: &Term) -> Option<Column> {
        match t {
            Term::Customer(CustomerAttr::Id) | Term::InSegment(_) => None,
            Term::Customer(CustomerAttr::Age | CustomerAttr::BirthDate) => {
                Some(Column::Attr(CustomerAttr::BirthDate))
            }
            Term::Customer(a) => Some(Column::Attr(*a)),
            Term::Orders { func, window } => Some(Column::Orders(*func, *window)),
            Term::Events { func, kind, window } => {
                Some(Column::Events(*func, kind.clone(), *window))
            }
            Term::Rfm(s) => Some(Column::Rfm(*s)),
        }
    }

    /// The key a column is registered under.
    fn key(col: &Column, t: &Term) -> String {
        match col {
            Column::Attr(a) => format!("customer.{}", a.name()),
            _ => t.to_string(),
        }
    }

    fn add(&mut self, col: Column, term: &Term) {
        let key = Self::key(&col, term);
        if self.index.contains_key(&key) {
            return;
        }
        let mut table = self.table_count() - 1;
        if self.last_slots + 1 > COLUMNS_PER_TABLE {
            table += 1;
            self.last_slots = 0;
        }
        self.last_slots += 1;
        let name = match &col {
            Column::Attr(a) => a.name().to_string(),
            Column::Rfm(s) => s.name().to_string(),
            _ => format!("v{}", self.columns.len()),
        };
        self.index.insert(key, self.columns.len());
        self.columns.push((col, table, name));
    }

    /// The table and column name holding `t`'s value (registered by [`RunCompiler::register`]).
    fn lookup(&self, t: &Term) -> Option<(usize, String)> {
        let col = Self::column_of(t)?;
        let i = *self.index.get(&Self::key(&col, t))?;
        let (_, table, name) = &self.columns[i];
        Some((*table, name.clone()))
    }

    /// The SQL type of a column's values; empty where SQLite should keep each value as computed (no
    /// affinity), as `CREATE TABLE ... AS` would.
    fn column_type(&self, col: &Column) -> &'static str {
        let pg = self.dialect == Dialect::Postgres;
        match (col, pg) {
            (Column::Attr(CustomerAttr::BirthDate), true) => "DATE",
            (Column::Attr(CustomerAttr::CreatedAt), true) => "TIMESTAMPTZ",
            (Column::Attr(CustomerAttr::ConsentAds | CustomerAttr::ConsentEmail), true) => {
                "BOOLEAN"
            }
            (Column::Attr(CustomerAttr::CreatedAt), false) => "INTEGER",
            (Column::Attr(CustomerAttr::ConsentAds | CustomerAttr::ConsentEmail), false) => {
                "INTEGER"
            }
            (Column::Attr(_), _) => "TEXT",
            (_, false) => "",
            (Column::Orders(OrderFn::Count, _) | Column::Events(EventFn::Count, ..), true) => {
                "BIGINT"
            }
            (
                Column::Orders(OrderFn::LastAt | OrderFn::FirstAt, _)
                | Column::Events(EventFn::LastAt, ..),
                true,
            ) => "TIMESTAMPTZ",
            (Column::Orders(..), true) => "DOUBLE PRECISION",
            (Column::Rfm(_), true) => "INTEGER",
        }
    }

    /// `(column name, SQL type)` of the value columns among `cols`.
    fn typed(&self, cols: &[&(Column, usize, String)]) -> Vec<(String, &'static str)> {
        cols.iter()
            .map(|(col, _, name)| (name.clone(), self.column_type(col)))
            .collect()
    }

    /// The registered columns of table `t`.
    fn columns_of(&self, t: usize) -> Vec<&(Column, usize, String)> {
        self.columns
            .iter()
            .filter(|(_, table, _)| *table == t)
            .collect()
    }

    /// The value columns of table `t`, in order (after its `customer_id`).
    fn table_columns(&self, t: usize) -> Vec<(String, &'static str)> {
        self.typed(&self.columns_of(t))
    }

    /// The value columns of table `t`'s orders (`orders`) or events scratch table.
    fn scratch_columns(&self, t: usize, orders: bool) -> Vec<(String, &'static str)> {
        let cols: Vec<_> = self
            .columns_of(t)
            .into_iter()
            .filter(|(col, _, _)| match col {
                Column::Orders(..) | Column::Rfm(_) => orders,
                Column::Events(..) => !orders,
                Column::Attr(_) => false,
            })
            .collect();
        self.typed(&cols)
    }

    /// The orders pass of table `t` (rows at or before `as_of`, one row per customer with any),
    /// placeholders after `offset`; `None` when the table reads no order value. With
    /// [`Rfm::Window`] each RFM column is its score (`NTILE(5)` over the grouped rows), with
    /// [`Rfm::Bounds`] the value the score ranks by.
    fn orders_select(&self, t: usize, offset: usize, rfm: Rfm) -> Option<CompiledQuery> {
        let mut c = Compiler::new(self, offset);
        let mut inner = vec!["o.customer_id AS customer_id".to_string()];
        for (col, _, name) in self.columns_of(t) {
            match col {
                Column::Orders(func, window) => {
                    let expr = c.order_aggregate(*func, *window);
                    inner.push(format!("{expr} AS {name}"));
                }
                Column::Rfm(score) => {
                    let key = rfm_key(*score);
                    inner.push(match rfm {
                        Rfm::Window => {
                            let id = c.id_order("o.customer_id");
                            format!("NTILE({RFM_TILES}) OVER (ORDER BY {key}, {id}) AS {name}")
                        }
                        Rfm::Bounds => format!("{key} AS {name}"),
                    });
                }
                _ => {}
            }
        }
        if inner.len() == 1 {
            return None;
        }
        let p = c.param(SqlParam::Timestamp(self.as_of));
        let sql = format!(
            "SELECT {} FROM orders o WHERE o.placed_at <= {p} GROUP BY o.customer_id",
            inner.join(", ")
        );
        Some(CompiledQuery {
            sql,
            params: c.params,
        })
    }

    /// The events pass of table `t` (rows at or before `as_of`, one row per customer with any),
    /// placeholders after `offset`; `None` when the table reads no event value.
    fn events_select(&self, t: usize, offset: usize) -> Option<CompiledQuery> {
        let mut c = Compiler::new(self, offset);
        let mut inner = vec!["e.customer_id AS customer_id".to_string()];
        let mut kinds: Option<BTreeSet<&str>> = Some(BTreeSet::new());
        let mut bounds: Option<Vec<DateTime<Utc>>> = Some(Vec::new());
        for (col, _, name) in self.columns_of(t) {
            if let Column::Events(func, kind, window) = col {
                let expr = c.event_aggregate(*func, kind.as_deref(), *window);
                inner.push(format!("{expr} AS {name}"));
                kinds = kinds.and_then(|mut ks| {
                    ks.insert(kind.as_deref()?);
                    Some(ks)
                });
                bounds = bounds.and_then(|mut bs| {
                    bs.push(window.as_ref()?.before(self.as_of));
                    Some(bs)
                });
            }
        }
        if inner.len() == 1 {
            return None;
        }
        // Rows no column of this table can count are left out of the pass: other kinds when every
        // column names a kind, older rows when every column has a window.
        let mut filter = Vec::new();
        if let Some(kinds) = kinds {
            let list: Vec<String> = kinds
                .into_iter()
                .map(|k| c.param(SqlParam::Text(k.to_string())))
                .collect();
            filter.push(format!("e.kind IN ({})", list.join(", ")));
        }
        if let Some(earliest) = bounds.and_then(|b| b.into_iter().min()) {
            let p = c.param(SqlParam::Timestamp(earliest));
            filter.push(format!("e.occurred_at > {p}"));
        }
        let p = c.param(SqlParam::Timestamp(self.as_of));
        filter.push(format!("e.occurred_at <= {p}"));
        let sql = format!(
            "SELECT {} FROM events e WHERE {} GROUP BY e.customer_id",
            inner.join(", "),
            filter.join(" AND ")
        );
        Some(CompiledQuery {
            sql,
            params: c.params,
        })
    }

    /// The `SELECT` filling table `t` from the visible customers and its two scratch tables,
    /// placeholders after `offset`: customers without orders or events get 0 counts and sums. With
    /// [`Rfm::Bounds`] each RFM score is the last of its tiles whose first row, in the bounds table
    /// [`RunCompiler::tables`] fills, is at or before the customer's `(key, id)`.
    fn main_select(&self, t: usize, offset: usize, rfm: Rfm) -> CompiledQuery {
        let mut c = Compiler::new(self, offset);
        let mut outer = vec!["c.id AS customer_id".to_string()];
        let (mut orders, mut events) = (false, false);
        for (col, _, name) in self.columns_of(t) {
            match col {
                Column::Attr(a) => outer.push(format!("c.{0} AS {0}", a.name())),
                Column::Orders(func, _) => {
                    orders = true;
                    outer.push(match func {
                        OrderFn::Count | OrderFn::Sum => {
                            format!("COALESCE(oa.{name}, 0) AS {name}")
                        }
                        _ => format!("oa.{name} AS {name}"),
                    });
                }
                Column::Events(func, ..) => {
                    events = true;
                    outer.push(match func {
                        EventFn::Count => format!("COALESCE(ea.{name}, 0) AS {name}"),
                        EventFn::LastAt => format!("ea.{name} AS {name}"),
                    });
                }
                Column::Rfm(score) => {
                    orders = true;
                    outer.push(match rfm {
                        Rfm::Window => format!("oa.{name} AS {name}"),
                        Rfm::Bounds => {
                            let bounds = rfm_bounds_table_name(t);
                            let s = score.name();
                            let tiles: String = (2..=RFM_TILES)
                                .rev()
                                .map(|tile| {
                                    format!(
                                        " WHEN (oa.{name}, oa.customer_id) >= (SELECT b.key, b.customer_id \
                                         FROM {bounds} b WHERE b.score = '{s}' AND b.tile = {tile}) THEN {tile}"
                                    )
                                })
                                .collect();
                            format!("CASE WHEN oa.customer_id IS NULL THEN NULL{tiles} ELSE 1 END AS {name}")
                        }
                    });
                }
            }
        }
        let mut joins = String::new();
        if orders {
            joins.push_str(&format!(
                " LEFT JOIN {} oa ON oa.customer_id = c.id",
                orders_table_name(t)
            ));
        }
        if events {
            joins.push_str(&format!(
                " LEFT JOIN {} ea ON ea.customer_id = c.id",
                events_table_name(t)
            ));
        }
        let p = c.param(SqlParam::Timestamp(self.as_of));
        let sql = format!(
            "SELECT {} FROM customers c{joins} WHERE (c.created_at IS NULL OR c.created_at <= {p})",
            outer.join(", ")
        );
        CompiledQuery {
            sql,
            params: c.params,
        }
    }

    /// The filter of one segment over the registered columns, placeholders after `offset`.
    fn filter(&self, expr: &Expr, excludes: &[String], offset: usize) -> CompiledQuery {
        let mut c = Compiler::new(self, offset);
        let cond = c.condition(expr);
        let mut sql = format!(
            "SELECT a0.customer_id AS customer_id FROM {} a0",
            aggregate_table_name(0)
        );
        for t in c.used.iter().copied().filter(|t| *t > 0) {
            sql.push_str(&format!(
                " JOIN {} a{t} ON a{t}.customer_id = a0.customer_id",
                aggregate_table_name(t)
            ));
        }
        sql.push_str(&format!(" WHERE ({cond})"));
        for name in excludes {
            let p = c.param(SqlParam::Text(name.clone()));
            sql.push_str(&format!(
                " AND NOT EXISTS (SELECT 1 FROM segment_memberships x WHERE x.segment = {p} AND x.customer_id = a0.customer_id)"
            ));
        }
        CompiledQuery {
            sql,
            params: c.params,
        }
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

/// Builds one statement's text and parameters.
struct Compiler<'r> {
    run: &'r RunCompiler,
    dialect: Dialect,
    as_of: DateTime<Utc>,
    params: Vec<SqlParam>,
    /// Parameters bound before this statement's (Postgres numbers continue after them).
    offset: usize,
    /// Aggregate tables the filter reads.
    used: BTreeSet<usize>,
}

impl<'r> Compiler<'r> {
    fn new(run: &'r RunCompiler, offset: usize) -> Self {
        Compiler {
            run,
            dialect: run.dialect,
            as_of: run.as_of,
            params: Vec::new(),
            offset,
            used: BTreeSet::new(),
        }
    }

    /// Adds a parameter and returns its placeholder.
    fn param(&mut self, p: SqlParam) -> String {
        self.params.push(p);
        match self.dialect {
            Dialect::Sqlite => "?".to_string(),
            Dialect::Postgres => format!("${}", self.offset + self.params.len()),
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
        format!("EXISTS (SELECT 1 FROM segment_memberships sm WHERE sm.segment = {p} AND sm.customer_id = a0.customer_id)")
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

    /// The aggregate-table column holding `t`; `NULL` for a term the run never registered (only
    /// reachable by calling [`RunCompiler::filter`] with a rule not passed to `segment`, which the
    /// public API does not allow), so even then the SQL stays valid and the comparison false.
    fn column(&mut self, t: &Term) -> String {
        match self.run.lookup(t) {
            Some((table, name)) => {
                self.used.insert(table);
                format!("a{table}.{name}")
            }
            None => "NULL".to_string(),
        }
    }

    fn term(&mut self, t: &Term) -> String {
        match t {
            Term::Customer(CustomerAttr::BirthDate) => {
                let col = self.column(t);
                match self.dialect {
                    Dialect::Sqlite => format!("CAST(strftime('%s', {col}) AS INTEGER)"),
                    Dialect::Postgres => format!("(CAST({col} AS TIMESTAMP) AT TIME ZONE 'UTC')"),
                }
            }
            Term::Customer(CustomerAttr::Age) => {
                let col = self.column(t);
                self.age(&col)
            }
            Term::Customer(CustomerAttr::Id) => "a0.customer_id".to_string(),
            Term::InSegment(name) => self.in_segment(name),
            Term::Customer(_) | Term::Rfm(_) | Term::Orders { .. } | Term::Events { .. } => {
                self.column(t)
            }
        }
    }

    /// `customer.age`: the year of `as_of` minus the birth year, minus one if the birthday (as
    /// month * 100 + day) is still to come in `as_of`'s year; NULL without a birth date. Integer
    /// arithmetic on both dialects (no `AGE()` interval or locale-dependent text), so it equals
    /// [`super::eval`]'s count of whole years exactly, 29 February included.
    fn age(&mut self, birth: &str) -> String {
        let year = self.param(SqlParam::Int(i64::from(self.as_of.year())));
        let today = i64::from(self.as_of.month() * 100 + self.as_of.day());
        let today = self.param(SqlParam::Int(today));
        let (birth_year, birthday) = match self.dialect {
            Dialect::Sqlite => (
                format!("CAST(strftime('%Y', {birth}) AS INTEGER)"),
                format!("CAST(strftime('%m%d', {birth}) AS INTEGER)"),
            ),
            Dialect::Postgres => (
                format!("CAST(EXTRACT(YEAR FROM {birth}) AS INTEGER)"),
                format!("CAST(EXTRACT(MONTH FROM {birth}) * 100 + EXTRACT(DAY FROM {birth}) AS INTEGER)"),
            ),
        };
        format!("({year} - {birth_year} - (CASE WHEN {today} < {birthday} THEN 1 ELSE 0 END))")
    }

    /// One aggregate of the orders pass (rows at or before `as_of`, grouped by customer): the
    /// window, if any, is a `CASE` inside the aggregate. Each use of the window's bound is its own
    /// parameter, so SQLite's positional `?` and Postgres' `$n` bind the same values.
    fn order_aggregate(&mut self, func: OrderFn, window: Option<Duration>) -> String {
        let pg = self.pg();
        let bound = window.map(|w| w.before(self.as_of));
        let within = |c: &mut Self| {
            bound.map(|b| {
                let p = c.param(SqlParam::Timestamp(b));
                format!("o.placed_at > {p}")
            })
        };
        let only = |c: &mut Self, value: &str| match within(c) {
            Some(w) => format!("CASE WHEN {w} THEN {value} END"),
            None => value.to_string(),
        };
        let count = |c: &mut Self| match bound {
            Some(b) => {
                let p = c.param(SqlParam::Timestamp(b));
                format!("COUNT(CASE WHEN o.placed_at > {p} THEN 1 END)")
            }
            None => "COUNT(*)".to_string(),
        };
        let double = |s: String| {
            if pg {
                format!("CAST({s} AS DOUBLE PRECISION)")
            } else {
                s
            }
        };
        let real = if pg { "DOUBLE PRECISION" } else { "REAL" };
        let share = |c: &mut Self, cond: &str| {
            let cond = match within(c) {
                Some(w) => format!("{w} AND {cond}"),
                None => cond.to_string(),
            };
            let n = count(c);
            format!("CAST(SUM(CASE WHEN {cond} THEN 1 ELSE 0 END) AS {real}) / NULLIF({n}, 0)")
        };
        match func {
            OrderFn::Count => count(self),
            OrderFn::Sum => double(format!(
                "ROUND(COALESCE(SUM({}), 0), 2)",
                only(self, "o.total")
            )),
            // Exact cents, divided, rounded half away from zero (see module docs).
            OrderFn::Avg => {
                let total = only(self, "o.total");
                let n = count(self);
                if pg {
                    double(format!(
                        "ROUND(ROUND(SUM({total}) * 100) / NULLIF({n}, 0)) / 100"
                    ))
                } else {
                    format!("ROUND(ROUND(SUM({total}) * 100) / NULLIF({n}, 0)) / 100.0")
                }
            }
            OrderFn::LastAt => format!("MAX({})", only(self, "o.placed_at")),
            OrderFn::FirstAt => format!("MIN({})", only(self, "o.placed_at")),
            OrderFn::DiscountShare => share(
                self,
                "o.discount_code IS NOT NULL AND LENGTH(o.discount_code) > 0",
            ),
            OrderFn::FreeShippingShare => share(self, "o.free_shipping"),
        }
    }

    /// One aggregate of the events pass (rows at or before `as_of`, grouped by customer): kind and
    /// window, if any, are a `CASE` inside the aggregate.
    fn event_aggregate(
        &mut self,
        func: EventFn,
        kind: Option<&str>,
        window: Option<Duration>,
    ) -> String {
        let mut conds = Vec::new();
        if let Some(k) = kind {
            let p = self.param(SqlParam::Text(k.to_string()));
            conds.push(format!("e.kind = {p}"));
        }
        if let Some(w) = window {
            let p = self.param(SqlParam::Timestamp(w.before(self.as_of)));
            conds.push(format!("e.occurred_at > {p}"));
        }
        let value = match func {
            EventFn::Count => "1",
            EventFn::LastAt => "e.occurred_at",
        };
        let arg = if conds.is_empty() {
            match func {
                EventFn::Count => "*".to_string(),
                EventFn::LastAt => value.to_string(),
            }
        } else {
            format!("CASE WHEN {} THEN {value} END", conds.join(" AND "))
        };
        match func {
            EventFn::Count => format!("COUNT({arg})"),
            EventFn::LastAt => format!("MAX({arg})"),
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

    const SQLITE_HEAD: &str =
        "SELECT a0.customer_id AS customer_id FROM segment_aggregates_0 a0 WHERE (";
    const PG_HEAD: &str = SQLITE_HEAD;

    /// (rule, SQLite condition, Postgres condition, params shared by both dialects). The filter is
    /// `HEAD + condition + ")"` over the run's first aggregate table; a rule alone in its run
    /// numbers its value columns from `v0` in the order it reads them (customer columns keep
    /// their names).
    #[allow(clippy::type_complexity)]
    fn cases() -> Vec<(&'static str, &'static str, &'static str, Vec<SqlParam>)> {
        vec![
        ("orders.count() >= 2", "COALESCE((a0.v0 >= ?), FALSE)", "COALESCE((a0.v0 >= $1), FALSE)", vec![Int(2)]),
        (
            "orders.count() == 0 and events.count(\"visit\", 30d) >= 1",
            "COALESCE((a0.v0 = ?), FALSE) AND COALESCE((a0.v1 >= ?), FALSE)",
            "COALESCE((a0.v0 = $1), FALSE) AND COALESCE((a0.v1 >= $2), FALSE)",
            vec![Int(0), Int(1)],
        ),
        ("orders.sum(365d) >= 1000", "COALESCE((a0.v0 >= ?), FALSE)", "COALESCE((a0.v0 >= $1), FALSE)", vec![Int(1000)]),
        ("orders.avg() > 49.5", "COALESCE((a0.v0 > ?), FALSE)", "COALESCE((a0.v0 > $1), FALSE)", vec![Float(49.5)]),
        (
            "orders.count() >= 1 and orders.last_at() < 180d ago",
            "COALESCE((a0.v0 >= ?), FALSE) AND COALESCE((a0.v1 < ?), FALSE)",
            "COALESCE((a0.v0 >= $1), FALSE) AND COALESCE((a0.v1 < $2), FALSE)",
            vec![Int(1), ts("2024-12-03T00:00:00Z")],
        ),
        (
            "orders.first_at(12w) >= 2025-01-01T00:00:00Z",
            "COALESCE((a0.v0 >= ?), FALSE)",
            "COALESCE((a0.v0 >= $1), FALSE)",
            vec![ts("2025-01-01T00:00:00Z")],
        ),
        ("orders.discount_share(365d) >= 0.5", "COALESCE((a0.v0 >= ?), FALSE)", "COALESCE((a0.v0 >= $1), FALSE)", vec![Float(0.5)]),
        ("orders.free_shipping_share() > 0.25", "COALESCE((a0.v0 > ?), FALSE)", "COALESCE((a0.v0 > $1), FALSE)", vec![Float(0.25)]),
        (
            "events.count() > 3 or events.count(24h) >= 1",
            "COALESCE((a0.v0 > ?), FALSE) OR COALESCE((a0.v1 >= ?), FALSE)",
            "COALESCE((a0.v0 > $1), FALSE) OR COALESCE((a0.v1 >= $2), FALSE)",
            vec![Int(3), Int(1)],
        ),
        (
            "events.last_at(\"email_open\") > 90m ago",
            "COALESCE((a0.v0 > ?), FALSE)",
            "COALESCE((a0.v0 > $1), FALSE)",
            vec![ts("2025-05-31T22:30:00Z")],
        ),
        (
            "customer.country in (\"US\", \"CA\") and customer.consent_ads",
            "COALESCE((a0.country IN (?, ?)), FALSE) AND COALESCE(a0.consent_ads = TRUE, FALSE)",
            "COALESCE((a0.country IN ($1, $2)), FALSE) AND COALESCE(a0.consent_ads = TRUE, FALSE)",
            vec![text("US"), text("CA")],
        ),
        (
            "customer.country not in (\"FR\")",
            "COALESCE((a0.country NOT IN (?)), FALSE)",
            "COALESCE((a0.country NOT IN ($1)), FALSE)",
            vec![text("FR")],
        ),
        (
            "customer.city < \"M\"",
            "COALESCE((a0.city < ?), FALSE)",
            "COALESCE((a0.city COLLATE \"C\" < $1), FALSE)",
            vec![text("M")],
        ),
        (
            "customer.birth_date < 1990-01-01",
            "COALESCE((CAST(strftime('%s', a0.birth_date) AS INTEGER) < ?), FALSE)",
            "COALESCE(((CAST(a0.birth_date AS TIMESTAMP) AT TIME ZONE 'UTC') < $1), FALSE)",
            vec![ts("1990-01-01T00:00:00Z")],
        ),
        (
            "customer.age >= 30 and customer.age <= 50",
            "COALESCE(((? - CAST(strftime('%Y', a0.birth_date) AS INTEGER) - (CASE WHEN ? < CAST(strftime('%m%d', a0.birth_date) AS INTEGER) THEN 1 ELSE 0 END)) >= ?), FALSE) AND COALESCE(((? - CAST(strftime('%Y', a0.birth_date) AS INTEGER) - (CASE WHEN ? < CAST(strftime('%m%d', a0.birth_date) AS INTEGER) THEN 1 ELSE 0 END)) <= ?), FALSE)",
            "COALESCE((($1 - CAST(EXTRACT(YEAR FROM a0.birth_date) AS INTEGER) - (CASE WHEN $2 < CAST(EXTRACT(MONTH FROM a0.birth_date) * 100 + EXTRACT(DAY FROM a0.birth_date) AS INTEGER) THEN 1 ELSE 0 END)) >= $3), FALSE) AND COALESCE((($4 - CAST(EXTRACT(YEAR FROM a0.birth_date) AS INTEGER) - (CASE WHEN $5 < CAST(EXTRACT(MONTH FROM a0.birth_date) * 100 + EXTRACT(DAY FROM a0.birth_date) AS INTEGER) THEN 1 ELSE 0 END)) <= $6), FALSE)",
            vec![Int(2025), Int(601), Int(30), Int(2025), Int(601), Int(50)],
        ),
        (
            "customer.created_at < 2y ago or orders.count(1y) > 0",
            "COALESCE((a0.created_at < ?), FALSE) OR COALESCE((a0.v1 > ?), FALSE)",
            "COALESCE((a0.created_at < $1), FALSE) OR COALESCE((a0.v1 > $2), FALSE)",
            vec![ts("2023-06-01T00:00:00Z"), Int(0)],
        ),
        (
            "customer.created_at >= 2024-01-01T12:30:00+02:00",
            "COALESCE((a0.created_at >= ?), FALSE)",
            "COALESCE((a0.created_at >= $1), FALSE)",
            vec![ts("2024-01-01T10:30:00Z")],
        ),
        (
            "not customer.consent_email",
            "NOT COALESCE(a0.consent_email = TRUE, FALSE)",
            "NOT COALESCE(a0.consent_email = TRUE, FALSE)",
            vec![],
        ),
        (
            "customer.consent_ads == false",
            "COALESCE((a0.consent_ads = ?), FALSE)",
            "COALESCE((a0.consent_ads = $1), FALSE)",
            vec![Bool(false)],
        ),
        (
            "in_segment(\"vip\") and not in_segment(\"lapsed\")",
            "EXISTS (SELECT 1 FROM segment_memberships sm WHERE sm.segment = ? AND sm.customer_id = a0.customer_id) AND NOT EXISTS (SELECT 1 FROM segment_memberships sm WHERE sm.segment = ? AND sm.customer_id = a0.customer_id)",
            "EXISTS (SELECT 1 FROM segment_memberships sm WHERE sm.segment = $1 AND sm.customer_id = a0.customer_id) AND NOT EXISTS (SELECT 1 FROM segment_memberships sm WHERE sm.segment = $2 AND sm.customer_id = a0.customer_id)",
            vec![text("vip"), text("lapsed")],
        ),
        (
            "(orders.count() > 1 or orders.count(7d) in (4, 5)) and not (customer.gender == \"f\" or customer.id != \"x\")",
            "(COALESCE((a0.v0 > ?), FALSE) OR COALESCE((a0.v1 IN (?, ?)), FALSE)) AND NOT (COALESCE((a0.gender = ?), FALSE) OR COALESCE((a0.customer_id <> ?), FALSE))",
            "(COALESCE((a0.v0 > $1), FALSE) OR COALESCE((a0.v1 IN ($2, $3)), FALSE)) AND NOT (COALESCE((a0.gender = $4), FALSE) OR COALESCE((a0.customer_id <> $5), FALSE))",
            vec![Int(1), Int(4), Int(5), text("f"), text("x")],
        ),
        ("orders.avg() <= -1.5", "COALESCE((a0.v0 <= ?), FALSE)", "COALESCE((a0.v0 <= $1), FALSE)", vec![Float(-1.5)]),
        ]
    }

    #[test]
    fn compiles_each_feature_exactly() {
        for (src, sqlite, pg, params) in cases() {
            let rule = parse_rule(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            let q = RunCompiler::new(Dialect::Sqlite, as_of()).segment(rule.expr(), &[]);
            assert_eq!(q.sql, format!("{SQLITE_HEAD}{sqlite})"), "sqlite: {src}");
            assert_eq!(q.params, params, "sqlite params: {src}");
            let q = RunCompiler::new(Dialect::Postgres, as_of()).segment(rule.expr(), &[]);
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
        let seg = "EXISTS (SELECT 1 FROM segment_memberships sm WHERE sm.segment = ? AND sm.customer_id = a0.customer_id)";
        let four = [seg; 4].join(" OR ");
        let five = format!("({seg} OR {seg}) OR ({})", [seg; 3].join(" OR "));
        // Nothing but memberships: the aggregate table is only the customers visible at `as_of`.
        let table = "WITH segment_aggregates_0 AS (SELECT c.id AS customer_id FROM customers c \
                     WHERE (c.created_at IS NULL OR c.created_at <= ?)) ";
        assert_eq!(q.sql, format!("{table}{SQLITE_HEAD}({four}) OR ({five}))"));
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

    /// The whole self-contained query: the aggregate table as a `WITH` clause (the RFM scores the
    /// rule reads, and only those, over every customer's orders at or before `as_of`, the visible
    /// customers), then the filter and the excludes, parameters in placeholder order.
    #[test]
    fn rfm_join_and_excludes_full_query() {
        let rule = parse_rule("rfm.r >= 4 and rfm.f >= 4").expect("rule");
        let excludes = ["lapsed".to_string(), "staff".to_string()];
        let q = rule.compile(&excludes, Dialect::Sqlite, as_of());
        assert_eq!(
            q.sql,
            "WITH segment_aggregates_0_orders AS (SELECT o.customer_id AS customer_id, \
             NTILE(5) OVER (ORDER BY MAX(o.placed_at), o.customer_id) AS r, \
             NTILE(5) OVER (ORDER BY COUNT(*), o.customer_id) AS f \
             FROM orders o WHERE o.placed_at <= ? GROUP BY o.customer_id), \
             segment_aggregates_0 AS (SELECT c.id AS customer_id, oa.r AS r, oa.f AS f \
             FROM customers c LEFT JOIN segment_aggregates_0_orders oa ON oa.customer_id = c.id \
             WHERE (c.created_at IS NULL OR c.created_at <= ?)) \
             SELECT a0.customer_id AS customer_id FROM segment_aggregates_0 a0 \
             WHERE (COALESCE((a0.r >= ?), FALSE) AND COALESCE((a0.f >= ?), FALSE)) \
             AND NOT EXISTS (SELECT 1 FROM segment_memberships x WHERE x.segment = ? AND x.customer_id = a0.customer_id) \
             AND NOT EXISTS (SELECT 1 FROM segment_memberships x WHERE x.segment = ? AND x.customer_id = a0.customer_id)"
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
            "WITH segment_aggregates_0_orders AS (SELECT o.customer_id AS customer_id, \
             NTILE(5) OVER (ORDER BY MAX(o.placed_at), o.customer_id COLLATE \"C\") AS r, \
             NTILE(5) OVER (ORDER BY COUNT(*), o.customer_id COLLATE \"C\") AS f \
             FROM orders o WHERE o.placed_at <= $1 GROUP BY o.customer_id), \
             segment_aggregates_0 AS (SELECT c.id AS customer_id, oa.r AS r, oa.f AS f \
             FROM customers c LEFT JOIN segment_aggregates_0_orders oa ON oa.customer_id = c.id \
             WHERE (c.created_at IS NULL OR c.created_at <= $2)) \
             SELECT a0.customer_id AS customer_id FROM segment_aggregates_0 a0 \
             WHERE (COALESCE((a0.r >= $3), FALSE) AND COALESCE((a0.f >= $4), FALSE)) \
             AND NOT EXISTS (SELECT 1 FROM segment_memberships x WHERE x.segment = $5 AND x.customer_id = a0.customer_id) \
             AND NOT EXISTS (SELECT 1 FROM segment_memberships x WHERE x.segment = $6 AND x.customer_id = a0.customer_id)"
        );
        assert_eq!(q.params, params);
    }

    /// One run's values are computed once: two rules reading the same term share its column, each
    /// use of a window's bound is its own parameter (SQLite binds `?` by position), and a kind
    /// filter and the earliest window bound leave unread events out of the pass.
    #[test]
    fn run_shares_one_aggregate_pass() {
        let mut run = RunCompiler::new(Dialect::Sqlite, as_of());
        let a = parse_rule("orders.count(7d) >= 1 and events.count(\"visit\", 30d) >= 1")
            .expect("rule");
        let b = parse_rule("orders.free_shipping_share(7d) > 0.5 or orders.count(7d) == 0")
            .expect("rule");
        let qa = run.segment(a.expr(), &[]);
        let qb = run.segment(b.expr(), &["x".to_string()]);
        assert_eq!(
            qa.sql,
            format!(
                "{SQLITE_HEAD}COALESCE((a0.v0 >= ?), FALSE) AND COALESCE((a0.v1 >= ?), FALSE))"
            )
        );
        assert_eq!(
            qb.sql,
            format!(
                "{SQLITE_HEAD}COALESCE((a0.v2 > ?), FALSE) OR COALESCE((a0.v0 = ?), FALSE)) \
                 AND NOT EXISTS (SELECT 1 FROM segment_memberships x WHERE x.segment = ? AND x.customer_id = a0.customer_id)"
            )
        );
        assert_eq!(qb.params, vec![Float(0.5), Int(0), text("x")]);
        let tables = run.tables();
        assert_eq!(tables.len(), 1);
        let t = &tables[0];
        let sql: Vec<&str> = t.statements.iter().map(|q| q.sql.as_str()).collect();
        assert_eq!(
            sql,
            [
                "CREATE TEMP TABLE segment_aggregates_0_orders (customer_id TEXT PRIMARY KEY NOT NULL, v0, v2) WITHOUT ROWID",
                "INSERT INTO segment_aggregates_0_orders SELECT o.customer_id AS customer_id, \
                 COUNT(CASE WHEN o.placed_at > ? THEN 1 END) AS v0, \
                 CAST(SUM(CASE WHEN o.placed_at > ? AND o.free_shipping THEN 1 ELSE 0 END) AS REAL) \
                 / NULLIF(COUNT(CASE WHEN o.placed_at > ? THEN 1 END), 0) AS v2 \
                 FROM orders o WHERE o.placed_at <= ? GROUP BY o.customer_id",
                "CREATE TEMP TABLE segment_aggregates_0_events (customer_id TEXT PRIMARY KEY NOT NULL, v1) WITHOUT ROWID",
                "INSERT INTO segment_aggregates_0_events SELECT e.customer_id AS customer_id, \
                 COUNT(CASE WHEN e.kind = ? AND e.occurred_at > ? THEN 1 END) AS v1 \
                 FROM events e WHERE e.kind IN (?) AND e.occurred_at > ? AND e.occurred_at <= ? \
                 GROUP BY e.customer_id",
                "CREATE TEMP TABLE segment_aggregates_0 (customer_id TEXT NOT NULL, v0, v1, v2)",
                "INSERT INTO segment_aggregates_0 SELECT c.id AS customer_id, COALESCE(oa.v0, 0) AS v0, \
                 COALESCE(ea.v1, 0) AS v1, oa.v2 AS v2 FROM customers c \
                 LEFT JOIN segment_aggregates_0_orders oa ON oa.customer_id = c.id \
                 LEFT JOIN segment_aggregates_0_events ea ON ea.customer_id = c.id \
                 WHERE (c.created_at IS NULL OR c.created_at <= ?)",
                "DROP TABLE segment_aggregates_0_orders",
                "DROP TABLE segment_aggregates_0_events",
            ]
        );
        let week = ts("2025-05-25T00:00:00Z");
        let now = ts("2025-06-01T00:00:00Z");
        let month = ts("2025-05-02T00:00:00Z");
        let params: Vec<&[SqlParam]> = t.statements.iter().map(|q| q.params.as_slice()).collect();
        assert_eq!(
            params,
            [
                &[][..],
                &[week.clone(), week.clone(), week, now.clone()][..],
                &[][..],
                &[
                    text("visit"),
                    month.clone(),
                    text("visit"),
                    month,
                    now.clone()
                ][..],
                &[][..],
                &[now][..],
                &[][..],
                &[][..],
            ]
        );
        assert_eq!(
            t.tables,
            [
                "segment_aggregates_0_orders",
                "segment_aggregates_0_events",
                "segment_aggregates_0"
            ]
        );
    }

    /// More distinct values than one table holds spill into further tables, indexed by customer
    /// id and joined to the first only by the filters that read them.
    #[test]
    fn wide_runs_spread_over_tables() {
        let mut run = RunCompiler::new(Dialect::Postgres, as_of());
        let wide = (1..=COLUMNS_PER_TABLE + 1)
            .map(|d| format!("orders.count({d}d) > 0"))
            .collect::<Vec<_>>()
            .join(" or ");
        let q = run.segment(parse_rule(&wide).expect("rule").expr(), &[]);
        assert!(q
            .sql
            .starts_with("SELECT a0.customer_id AS customer_id FROM segment_aggregates_0 a0 JOIN segment_aggregates_1 a1 ON a1.customer_id = a0.customer_id WHERE ("));
        assert!(
            q.sql.contains(&format!("a1.v{COLUMNS_PER_TABLE}")),
            "{}",
            q.sql
        );
        let narrow = run.segment(
            parse_rule("orders.count(1d) > 0").expect("rule").expr(),
            &[],
        );
        assert_eq!(
            narrow.sql,
            "SELECT a0.customer_id AS customer_id FROM segment_aggregates_0 a0 WHERE (COALESCE((a0.v0 > $1), FALSE))"
        );
        let tables = run.tables();
        assert_eq!(tables.len(), 2);
        let sql: Vec<&str> = tables[1]
            .statements
            .iter()
            .map(|q| q.sql.as_str())
            .collect();
        assert_eq!(sql.len(), 8, "{sql:?}");
        assert_eq!(
            sql[0],
            format!("CREATE TEMP TABLE segment_aggregates_1_orders (customer_id TEXT PRIMARY KEY, v{COLUMNS_PER_TABLE} BIGINT)")
        );
        assert_eq!(sql[2], "ANALYZE segment_aggregates_1_orders");
        assert_eq!(
            sql[3],
            format!("CREATE TEMP TABLE segment_aggregates_1 (customer_id TEXT NOT NULL, v{COLUMNS_PER_TABLE} BIGINT)")
        );
        assert_eq!(
            sql[5..],
            [
                "DROP TABLE segment_aggregates_1_orders",
                "CREATE UNIQUE INDEX segment_aggregates_1_id ON segment_aggregates_1 (customer_id)",
                "ANALYZE segment_aggregates_1",
            ][..]
        );
    }

    #[test]
    fn as_of_is_truncated_to_whole_seconds() {
        let rule = parse_rule("orders.count(1d) > 0").expect("rule");
        let as_of = as_of() + chrono::Duration::milliseconds(999);
        let q = rule.compile(&[], Dialect::Sqlite, as_of);
        // The window's bound, the orders pass's `as_of`, the customers' `as_of`, the literal.
        assert_eq!(
            q.params,
            vec![
                ts("2025-05-31T00:00:00Z"),
                ts("2025-06-01T00:00:00Z"),
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
            // After the aggregate pass's two `as_of` bounds (orders, customers).
            assert_eq!(
                q.params[2..],
                [
                    text("x'); DROP TABLE customers; --"),
                    Bool(true),
                    Float(0.25)
                ]
            );
        }
    }
}
