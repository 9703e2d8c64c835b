//! The payment gateway port and the bundled deterministic simulator.

use std::collections::HashMap;
use std::sync::Mutex;

use rust_decimal::Decimal;

/// A charge to make.
#[derive(Clone, Debug, PartialEq)]
pub struct ChargeRequest {
    /// Makes a repeated charge of the same order return the first one: the order id.
    pub idempotency_key: String,
    /// Who pays.
    pub customer_id: String,
    /// How much.
    pub amount: Decimal,
    /// ISO 4217 code.
    pub currency: String,
}

/// Why a gateway call did not capture money.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum GatewayError {
    /// The charge was refused; retrying will not change that.
    #[error("declined ({code}): {reason}")]
    Declined {
        /// Machine-readable reason, e.g. `card_declined`.
        code: String,
        /// Human-readable reason.
        reason: String,
    },
    /// The gateway could not be reached or answered with an error; try again later.
    #[error("payment gateway unavailable: {0}")]
    Unavailable(String),
}

/// The payment provider, as this service needs it.
#[async_trait::async_trait]
pub trait PaymentGateway: Send + Sync {
    /// Captures the amount; returns the provider's payment id. Idempotent per key.
    async fn charge(&self, request: &ChargeRequest) -> Result<String, GatewayError>;
    /// Refunds a captured payment in full; returns the refund id. Idempotent per payment.
    async fn refund(&self, payment_id: &str, amount: Decimal) -> Result<String, GatewayError>;
}

/// The decline rules of the simulator: documented, so tests and demos can trigger each outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct SimulatorRules {
    /// Amounts above this are declined (`amount_limit_exceeded`).
    pub amount_limit: Decimal,
    /// Customers whose id starts with this are declined (`card_declined`).
    pub declined_customer_prefix: String,
    /// Customers whose id starts with this fail transiently on their first attempts.
    pub flaky_customer_prefix: String,
    /// How many attempts per order fail for a flaky customer before one succeeds.
    pub flaky_failures: u32,
}

impl Default for SimulatorRules {
    fn default() -> Self {
        SimulatorRules {
            amount_limit: Decimal::new(1_000_000, 2),
            declined_customer_prefix: "decline-".into(),
            flaky_customer_prefix: "flaky-".into(),
            flaky_failures: 1,
        }
    }
}

/// Decides a charge by the rules alone: pure, so every rule is unit tested.
pub fn decide(rules: &SimulatorRules, request: &ChargeRequest) -> Result<(), GatewayError> {
    if request
        .customer_id
        .starts_with(&rules.declined_customer_prefix)
    {
        return Err(GatewayError::Declined {
            code: "card_declined".into(),
            reason: "the card issuer declined the charge".into(),
        });
    }
    if request.amount > rules.amount_limit {
        return Err(GatewayError::Declined {
            code: "amount_limit_exceeded".into(),
            reason: format!(
                "{} {} is over the {} limit",
                request.amount, request.currency, rules.amount_limit
            ),
        });
    }
    Ok(())
}

/// A deterministic in-process gateway: payment id `pay-<key>`, refund id `ref-<payment>`.
#[derive(Debug, Default)]
pub struct SimulatedGateway {
    rules: SimulatorRules,
    attempts: Mutex<HashMap<String, u32>>,
}

impl SimulatedGateway {
    /// A simulator with these rules.
    pub fn new(rules: SimulatorRules) -> Self {
        SimulatedGateway {
            rules,
            attempts: Mutex::default(),
        }
    }
}

#[async_trait::async_trait]
impl PaymentGateway for SimulatedGateway {
    async fn charge(&self, request: &ChargeRequest) -> Result<String, GatewayError> {
        if request
            .customer_id
            .starts_with(&self.rules.flaky_customer_prefix)
        {
            let mut attempts = self
                .attempts
                .lock()
                .map_err(|_| GatewayError::Unavailable("simulator poisoned".into()))?;
            let attempt = attempts.entry(request.idempotency_key.clone()).or_insert(0);
            *attempt += 1;
            if *attempt <= self.rules.flaky_failures {
                return Err(GatewayError::Unavailable(format!(
                    "simulated outage (attempt {attempt})"
                )));
            }
        }
        decide(&self.rules, request)?;
        Ok(format!("pay-{}", request.idempotency_key))
    }

    async fn refund(&self, payment_id: &str, _amount: Decimal) -> Result<String, GatewayError> {
        Ok(format!("ref-{payment_id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(customer: &str, amount: i64) -> ChargeRequest {
        ChargeRequest {
            idempotency_key: "ord-1".into(),
            customer_id: customer.into(),
            amount: Decimal::new(amount, 2),
            currency: "EUR".into(),
        }
    }

    #[test]
    fn declines_by_customer_prefix_and_amount_limit() {
        let rules = SimulatorRules::default();
        assert_eq!(decide(&rules, &request("cust-1", 4048)), Ok(()));
        assert!(
            matches!(decide(&rules, &request("decline-me", 100)), Err(GatewayError::Declined { code, .. }) if code == "card_declined")
        );
        assert_eq!(
            decide(&rules, &request("cust-1", 1_000_000)),
            Ok(()),
            "the limit itself is allowed"
        );
        assert!(
            matches!(decide(&rules, &request("cust-1", 1_000_001)), Err(GatewayError::Declined { code, .. }) if code == "amount_limit_exceeded")
        );
    }

    #[tokio::test]
    async fn the_simulator_is_idempotent_and_flaky_customers_recover() {
        let gateway = SimulatedGateway::new(SimulatorRules {
            flaky_failures: 2,
            ..Default::default()
        });
        assert_eq!(
            gateway.charge(&request("cust-1", 100)).await.unwrap(),
            "pay-ord-1"
        );
        assert_eq!(
            gateway.charge(&request("cust-1", 100)).await.unwrap(),
            "pay-ord-1"
        );
        let flaky = request("flaky-1", 100);
        assert!(matches!(
            gateway.charge(&flaky).await,
            Err(GatewayError::Unavailable(_))
        ));
        assert!(matches!(
            gateway.charge(&flaky).await,
            Err(GatewayError::Unavailable(_))
        ));
        assert_eq!(gateway.charge(&flaky).await.unwrap(), "pay-ord-1");
        assert_eq!(
            gateway.refund("pay-ord-1", Decimal::ONE).await.unwrap(),
            "ref-pay-ord-1"
        );
    }
}
