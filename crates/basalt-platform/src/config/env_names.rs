//! Which `BASALT_*` environment variables are configuration.
//!
//! The TOML file is Basalt's own, so any unknown key in it is an error. The
//! environment is shared with everything else on the machine: Kubernetes
//! injects service-link variables into every pod (a Service named `basalt`
//! gives `BASALT_PORT=tcp://…`, `BASALT_SERVICE_HOST`,
//! `BASALT_PORT_8080_TCP_ADDR`, …), and a shell may export `BASALT_BIN`.
//! Refusing those would keep pods from starting, so a variable is refused
//! only when it looks like configuration under a wrong name: a misspelt key
//! (`BASALT_LISTN`, `BASALT_DATABASE_MAX_CONNECTIONS` for
//! `BASALT_DATABASE__MAX_CONNECTIONS`), or a nested key or `*_FILE` form under
//! no known key. Service links are ignored silently, anything else with a
//! warning.

use super::ENV_PREFIX;

/// What a `BASALT_*` variable is to the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum EnvName {
    /// Its top-level key is a known one: a layer of the configuration.
    Key,
    /// A Kubernetes service-link variable: not ours, ignored silently.
    ServiceLink,
    /// A near miss of a known key, or a nested key (`BASALT_X__Y`) under no
    /// known section: refused, with the name it probably meant if any.
    Misspelt {
        /// The variable the user probably meant.
        meant: Option<String>,
    },
    /// Something else that happens to share the prefix: ignored, with a warning.
    Stray,
}

/// Classifies `name` (with its value, which tells a service link's
/// `BASALT_PORT=tcp://…` from a stray `BASALT_PORT`), given the known
/// top-level keys in lower case.
pub(super) fn classify(name: &str, value: &str, known: &[&str]) -> EnvName {
    let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
        return EnvName::Stray;
    };
    if is_service_link(rest, value) {
        return EnvName::ServiceLink;
    }
    // `BASALT_X_FILE` holds the value of `BASALT_X`: judge it by `X`.
    let (rest, file_suffix) = match rest.strip_suffix("_FILE") {
        Some(direct) if !direct.is_empty() => (direct, "_FILE"),
        _ => (rest, ""),
    };
    let mut path = rest.split("__");
    let top = path.next().unwrap_or_default().to_ascii_lowercase();
    let nested: Vec<&str> = path.collect();
    if known.contains(&top.as_str()) {
        return EnvName::Key;
    }
    let spell = |key: &str, nested: &[&str]| {
        let mut meant = format!("{ENV_PREFIX}{}", key.to_ascii_uppercase());
        for part in nested {
            meant.push_str("__");
            meant.push_str(part);
        }
        meant.push_str(file_suffix);
        EnvName::Misspelt { meant: Some(meant) }
    };
    // A typo of a known key.
    if let Some(key) = known
        .iter()
        .filter(|k| edit_distance(&top, k) <= typo_allowance(k))
        .min_by_key(|k| edit_distance(&top, k))
    {
        return spell(key, &nested);
    }
    // A nested key joined with one underscore instead of two: the longest
    // known key it starts with is the section meant.
    if let Some(key) = known
        .iter()
        .filter(|k| {
            top.len() > k.len() + 1 && top.starts_with(*k) && top[k.len()..].starts_with('_')
        })
        .max_by_key(|k| k.len())
    {
        let inner = rest[key.len() + 1..].to_owned();
        let mut parts = vec![inner.as_str()];
        parts.extend(nested.iter().copied());
        return spell(key, &parts);
    }
    // Only configuration is written `BASALT_X__Y` or `BASALT_X_FILE`: a
    // secret file under a wrong name must not be skipped quietly.
    if nested.is_empty() && file_suffix.is_empty() {
        EnvName::Stray
    } else {
        EnvName::Misspelt { meant: None }
    }
}

/// How many edits still count as a typo: one for short keys (`role`, `blog`),
/// two for longer ones; more would catch unrelated words.
fn typo_allowance(key: &str) -> usize {
    if key.len() <= 4 { 1 } else { 2 }
}

/// Kubernetes' service-link variables, after the `BASALT_` prefix: for a
/// Service `basalt[-x]`, `[X_]SERVICE_HOST`, `[X_]SERVICE_PORT[_NAME]`,
/// `[X_]PORT=tcp://…` and `[X_]PORT_<n>_<PROTO>[_PROTO|_PORT|_ADDR]`.
fn is_service_link(rest: &str, value: &str) -> bool {
    let ends_with_word = |word: &str| rest == word || rest.ends_with(&format!("_{word}"));
    if ends_with_word("SERVICE_HOST") || ends_with_word("SERVICE_PORT") {
        return true;
    }
    if rest.starts_with("SERVICE_PORT_") || rest.contains("_SERVICE_PORT_") {
        return true;
    }
    if ends_with_word("PORT")
        && ["tcp://", "udp://", "sctp://"]
            .iter()
            .any(|scheme| value.starts_with(scheme))
    {
        return true;
    }
    // …PORT_8080_TCP, …PORT_8080_TCP_ADDR
    let parts: Vec<&str> = rest.split('_').collect();
    parts.windows(3).enumerate().any(|(i, w)| {
        let tail = &parts[i + 3..];
        w[0] == "PORT"
            && !w[1].is_empty()
            && w[1].bytes().all(|b| b.is_ascii_digit())
            && matches!(w[2], "TCP" | "UDP" | "SCTP")
            && (tail.is_empty() || matches!(tail, ["PROTO"] | ["PORT"] | ["ADDR"]))
    })
}

/// Edit distance with adjacent transpositions (optimal string alignment), on
/// bytes (keys are ASCII): `htpp` is one edit from `http`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    // d[i][j]: the distance between a[..i] and b[..j].
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &[
        "listen",
        "database_url",
        "database",
        "data_dir",
        "http",
        "role",
        "redis_url",
        "redis",
        "identity",
        "blog",
    ];

    fn class(name: &str, value: &str) -> EnvName {
        classify(name, value, KNOWN)
    }

    fn meant(name: &str) -> String {
        match class(name, "x") {
            EnvName::Misspelt { meant: Some(meant) } => meant,
            other => panic!("{name}: expected a misspelling, got {other:?}"),
        }
    }

    #[test]
    fn known_keys_and_their_file_forms_are_configuration() {
        for name in [
            "BASALT_LISTEN",
            "BASALT_DATABASE_URL",
            "BASALT_DATABASE__MAX_CONNECTIONS",
            "BASALT_IDENTITY__JWT_SECRET_FILE",
            "BASALT_REDIS_URL_FILE",
        ] {
            assert_eq!(class(name, "x"), EnvName::Key, "{name}");
        }
    }

    #[test]
    fn kubernetes_service_links_are_ignored() {
        for (name, value) in [
            ("BASALT_SERVICE_HOST", "10.0.0.1"),
            ("BASALT_SERVICE_PORT", "8080"),
            ("BASALT_SERVICE_PORT_HTTP", "8080"),
            ("BASALT_PORT", "tcp://10.0.0.1:8080"),
            ("BASALT_PORT_8080_TCP", "tcp://10.0.0.1:8080"),
            ("BASALT_PORT_8080_TCP_PROTO", "tcp"),
            ("BASALT_PORT_8080_TCP_PORT", "8080"),
            ("BASALT_PORT_8080_TCP_ADDR", "10.0.0.1"),
            // A Service named `basalt-redis` or `basalt-api`.
            ("BASALT_REDIS_SERVICE_HOST", "10.0.0.2"),
            ("BASALT_REDIS_PORT", "tcp://10.0.0.2:6379"),
            ("BASALT_API_PORT_8080_TCP_ADDR", "10.0.0.3"),
            ("BASALT_API_SERVICE_PORT_METRICS", "9090"),
        ] {
            assert_eq!(class(name, value), EnvName::ServiceLink, "{name}");
        }
    }

    #[test]
    fn near_misses_are_refused_with_the_name_meant() {
        assert_eq!(meant("BASALT_LISTN"), "BASALT_LISTEN");
        assert_eq!(meant("BASALT_DATABSE_URL"), "BASALT_DATABASE_URL");
        assert_eq!(meant("BASALT_ROLES"), "BASALT_ROLE");
        assert_eq!(
            meant("BASALT_HTPP__BODY_LIMIT_BYTES"),
            "BASALT_HTTP__BODY_LIMIT_BYTES"
        );
        assert_eq!(
            meant("BASALT_DATABASE_MAX_CONNECTIONS"),
            "BASALT_DATABASE__MAX_CONNECTIONS"
        );
        assert_eq!(
            meant("BASALT_IDENTITY_JWT_SECRET_FILE"),
            "BASALT_IDENTITY__JWT_SECRET_FILE"
        );
        // Not a service link without a service link's value.
        assert_eq!(meant("BASALT_REDIS_PORT"), "BASALT_REDIS__PORT");
        // Nested under no known section: configuration, but unknown.
        assert_eq!(
            class("BASALT_SHOPPING__TTL", "1"),
            EnvName::Misspelt { meant: None }
        );
        assert_eq!(
            class("BASALT_NOPE_FILE", "/run/secrets/x"),
            EnvName::Misspelt { meant: None }
        );
    }

    #[test]
    fn other_variables_are_strays() {
        for name in [
            "BASALT_BIN",
            "BASALT_HOME",
            "BASALT_VERSION",
            "BASALT_PORT",
            "BASALT_TAG",
        ] {
            assert_eq!(class(name, "8080"), EnvName::Stray, "{name}");
        }
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("listen", "listen"), 0);
        assert_eq!(edit_distance("listn", "listen"), 1);
        assert_eq!(edit_distance("rloe", "role"), 1);
        assert_eq!(edit_distance("htpp", "http"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
