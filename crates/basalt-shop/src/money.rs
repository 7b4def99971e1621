//! Money: an integer amount in minor units with an ISO 4217 currency, in
//! storage, the API and events. There is no float anywhere in the shop.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An ISO 4217 currency code: three ASCII capital letters (`EUR`, `USD`).
/// Parsed at the edge, so a `Currency` is always well formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    /// Parses `code`; lowercase is refused rather than guessed.
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let bytes = code.as_bytes();
        match bytes {
            [a, b, c] if bytes.iter().all(u8::is_ascii_uppercase) => Ok(Self([*a, *b, *c])),
            _ => Err(MoneyError::Currency(code.chars().take(8).collect())),
        }
    }

    /// The code, as text.
    pub fn as_str(&self) -> &str {
        // Always three ASCII capitals (checked by `parse`).
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Digits after the decimal point in this currency's minor unit (ISO
    /// 4217's exponent): how providers and people read an amount.
    pub fn minor_digits(&self) -> u32 {
        match self.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Self::parse(&code).map_err(serde::de::Error::custom)
    }
}

/// An amount of money: `amount` minor units (cents) of `currency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct Money {
    /// Minor units (1999 is 19.99 EUR); negative only for refunds and
    /// discounts.
    pub amount: i64,
    /// ISO 4217 code.
    #[schema(value_type = String, example = "EUR")]
    pub currency: Currency,
}

/// What is wrong with an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not an ISO 4217 code.
    #[error("{0:?} is not an ISO 4217 currency code (three capital letters)")]
    Currency(String),
    /// Two amounts in different currencies were combined.
    #[error("cannot combine {0} with {1}")]
    CurrencyMismatch(Currency, Currency),
    /// The sum or product does not fit in 64 bits.
    #[error("amount out of range")]
    Overflow,
}

impl Money {
    /// `amount` minor units of `currency`.
    pub fn new(amount: i64, currency: Currency) -> Self {
        Self { amount, currency }
    }

    /// Nothing, in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    /// `self + other`, refused across currencies or on overflow.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        let amount = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// `self - other`, refused across currencies or on overflow.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.checked_add(Money::new(
            other.amount.checked_neg().ok_or(MoneyError::Overflow)?,
            other.currency,
        ))
    }

    /// `self × quantity`, refused on overflow.
    pub fn checked_mul(self, quantity: i64) -> Result<Money, MoneyError> {
        let amount = self
            .amount
            .checked_mul(quantity)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// `basis_points`/10 000 of this amount, rounded half away from zero
    /// (a 7.5 % tax is 750 basis points): integer arithmetic only.
    pub fn percentage(self, basis_points: i64) -> Result<Money, MoneyError> {
        let product = i128::from(self.amount) * i128::from(basis_points);
        let half = if product < 0 { -5_000 } else { 5_000 };
        let rounded = (product + half) / 10_000;
        let amount = i64::try_from(rounded).map_err(|_| MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }
}

impl fmt::Display for Money {
    /// `19.99 EUR`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.currency.minor_digits();
        if digits == 0 {
            return write!(f, "{} {}", self.amount, self.currency);
        }
        let scale = 10_i64.pow(digits);
        let sign = if self.amount < 0 { "-" } else { "" };
        let abs = self.amount.unsigned_abs();
        let scale = scale.unsigned_abs();
        write!(
            f,
            "{sign}{}.{:0width$} {}",
            abs / scale,
            abs % scale,
            self.currency,
            width = digits as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(amount: i64) -> Money {
        Money::new(amount, Currency::parse("EUR").expect("EUR"))
    }

    #[test]
    fn currencies_are_three_capital_letters() {
        assert!(Currency::parse("EUR").is_ok());
        for bad in ["eur", "EU", "EURO", "E1R", ""] {
            assert!(Currency::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn arithmetic_is_checked_and_in_one_currency() {
        assert_eq!(eur(1999).checked_add(eur(1)), Ok(eur(2000)));
        assert_eq!(eur(1999).checked_mul(3), Ok(eur(5997)));
        assert_eq!(eur(i64::MAX).checked_add(eur(1)), Err(MoneyError::Overflow));
        let usd = Money::new(1, Currency::parse("USD").expect("USD"));
        assert!(matches!(
            eur(1).checked_add(usd),
            Err(MoneyError::CurrencyMismatch(..))
        ));
    }

    #[test]
    fn percentages_round_half_away_from_zero() {
        assert_eq!(eur(1999).percentage(2_000), Ok(eur(400))); // 399.8
        assert_eq!(eur(10).percentage(500), Ok(eur(1))); // 0.5
        assert_eq!(eur(-10).percentage(500), Ok(eur(-1)));
    }

    #[test]
    fn amounts_print_in_major_units() {
        assert_eq!(eur(1999).to_string(), "19.99 EUR");
        assert_eq!(eur(-5).to_string(), "-0.05 EUR");
        let yen = Money::new(500, Currency::parse("JPY").expect("JPY"));
        assert_eq!(yen.to_string(), "500 JPY");
    }
}
