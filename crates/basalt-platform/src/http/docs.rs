//! The OpenAPI document (generated from the handlers) and Swagger UI, both
//! served by the binary itself; the UI's assets are compiled in.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/openapi.json";
/// Where the UI is served.
pub const DOCS_PATH: &str = "/docs";

/// The UI runs scripts and styles from its own origin only.
const DOCS_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
     script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The document's root: title, version, tags and security schemes; every
/// path comes from a module's annotated handlers.
#[derive(OpenApi)]
#[openapi(
    info(title = "Basalt", description = "One Rust binary for identity, content, real time and commerce backends."),
    tags((name = "platform", description = "Health, metrics and documentation")),
    modifiers(&SecuritySchemes)
)]
pub struct RootDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The root document, with this build's version.
pub fn root_document() -> OpenApiDoc {
    let mut doc = RootDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc
}

/// Routes for the document and the UI.
///
/// The document is written out as JSON once, here, and served as those
/// bytes; the tree it was built from is dropped. Kept as a tree, it stayed
/// resident twice (Swagger UI's route held a copy and serialised it on
/// every request), about 2 MB of the idle server's heap.
pub fn router(doc: &OpenApiDoc) -> Result<Router, serde_json::Error> {
    let json = Bytes::from(serde_json::to_vec(doc)?);
    let document = get(move || {
        let json = json.clone();
        async move { ([(header::CONTENT_TYPE, "application/json")], json) }
    });
    let ui = Router::from(SwaggerUi::new(DOCS_PATH).config(Config::from(OPENAPI_PATH)));
    Ok(Router::new().route(OPENAPI_PATH, document).merge(ui).layer(
        SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_CSP),
        ),
    ))
}
