//! The configuration's tests: layers, validation, secrets.

use std::time::Duration;

use secrecy::ExposeSecret;

use super::*;

fn load(env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::load(&ConfigSources {
        env: env
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        ..ConfigSources::default()
    })
}

#[test]
fn defaults_are_the_zero_config_start() {
    let c = load(&[]).expect("defaults load");
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.data_dir, PathBuf::from("data"));
    assert!(matches!(&c.database_url, DatabaseUrl::Sqlite(u) if u == "sqlite://data/basalt.db"));
    assert_eq!(c.http.body_limit_bytes, 1024 * 1024);
    assert_eq!(c.http.header_read_timeout_secs, 10);
    assert_eq!(c.http.keepalive_idle_timeout_secs, 75);
    assert_eq!(c.http.connection_cap(), Some(10_000));
    assert!(c.cors_origins.is_empty());
    assert!(c.tls.is_none());
}

#[test]
fn environment_overrides_including_nested_keys() {
    let c = load(&[
        ("BASALT_LISTEN", "0.0.0.0:9000"),
        ("BASALT_DATA_DIR", "/var/lib/basalt"),
        ("BASALT_HTTP__BODY_LIMIT_BYTES", "2048"),
        ("BASALT_HTTP__HEADER_READ_TIMEOUT_SECS", "3"),
        ("BASALT_HTTP__KEEPALIVE_IDLE_TIMEOUT_SECS", "20"),
        ("BASALT_HTTP__MAX_CONNECTIONS", "0"),
        ("BASALT_DATABASE__MAX_CONNECTIONS", "3"),
        (
            "BASALT_CORS_ORIGINS",
            "https://a.example, http://localhost:3000",
        ),
        ("BASALT_LOG_FORMAT", "json"),
    ])
    .expect("loads");
    assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
    assert!(
        matches!(&c.database_url, DatabaseUrl::Sqlite(u) if u == "sqlite:///var/lib/basalt/basalt.db")
    );
    assert_eq!(c.http.body_limit_bytes, 2048);
    assert_eq!(c.http.header_read_timeout(), Duration::from_secs(3));
    assert_eq!(c.http.keepalive_idle_timeout(), Duration::from_secs(20));
    assert_eq!(c.http.connection_cap(), None, "0 means no cap");
    assert_eq!(c.database.max_connections, 3);
    assert_eq!(
        c.cors_origins,
        vec!["https://a.example", "http://localhost:3000"]
    );
    assert_eq!(c.log_format, LogFormat::Json);
}

#[test]
fn file_is_overridden_by_environment() {
    let dir = std::env::temp_dir().join(format!("basalt-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("basalt.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:7000\"\nlog_level = \"debug\"\n[http]\nrequest_timeout_secs = 5\n",
    )
    .expect("write");
    let c = Config::load(&ConfigSources {
        file: Some(file),
        env: vec![("BASALT_LISTEN".into(), "127.0.0.1:7001".into())],
        ..ConfigSources::default()
    })
    .expect("loads");
    assert_eq!(c.listen.to_string(), "127.0.0.1:7001");
    assert_eq!(c.log_level, "debug");
    assert_eq!(c.http.request_timeout_secs, 5);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bad_values_name_their_key() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("BASALT_LISTEN", "nope")], "BASALT_LISTEN"),
        (
            &[("BASALT_DATABASE_URL", "mysql://x")],
            "BASALT_DATABASE_URL",
        ),
        (&[("BASALT_LOG_FORMAT", "xml")], "BASALT_LOG_FORMAT"),
        (
            &[("BASALT_CORS_ORIGINS", "https://a.example/path")],
            "BASALT_CORS_ORIGINS",
        ),
        (&[("BASALT_CORS_ORIGINS", "*")], "BASALT_CORS_ORIGINS"),
        (&[("BASALT_TLS_CERT", "/etc/hostname")], "BASALT_TLS_KEY"),
        (
            &[("BASALT_HTTP__BODY_LIMIT_BYTES", "lots")],
            "BASALT_HTTP__BODY_LIMIT_BYTES",
        ),
        (
            &[("BASALT_HTTP__HEADER_READ_TIMEOUT_SECS", "0")],
            "BASALT_HTTP__HEADER_READ_TIMEOUT_SECS",
        ),
        (
            &[("BASALT_HTTP__KEEPALIVE_IDLE_TIMEOUT_SECS", "0")],
            "BASALT_HTTP__KEEPALIVE_IDLE_TIMEOUT_SECS",
        ),
        (
            &[("BASALT_HTTP__MAX_CONNECTIONS", "-1")],
            "BASALT_HTTP__MAX_CONNECTIONS",
        ),
        (&[("BASALT_LISTN", "127.0.0.1:1")], "BASALT_LISTN"),
        (&[("BASALT_PUBLIC_URL", "ftp://x")], "BASALT_PUBLIC_URL"),
        (
            &[("BASALT_MAIL_FROM", "Basalt <no-reply@>")],
            "BASALT_MAIL_FROM",
        ),
        (
            &[("BASALT_SMTP_URL", "http://mail.example")],
            "BASALT_SMTP_URL",
        ),
        (
            &[("BASALT_TRUSTED_PROXIES", "127.0.0.1,10.0.0.0/33")],
            "BASALT_TRUSTED_PROXIES",
        ),
        (
            &[("BASALT_TRUSTED_PROXIES", "proxy.internal")],
            "BASALT_TRUSTED_PROXIES",
        ),
        (&[("BASALT_ROLE", "both")], "BASALT_ROLE"),
        (
            &[("BASALT_ROLE", "worker"), ("BASALT_JOBS__WORKERS", "0")],
            "BASALT_JOBS__WORKERS",
        ),
    ];
    for (env, key) in cases {
        let err = load(env).expect_err("must be rejected");
        assert_eq!(err.key, *key, "{err}");
        assert!(!err.to_string().contains('\n'), "one line: {err}");
    }
}

#[test]
fn secrets_come_from_files_and_are_redacted() {
    let dir = std::env::temp_dir().join(format!("basalt-secret-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("db_url");
    std::fs::write(
        &file,
        "postgres://basalt:hunter2hunter2@db.internal/basalt\n",
    )
    .expect("write");
    let c = load(&[("BASALT_DATABASE_URL_FILE", file.to_str().expect("utf-8"))]).expect("loads");
    match &c.database_url {
        DatabaseUrl::Postgres(s) => {
            assert_eq!(
                s.expose_secret(),
                "postgres://basalt:hunter2hunter2@db.internal/basalt"
            )
        }
        other => panic!("expected postgres, got {other:?}"),
    }
    let printed = c.to_redacted_toml();
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("[redacted]"), "{printed}");

    let both = load(&[
        ("BASALT_DATABASE_URL_FILE", file.to_str().expect("utf-8")),
        ("BASALT_DATABASE_URL", "sqlite::memory:"),
    ]);
    assert_eq!(both.expect_err("ambiguous").key, "BASALT_DATABASE_URL_FILE");
    std::fs::remove_dir_all(dir).ok();
}

/// A module's section with a secret, as the shop's Stripe key will be.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct ShopSection {
    stripe_secret_key: Option<Secret>,
    currency: String,
}

#[test]
fn any_section_can_hold_secrets_from_files_and_they_are_redacted() {
    let dir = std::env::temp_dir().join(format!("basalt-secret-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("stripe");
    // Looks like a number and like a list: still taken as text.
    std::fs::write(&file, "[sk_test_4242]\n").expect("write");
    let path = file.to_str().expect("utf-8");
    let sources = |env: Vec<(&str, &str)>| ConfigSources {
        env: env
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        sections: vec!["shop".into()],
        ..ConfigSources::default()
    };
    let c = Config::load(&sources(vec![
        ("BASALT_SHOP__STRIPE_SECRET_KEY_FILE", path),
        ("BASALT_SHOP__CURRENCY", "EUR"),
    ]))
    .expect("loads");
    let shop: ShopSection = c.section("shop").expect("valid");
    assert_eq!(
        shop.stripe_secret_key.as_ref().map(Secret::expose),
        Some("[sk_test_4242]")
    );
    assert_eq!(shop.currency, "EUR");
    let printed = toml::to_string(&shop).expect("toml");
    assert!(!printed.contains("sk_test"), "{printed}");
    assert!(printed.contains("[redacted]"), "{printed}");
    assert!(!format!("{shop:?}").contains("sk_test"));

    // Directly from the environment it is a secret all the same.
    let c =
        Config::load(&sources(vec![("BASALT_SHOP__STRIPE_SECRET_KEY", "12345")])).expect("loads");
    let shop: ShopSection = c.section("shop").expect("valid");
    assert_eq!(
        shop.stripe_secret_key.as_ref().map(Secret::expose),
        Some("12345")
    );

    // Both ways at once is ambiguous; a file for an unknown key is unknown.
    let both = Config::load(&sources(vec![
        ("BASALT_SHOP__STRIPE_SECRET_KEY_FILE", path),
        ("BASALT_SHOP__STRIPE_SECRET_KEY", "x"),
    ]));
    assert_eq!(
        both.expect_err("ambiguous").key,
        "BASALT_SHOP__STRIPE_SECRET_KEY_FILE"
    );
    let unknown = Config::load(&sources(vec![("BASALT_NOPE_FILE", path)]));
    assert!(unknown.is_err());
    std::fs::remove_dir_all(dir).ok();
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct DemoSection {
    rounds: u32,
    name: String,
}

#[test]
fn modules_read_their_own_sections() {
    let sources = ConfigSources {
        env: vec![("BASALT_DEMO__ROUNDS".into(), "7".into())],
        sections: vec!["demo".into()],
        ..ConfigSources::default()
    };
    let c = Config::load(&sources).expect("demo is a declared section");
    assert_eq!(c.section::<DemoSection>("demo").expect("valid").rounds, 7);
    assert_eq!(
        c.section::<DemoSection>("absent").expect("defaults"),
        DemoSection::default()
    );

    let undeclared = ConfigSources {
        sections: Vec::new(),
        ..sources.clone()
    };
    assert_eq!(
        Config::load(&undeclared).expect_err("unknown").key,
        "BASALT_DEMO__ROUNDS"
    );

    let bad = ConfigSources {
        env: vec![("BASALT_DEMO__ROUNDS".into(), "many".into())],
        ..sources
    };
    let err = Config::load(&bad)
        .expect("loads")
        .section::<DemoSection>("demo")
        .expect_err("bad");
    assert_eq!(err.key, "BASALT_DEMO__ROUNDS", "{err}");
}

#[test]
fn trusted_proxies_and_role_from_environment_or_file() {
    let c = load(&[]).expect("defaults");
    assert!(c.trusted_proxies.is_empty());
    assert_eq!(c.role, Role::All);

    let c = load(&[
        ("BASALT_TRUSTED_PROXIES", "127.0.0.1/32, 10.0.0.0/8,::1"),
        ("BASALT_ROLE", "api"),
    ])
    .expect("loads");
    assert_eq!(c.role, Role::Api);
    let ranges: Vec<String> = c
        .trusted_proxies
        .ranges()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(ranges, ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]);
    let printed = c.to_redacted_toml();
    assert!(printed.contains("role = \"api\""), "{printed}");
    assert!(printed.contains("\"10.0.0.0/8\""), "{printed}");

    let dir = std::env::temp_dir().join(format!("basalt-proxies-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("basalt.toml");
    std::fs::write(
        &file,
        "role = \"worker\"\ntrusted_proxies = [\"192.168.0.0/16\", \"fd00::/8\"]\n",
    )
    .expect("write");
    let c = Config::load(&ConfigSources {
        file: Some(file.clone()),
        ..ConfigSources::default()
    })
    .expect("loads");
    assert_eq!(c.role, Role::Worker);
    assert_eq!(c.trusted_proxies.ranges().len(), 2);
    std::fs::write(&file, "trusted_proxies = [\"10.0.0.1/8\"]\n").expect("write");
    let err = Config::load(&ConfigSources {
        file: Some(file),
        ..ConfigSources::default()
    })
    .expect_err("host bits set");
    assert_eq!(err.key, "BASALT_TRUSTED_PROXIES", "{err}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn numeric_looking_secret_stays_text() {
    let c = load(&[("BASALT_METRICS_TOKEN", "12345678901234567890")]).expect("loads");
    assert_eq!(
        c.metrics_token.expect("set").expose(),
        "12345678901234567890"
    );
}
