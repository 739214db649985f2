//! Built-in segment templates: common rules with named parameters and defaults.
//!
//! A template is plain rule text with `{param}` placeholders, so what a template does is readable
//! in `segments list --templates` and its output goes through the same parser and checker as any
//! hand-written rule. Parameter values are validated by kind (number or duration) before they are
//! substituted, so a parameter cannot smuggle in extra rule syntax.

use std::collections::BTreeMap;

use thiserror::Error;

use super::error::RuleError;
use super::lexer::{tokenize, TokenKind};

/// What a template parameter accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// A number such as `2`, `0.5` or `1000`.
    Number,
    /// A duration such as `7d`, `12w`, `36h`.
    Duration,
}

impl ParamKind {
    fn describe(self) -> &'static str {
        match self {
            ParamKind::Number => "a number (e.g. 2 or 0.5)",
            ParamKind::Duration => "a duration (e.g. 30d, 12w, 36h)",
        }
    }
}

/// One named parameter of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateParam {
    /// The name used in config (`params = { window = "14d" }`) and in the body as `{name}`.
    pub name: &'static str,
    /// What values it accepts.
    pub kind: ParamKind,
    /// Value used when the config does not set it.
    pub default: &'static str,
    /// What it means, for `segments list --templates`.
    pub description: &'static str,
}

/// A built-in template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    /// The name used in config (`template = "cart_abandoner"`).
    pub name: &'static str,
    /// One line for `segments list --templates`.
    pub description: &'static str,
    /// The rule text with `{param}` placeholders.
    pub body: &'static str,
    /// Its parameters, in the order they are listed.
    pub params: &'static [TemplateParam],
}

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    /// No built-in template has this name.
    #[error("unknown template \"{name}\" (expected one of {known})")]
    UnknownTemplate {
        /// The name asked for.
        name: String,
        /// The valid names, comma-separated.
        known: String,
    },
    /// The template has no parameter of this name.
    #[error("template \"{template}\" has no parameter \"{param}\" (expected one of {known})")]
    UnknownParam {
        /// The template.
        template: String,
        /// The unknown parameter.
        param: String,
        /// Its valid parameters, comma-separated.
        known: String,
    },
    /// The value does not have the parameter's kind.
    #[error(
        "template \"{template}\" parameter \"{param}\": expected {expected}, found \"{value}\""
    )]
    InvalidValue {
        /// The template.
        template: String,
        /// The parameter.
        param: String,
        /// The value given.
        value: String,
        /// What the parameter accepts.
        expected: &'static str,
    },
    /// The rendered rule does not check (e.g. a negative number where a count is meaningless is
    /// fine, but a malformed value slipped through); carries the rule error.
    #[error("template \"{template}\" rendered an invalid rule: {source}")]
    Rule {
        /// The template.
        template: String,
        /// The parse or type error of the rendered text.
        source: RuleError,
    },
}

const fn num(
    name: &'static str,
    default: &'static str,
    description: &'static str,
) -> TemplateParam {
    TemplateParam {
        name,
        kind: ParamKind::Number,
        default,
        description,
    }
}

const fn dur(
    name: &'static str,
    default: &'static str,
    description: &'static str,
) -> TemplateParam {
    TemplateParam {
        name,
        kind: ParamKind::Duration,
        default,
        description,
    }
}

static TEMPLATES: &[Template] = &[
    Template {
        name: "first_time_visitor",
        description: "Visited recently but never ordered.",
        body: "orders.count() == 0 and events.count(\"visit\", {window}) >= {min_visits}",
        params: &[
            dur("window", "30d", "how far back visits count"),
            num("min_visits", "1", "visits needed in the window"),
        ],
    },
    Template {
        name: "repeat_customer",
        description: "Ordered at least twice.",
        body: "orders.count() >= {min_orders}",
        params: &[num("min_orders", "2", "orders needed, all time")],
    },
    Template {
        name: "cart_abandoner",
        description: "Added to cart recently but placed no order in the same window.",
        body: "events.count(\"add_to_cart\", {window}) >= 1 and orders.count({window}) == 0",
        params: &[dur("window", "7d", "how far back add-to-cart events and orders are looked at")],
    },
    Template {
        name: "high_value",
        description: "Spent at least a threshold in the window (VIPs).",
        body: "orders.sum({window}) >= {min_total}",
        params: &[
            num("min_total", "1000", "spend needed in the window, in major units"),
            dur("window", "365d", "how far back orders count"),
        ],
    },
    Template {
        name: "lapsed",
        description: "Has ordered, but not for a long time.",
        body: "orders.count() >= 1 and orders.last_at() < {after} ago",
        params: &[dur("after", "180d", "time since the last order")],
    },
    Template {
        name: "discount_hunter",
        description: "Orders mostly with a discount code.",
        body: "orders.count({window}) >= {min_orders} and orders.discount_share({window}) >= {min_share}",
        params: &[
            dur("window", "365d", "how far back orders count"),
            num("min_orders", "2", "orders needed in the window"),
            num("min_share", "0.5", "share of orders with a discount code, 0..1"),
        ],
    },
    Template {
        name: "free_shipping_hunter",
        description: "Orders mostly with free shipping.",
        body: "orders.count({window}) >= {min_orders} and orders.free_shipping_share({window}) >= {min_share}",
        params: &[
            dur("window", "365d", "how far back orders count"),
            num("min_orders", "2", "orders needed in the window"),
            num("min_share", "0.5", "share of orders with free shipping, 0..1"),
        ],
    },
    Template {
        name: "rfm_champions",
        description: "Bought recently and often (top RFM quintiles).",
        body: "rfm.r >= {min_r} and rfm.f >= {min_f}",
        params: &[
            num("min_r", "4", "lowest recency quintile (1..5)"),
            num("min_f", "4", "lowest frequency quintile (1..5)"),
        ],
    },
    Template {
        name: "rfm_at_risk",
        description: "Used to buy often, but not recently.",
        body: "rfm.r <= {max_r} and rfm.f >= {min_f}",
        params: &[
            num("max_r", "2", "highest recency quintile (1..5)"),
            num("min_f", "3", "lowest frequency quintile (1..5)"),
        ],
    },
    Template {
        name: "rfm_hibernating",
        description: "Bought rarely and long ago.",
        body: "rfm.r <= {max_r} and rfm.f <= {max_f}",
        params: &[
            num("max_r", "2", "highest recency quintile (1..5)"),
            num("max_f", "2", "highest frequency quintile (1..5)"),
        ],
    },
];

/// All built-in templates, in a stable order (for `segments list --templates`).
pub fn list() -> &'static [Template] {
    TEMPLATES
}

/// Looks a template up by name.
pub fn get(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}

fn value_ok(kind: ParamKind, value: &str) -> bool {
    let Ok(tokens) = tokenize(value) else {
        return false;
    };
    let kinds: Vec<&TokenKind> = tokens.iter().map(|t| &t.kind).collect();
    matches!(
        (kind, kinds.as_slice()),
        (
            ParamKind::Number,
            [TokenKind::Int(_) | TokenKind::Float(_), TokenKind::Eof]
        ) | (
            ParamKind::Number,
            [
                TokenKind::Minus,
                TokenKind::Int(_) | TokenKind::Float(_),
                TokenKind::Eof
            ]
        ) | (
            ParamKind::Duration,
            [TokenKind::Duration(_), TokenKind::Eof]
        )
    )
}

/// Renders template `name` with `params` (others take their defaults) into rule text that parses
/// and type-checks.
pub fn render(name: &str, params: &BTreeMap<String, String>) -> Result<String, TemplateError> {
    let t = get(name).ok_or_else(|| TemplateError::UnknownTemplate {
        name: name.to_string(),
        known: TEMPLATES
            .iter()
            .map(|t| t.name)
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    let known = || {
        t.params
            .iter()
            .map(|p| p.name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(unknown) = params
        .keys()
        .find(|k| !t.params.iter().any(|p| p.name == *k))
    {
        return Err(TemplateError::UnknownParam {
            template: t.name.to_string(),
            param: unknown.clone(),
            known: known(),
        });
    }
    let mut text = t.body.to_string();
    for p in t.params {
        let value = params.get(p.name).map(|v| v.trim()).unwrap_or(p.default);
        if !value_ok(p.kind, value) {
            return Err(TemplateError::InvalidValue {
                template: t.name.to_string(),
                param: p.name.to_string(),
                value: value.to_string(),
                expected: p.kind.describe(),
            });
        }
        text = text.replace(&format!("{{{}}}", p.name), value);
    }
    super::parse_rule(&text).map_err(|source| TemplateError::Rule {
        template: t.name.to_string(),
        source,
    })?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn renders_defaults_and_overrides() {
        type Case = (
            &'static str,
            &'static [(&'static str, &'static str)],
            &'static str,
        );
        let cases: &[Case] = &[
            (
                "first_time_visitor",
                &[],
                "orders.count() == 0 and events.count(\"visit\", 30d) >= 1",
            ),
            (
                "repeat_customer",
                &[("min_orders", "3")],
                "orders.count() >= 3",
            ),
            (
                "cart_abandoner",
                &[],
                "events.count(\"add_to_cart\", 7d) >= 1 and orders.count(7d) == 0",
            ),
            (
                "cart_abandoner",
                &[("window", "48h")],
                "events.count(\"add_to_cart\", 48h) >= 1 and orders.count(48h) == 0",
            ),
            ("high_value", &[], "orders.sum(365d) >= 1000"),
            (
                "high_value",
                &[("min_total", "250.5"), ("window", "12w")],
                "orders.sum(12w) >= 250.5",
            ),
            (
                "lapsed",
                &[],
                "orders.count() >= 1 and orders.last_at() < 180d ago",
            ),
            (
                "lapsed",
                &[("after", " 90d ")],
                "orders.count() >= 1 and orders.last_at() < 90d ago",
            ),
            (
                "discount_hunter",
                &[],
                "orders.count(365d) >= 2 and orders.discount_share(365d) >= 0.5",
            ),
            (
                "free_shipping_hunter",
                &[("min_share", "0.75")],
                "orders.count(365d) >= 2 and orders.free_shipping_share(365d) >= 0.75",
            ),
            ("rfm_champions", &[], "rfm.r >= 4 and rfm.f >= 4"),
            ("rfm_at_risk", &[], "rfm.r <= 2 and rfm.f >= 3"),
            (
                "rfm_hibernating",
                &[("max_f", "1")],
                "rfm.r <= 2 and rfm.f <= 1",
            ),
        ];
        for (name, ps, expected) in cases {
            assert_eq!(
                render(name, &params(ps)).as_deref(),
                Ok(*expected),
                "{name}"
            );
        }
    }

    #[test]
    fn every_template_renders_with_defaults() {
        assert_eq!(list().len(), 10);
        for t in list() {
            let text = render(t.name, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}"));
            assert!(!text.contains('{'), "{text}");
            assert!(!t.description.is_empty());
            for p in t.params {
                assert!(t.body.contains(&format!("{{{}}}", p.name)), "{}", p.name);
            }
        }
    }

    #[test]
    fn reports_unknown_names_and_bad_values() {
        let err = render("vip", &BTreeMap::new()).expect_err("unknown template");
        assert_eq!(
            err.to_string(),
            "unknown template \"vip\" (expected one of first_time_visitor, repeat_customer, cart_abandoner, high_value, lapsed, discount_hunter, free_shipping_hunter, rfm_champions, rfm_at_risk, rfm_hibernating)"
        );
        let err = render("high_value", &params(&[("min_spend", "5")])).expect_err("unknown param");
        assert_eq!(
            err.to_string(),
            "template \"high_value\" has no parameter \"min_spend\" (expected one of min_total, window)"
        );
        let err = render("high_value", &params(&[("window", "365")])).expect_err("bad duration");
        assert_eq!(
            err.to_string(),
            "template \"high_value\" parameter \"window\": expected a duration (e.g. 30d, 12w, 36h), found \"365\""
        );
        let err = render("repeat_customer", &params(&[("min_orders", "2 or true")]))
            .expect_err("injection");
        assert_eq!(
            err.to_string(),
            "template \"repeat_customer\" parameter \"min_orders\": expected a number (e.g. 2 or 0.5), found \"2 or true\""
        );
    }
}
