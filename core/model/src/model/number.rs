//! DynamoDB's `N` type: an exact decimal of at most 38 significant digits whose magnitude lies
//! in `1e-130 ..= 9.99…e125`, with DynamoDB's canonical text form and numeric identity
//! (`1e3`, `1000` and `1000.0` are the same number).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use bigdecimal::BigDecimal;

/// Most significant digits a DynamoDB number may carry.
pub const MAX_DIGITS: usize = 38;
/// Smallest decimal exponent `e` of `0.d₁d₂… × 10^e` (so the smallest magnitude is `1e-130`).
const MIN_EXPONENT: i32 = -129;
/// Largest decimal exponent `e` of `0.d₁d₂… × 10^e` (so magnitudes stay below `1e126`).
const MAX_EXPONENT: i32 = 126;

/// Which of DynamoDB's two value checks reads a request's values: their words differ for
/// malformed numbers and repeated set members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueLayer {
    /// PutItem, UpdateItem, DeleteItem, GetItem, BatchGetItem, Query and the rest.
    #[default]
    Current,
    /// BatchWriteItem, TransactWriteItems, TransactGetItems, Scan and PartiQL's parameters.
    Older,
}

/// An exact DynamoDB number, kept normalised so that equal values are equal structs.
///
/// The value is `(-1)^negative × 0.d₁d₂…dₙ × 10^exponent` where `digits` holds `d₁…dₙ` as ASCII
/// with no leading or trailing zeros; zero has no digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Number {
    negative: bool,
    digits: Box<str>,
    exponent: i32,
}

/// Why a text is not a valid DynamoDB number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// Not a decimal number at all.
    #[error("The parameter cannot be converted to a numeric value: {0}")]
    NotNumeric(String),
    /// An empty text, as DynamoDB's older value checks word it (no colon).
    #[error("The parameter cannot be converted to a numeric value")]
    Empty,
    /// More than 38 significant digits.
    #[error("Attempting to store more than 38 significant digits in a Number")]
    TooManyDigits,
    /// Magnitude of 1e126 or more.
    #[error(
        "Number overflow. Attempting to store a number with magnitude larger than supported range"
    )]
    Overflow,
    /// Non-zero magnitude below 1e-130.
    #[error(
        "Number underflow. Attempting to store a number with magnitude smaller than supported range"
    )]
    Underflow,
}

impl Number {
    /// The number zero.
    pub fn zero() -> Self {
        Number {
            negative: false,
            digits: "".into(),
            exponent: 0,
        }
    }

    /// Parses DynamoDB's accepted spellings (`+3`, `.5`, `0001.23`, `1e+5`, `-17.4E37`) and
    /// checks precision and range.
    ///
    /// # Errors
    /// [`NumberError`] when the text is not a number or does not fit DynamoDB's limits.
    pub fn parse(text: &str) -> Result<Self, NumberError> {
        Self::parse_in(text, ValueLayer::Current)
    }

    /// Parses a number as the value checks of `layer` do: the current ones (PutItem to
    /// Query) read any exponent a 64-bit integer holds; the older ones (BatchWriteItem, the
    /// transactions, Scan, PartiQL's parameters) read numbers as Java's `BigDecimal` does,
    /// whose scale is a 32-bit integer, so a larger exponent is not a number and the largest
    /// ones wrap round to an underflow. Sources: nubo-db/dynamodb-conformance's
    /// valueLayers.test.ts and numberExponent.test.ts, recorded against AWS in 2026.
    ///
    /// # Errors
    /// [`NumberError`] when the text is not a number or does not fit DynamoDB's limits.
    pub fn parse_in(text: &str, layer: ValueLayer) -> Result<Self, NumberError> {
        let not_numeric = || NumberError::NotNumeric(text.to_string());
        if text.is_empty() && layer == ValueLayer::Older {
            return Err(NumberError::Empty);
        }
        let bytes = text.as_bytes();
        let mut pos = 0;
        let mut negative = false;
        match bytes.first() {
            Some(b'-') => {
                negative = true;
                pos = 1;
            }
            Some(b'+') => pos = 1,
            _ => {}
        }
        let mut mantissa = String::new();
        let mut int_digits: i64 = 0;
        let mut seen_digit = false;
        let mut seen_point = false;
        while let Some(&c) = bytes.get(pos) {
            match c {
                b'0'..=b'9' => {
                    seen_digit = true;
                    mantissa.push(c as char);
                    if !seen_point {
                        int_digits += 1;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                _ => break,
            }
            pos += 1;
        }
        if !seen_digit {
            return Err(not_numeric());
        }
        let mut exp: i64 = 0;
        if let Some(&(b'e' | b'E')) = bytes.get(pos) {
            pos += 1;
            let exp_text = text.get(pos..).ok_or_else(not_numeric)?;
            let digits_part = exp_text.strip_prefix(['+', '-']).unwrap_or(exp_text);
            if digits_part.is_empty() || !digits_part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(not_numeric());
            }
            exp = exp_text.parse::<i64>().map_err(|_| not_numeric())?;
            // BigDecimal's scale is the exponent negated: both must be 32-bit integers.
            let fits = |e: i64| i32::try_from(e).is_ok();
            let fraction_digits = mantissa.len() as i64 - int_digits;
            if layer == ValueLayer::Older
                && !(fits(exp) && fits(-exp) && fits(fraction_digits - exp))
            {
                return Err(not_numeric());
            }
            pos = bytes.len();
        }
        if pos != bytes.len() {
            return Err(not_numeric());
        }
        let leading = mantissa.bytes().take_while(|&b| b == b'0').count();
        let significant = mantissa.get(leading..).unwrap_or("").trim_end_matches('0');
        if significant.is_empty() {
            // Zero with an exponent out of range is refused as its `1eN` would be.
            return match exp.saturating_add(1) {
                e if e > MAX_EXPONENT as i64 => Err(NumberError::Overflow),
                e if e < MIN_EXPONENT as i64 => Err(NumberError::Underflow),
                _ => Ok(Number::zero()),
            };
        }
        let exponent = int_digits - leading as i64 + exp;
        if layer == ValueLayer::Older && i32::try_from(exponent).is_err() {
            // BigDecimal's precision less its scale wraps round a 32-bit integer.
            return Err(NumberError::Underflow);
        }
        Self::checked(negative, significant.to_string(), exponent)
    }

    fn checked(negative: bool, digits: String, exponent: i64) -> Result<Self, NumberError> {
        if digits.is_empty() {
            return Ok(Number::zero());
        }
        if exponent > MAX_EXPONENT as i64 {
            return Err(NumberError::Overflow);
        }
        if exponent < MIN_EXPONENT as i64 {
            return Err(NumberError::Underflow);
        }
        if digits.len() > MAX_DIGITS {
            return Err(NumberError::TooManyDigits);
        }
        Ok(Number {
            negative,
            digits: digits.into(),
            exponent: exponent as i32,
        })
    }

    /// True for zero.
    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// True for numbers below zero.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// Significant digits, without leading or trailing zeros.
    pub fn significant_digits(&self) -> &str {
        &self.digits
    }

    /// Decimal exponent `e` of the form `0.d₁d₂… × 10^e`.
    pub fn exponent(&self) -> i32 {
        self.exponent
    }

    /// Bytes DynamoDB charges for this number: about one per two significant digits, plus one.
    pub fn size_bytes(&self) -> usize {
        if self.is_zero() {
            return 1;
        }
        // Digits are stored in base-100 pairs aligned on the decimal point.
        let n = self.digits.len() as i64;
        let left_pad = self.exponent.rem_euclid(2) as i64;
        let pairs = (n + left_pad + 1) / 2;
        1 + pairs as usize + usize::from(self.negative)
    }

    fn to_bigdecimal(&self) -> BigDecimal {
        let text = if self.is_zero() {
            "0".to_string()
        } else {
            format!(
                "{}0.{}e{}",
                if self.negative { "-" } else { "" },
                self.digits,
                self.exponent
            )
        };
        BigDecimal::from_str(&text).unwrap_or_default()
    }

    fn from_bigdecimal(value: &BigDecimal) -> Result<Self, NumberError> {
        let text = value.normalized().to_scientific_notation();
        // Arithmetic results are exact; precision beyond 38 digits is an error, not rounding.
        Number::parse(&text)
    }

    /// Exact sum.
    ///
    /// # Errors
    /// [`NumberError`] when the result needs more than 38 digits or leaves the range.
    pub fn add(&self, other: &Number) -> Result<Number, NumberError> {
        Number::from_bigdecimal(&(self.to_bigdecimal() + other.to_bigdecimal()))
    }

    /// Exact difference.
    ///
    /// # Errors
    /// [`NumberError`] when the result needs more than 38 digits or leaves the range.
    pub fn sub(&self, other: &Number) -> Result<Number, NumberError> {
        Number::from_bigdecimal(&(self.to_bigdecimal() - other.to_bigdecimal()))
    }

    /// Order-preserving, self-delimiting byte encoding: comparing encodings bytewise gives
    /// numeric order, and no encoding is a prefix of another.
    pub fn encode_ordered(&self, out: &mut Vec<u8>) {
        if self.is_zero() {
            out.push(0x80);
            return;
        }
        // Exponent is within -129..=126; bias it into a byte (0..=255) that keeps its order.
        let biased = (self.exponent - MIN_EXPONENT) as u8;
        if self.negative {
            out.push(0x40);
            out.push(!biased);
            out.extend(self.digits.bytes().map(|d| !(d - b'0' + 1)));
            out.push(0xff);
        } else {
            out.push(0xc0);
            out.push(biased);
            out.extend(self.digits.bytes().map(|d| d - b'0' + 1));
            out.push(0x00);
        }
    }

    /// Decodes [`Number::encode_ordered`] output at the front of `input`, returning the number
    /// and the bytes consumed; `None` on malformed input.
    pub fn decode_ordered(input: &[u8]) -> Option<(Number, usize)> {
        let (&tag, rest) = input.split_first()?;
        match tag {
            0x80 => Some((Number::zero(), 1)),
            0x40 | 0xc0 => {
                let negative = tag == 0x40;
                let (&exp_byte, rest) = rest.split_first()?;
                let biased = if negative { !exp_byte } else { exp_byte };
                let terminator = if negative { 0xff } else { 0x00 };
                let end = rest.iter().position(|&b| b == terminator)?;
                let digits: String = rest
                    .get(..end)?
                    .iter()
                    .map(|&b| {
                        let d = if negative { !b } else { b };
                        (b'0' + d.saturating_sub(1)) as char
                    })
                    .collect();
                let number = Number {
                    negative,
                    digits: digits.into(),
                    exponent: biased as i32 + MIN_EXPONENT,
                };
                Some((number, 2 + end + 1))
            }
            _ => None,
        }
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        fn rank(n: &Number) -> i8 {
            if n.is_zero() {
                0
            } else if n.negative {
                -1
            } else {
                1
            }
        }
        let by_sign = rank(self).cmp(&rank(other));
        if by_sign != Ordering::Equal || self.is_zero() {
            return by_sign;
        }
        let magnitude = self
            .exponent
            .cmp(&other.exponent)
            .then_with(|| self.digits.as_bytes().cmp(other.digits.as_bytes()));
        if self.negative {
            magnitude.reverse()
        } else {
            magnitude
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Number {
    /// DynamoDB's canonical form: plain decimal, no exponent, no superfluous zeros.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        let mut out = String::with_capacity(self.digits.len() + 8);
        if self.negative {
            out.push('-');
        }
        let n = self.digits.len() as i32;
        let e = self.exponent;
        if e <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-e) as usize));
            out.push_str(&self.digits);
        } else if e >= n {
            out.push_str(&self.digits);
            out.extend(std::iter::repeat_n('0', (e - n) as usize));
        } else {
            let (int, frac) = self.digits.split_at(e as usize);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        }
        f.write_str(&out)
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Number({self})")
    }
}

impl FromStr for Number {
    type Err = NumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Number::parse(s)
    }
}

impl From<i64> for Number {
    fn from(v: i64) -> Self {
        Number::parse(&v.to_string()).unwrap_or_else(|_| Number::zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(s: &str) -> Number {
        Number::parse(s).unwrap()
    }

    #[test]
    fn canonical_forms() {
        for (input, canon) in [
            ("+3", "3"),
            (".123", "0.123"),
            ("0001.23", "1.23"),
            ("1e+5", "100000"),
            ("1e3", "1000"),
            ("1e-3", "0.001"),
            ("-0", "0"),
            ("0.000", "0"),
            ("1.500", "1.5"),
            ("-17.4E2", "-1740"),
            ("123.456", "123.456"),
            ("5.", "5"),
        ] {
            assert_eq!(n(input).to_string(), canon, "{input}");
        }
        assert_eq!(n("1e125").to_string(), format!("1{}", "0".repeat(125)));
    }

    #[test]
    fn rejects_non_numbers() {
        for bad in [
            "", "NaN", "Infinity", "abc", " 1", "1 ", "1e", "e5", "--1", "1.2.3", ".", "+", "0x10",
        ] {
            assert!(
                matches!(Number::parse(bad), Err(NumberError::NotNumeric(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn limits() {
        assert!(Number::parse("9.9999999999999999999999999999999999999E+125").is_ok());
        assert_eq!(Number::parse("1e126"), Err(NumberError::Overflow));
        let smallest = Number::parse("1e-130").unwrap();
        let mut encoded = Vec::new();
        smallest.encode_ordered(&mut encoded);
        assert_eq!(
            Number::decode_ordered(&encoded),
            Some((smallest, encoded.len()))
        );
        assert_eq!(Number::parse("1e-131"), Err(NumberError::Underflow));
        assert_eq!(
            Number::parse(&"1".repeat(39)),
            Err(NumberError::TooManyDigits)
        );
        assert!(Number::parse(&format!("{}000", "1".repeat(38))).is_ok());
        // An exponent past a 64-bit integer is no number; zero keeps the range of its exponent.
        assert_eq!(
            Number::parse("1e99999999999999999999"),
            Err(NumberError::NotNumeric("1e99999999999999999999".into()))
        );
        assert_eq!(Number::parse("1e2147483647"), Err(NumberError::Overflow));
        assert_eq!(Number::parse("0e126"), Err(NumberError::Overflow));
        assert_eq!(Number::parse("0e-131"), Err(NumberError::Underflow));
        assert_eq!(Number::parse("0e125"), Ok(Number::zero()));
    }

    #[test]
    fn the_older_value_checks_read_numbers_as_java_does() {
        let older = |text: &str| Number::parse_in(text, ValueLayer::Older);
        assert_eq!(older(""), Err(NumberError::Empty));
        assert_eq!(
            older("1e2147483648"),
            Err(NumberError::NotNumeric("1e2147483648".into()))
        );
        assert_eq!(older("1e2147483647"), Err(NumberError::Underflow));
        assert_eq!(older("1e126"), Err(NumberError::Overflow));
        assert_eq!(older("12.5").unwrap(), Number::parse("12.5").unwrap());
    }

    #[test]
    fn arithmetic_is_exact() {
        assert_eq!(n("0.1").add(&n("0.2")).unwrap(), n("0.3"));
        assert_eq!(n("5").sub(&n("7")).unwrap(), n("-2"));
        assert_eq!(n("9e125").add(&n("9e125")), Err(NumberError::Overflow));
        assert_eq!(n("1e50").add(&n("1")), Err(NumberError::TooManyDigits));
        assert_eq!(n("1").sub(&n("1")).unwrap(), Number::zero());
    }

    #[test]
    fn sizes() {
        assert_eq!(n("0").size_bytes(), 1);
        assert_eq!(n("1").size_bytes(), 2);
        assert_eq!(n("-1").size_bytes(), 3);
    }

    fn arb_number() -> impl Strategy<Value = Number> {
        (
            any::<bool>(),
            "[1-9][0-9]{0,37}",
            MIN_EXPONENT..=MAX_EXPONENT,
        )
            .prop_map(|(neg, digits, e)| {
                let text = format!("{}0.{}e{}", if neg { "-" } else { "" }, digits, e);
                Number::parse(&text).unwrap()
            })
    }

    proptest! {
        #[test]
        fn encoding_preserves_order(a in arb_number(), b in arb_number()) {
            let (mut ea, mut eb) = (Vec::new(), Vec::new());
            a.encode_ordered(&mut ea);
            b.encode_ordered(&mut eb);
            prop_assert_eq!(a.cmp(&b), ea.cmp(&eb));
            prop_assert_eq!(Number::decode_ordered(&ea), Some((a.clone(), ea.len())));
        }

        #[test]
        fn canonical_text_round_trips(a in arb_number()) {
            prop_assert_eq!(Number::parse(&a.to_string()).unwrap(), a);
        }

        #[test]
        fn order_matches_bigdecimal(a in arb_number(), b in arb_number()) {
            prop_assert_eq!(a.cmp(&b), a.to_bigdecimal().cmp(&b.to_bigdecimal()));
        }
    }
}
