//! Request-body shapes copied from the platforms' own specs (googleapis protos, TikTok's OpenAPI file, the
//! Meta codegen specs, the Mailchimp/Klaviyo/SendGrid OpenAPI files), so a fake refuses a field its platform
//! does not declare, a value of the wrong JSON type and an enum value the spec does not list — the
//! mistakes a fake that shares the connector's reading of the docs would never catch.
//!
//! Each fake turns a [`Violation`] into its platform's own error reply. Field names are the wire names:
//! lowerCamelCase for Google (proto3 JSON mapping; the canonical form is the only one accepted, which is
//! stricter than Google's parser, which also takes the proto names), snake_case for TikTok and the others.

use serde_json::Value;

/// What a JSON value must look like.
#[derive(Debug)]
pub enum Shape {
    /// Anything (a part of the body the fake does not model).
    Any,
    /// A JSON string.
    Str,
    /// A JSON string of at most this many characters (OpenAPI `maxLength`).
    StrMax(usize),
    /// An integer: a JSON number, or a decimal string (proto3 JSON writes int64 as a string).
    Int,
    /// A JSON boolean.
    Bool,
    /// A JSON number (integer or not), as OpenAPI's `type: number`.
    Number,
    /// `null`, or a value of the inner shape (OpenAPI `nullable: true`).
    Nullable(&'static Shape),
    /// A string out of this list (proto enums by name, OpenAPI `enum`).
    Enum(&'static [&'static str]),
    /// An array whose items have this shape.
    Array(&'static Shape),
    /// An object with at most these fields (unknown fields are refused).
    Object(&'static [Field]),
    /// An object with these fields of which exactly one is set (a proto `oneof` as the whole message).
    OneOf(&'static [Field]),
}

/// One declared field of an object.
#[derive(Debug)]
pub struct Field {
    /// Wire name.
    pub name: &'static str,
    /// Its shape.
    pub shape: &'static Shape,
    /// Whether the spec lists it under `required` (its absence is refused).
    pub required: bool,
}

/// Shorthand for an optional [`Field`] in the `const` schema tables.
pub const fn field(name: &'static str, shape: &'static Shape) -> Field {
    Field {
        name,
        shape,
        required: false,
    }
}

/// Shorthand for a [`Field`] the spec marks `required`, so a body without it is refused.
pub const fn required(name: &'static str, shape: &'static Shape) -> Field {
    Field {
        name,
        shape,
        required: true,
    }
}

/// Why a body does not fit its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A field the spec does not declare, at `path` (the object holding it; empty for the top level).
    UnknownField {
        /// Dotted path of the enclosing object.
        path: String,
        /// The undeclared field.
        name: String,
    },
    /// A `required` field absent from the object at `path`.
    Missing {
        /// Dotted path of the enclosing object.
        path: String,
        /// The missing field.
        name: String,
    },
    /// A value of the wrong type or outside the enum, at `path`.
    Invalid {
        /// Dotted path of the value.
        path: String,
        /// What was expected.
        expected: String,
    },
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::UnknownField { path, name } if path.is_empty() => {
                write!(f, "Unknown name \"{name}\": Cannot find field.")
            }
            Violation::UnknownField { path, name } => {
                write!(f, "Unknown name \"{name}\" at '{path}': Cannot find field.")
            }
            Violation::Missing { path, name } if path.is_empty() => {
                write!(f, "Missing required field \"{name}\".")
            }
            Violation::Missing { path, name } => {
                write!(f, "Missing required field \"{name}\" at '{path}'.")
            }
            Violation::Invalid { path, expected } => {
                write!(f, "Invalid value at '{path}' ({expected})")
            }
        }
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Checks `value` against `shape`; the first violation found wins.
pub fn check(value: &Value, shape: &Shape) -> Result<(), Violation> {
    check_at(value, shape, "")
}

fn check_at(value: &Value, shape: &Shape, path: &str) -> Result<(), Violation> {
    let invalid = |expected: &str| Violation::Invalid {
        path: path.to_string(),
        expected: expected.to_string(),
    };
    match shape {
        Shape::Any => Ok(()),
        Shape::Str => value
            .is_string()
            .then_some(())
            .ok_or_else(|| invalid("string")),
        Shape::Bool => value
            .is_boolean()
            .then_some(())
            .ok_or_else(|| invalid("bool")),
        Shape::StrMax(max) => value
            .as_str()
            .filter(|s| s.chars().count() <= *max)
            .map(|_| ())
            .ok_or_else(|| invalid(&format!("string of at most {max} characters"))),
        Shape::Number => value
            .is_number()
            .then_some(())
            .ok_or_else(|| invalid("number")),
        Shape::Nullable(_) if value.is_null() => Ok(()),
        Shape::Nullable(inner) => check_at(value, inner, path),
        Shape::Int => {
            let ok = value.is_i64()
                || value.is_u64()
                || value.as_str().is_some_and(|s| s.parse::<i64>().is_ok());
            ok.then_some(()).ok_or_else(|| invalid("integer"))
        }
        Shape::Enum(names) => value
            .as_str()
            .filter(|s| names.contains(s))
            .map(|_| ())
            .ok_or_else(|| invalid(&format!("one of {}", names.join(", ")))),
        Shape::Array(item) => {
            let items = value.as_array().ok_or_else(|| invalid("array"))?;
            for (i, v) in items.iter().enumerate() {
                check_at(v, item, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        Shape::Object(fields) | Shape::OneOf(fields) => {
            let obj = value.as_object().ok_or_else(|| invalid("object"))?;
            for (name, v) in obj {
                let Some(f) = fields.iter().find(|f| f.name == name) else {
                    return Err(Violation::UnknownField {
                        path: path.to_string(),
                        name: name.clone(),
                    });
                };
                check_at(v, f.shape, &join(path, name))?;
            }
            if let Some(f) = fields
                .iter()
                .find(|f| f.required && !obj.contains_key(f.name))
            {
                return Err(Violation::Missing {
                    path: path.to_string(),
                    name: f.name.to_string(),
                });
            }
            if matches!(shape, Shape::OneOf(_)) && obj.len() != 1 {
                let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
                return Err(invalid(&format!("exactly one of {}", names.join(", "))));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const INNER: Shape = Shape::Object(&[
        field("n", &Shape::Int),
        field("f", &Shape::Nullable(&Shape::Number)),
        field("s", &Shape::StrMax(2)),
        field("e", &Shape::Enum(&["A", "B"])),
    ]);
    const OUTER: Shape = Shape::Object(&[
        field("items", &Shape::Array(&INNER)),
        field(
            "one",
            &Shape::OneOf(&[field("x", &Shape::Str), field("y", &Shape::Bool)]),
        ),
    ]);
    const NEEDS: Shape = Shape::Object(&[required("id", &Shape::Str), field("o", &OUTER)]);

    #[test]
    fn table() {
        let cases = [
            (json!({"items": [{"n": 1, "e": "A"}, {"n": "42"}]}), Ok(())),
            (json!({"one": {"x": "s"}}), Ok(())),
            (
                json!({"items": [{"f": null}, {"f": 1.5}, {"s": "ñé"}]}),
                Ok(()),
            ),
            (
                json!({"items": [{"s": "abc"}]}),
                Err("Invalid value at 'items[0].s' (string of at most 2 characters)"),
            ),
            (
                json!({"items": [{"f": "1.5"}]}),
                Err("Invalid value at 'items[0].f' (number)"),
            ),
            (
                json!({"items": [{"n": 1}, {"n": 2, "z": 0}]}),
                Err("Unknown name \"z\" at 'items[1]': Cannot find field."),
            ),
            (
                json!({"zz": 1}),
                Err("Unknown name \"zz\": Cannot find field."),
            ),
            (
                json!({"items": [{"n": "x"}]}),
                Err("Invalid value at 'items[0].n' (integer)"),
            ),
            (
                json!({"items": [{"e": "C"}]}),
                Err("Invalid value at 'items[0].e' (one of A, B)"),
            ),
            (
                json!({"one": {"x": "s", "y": true}}),
                Err("Invalid value at 'one' (exactly one of x, y)"),
            ),
            (
                json!({"items": {}}),
                Err("Invalid value at 'items' (array)"),
            ),
        ];
        for (body, want) in cases {
            let got = check(&body, &OUTER).map_err(|v| v.to_string());
            assert_eq!(got, want.map_err(str::to_string), "{body}");
        }
    }

    #[test]
    fn required_fields() {
        let cases = [
            (json!({"id": "a"}), Ok(())),
            (json!({"id": "a", "o": {}}), Ok(())),
            (json!({"o": {}}), Err("Missing required field \"id\".")),
            (json!({"id": 1}), Err("Invalid value at 'id' (string)")),
        ];
        for (body, want) in cases {
            let got = check(&body, &NEEDS).map_err(|v| v.to_string());
            assert_eq!(got, want.map_err(str::to_string), "{body}");
        }
    }
}
