//! Slugs: readable, unique, safe for any Unicode title.

/// Longest slug base, in characters.
const MAX_CHARS: usize = 80;

/// A URL-friendly rendering of `title`: lower-case letters and digits of
/// any script, words joined by `-`. Punctuation, symbols and emoji are
/// dropped; an empty result becomes `article`.
pub fn slugify(title: &str) -> String {
    let mut slug = String::new();
    let mut dash = false;
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            if dash && !slug.is_empty() {
                slug.push('-');
            }
            dash = false;
            slug.push(c);
        } else {
            dash = true;
        }
        if slug.chars().count() >= MAX_CHARS {
            break;
        }
    }
    if slug.is_empty() {
        "article".to_owned()
    } else {
        slug
    }
}

/// `base` with a random suffix, for when `base` is taken.
pub fn with_suffix(base: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 6];
    // Randomness failing is not worth a 500: fall back to the clock.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = chrono::Utc::now().timestamp_subsec_nanos().to_le_bytes();
        bytes[..4].copy_from_slice(&nanos);
    }
    let suffix: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    format!("{base}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_slugs_for_any_title() {
        assert_eq!(
            slugify("How to train your dragon"),
            "how-to-train-your-dragon"
        );
        assert_eq!(slugify("  Hello,   World!! "), "hello-world");
        assert_eq!(slugify("Ünïcödé Straße"), "ünïcödé-straße");
        assert_eq!(slugify("日本語のタイトル"), "日本語のタイトル");
        assert_eq!(slugify("Ελληνικά κείμενα"), "ελληνικά-κείμενα");
        assert_eq!(slugify("🔥🔥🔥"), "article");
        assert_eq!(slugify("../../etc/passwd"), "etc-passwd");
        assert_eq!(
            slugify("<script>alert(1)</script>"),
            "script-alert-1-script"
        );
        assert!(slugify(&"long ".repeat(100)).chars().count() <= MAX_CHARS + 1);
    }

    #[test]
    fn suffixes_differ() {
        let a = with_suffix("x");
        let b = with_suffix("x");
        assert!(a.starts_with("x-") && a.len() == 8);
        assert_ne!(a, b);
    }
}
