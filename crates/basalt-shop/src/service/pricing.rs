//! What an order costs, computed on the server from the catalog's prices
//! and the `[shop]` configuration; the client never sends a price.
//!
//! `subtotal` = Σ unit price × quantity; `discount` = the code's
//! percentage of the subtotal (rounded half away from zero) or its fixed
//! amount, never more than the subtotal; `shipping` = the currency's flat
//! rate, or its per-kilogram rate × started kilograms, free from
//! `free_over`; `tax` = the destination country's rate (basis points) of
//! the discounted subtotal plus shipping; `total` = subtotal − discount +
//! shipping + tax. Integer arithmetic only, checked for overflow.

use crate::config::{ShippingKind, ShopConfig};
use crate::money::{Currency, Money, MoneyError};
use crate::store::discounts::DiscountRow;

/// One line to price.
#[derive(Debug, Clone)]
pub struct PricedLine {
    /// Price of one.
    pub unit: Money,
    /// How many.
    pub quantity: i64,
    /// Grams of one.
    pub weight_grams: i64,
}

/// An order's amounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Σ lines.
    pub subtotal: Money,
    /// Taken off.
    pub discount: Money,
    /// Shipping.
    pub shipping: Money,
    /// Tax.
    pub tax: Money,
    /// Charged.
    pub total: Money,
}

/// The amounts of `lines` in `currency`, shipped to `country`.
pub fn totals(
    config: &ShopConfig,
    currency: Currency,
    lines: &[PricedLine],
    discount: Option<&DiscountRow>,
    country: &str,
) -> Result<Totals, MoneyError> {
    let mut subtotal = Money::zero(currency);
    let mut grams: i64 = 0;
    for line in lines {
        subtotal = subtotal.checked_add(line.unit.checked_mul(line.quantity)?)?;
        grams = line
            .weight_grams
            .checked_mul(line.quantity)
            .and_then(|g| grams.checked_add(g))
            .ok_or(MoneyError::Overflow)?;
    }
    let off = match discount {
        None => Money::zero(currency),
        Some(d) if d.kind == "percentage" => subtotal.percentage(d.value.saturating_mul(100))?,
        Some(d) => Money::new(d.value, currency),
    };
    let off = Money::new(off.amount.clamp(0, subtotal.amount), currency);
    let discounted = subtotal.checked_sub(off)?;
    let rate = |rates: &std::collections::BTreeMap<String, i64>| {
        rates
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(currency.as_str()))
            .map(|(_, amount)| *amount)
    };
    let shipping_config = &config.shipping;
    let free = rate(&shipping_config.free_over).is_some_and(|over| discounted.amount >= over);
    let shipping = if free || lines.is_empty() {
        Money::zero(currency)
    } else {
        match shipping_config.kind {
            ShippingKind::Flat => {
                Money::new(rate(&shipping_config.flat_rates).unwrap_or(0), currency)
            }
            ShippingKind::Weight => {
                let kilos = (grams + 999) / 1000;
                Money::new(rate(&shipping_config.per_kg_rates).unwrap_or(0), currency)
                    .checked_mul(kilos)?
            }
        }
    };
    let taxable = discounted.checked_add(shipping)?;
    let tax = taxable.percentage(config.tax.rate_for(country))?;
    let total = taxable.checked_add(tax)?;
    Ok(Totals {
        subtotal,
        discount: off,
        shipping,
        tax,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(amount: i64) -> Money {
        Money::new(amount, Currency::parse("EUR").expect("EUR"))
    }

    fn line(unit: i64, quantity: i64, weight_grams: i64) -> PricedLine {
        PricedLine {
            unit: eur(unit),
            quantity,
            weight_grams,
        }
    }

    #[test]
    fn flat_shipping_and_tax_on_the_discounted_subtotal() {
        let mut config = ShopConfig::default();
        config.shipping.flat_rates.insert("EUR".into(), 500);
        config.tax.rates.insert("DE".into(), 1900);
        let t = totals(&config, eur(0).currency, &[line(1999, 2, 0)], None, "de").expect("priced");
        assert_eq!(t.subtotal, eur(3998));
        assert_eq!(t.shipping, eur(500));
        assert_eq!(t.tax, eur(855)); // 19 % of 44.98 = 8.5462
        assert_eq!(t.total, eur(5353));
    }

    #[test]
    fn weight_shipping_counts_started_kilograms_and_free_over_applies() {
        let mut config = ShopConfig::default();
        config.shipping.kind = ShippingKind::Weight;
        config.shipping.per_kg_rates.insert("EUR".into(), 300);
        config.shipping.free_over.insert("EUR".into(), 10_000);
        let t =
            totals(&config, eur(0).currency, &[line(1000, 3, 400)], None, "FR").expect("priced");
        assert_eq!(t.shipping, eur(600)); // 1.2 kg → 2 kg
        let t =
            totals(&config, eur(0).currency, &[line(5000, 2, 400)], None, "FR").expect("priced");
        assert_eq!(t.shipping, eur(0));
    }
}
