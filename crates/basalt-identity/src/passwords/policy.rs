//! Which new passwords are accepted (NIST SP 800-63B §3.1.1.2): long enough,
//! not absurdly long, not on a list of common/breached passwords, not the
//! account's own email or username. No composition rules (they make
//! passwords harder to remember, not harder to guess) and no normalisation:
//! a password is taken exactly as typed, only compared case-insensitively.

use std::collections::HashSet;
use std::sync::LazyLock;

/// Fewest characters (Unicode scalar values) a password may have.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Most characters a password may have. Generous enough for passphrases and
/// password managers (NIST asks for at least 64), small enough to bound the
/// hashing input.
pub const MAX_PASSWORD_CHARS: usize = 128;

// NIST SP 800-63B requires accepting at least 64 characters.
const _: () = assert!(MAX_PASSWORD_CHARS >= 64 && MIN_PASSWORD_CHARS >= 8);

/// The bundled list: see `README.md` beside it for source and licence. Its
/// entries are lower-case and all between the length limits.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common-passwords.txt")
        .lines()
        .filter(|line| !line.is_empty())
        .collect()
});

/// Why a new password was refused. The `Display` text is a message fragment
/// about the `password` field, like every field's ("is too short (…)"): front
/// ends render `field + " " + message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    /// Fewer than `min` characters.
    #[error("is too short (use at least {min} characters)")]
    TooShort {
        /// The minimum, in characters.
        min: usize,
    },
    /// More than `max` characters.
    #[error("is too long (use at most {max} characters)")]
    TooLong {
        /// The maximum, in characters.
        max: usize,
    },
    /// On the list of common or breached passwords.
    #[error("is too common (it appears in lists of leaked passwords)")]
    Common,
    /// Equal to the account's email address or username.
    #[error("must not be your email address or username")]
    MatchesAccount,
}

/// Checks a new password. `context` holds the account's identifiers (email,
/// username); the password may not equal any of them, nor an email's part
/// before the `@`, ignoring case.
pub fn check_policy(password: &str, context: &[&str]) -> Result<(), PolicyViolation> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PolicyViolation::TooShort {
            min: MIN_PASSWORD_CHARS,
        });
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PolicyViolation::TooLong {
            max: MAX_PASSWORD_CHARS,
        });
    }
    let lowered = password.to_lowercase();
    if context
        .iter()
        .any(|identifier| matches_identifier(&lowered, identifier))
    {
        return Err(PolicyViolation::MatchesAccount);
    }
    if COMMON_PASSWORDS.contains(lowered.as_str()) {
        return Err(PolicyViolation::Common);
    }
    Ok(())
}

fn matches_identifier(lowered_password: &str, identifier: &str) -> bool {
    // The identifiers, unlike the password, may carry stray whitespace from a
    // form; an empty one (e.g. no username yet) matches nothing.
    let identifier = identifier.trim().to_lowercase();
    if identifier.is_empty() {
        return false;
    }
    if lowered_password == identifier {
        return true;
    }
    // The local part of an email is as guessable as the address itself.
    matches!(identifier.rsplit_once('@'), Some((local, _)) if !local.is_empty() && local == lowered_password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_counted_in_characters() {
        assert_eq!(
            check_policy("short", &[]),
            Err(PolicyViolation::TooShort { min: 8 })
        );
        // 7 characters but 21 bytes: still too short.
        assert_eq!(
            check_policy("日本語のパスワ", &[]),
            Err(PolicyViolation::TooShort { min: 8 })
        );
        // 9 characters, 27 bytes: long enough.
        assert_eq!(check_policy("日本語のパスワード", &[]), Ok(()));
        // Emoji are one character each.
        assert_eq!(check_policy("🦀🦀🦀🦀🦀🦀🦀🦀", &[]), Ok(()));
        assert_eq!(
            check_policy("🦀🦀🦀🦀🦀🦀🦀", &[]),
            Err(PolicyViolation::TooShort { min: 8 })
        );
        let max: String = "é".repeat(MAX_PASSWORD_CHARS);
        assert_eq!(check_policy(&max, &[]), Ok(()));
        assert_eq!(
            check_policy(&format!("{max}é"), &[]),
            Err(PolicyViolation::TooLong { max: 128 })
        );
    }

    #[test]
    fn common_passwords_are_rejected_case_insensitively() {
        for common in [
            "password1",
            "qwerty123",
            "PASSWORD1",
            "QwErTy123",
            "iloveyou1",
            "p@ssw0rd",
            "trustno1",
            "12345678",
        ] {
            assert_eq!(
                check_policy(common, &[]),
                Err(PolicyViolation::Common),
                "{common}"
            );
        }
        assert_eq!(check_policy("correct horse battery staple", &[]), Ok(()));
        assert_eq!(check_policy("tr0ub4dor&3-plus", &[]), Ok(()));
    }

    #[test]
    fn passwords_are_taken_as_given() {
        // Surrounding spaces are part of the password, so these are not the
        // listed "password1".
        assert_eq!(check_policy(" password1", &[]), Ok(()));
        assert_eq!(check_policy("password1 ", &[]), Ok(()));
    }

    #[test]
    fn bundled_list_is_loaded() {
        assert!(COMMON_PASSWORDS.len() > 8000, "{}", COMMON_PASSWORDS.len());
        assert!(COMMON_PASSWORDS.iter().all(|p| {
            let n = p.chars().count();
            (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) && p.to_lowercase() == *p
        }));
    }

    #[test]
    fn account_identifiers_are_rejected() {
        let context = ["Alice.Smith@Example.com", "alice_wonder"];
        for password in [
            "alice.smith@example.com",
            "ALICE.SMITH@EXAMPLE.COM",
            "Alice_Wonder",
            "alice.smith",
        ] {
            assert_eq!(
                check_policy(password, &context),
                Err(PolicyViolation::MatchesAccount),
                "{password}"
            );
        }
        assert_eq!(check_policy("alice.smith!2024", &context), Ok(()));
        // Empty identifiers match nothing.
        assert_eq!(check_policy("some long passphrase", &["", "  "]), Ok(()));
    }

    #[test]
    fn messages_are_fragments_after_the_field_name() {
        for violation in [
            PolicyViolation::TooShort { min: 8 },
            PolicyViolation::TooLong { max: 128 },
            PolicyViolation::Common,
            PolicyViolation::MatchesAccount,
        ] {
            // A fragment that reads on after the field's name.
            let message = violation.to_string();
            assert!(!message.ends_with('.'), "{message}");
            assert!(message.starts_with(char::is_lowercase), "{message}");
        }
        assert_eq!(
            PolicyViolation::TooShort { min: 8 }.to_string(),
            "is too short (use at least 8 characters)"
        );
    }
}
