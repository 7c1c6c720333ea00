//! Card payments: accounts with a home currency, merchants with their typical ticket
//! size, log-normal amounts (many small payments, a long tail of large ones) and rare
//! declines and failures.

use rand::Rng;
use serde::Serialize;

use super::{EntityId, GenRng, KeyChooser, hex_id, normal, pick, round_to, weighted};

const ACCOUNTS: usize = 500;
/// Largest amount a single payment may carry, in the currency's major unit (JPY: ×100).
pub const MAX_AMOUNT: f64 = 25_000.0;

pub const STATUSES: &[&str] = &["completed", "pending", "declined", "failed"];
pub const CURRENCIES: &[&str] = &["USD", "EUR", "GBP", "JPY", "CAD", "AUD"];

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Payment {
    /// `txn-` and 20 hex digits, unique per payment.
    pub transaction_id: String,
    pub account: EntityId,
    /// In the currency's major unit; JPY has no decimals, the others two.
    pub amount: f64,
    pub currency: &'static str,
    pub merchant: &'static str,
    pub category: &'static str,
    pub method: &'static str,
    /// `completed`, `pending`, `declined` or `failed`.
    pub status: &'static str,
    /// Why a payment was declined or failed; `null` otherwise.
    pub failure_reason: Option<&'static str>,
}

struct Merchant {
    name: &'static str,
    category: &'static str,
    /// Median ticket in USD.
    median: f64,
}

const MERCHANTS: &[Merchant] = &[
    Merchant {
        name: "Blue Bottle Coffee",
        category: "coffee_shop",
        median: 6.5,
    },
    Merchant {
        name: "Whole Foods Market",
        category: "grocery",
        median: 48.0,
    },
    Merchant {
        name: "Shell",
        category: "fuel",
        median: 55.0,
    },
    Merchant {
        name: "Amazon",
        category: "online_retail",
        median: 35.0,
    },
    Merchant {
        name: "Uber",
        category: "transport",
        median: 18.0,
    },
    Merchant {
        name: "Netflix",
        category: "subscription",
        median: 15.5,
    },
    Merchant {
        name: "Apple Store",
        category: "electronics",
        median: 240.0,
    },
    Merchant {
        name: "IKEA",
        category: "home",
        median: 120.0,
    },
    Merchant {
        name: "Marriott",
        category: "travel",
        median: 310.0,
    },
    Merchant {
        name: "Deliveroo",
        category: "food_delivery",
        median: 27.0,
    },
];

/// Units of each currency per US dollar, roughly.
fn per_usd(currency: &str) -> f64 {
    match currency {
        "EUR" => 0.92,
        "GBP" => 0.79,
        "JPY" => 150.0,
        "CAD" => 1.36,
        "AUD" => 1.52,
        _ => 1.0,
    }
}

struct Account {
    id: EntityId,
    currency: &'static str,
}

pub(super) struct PaymentStream {
    accounts: Vec<Account>,
}

impl PaymentStream {
    pub(super) fn new(rng: &mut GenRng) -> Self {
        let accounts = (0..ACCOUNTS)
            .map(|_| Account {
                id: EntityId::new(format!(
                    "acct-{:08}",
                    rng.gen_range(10_000_000..100_000_000)
                )),
                currency: weighted(
                    rng,
                    &[
                        ("USD", 50),
                        ("EUR", 25),
                        ("GBP", 10),
                        ("JPY", 5),
                        ("CAD", 5),
                        ("AUD", 5),
                    ],
                ),
            })
            .collect();
        Self { accounts }
    }

    pub(super) fn next(&mut self, rng: &mut GenRng, keys: &mut KeyChooser) -> Payment {
        let account = &self.accounts[keys.choose(rng, self.accounts.len())];
        let merchant = &MERCHANTS[rng.gen_range(0..MERCHANTS.len())];
        // Log-normal around the merchant's median: sigma 0.8 gives a long right tail.
        let usd = (merchant.median.ln() + normal(rng, 0.0, 0.8)).exp();
        let decimals = if account.currency == "JPY" { 0 } else { 2 };
        let amount = round_to(usd * per_usd(account.currency), decimals).clamp(
            if decimals == 0 { 1.0 } else { 0.01 },
            MAX_AMOUNT
                * if account.currency == "JPY" {
                    100.0
                } else {
                    1.0
                },
        );
        let (status, failure_reason) = match weighted(rng, &[(0u8, 965), (1, 15), (2, 15), (3, 5)])
        {
            0 => ("completed", None),
            1 => ("pending", None),
            2 => (
                "declined",
                Some(pick(
                    rng,
                    &[
                        "insufficient_funds",
                        "card_expired",
                        "suspected_fraud",
                        "limit_exceeded",
                    ],
                )),
            ),
            _ => (
                "failed",
                Some(pick(rng, &["issuer_unavailable", "network_timeout"])),
            ),
        };
        Payment {
            transaction_id: format!("txn-{}", hex_id(rng, 20)),
            account: account.id.clone(),
            amount,
            currency: account.currency,
            merchant: merchant.name,
            category: merchant.category,
            method: weighted(rng, &[("card", 70), ("wallet", 20), ("bank_transfer", 10)]),
            status,
            failure_reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn failures_are_rare_and_amounts_skew_right() {
        let mut rng = GenRng::seed_from_u64(11);
        let mut stream = PaymentStream::new(&mut rng);
        let n = 20_000;
        let mut unsuccessful = 0;
        let mut usd = Vec::new();
        for _ in 0..n {
            let p = stream.next(&mut rng, &mut KeyChooser::default());
            if matches!(p.status, "declined" | "failed") {
                unsuccessful += 1;
                assert!(p.failure_reason.is_some());
            } else {
                assert!(p.failure_reason.is_none());
            }
            if p.currency == "USD" {
                usd.push(p.amount);
            }
        }
        let rate = unsuccessful as f64 / n as f64;
        assert!((0.01..0.03).contains(&rate), "{rate}");
        usd.sort_by(f64::total_cmp);
        let median = usd[usd.len() / 2];
        let mean = usd.iter().sum::<f64>() / usd.len() as f64;
        assert!(mean > median, "mean {mean} median {median}");
    }
}
