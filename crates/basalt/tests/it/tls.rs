//! HTTPS served by Basalt itself.

use basalt_testkit::TestApp;
use reqwest::StatusCode;

#[tokio::test]
async fn serves_https_with_hsts_when_a_certificate_is_configured() {
    let app = TestApp::builder().tls().spawn().await;
    assert!(app.base_url.starts_with("https://"));
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let hsts = response.headers()["strict-transport-security"]
        .to_str()
        .expect("ascii");
    assert!(hsts.starts_with("max-age="), "{hsts}");

    // HTTP/2 is negotiated over TLS (ALPN) as well.
    let h2 = app
        .client
        .get(app.url("/healthz"))
        .version(reqwest::Version::HTTP_2)
        .send()
        .await
        .expect("h2");
    assert_eq!(h2.version(), reqwest::Version::HTTP_2);

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/healthz", app.addr))
        .send()
        .await;
    assert!(plain.is_err() || !plain.expect("response").status().is_success());
}

#[tokio::test]
async fn plain_http_when_no_certificate() {
    let app = TestApp::builder().spawn().await;
    assert!(app.base_url.starts_with("http://"));
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}
