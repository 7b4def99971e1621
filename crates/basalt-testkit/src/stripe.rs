//! A fake Stripe for tests: PyPI `localstripe`, a stateful fake of Stripe's
//! API (PaymentIntents, payment methods, refunds, signed webhooks), run as a
//! separate process on a free loopback port, one per test.
//!
//! `bash scripts/test.sh` installs it (with the official `stripe` library,
//! for signature interop tests) into a virtual environment from
//! `scripts/shop-payments/requirements.txt` and exports
//! [`SHOP_PYTHON_ENV`] (`TEST_SHOP_PYTHON`), that environment's
//! interpreter. Without the variable, the venv where the script puts it
//! (`${XDG_CACHE_HOME:-~/.cache}/basalt/shop-payments/venv`) is used if it
//! exists.
//!
//! ```ignore
//! let stripe = LocalStripe::start().await;
//! let app = TestApp::builder()
//!     .env("BASALT_SHOP__STRIPE__SECRET_KEY", LocalStripe::SECRET_KEY)
//!     .env("BASALT_SHOP__STRIPE__API_BASE", &stripe.api_base())
//!     /* … */
//!     .spawn().await;
//! // after checkout, pay as Stripe.js would:
//! stripe.pay(&payment_intent_id, "pm_card_visa").await;
//! ```
//!
//! localstripe is started through a small launcher (below) rather than its
//! own command line, which listens on every interface and keeps its state in
//! `/tmp/localstripe.pickle`, shared by every instance: here it listens on
//! 127.0.0.1 only and keeps its state in memory.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Environment variable naming the Python interpreter that has localstripe
/// and stripe installed.
pub const SHOP_PYTHON_ENV: &str = "TEST_SHOP_PYTHON";

/// How long localstripe may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// localstripe's app, served on 127.0.0.1:`argv[1]`, without its disk store.
const LAUNCHER: &str = r#"
import sys
from aiohttp import web
from localstripe import resources, server
resources.Store.dump_to_disk = lambda self: None
web.run_app(server.app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"#;

/// The interpreter of the shop's test venv (localstripe, stripe).
pub fn python() -> PathBuf {
    if let Some(path) = std::env::var_os(SHOP_PYTHON_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_default();
    let default = cache.join("basalt/shop-payments/venv/bin/python");
    if default.is_file() {
        return default;
    }
    panic!(
        "the shop's payment tests need PyPI localstripe and stripe: set {SHOP_PYTHON_ENV} to a \
         Python that has them (`bash scripts/test.sh` installs them from \
         scripts/shop-payments/requirements.txt into {})",
        default.display()
    );
}

/// A running localstripe on `127.0.0.1`; killed when dropped.
#[derive(Debug)]
pub struct LocalStripe {
    port: u16,
    child: Child,
    dir: TempDir,
    client: reqwest::Client,
}

impl LocalStripe {
    /// A secret key localstripe accepts (any `sk_…` does).
    pub const SECRET_KEY: &'static str = "sk_test_basalt";

    /// Starts localstripe on a free port and waits until it answers.
    pub async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port on 127.0.0.1");
        let python = python();
        basalt_platform::server::install_crypto_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        let log = std::fs::File::create(dir.path().join("localstripe.log")).expect("log file");
        let child = Command::new(&python)
            .args(["-c", LAUNCHER])
            .arg(port.to_string())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start localstripe with {}: {e}", python.display()));
        let mut server = Self {
            port,
            child,
            dir,
            client: reqwest::Client::new(),
        };
        server.wait_until_ready().await;
        server
    }

    async fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                panic!(
                    "localstripe on port {} exited ({status}) before answering:\n{}",
                    self.port,
                    self.log()
                );
            }
            let answered = self
                .client
                .get(self.url("/v1/balance"))
                .bearer_auth(Self::SECRET_KEY)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if answered {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "localstripe did not answer on port {} within {START_TIMEOUT:?}:\n{}",
                self.port,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:PORT`, for `shop.stripe.api_base`.
    pub fn api_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api_base())
    }

    /// Its own output, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("localstripe.log")).unwrap_or_default()
    }

    /// `POST path` with a form body, authenticated with [`Self::SECRET_KEY`];
    /// the JSON answer, or a panic naming the status and body.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> serde_json::Value {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = self
            .client
            .post(self.url(path))
            .bearer_auth(Self::SECRET_KEY)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("localstripe answers");
        let status = response.status();
        let text = response.text().await.expect("localstripe's body");
        assert!(status.is_success(), "POST {path}: {status}: {text}");
        serde_json::from_str(&text).expect("localstripe answers JSON")
    }

    /// `GET path`, authenticated; the JSON answer.
    pub async fn get(&self, path: &str) -> serde_json::Value {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(Self::SECRET_KEY)
            .send()
            .await
            .expect("localstripe answers");
        let status = response.status();
        let text = response.text().await.expect("localstripe's body");
        assert!(status.is_success(), "GET {path}: {status}: {text}");
        serde_json::from_str(&text).expect("localstripe answers JSON")
    }

    /// Pays PaymentIntent `intent_id` as the buyer's Stripe.js would:
    /// attaches `payment_method` (`pm_card_visa` succeeds,
    /// `pm_card_chargeCustomerFail` is declined when charged) and confirms. Returns the
    /// intent as localstripe then has it (a declined card included).
    pub async fn pay(&self, intent_id: &str, payment_method: &str) -> serde_json::Value {
        self.post(
            &format!("/v1/payment_intents/{intent_id}"),
            &[("payment_method", payment_method)],
        )
        .await;
        // A declined card answers 402; the intent then says why.
        let _ = self
            .client
            .post(self.url(&format!("/v1/payment_intents/{intent_id}/confirm")))
            .bearer_auth(Self::SECRET_KEY)
            .send()
            .await
            .expect("localstripe answers");
        self.get(&format!("/v1/payment_intents/{intent_id}")).await
    }

    /// Makes localstripe deliver its events (signed with `secret`, as Stripe
    /// does) to `url`; `id` names the registration.
    pub async fn register_webhook(&self, id: &str, url: &str, secret: &str) {
        let response = self
            .client
            .post(self.url(&format!("/_config/webhooks/{id}")))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs([("url", url), ("secret", secret)])
                    .finish(),
            )
            .send()
            .await
            .expect("localstripe answers");
        assert!(
            response.status().is_success(),
            "registering a webhook: {}",
            response.status()
        );
    }
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
