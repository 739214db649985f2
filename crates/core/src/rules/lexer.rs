//! Hand-written lexer: turns rule text into tokens with their line and column.
//!
//! Hand-written (rather than generated) so every error can say exactly what was found where, and so
//! the language's few odd tokens (durations like `7d`, RFC 3339 timestamps starting with digits,
//! `#` comments) need no lookahead tricks in the parser.

use chrono::{DateTime, NaiveDate, Utc};

use super::ast::{Duration, DurationUnit, Pos};
use super::error::RuleError;

/// Longest duration accepted, in days: keeps `as_of - duration` far from chrono's range limits.
pub const MAX_DURATION_DAYS: i64 = 100_000;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    /// A name: `customer`, `count`, `in_segment`, ... (keywords have their own kinds).
    Ident(String),
    /// An integer literal.
    Int(i64),
    /// A decimal literal.
    Float(f64),
    /// A string literal (unescaped content).
    Str(String),
    /// A duration literal such as `7d`.
    Duration(Duration),
    /// An RFC 3339 timestamp (or date) literal.
    Timestamp(DateTime<Utc>),
    /// `and`
    And,
    /// `or`
    Or,
    /// `not`
    Not,
    /// `in`
    In,
    /// `ago`
    Ago,
    /// `true`
    True,
    /// `false`
    False,
    /// `==`
    EqEq,
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
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// `.`
    Dot,
    /// `-` (only valid before a number)
    Minus,
    /// The end of the source.
    Eof,
}

/// A token, where it starts, and its source text (for "found ..." in error messages).
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Where it starts.
    pub pos: Pos,
    /// The exact source text.
    pub text: String,
}

impl Token {
    /// How error messages name this token: `"foo"`, `string "abc"` or `end of input`.
    pub fn describe(&self) -> String {
        match &self.kind {
            TokenKind::Eof => "end of input".to_string(),
            TokenKind::Str(_) => format!("string {}", self.text),
            _ => format!("\"{}\"", self.text),
        }
    }
}

/// Splits `src` into tokens, ending with one [`TokenKind::Eof`].
pub fn tokenize(src: &str) -> Result<Vec<Token>, RuleError> {
    Lexer::new(src).run()
}

struct Lexer {
    chars: Vec<char>,
    i: usize,
    line: u32,
    column: u32,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl Lexer {
    fn new(src: &str) -> Self {
        Lexer {
            chars: src.chars().collect(),
            i: 0,
            line: 1,
            column: 1,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.i + n).copied()
    }

    fn pos(&self) -> Pos {
        Pos::new(self.line, self.column)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn text_from(&self, start: usize) -> String {
        self.chars[start..self.i].iter().collect()
    }

    fn run(mut self) -> Result<Vec<Token>, RuleError> {
        let mut out = Vec::new();
        loop {
            self.skip_trivia();
            let pos = self.pos();
            let start = self.i;
            let Some(c) = self.peek() else {
                out.push(Token {
                    kind: TokenKind::Eof,
                    pos,
                    text: String::new(),
                });
                return Ok(out);
            };
            let kind = if is_ident_start(c) {
                self.ident()
            } else if c.is_ascii_digit() {
                self.number(pos)?
            } else if c == '"' || c == '\'' {
                self.string(pos)?
            } else {
                self.punct(pos)?
            };
            out.push(Token {
                kind,
                pos,
                text: self.text_from(start),
            });
        }
    }

    fn skip_trivia(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.bump();
            } else if c == '#' {
                while let Some(c) = self.peek() {
                    if c == '\n' {
                        break;
                    }
                    self.bump();
                }
            } else {
                break;
            }
        }
    }

    fn ident(&mut self) -> TokenKind {
        let start = self.i;
        while self.peek().is_some_and(is_ident_char) {
            self.bump();
        }
        let word = self.text_from(start);
        match word.as_str() {
            "and" => TokenKind::And,
            "or" => TokenKind::Or,
            "not" => TokenKind::Not,
            "in" => TokenKind::In,
            "ago" => TokenKind::Ago,
            "true" => TokenKind::True,
            "false" => TokenKind::False,
            _ => TokenKind::Ident(word),
        }
    }

    /// Numbers, durations (`7d`) and timestamps (`2025-01-01T00:00:00Z`) all start with a digit.
    fn number(&mut self, pos: Pos) -> Result<TokenKind, RuleError> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        let int_len = self.i - start;
        if int_len == 4
            && self.peek() == Some('-')
            && self.peek_at(1).is_some_and(|c| c.is_ascii_digit())
        {
            return self.timestamp(start, pos);
        }
        let mut is_float = false;
        if self.peek() == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            is_float = true;
            self.bump();
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
        }
        let digits = self.text_from(start);
        if self.peek().is_some_and(is_ident_start) {
            let unit_start = self.i;
            while self.peek().is_some_and(is_ident_char) {
                self.bump();
            }
            let unit = self.text_from(unit_start);
            let whole = self.text_from(start);
            let unit = match unit.as_str() {
                "m" => DurationUnit::Minutes,
                "h" => DurationUnit::Hours,
                "d" => DurationUnit::Days,
                "w" => DurationUnit::Weeks,
                "y" => DurationUnit::Years,
                _ => {
                    return Err(RuleError::at(
                        pos,
                        format!(
                            "invalid duration \"{whole}\" (expected a whole number followed by m, h, d, w or y, e.g. 30d)"
                        ),
                    ))
                }
            };
            if is_float {
                return Err(RuleError::at(
                    pos,
                    format!(
                        "invalid duration \"{whole}\" (durations take a whole number, e.g. 36h)"
                    ),
                ));
            }
            let amount: i64 = digits
                .parse()
                .map_err(|_| RuleError::at(pos, format!("duration \"{whole}\" is too long")))?;
            let d = Duration { amount, unit };
            if amount > MAX_DURATION_DAYS * 86_400 / unit.seconds() {
                return Err(RuleError::at(
                    pos,
                    format!("duration \"{whole}\" is too long (at most {MAX_DURATION_DAYS}d)"),
                ));
            }
            return Ok(TokenKind::Duration(d));
        }
        if is_float {
            // Digits beyond f64's range would parse as infinity, which no literal can express.
            match digits.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(TokenKind::Float(v)),
                Ok(_) => Err(RuleError::at(
                    pos,
                    format!("number \"{digits}\" is too large"),
                )),
                Err(_) => Err(RuleError::at(pos, format!("invalid number \"{digits}\""))),
            }
        } else {
            digits
                .parse::<i64>()
                .map(TokenKind::Int)
                .map_err(|_| RuleError::at(pos, format!("number \"{digits}\" is too large")))
        }
    }

    fn timestamp(&mut self, start: usize, pos: Pos) -> Result<TokenKind, RuleError> {
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.' | '+'))
        {
            self.bump();
        }
        let text = self.text_from(start);
        if let Ok(t) = DateTime::parse_from_rfc3339(&text) {
            return Ok(TokenKind::Timestamp(t.with_timezone(&Utc)));
        }
        if let Some(t) = NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
        {
            return Ok(TokenKind::Timestamp(t.and_utc()));
        }
        Err(RuleError::at(
            pos,
            format!(
                "invalid timestamp \"{text}\" (expected RFC 3339 like 2025-01-01T00:00:00Z, or a date like 2025-01-01)"
            ),
        ))
    }

    fn string(&mut self, pos: Pos) -> Result<TokenKind, RuleError> {
        let Some(quote) = self.bump() else {
            return Err(RuleError::at(pos, "unterminated string"));
        };
        let mut value = String::new();
        loop {
            match self.peek() {
                None | Some('\n') => return Err(RuleError::at(pos, "unterminated string")),
                Some(c) if c == quote => {
                    self.bump();
                    return Ok(TokenKind::Str(value));
                }
                Some('\\') => {
                    let esc_pos = self.pos();
                    self.bump();
                    match self.peek() {
                        Some(c @ ('"' | '\'' | '\\')) => value.push(c),
                        Some('n') => value.push('\n'),
                        Some('t') => value.push('\t'),
                        Some('r') => value.push('\r'),
                        Some('u') => {
                            self.bump();
                            value.push(self.unicode_escape(esc_pos)?);
                            continue;
                        }
                        None | Some('\n') => return Err(RuleError::at(pos, "unterminated string")),
                        Some(c) => {
                            return Err(RuleError::at(
                                esc_pos,
                                format!(
                                    "invalid escape \"\\{c}\" in string (expected \\\", \\', \\\\, \\n, \\t, \\r or \\u{{...}})"
                                ),
                            ))
                        }
                    }
                    self.bump();
                }
                Some(c) => {
                    value.push(c);
                    self.bump();
                }
            }
        }
    }

    /// The rest of a `\u{HEX}` escape after the `u` (1 to 6 hex digits naming a Unicode scalar
    /// value): how the canonical form writes control characters.
    fn unicode_escape(&mut self, esc_pos: Pos) -> Result<char, RuleError> {
        let invalid = || {
            RuleError::at(
                esc_pos,
                "invalid escape \"\\u\" in string (expected \\u{...} with 1 to 6 hex digits of a Unicode character, e.g. \\u{7f})",
            )
        };
        if self.peek() != Some('{') {
            return Err(invalid());
        }
        self.bump();
        let mut hex = String::new();
        while let Some(c) = self.peek().filter(char::is_ascii_hexdigit) {
            hex.push(c);
            self.bump();
        }
        if self.peek() != Some('}') || hex.is_empty() || hex.len() > 6 {
            return Err(invalid());
        }
        self.bump();
        u32::from_str_radix(&hex, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(invalid)
    }

    fn punct(&mut self, pos: Pos) -> Result<TokenKind, RuleError> {
        let c = self.peek().unwrap_or('\0');
        let next = self.peek_at(1);
        let (kind, len) = match (c, next) {
            ('=', Some('=')) => (TokenKind::EqEq, 2),
            ('!', Some('=')) => (TokenKind::Ne, 2),
            ('<', Some('=')) => (TokenKind::Le, 2),
            ('>', Some('=')) => (TokenKind::Ge, 2),
            ('<', Some('>')) => {
                return Err(RuleError::at(
                    pos,
                    "unexpected \"<>\" (did you mean \"!=\"?)",
                ))
            }
            ('<', _) => (TokenKind::Lt, 1),
            ('>', _) => (TokenKind::Gt, 1),
            ('(', _) => (TokenKind::LParen, 1),
            (')', _) => (TokenKind::RParen, 1),
            (',', _) => (TokenKind::Comma, 1),
            ('.', _) => (TokenKind::Dot, 1),
            ('-', _) => (TokenKind::Minus, 1),
            ('=', _) => {
                return Err(RuleError::at(
                    pos,
                    "unexpected \"=\" (did you mean \"==\"?)",
                ))
            }
            ('&', Some('&')) => {
                return Err(RuleError::at(
                    pos,
                    "unexpected \"&&\" (did you mean \"and\"?)",
                ))
            }
            ('|', Some('|')) => {
                return Err(RuleError::at(
                    pos,
                    "unexpected \"||\" (did you mean \"or\"?)",
                ))
            }
            ('!', _) => {
                return Err(RuleError::at(
                    pos,
                    "unexpected \"!\" (did you mean \"not\"?)",
                ))
            }
            _ => return Err(RuleError::at(pos, format!("unexpected character \"{c}\""))),
        };
        for _ in 0..len {
            self.bump();
        }
        Ok(kind)
    }
}
