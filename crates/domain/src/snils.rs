//! SNILS, the insurance number that identifies a person to external systems and to parents.

use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a string is not a SNILS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnilsError {
    /// Not eleven digits in the `NNN-NNN-NNN CC` shape (separators optional).
    #[error("SNILS must be eleven digits written as NNN-NNN-NNN CC")]
    Format,
    /// The check number does not match the nine digits.
    #[error("SNILS check number {found:02} does not match the expected {expected:02}")]
    CheckDigits {
        /// The check number written.
        found: u8,
        /// The check number the nine digits call for.
        expected: u8,
    },
}

/// A SNILS whose check number has been verified. Numbers up to 001-001-998 carry no check
/// number rule and are accepted as they are.
///
/// Held as the eleven digits' value plus one, never zero, so that an `Option<Snils>` takes no
/// more room than a SNILS (the write side holds one per learner and guardian).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Snils(NonZeroU64);

impl Snils {
    /// Parses `NNN-NNN-NNN CC`, `NNNNNNNNN CC` or `NNNNNNNNNNN`.
    pub fn parse(input: &str) -> Result<Self, SnilsError> {
        let mut digits = [0u8; 11];
        let mut count = 0;
        for c in input.trim().chars() {
            match c {
                '0'..='9' => {
                    if count == 11 {
                        return Err(SnilsError::Format);
                    }
                    digits[count] = c as u8 - b'0';
                    count += 1;
                }
                '-' | ' ' => {}
                _ => return Err(SnilsError::Format),
            }
        }
        if count != 11 {
            return Err(SnilsError::Format);
        }
        let number = digits[..9]
            .iter()
            .fold(0u64, |acc, d| acc * 10 + u64::from(*d));
        let found = digits[9] * 10 + digits[10];
        if number > 1_001_998 {
            let expected = Self::check_number(&digits[..9]);
            if expected != found {
                return Err(SnilsError::CheckDigits { found, expected });
            }
        }
        Ok(Self::from_digits(number * 100 + u64::from(found)))
    }

    /// The SNILS whose eleven digits read as `digits`.
    fn from_digits(digits: u64) -> Self {
        Self(NonZeroU64::MIN.saturating_add(digits))
    }

    /// The eleven digits as one number.
    fn digits(self) -> u64 {
        self.0.get() - 1
    }

    /// The check number of nine digits: S = d1·9 + d2·8 + … + d9·1, then (S mod 101) mod 100.
    pub fn check_number(nine: &[u8]) -> u8 {
        let sum: u32 = nine
            .iter()
            .enumerate()
            .map(|(i, d)| u32::from(*d) * (9 - i as u32))
            .sum();
        ((sum % 101) % 100) as u8
    }

    /// Builds a valid SNILS from a nine-digit number by appending its check number.
    pub fn from_number(number: u32) -> Option<Self> {
        if number > 999_999_999 {
            return None;
        }
        let mut nine = [0u8; 9];
        let mut n = number;
        for slot in nine.iter_mut().rev() {
            *slot = (n % 10) as u8;
            n /= 10;
        }
        let check = Self::check_number(&nine);
        Some(Self::from_digits(
            u64::from(number) * 100 + u64::from(check),
        ))
    }
}

impl fmt::Display for Snils {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.digits() / 100;
        write!(
            f,
            "{:03}-{:03}-{:03} {:02}",
            n / 1_000_000,
            (n / 1_000) % 1_000,
            n % 1_000,
            self.digits() % 100
        )
    }
}

impl fmt::Debug for Snils {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Snils({self})")
    }
}

impl FromStr for Snils {
    type Err = SnilsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Snils {
    type Error = SnilsError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Snils> for String {
    fn from(value: Snils) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_documented_example_is_valid() {
        let snils = Snils::parse("112-233-445 95").expect("valid");
        assert_eq!(snils.to_string(), "112-233-445 95");
        assert_eq!(Snils::parse("11223344595"), Ok(snils));
    }

    #[test]
    fn a_wrong_check_number_is_refused() {
        assert_eq!(
            Snils::parse("112-233-445 96"),
            Err(SnilsError::CheckDigits {
                found: 96,
                expected: 95
            })
        );
    }

    #[test]
    fn malformed_input_is_refused() {
        for bad in [
            "",
            "112-233-445",
            "112-233-445 955",
            "abc-def-ghi jk",
            "112_233_445 95",
        ] {
            assert_eq!(Snils::parse(bad), Err(SnilsError::Format), "{bad}");
        }
    }

    #[test]
    fn small_numbers_are_not_checked() {
        assert!(Snils::parse("001-001-998 00").is_ok());
        assert!(Snils::parse("001-001-999 00").is_err());
    }

    #[test]
    fn an_absent_snils_takes_no_room_and_the_smallest_number_is_still_a_snils() {
        assert_eq!(std::mem::size_of::<Option<Snils>>(), 8);
        let zero = Snils::parse("000-000-000 00").expect("numbers up to 001-001-998 carry no rule");
        assert_eq!(zero.to_string(), "000-000-000 00");
        assert!(zero < Snils::parse("000-000-000 01").expect("no rule"));
    }

    proptest! {
        #[test]
        fn generated_numbers_round_trip(n in 1_001_999u32..999_999_999) {
            let snils = Snils::from_number(n).expect("in range");
            prop_assert_eq!(Snils::parse(&snils.to_string()), Ok(snils));
        }

        #[test]
        fn changing_one_check_digit_is_caught(n in 1_001_999u32..999_999_999, delta in 1u64..100) {
            let snils = Snils::from_number(n).expect("in range");
            let check = (snils.digits() % 100 + delta) % 100;
            let text = format!("{:09}{:02}", n, check);
            prop_assert!(Snils::parse(&text).is_err());
        }
    }
}
