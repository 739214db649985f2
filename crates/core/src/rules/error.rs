//! The one error type of parsing and type checking a rule.

use thiserror::Error;

use super::ast::Pos;

/// A rule that cannot be parsed or does not type-check, with the place to fix it.
///
/// Displayed as `line L, column C: <message>` so the CLI and config loader can print it as is; the
/// message says what was expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}, column {column}: {message}")]
pub struct RuleError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column in characters.
    pub column: u32,
    /// What was expected and what was found.
    pub message: String,
}

impl RuleError {
    /// Builds an error at a position.
    pub fn at(pos: Pos, message: impl Into<String>) -> Self {
        RuleError {
            line: pos.line,
            column: pos.column,
            message: message.into(),
        }
    }

    /// The error's position.
    pub fn pos(&self) -> Pos {
        Pos::new(self.line, self.column)
    }
}
