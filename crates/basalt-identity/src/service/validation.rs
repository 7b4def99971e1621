//! Rules for emails and usernames.

use basalt_platform::error::FieldError;

/// A plausible address: one `@`, something on each side, a dot in the
/// domain, no spaces or control characters, at most 254 characters. Only a
/// confirmation mail proves more.
pub fn validate_email(email: &str) -> Result<(), FieldError> {
    let bad = |m: &str| Err(FieldError::new("email", m));
    let email = email.trim();
    if email.is_empty() {
        return bad("is required");
    }
    if email.chars().count() > 254 {
        return bad("is longer than 254 characters");
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("must not contain spaces");
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.') =>
        {
            Ok(())
        }
        _ => bad("is not an email address"),
    }
}

/// 3 to 32 characters: letters, digits, `_`, `-`, `.`; starting with a
/// letter or digit. Unique regardless of case.
pub fn validate_username(username: &str) -> Result<(), FieldError> {
    let bad = |m: &str| Err(FieldError::new("username", m));
    let count = username.chars().count();
    if !(3..=32).contains(&count) {
        return bad("must be 3 to 32 characters long");
    }
    if !username
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return bad("may contain only letters, digits, '_', '-' and '.'");
    }
    if !username.chars().next().is_some_and(char::is_alphanumeric) {
        return bad("must start with a letter or digit");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@example.com", "ü@exämple.de"] {
            assert!(validate_email(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@b.co",
            "a@@b.co",
            "a b@c.de",
            "a@.co",
            "a@b.co.",
            &format!("{}@b.co", "x".repeat(260)),
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn usernames() {
        for ok in ["bob", "Bob_99", "jean-luc.picard", "ñandú"] {
            assert!(validate_username(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "has space",
            "_lead",
            "x".repeat(33).as_str(),
            "semi;colon",
            "<script>",
        ] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
    }
}
