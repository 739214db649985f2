//! Money amounts as the store keeps them: major units rounded to cents, one rule on both backends.
//!
//! Postgres stores order totals as `NUMERIC(14, 2)` and rounds what it is given; SQLite stores a `REAL`
//! as given. Left alone, `10.005` would be 10.01 on one backend and 10.005 on the other, and sums and
//! thresholds (`orders.sum(365d) >= 1000`) would disagree. So import rounds every total to cents, half
//! away from zero (Postgres' own rule for `numeric`, so rows a shop's pipeline writes into Postgres
//! directly follow it too), from the decimal text itself: `2.675` is 2.68, although the nearest
//! `f64`, 2.67499999…, would round down.

use thiserror::Error;

/// Largest magnitude a total may have, in cents: `NUMERIC(14, 2)` holds at most 12 integer digits.
pub const MAX_CENTS: i64 = 99_999_999_999_999;

/// Why a text is not an amount the store can hold.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AmountError {
    /// Not a decimal number (`12.50`, `-3`, `1e3`, `.5`).
    #[error("not a decimal number")]
    NotANumber,
    /// More than 12 digits before the decimal point once rounded.
    #[error("out of range")]
    OutOfRange,
}

/// Parses a decimal amount in major units (optional sign, digits with an optional fraction, optional
/// exponent) and returns it in cents, rounded half away from zero.
pub fn parse_cents(text: &str) -> Result<i64, AmountError> {
    let s = text.trim();
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => {
            let exp = &s[i + 1..];
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(AmountError::NotANumber);
            }
            // Anything beyond a few dozen is out of range (or zero) anyway; clamp to avoid overflow.
            let value: i64 = digits.parse::<i64>().unwrap_or(i64::MAX).min(1000);
            (&s[..i], if exp.starts_with('-') { -value } else { value })
        }
        None => (s, 0),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(AmountError::NotANumber);
    }
    // All digits, and where the decimal point of the amount *in cents* falls among them.
    let digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).collect();
    let point = int_part.len() as i64 + exponent + 2;
    let kept = point.clamp(0, digits.len() as i64) as usize;
    let mut cents: i64 = 0;
    for &d in &digits[..kept] {
        cents = cents
            .checked_mul(10)
            .and_then(|c| c.checked_add(i64::from(d - b'0')))
            .filter(|c| *c <= MAX_CENTS)
            .ok_or(AmountError::OutOfRange)?;
    }
    for _ in digits.len() as i64..point {
        cents = cents
            .checked_mul(10)
            .filter(|c| *c <= MAX_CENTS)
            .ok_or(AmountError::OutOfRange)?;
    }
    // Half away from zero: the first dropped digit decides (the first dropped digit of an amount with
    // its point left of all its digits is an implicit 0).
    let first_dropped = if point < 0 {
        b'0'
    } else {
        digits.get(kept).copied().unwrap_or(b'0')
    };
    if first_dropped >= b'5' {
        cents += 1;
        if cents > MAX_CENTS {
            return Err(AmountError::OutOfRange);
        }
    }
    Ok(if negative { -cents } else { cents })
}

/// [`parse_cents`] as major units: the nearest `f64` to the rounded amount (cents below 2^53 divide
/// exactly), which both backends store as that same decimal.
pub fn parse_amount(text: &str) -> Result<f64, AmountError> {
    parse_cents(text).map(|c| c as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_away_from_zero_from_the_decimal_text() {
        let cases: &[(&str, i64)] = &[
            ("10", 1000),
            ("10.5", 1050),
            ("10.50", 1050),
            ("10.005", 1001),
            ("10.0049999", 1000),
            ("-10.005", -1001),
            ("2.675", 268),
            ("0.125", 13),
            ("0.124", 12),
            ("1.995", 200),
            (".5", 50),
            ("5.", 500),
            ("+3", 300),
            ("  7.25 ", 725),
            ("1e2", 10000),
            ("1.2345e1", 1235),
            ("12345E-3", 1235),
            ("1e-3", 0),
            ("5e-3", 1),
            ("4e-3", 0),
            ("1e-300", 0),
            ("-0.004", 0),
            ("0", 0),
            ("999999999999.99", MAX_CENTS),
            ("999999999999.994", MAX_CENTS),
        ];
        for (text, want) in cases {
            assert_eq!(parse_cents(text), Ok(*want), "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_bounded_decimal() {
        let cases: &[(&str, AmountError)] = &[
            ("", AmountError::NotANumber),
            ("-", AmountError::NotANumber),
            (".", AmountError::NotANumber),
            ("abc", AmountError::NotANumber),
            ("1,5", AmountError::NotANumber),
            ("NaN", AmountError::NotANumber),
            ("inf", AmountError::NotANumber),
            ("1e", AmountError::NotANumber),
            ("1e+", AmountError::NotANumber),
            ("0x10", AmountError::NotANumber),
            ("--1", AmountError::NotANumber),
            ("1e12", AmountError::OutOfRange),
            ("999999999999.995", AmountError::OutOfRange),
            ("-1000000000000", AmountError::OutOfRange),
            ("1e999999999999999999999", AmountError::OutOfRange),
        ];
        for (text, want) in cases {
            assert_eq!(parse_cents(text).as_ref(), Err(want), "{text}");
        }
    }

    #[test]
    fn amounts_are_the_nearest_double_to_the_cents() {
        assert_eq!(parse_amount("10.005"), Ok(10.01));
        assert_eq!(parse_amount("2.675"), Ok(2.68));
        assert_eq!(parse_amount("-0.125"), Ok(-0.13));
    }
}
