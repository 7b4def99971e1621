//! Stripe's webhook signature scheme, in one place for both directions:
//! verifying the webhooks Stripe sends (`payments::stripe`) and signing the
//! ones Basalt sends to merchants (`merchant_webhooks`), so that a merchant
//! verifies Basalt's with Stripe's own libraries.
//!
//! The header is `t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=…]`, the HMAC
//! keyed with the whole secret (`whsec_…` included) over `"{t}.{raw body}"`.
//! Several `v1` values appear while a secret is being rolled; any one that
//! matches is enough. Comparisons run in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How old (or how far in the future) a signed timestamp may be: Stripe's
/// default tolerance.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a signature header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `t=` or no `v1=` element, or a timestamp that is not a number.
    #[error("malformed signature header")]
    Malformed,
    /// The timestamp is outside the tolerance (a replay, or a wrong clock).
    #[error("signature timestamp outside the tolerance")]
    Stale,
    /// No `v1` value is the HMAC of this body with this secret.
    #[error("no signature matches")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value signing `body` at `timestamp` with `secret`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(digest))
}

/// Checks `header` against `body`, `secret` and the clock (`now`, Unix
/// seconds), with `tolerance` seconds either way.
pub fn verify(
    header: &str,
    body: &[u8],
    secret: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for element in header.split(',') {
        match element.trim().split_once('=') {
            Some(("t", value)) => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                );
            }
            // A value that is not hex cannot match; it does not spoil others.
            Some(("v1", value)) => candidates.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if now.abs_diff(timestamp) > tolerance.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let expected: [u8; 32] = mac(secret, timestamp, body).finalize().into_bytes().into();
    // Every candidate is compared, in constant time each.
    let matched = candidates
        .iter()
        .fold(subtle::Choice::from(0), |any, candidate| {
            any | expected[..].ct_eq(candidate)
        });
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;

    #[test]
    fn a_signature_verifies_within_the_tolerance_only() {
        let header = sign(SECRET, 1_700_000_000, BODY);
        assert_eq!(verify(&header, BODY, SECRET, 1_700_000_000, 300), Ok(()));
        assert_eq!(verify(&header, BODY, SECRET, 1_700_000_300, 300), Ok(()));
        assert_eq!(
            verify(&header, BODY, SECRET, 1_700_000_301, 300),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn another_body_or_secret_does_not_verify() {
        let header = sign(SECRET, 10, BODY);
        assert_eq!(
            verify(&header, b"{}", SECRET, 10, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&header, BODY, b"whsec_other", 10, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn any_of_several_v1_values_may_match_during_a_secret_roll() {
        let old = sign(b"whsec_old", 10, BODY);
        let new = sign(SECRET, 10, BODY);
        let header = format!(
            "{new},v1={},v0=ignored",
            &old[old.find("v1=").expect("v1") + 3..]
        );
        assert_eq!(verify(&header, BODY, SECRET, 10, 300), Ok(()));
        assert_eq!(verify(&header, BODY, b"whsec_old", 10, 300), Ok(()));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for header in ["", "t=10", "v1=00", "t=x,v1=00", "t=10,v1=zz"] {
            assert_eq!(
                verify(header, BODY, SECRET, 10, 300),
                Err(SignatureError::Malformed),
                "{header}"
            );
        }
    }
}
