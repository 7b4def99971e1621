//! The `basalt` binary itself: commands, exit codes, zero-config start,
//! logs and signals. Each test runs the compiled binary in a temporary
//! folder with a clean environment.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use basalt_platform::config::DatabaseUrl;
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::child_server::ChildServer;

const BIN: &str = env!("CARGO_BIN_EXE_basalt");

fn basalt(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn get(url: &str) -> (u16, String) {
    basalt_platform::server::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let r = reqwest::get(url).await.expect("answered");
        (r.status().as_u16(), r.text().await.expect("body"))
    })
}

#[test]
fn version_and_help_for_every_command() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run(basalt(dir.path()).arg("--version"));
    assert!(out.status.success());
    assert_eq!(
        stdout(&out).trim(),
        format!("basalt {}", env!("CARGO_PKG_VERSION"))
    );
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["healthcheck", "--help"],
        &["config", "--help"],
        &["config", "print", "--help"],
        // Commands modules bring (Module::commands).
        &["user", "create", "--help"],
        &["keys", "rotate", "--help"],
        &["graphql", "schema", "--help"],
    ] {
        let out = run(basalt(dir.path()).args(args));
        assert!(out.status.success(), "{args:?}");
        assert!(
            stdout(&out).contains("Usage: basalt"),
            "{args:?}: {}",
            stdout(&out)
        );
    }
    let out = run(basalt(dir.path()).arg("frobnicate"));
    assert_eq!(out.status.code(), Some(2));
    let help = stdout(&run(basalt(dir.path()).arg("--help")));
    for command in [
        "serve", "migrate", "config", "jobs", "user", "keys", "graphql",
    ] {
        assert!(
            help.contains(&format!("  {command} ")),
            "{command} in\n{help}"
        );
    }
}

#[test]
fn a_modules_command_runs_with_the_configuration_checked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run(basalt(dir.path()).args(["graphql", "schema"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("type Query {"), "{}", stdout(&out));
    assert_eq!(stdout(&out), basalt::graphql::sdl());
    // A module's command refuses a bad configuration like any other.
    let out = run(basalt(dir.path())
        .args(["graphql", "schema"])
        .env("BASALT_GRAPHQL__MAX_DEPTH", "0"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("graphql.max_depth"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn keys_rotate_retires_the_key_it_promoted_last_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rotate = || {
        let out = run(basalt(dir.path()).args(["keys", "rotate"]));
        assert!(out.status.success(), "{}", stderr(&out));
        let line = stdout(&out);
        let field = |label: &str| {
            line.split(label)
                .nth(1)
                .and_then(|rest| rest.split([';', '\n']).next())
                .unwrap_or_else(|| panic!("{label} in {line}"))
                .to_owned()
        };
        (field("retired "), field("signing with "))
    };
    let (retired, first) = rotate();
    assert_eq!(retired, "(none)");
    let (retired, second) = rotate();
    assert_eq!(retired, first);
    assert_ne!(second, first);
}

/// A module that claims the command `name`.
struct Claims(&'static str, &'static str);

impl basalt_platform::Module for Claims {
    fn name(&self) -> &'static str {
        self.0
    }

    fn commands(&self) -> Vec<basalt_platform::commands::ModuleCommand> {
        vec![basalt_platform::commands::ModuleCommand::new(
            clap::Command::new(self.1),
            |_| async { Ok(()) },
        )]
    }
}

fn clash(modules: Vec<Box<dyn basalt_platform::Module>>) -> String {
    match basalt::cli::module_commands(&modules) {
        Ok(commands) => panic!("no clash among {commands:?}"),
        Err(clash) => clash.to_string(),
    }
}

#[test]
fn a_command_claimed_twice_stops_the_cli_with_a_configuration_error() {
    assert_eq!(
        clash(vec![Box::new(Claims("claims-serve", "serve"))]),
        "the command `serve` is claimed twice: by the platform and by the module `claims-serve`"
    );
    assert_eq!(
        clash(vec![Box::new(Claims("claims-help", "help"))]),
        "the command `help` is claimed twice: by the platform and by the module `claims-help`"
    );
    let mut twice = basalt::modules();
    twice.push(Box::new(Claims("claims-graphql", "graphql")));
    assert_eq!(
        clash(twice),
        "the command `graphql` is claimed twice: by the module `graphql` and by the module `claims-graphql`"
    );
    // The binary's own modules do not clash; a module's fresh name is offered.
    let mut modules = basalt::modules();
    modules.push(Box::new(Claims("claims-fresh", "fresh")));
    let names: Vec<String> = basalt::cli::module_commands(&modules)
        .expect("no clash")
        .iter()
        .map(|command| command.name().to_owned())
        .collect();
    assert_eq!(names, ["user", "keys", "graphql", "fresh"]);
    // The clash stops even `--version` with the configuration exit code.
    let code = basalt::cli::run_with(
        vec![Box::new(Claims("claims-serve", "serve"))],
        ["basalt", "--version"],
    );
    assert_eq!(code, std::process::ExitCode::from(basalt::cli::EXIT_CONFIG));
}

#[test]
fn config_print_shows_effective_values_with_secrets_redacted() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("basalt.toml"),
        "log_level = \"debug\"\n[http]\nbody_limit_bytes = 4096\n",
    )
    .expect("write");
    let secret_file = dir.path().join("token");
    std::fs::write(&secret_file, "a-very-secret-metrics-token\n").expect("write");
    let out = run(basalt(dir.path())
        .args(["--config", "basalt.toml", "config", "print"])
        .env(
            "BASALT_DATABASE_URL",
            "postgres://basalt:pa55word-xyz@db.internal:5432/basalt",
        )
        .env("BASALT_METRICS_TOKEN_FILE", &secret_file)
        .env("BASALT_LISTEN", "0.0.0.0:9999"));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("listen = \"0.0.0.0:9999\""), "{text}");
    assert!(text.contains("log_level = \"debug\""), "{text}");
    assert!(text.contains("body_limit_bytes = 4096"), "{text}");
    assert!(
        text.contains("postgres://basalt:[redacted]@db.internal:5432/basalt"),
        "{text}"
    );
    assert!(text.contains("metrics_token = \"[redacted]\""), "{text}");
    assert!(
        !text.contains("pa55word") && !text.contains("a-very-secret"),
        "{text}"
    );

    let defaults = stdout(&run(basalt(dir.path()).args(["config", "print"])));
    assert!(
        defaults.contains("listen = \"127.0.0.1:8080\""),
        "{defaults}"
    );
    assert!(
        defaults.contains("database_url = \"sqlite://data/basalt.db\""),
        "{defaults}"
    );
}

#[test]
fn bad_configuration_exits_2_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (key, value) in [
        ("BASALT_LISTEN", "localhost"),
        ("BASALT_DATABASE_URL", "mysql://x/y"),
        ("BASALT_HTTP__REQUEST_TIMEOUT_SECS", "soon"),
        ("BASALT_TLS_CERT", "/nonexistent.pem"),
        ("BASALT_LOG_FORMAT", "yaml"),
    ] {
        for command in [&["serve"][..], &["migrate"], &["config", "print"]] {
            let out = run(basalt(dir.path()).args(command).env(key, value));
            assert_eq!(
                out.status.code(),
                Some(2),
                "{key}={value} {command:?}: {}",
                stderr(&out)
            );
            let err = stderr(&out);
            assert_eq!(err.trim().lines().count(), 1, "{err}");
            assert!(
                err.contains("BASALT_") && err.contains("invalid configuration"),
                "{err}"
            );
        }
    }
    let out = run(basalt(dir.path()).args(["--config", "missing.toml", "config", "print"]));
    assert_eq!(out.status.code(), Some(2));
    std::fs::write(dir.path().join("bad.toml"), "[http]\nbody_limit = 5\n").expect("write");
    let out = run(basalt(dir.path()).args(["--config", "bad.toml", "config", "print"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("body_limit"), "{}", stderr(&out));
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created when configuration is bad"
    );
}

/// Kubernetes gives every pod `BASALT_*` service-link variables for a
/// Service named `basalt`, and shells export names like `BASALT_BIN`: the
/// server starts anyway (warning about the stray, silent on service links);
/// only a name that looks like a misspelt key is refused.
#[test]
fn serve_starts_beside_service_links_and_strays_but_refuses_misspelt_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let with_foreign_env = |cmd: &mut Command| {
        for (name, value) in [
            ("BASALT_PORT", "tcp://10.96.0.12:8080"),
            ("BASALT_PORT_8080_TCP", "tcp://10.96.0.12:8080"),
            ("BASALT_PORT_8080_TCP_ADDR", "10.96.0.12"),
            ("BASALT_PORT_8080_TCP_PORT", "8080"),
            ("BASALT_PORT_8080_TCP_PROTO", "tcp"),
            ("BASALT_SERVICE_HOST", "10.96.0.12"),
            ("BASALT_SERVICE_PORT", "8080"),
            ("BASALT_SERVICE_PORT_HTTP", "8080"),
            ("BASALT_BIN", "/usr/local/bin/basalt"),
        ] {
            cmd.env(name, value);
        }
    };
    let mut cmd = basalt(dir.path());
    with_foreign_env(cmd.env("BASALT_LISTEN", "127.0.0.1:0"));
    let mut server = ChildServer::start(&mut cmd);
    let base = server.base_url();
    assert_eq!(get(&format!("{base}/readyz")).0, 200);
    let warned: Vec<&String> = server
        .seen
        .iter()
        .filter(|l| l.contains("not a Basalt configuration key"))
        .collect();
    assert_eq!(
        warned.len(),
        1,
        "one warning, for BASALT_BIN: {:?}",
        server.seen
    );
    assert!(warned[0].contains("BASALT_BIN"), "{}", warned[0]);
    assert!(server.terminate().success());

    for (name, meant) in [
        ("BASALT_LISTN", Some("BASALT_LISTEN")),
        (
            "BASALT_DATABASE_MAX_CONNECTIONS",
            Some("BASALT_DATABASE__MAX_CONNECTIONS"),
        ),
        ("BASALT_NOSUCH__KEY", None),
    ] {
        let mut cmd = basalt(dir.path());
        with_foreign_env(cmd.args(["config", "print"]).env(name, "5"));
        let out = run(&mut cmd);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(name), "{err}");
        if let Some(meant) = meant {
            assert!(err.contains(&format!("did you mean {meant}?")), "{err}");
        }
    }
}

#[test]
fn zero_config_serve_creates_sqlite_in_data_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Only the port is overridden, so that tests can run side by side.
    let mut server = ChildServer::start(basalt(dir.path()).env("BASALT_LISTEN", "127.0.0.1:0"));
    let base = server.base_url();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let ready_line = server.seen.last().expect("line").clone();
    for url in ["/api", "/docs", "/metrics"] {
        assert!(ready_line.contains(&format!("{base}{url}")), "{ready_line}");
    }
    assert_eq!(get(&format!("{base}/readyz")).0, 200);
    assert!(
        dir.path().join("data/basalt.db").is_file(),
        "SQLite file in ./data"
    );

    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        server.seen.iter().any(|l| l.contains("shutdown complete")),
        "{:?}",
        server.seen
    );
}

/// `basalt healthcheck`, the image's HEALTHCHECK: 0 while the node at the
/// configured address answers `/healthz`, over TLS when the node serves it,
/// and 1 once nothing listens there.
#[test]
fn healthcheck_exits_0_while_the_node_answers_and_1_once_it_is_gone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cert = rcgen::generate_simple_self_signed(vec!["basalt.example".into()])
        .expect("self-signed certificate");
    std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).expect("cert");
    std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).expect("key");
    let tls = [
        ("BASALT_TLS_CERT", "cert.pem"),
        ("BASALT_TLS_KEY", "key.pem"),
    ];

    for with_tls in [false, true] {
        let serve = &mut basalt(dir.path());
        serve.env("BASALT_LISTEN", "0.0.0.0:0");
        if with_tls {
            serve.envs(tls);
        }
        let mut server = ChildServer::start(serve);
        let base = server.base_url();
        let port = base.rsplit(':').next().expect("port").to_owned();
        // The node listens on every interface; the probe goes to loopback,
        // and trusts the certificate (issued for another name) without
        // checking it.
        let healthcheck = || {
            let cmd = &mut basalt(dir.path());
            cmd.arg("healthcheck")
                .env("BASALT_LISTEN", format!("0.0.0.0:{port}"));
            if with_tls {
                cmd.envs(tls);
            }
            run(cmd)
        };
        let up = healthcheck();
        assert!(up.status.success(), "tls {with_tls}: {}", stderr(&up));
        assert!(server.terminate().success());

        let down = healthcheck();
        assert_eq!(down.status.code(), Some(1), "tls {with_tls}");
        assert!(
            stderr(&down).contains(&format!("/127.0.0.1:{port}/healthz")),
            "{}",
            stderr(&down)
        );
    }
}

#[test]
fn json_logs_have_one_structured_line_per_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = ChildServer::start(
        basalt(dir.path())
            .env("BASALT_LISTEN", "127.0.0.1:0")
            .env("BASALT_LOG_FORMAT", "json"),
    );
    let base = server.base_url();
    basalt_platform::server::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{base}/healthz?token=secret-in-query"))
            .header("x-request-id", "trace-me-42")
            .send()
            .await
            .expect("answered")
    });
    let line = server.wait_for("trace-me-42");
    let entry: Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(entry["message"], "request");
    assert_eq!(entry["method"], "GET");
    assert_eq!(entry["route"], "/healthz");
    assert_eq!(entry["status"], 200);
    assert!(entry["latency_ms"].is_number());
    assert_eq!(entry["span"]["request_id"], "trace-me-42");
    assert!(
        !line.contains("secret-in-query"),
        "query strings are not logged: {line}"
    );
    for seen in &server.seen {
        serde_json::from_str::<Value>(seen).unwrap_or_else(|e| panic!("not JSON ({e}): {seen}"));
    }
    assert!(server.terminate().success());
}

#[test]
fn migrate_is_idempotent_on_the_configured_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let url = match rt.block_on(basalt_testkit::fresh_database(dir.path())) {
        DatabaseUrl::Sqlite(url) => url,
        DatabaseUrl::Postgres(url) => url.expose_secret().to_owned(),
    };
    // "N migration(s) applied; K known": all on the first run, none after.
    let counts = |text: &str| -> (u32, u32) {
        let mut numbers = text
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty());
        let applied = numbers
            .next()
            .and_then(|n| n.parse().ok())
            .expect("applied count");
        let known = numbers
            .next()
            .and_then(|n| n.parse().ok())
            .expect("known count");
        (applied, known)
    };
    for run_number in 0..2 {
        let out = run(basalt(dir.path())
            .arg("migrate")
            .env("BASALT_DATABASE_URL", &url));
        assert!(out.status.success(), "{}", stderr(&out));
        let report = stdout(&out);
        assert_eq!(
            report.lines().count(),
            1,
            "stdout is the result alone: {report}"
        );
        let (applied, known) = counts(&report);
        assert!(known > 0, "{}", stdout(&out));
        let expected = if run_number == 0 { known } else { 0 };
        assert_eq!(applied, expected, "run {run_number}: {}", stdout(&out));
    }
}

#[test]
fn serve_uses_the_database_url_from_the_environment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (url, backend) = match rt.block_on(basalt_testkit::fresh_database(
        &dir.path().join("elsewhere"),
    )) {
        DatabaseUrl::Sqlite(url) => (url, "sqlite"),
        DatabaseUrl::Postgres(url) => (url.expose_secret().to_owned(), "postgres"),
    };
    let mut server = ChildServer::start(
        basalt(dir.path())
            .env("BASALT_LISTEN", "127.0.0.1:0")
            .env("BASALT_DATABASE_URL", &url),
    );
    let base = server.base_url();
    let line = server.seen.last().expect("startup line").clone();
    assert!(line.contains(&format!("database=\"{backend}\"")), "{line}");
    let (status, body) = get(&format!("{base}/metrics"));
    assert_eq!(status, 200);
    assert!(body.contains(&format!("database=\"{backend}\"")), "{body}");
    assert!(server.terminate().success());
}

/// A password reset's token is in the mail and nowhere else: not in the job
/// table, `basalt jobs list`, `GET /api/admin/jobs`, `/metrics` or a log
/// line (at debug level), on the configured database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_token_is_in_the_mail_and_nowhere_else() {
    use std::io::Write as _;

    basalt_platform::server::install_crypto_provider();
    let smtp = basalt_testkit::smtp::SmtpServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = match basalt_testkit::fresh_database(&dir.path().join("db")).await {
        DatabaseUrl::Sqlite(url) => url,
        DatabaseUrl::Postgres(url) => url.expose_secret().to_owned(),
    };
    let configured = |cmd: &mut Command| {
        cmd.env("BASALT_DATABASE_URL", &url)
            .env("BASALT_SMTP_URL", smtp.url())
            .env("BASALT_LOG_LEVEL", "debug")
            .env("BASALT_JOBS__POLL_INTERVAL_MS", "100")
            .env("BASALT_IDENTITY__PASSWORDS__ARGON2_MEMORY_KIB", "1024")
            .env("BASALT_IDENTITY__PASSWORDS__ARGON2_ITERATIONS", "1");
    };
    let password = "correct horse battery staple";
    let mut create = basalt(dir.path());
    configured(&mut create);
    let mut child = create
        .args(["user", "create", "--email", "admin@example.com"])
        .args(["--username", "admin", "--admin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    writeln!(child.stdin.take().expect("stdin"), "{password}").expect("password sent");
    let created = child.wait_with_output().expect("runs");
    assert!(created.status.success(), "{}", stderr(&created));

    let mut serve = basalt(dir.path());
    configured(&mut serve);
    let mut server = ChildServer::start(serve.env("BASALT_LISTEN", "127.0.0.1:0"));
    let base = tokio::task::block_in_place(|| server.base_url());
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| client.post(format!("{base}{path}")).json(&body).send();
    let forgot = post(
        "/api/auth/password/forgot",
        serde_json::json!({ "email": "admin@example.com" }),
    )
    .await
    .expect("answered");
    assert_eq!(forgot.status(), 202);
    let token = crate::identity::recovery::reset_token(&smtp, "admin@example.com").await;
    assert_eq!(token.len(), 43);

    let admin: Value = post(
        "/api/auth/token",
        serde_json::json!({ "email": "admin@example.com", "password": password }),
    )
    .await
    .expect("answered")
    .json()
    .await
    .expect("json");
    let bearer = admin["access_token"].as_str().expect("admin token");
    let jobs = client
        .get(format!("{base}/api/admin/jobs"))
        .bearer_auth(bearer)
        .send()
        .await
        .expect("answered")
        .text()
        .await
        .expect("body");
    assert!(!jobs.contains(&token), "the admin job list shows the token");
    assert!(jobs.contains("\"jobs\""), "{jobs}");
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("answered")
        .text()
        .await
        .expect("body");
    assert!(!metrics.contains(&token), "a metric holds the token");

    let mut list = basalt(dir.path());
    configured(&mut list);
    let listed = run(list.args(["jobs", "list"]));
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(!stdout(&listed).contains(&token) && !stderr(&listed).contains(&token));

    let db = basalt_platform::Db::connect(
        &DatabaseUrl::parse(&url).expect("url"),
        &basalt_platform::config::DatabaseConfig::default(),
    )
    .await
    .expect("database");
    let payloads: Vec<String> = basalt_platform::with_conn!(&db, |conn| {
        sqlx::query_scalar("SELECT CAST(payload AS TEXT) FROM jobs")
            .fetch_all(conn)
            .await
    })
    .expect("payloads");
    db.close().await;
    assert!(!payloads.is_empty());
    assert!(payloads.iter().all(|p| !p.contains(&token)), "{payloads:?}");

    // The token is real: it resets the password once.
    let reset = post(
        "/api/auth/password/reset",
        serde_json::json!({ "token": token, "new_password": "a new and better passphrase" }),
    )
    .await
    .expect("answered");
    assert_eq!(reset.status(), 204);
    assert!(tokio::task::block_in_place(|| server.terminate()).success());
    let logged = std::mem::take(&mut server.seen);
    assert!(
        logged
            .iter()
            .any(|l| l.contains("/api/auth/password/reset")),
        "the request log is there to search: {logged:#?}"
    );
    assert!(
        logged.iter().all(|l| !l.contains(&token)),
        "a log line holds the token"
    );
}
