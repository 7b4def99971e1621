//! The OpenAPI document (generated from the handlers) and Swagger UI, both
//! served by the binary itself; the UI's assets are compiled in.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{Object, Schema, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::error::{PROBLEM_JSON, Problem};
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
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "`Authorization: Bearer <jwt>`: an access token from `POST /api/auth/token`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`Authorization: Token <jwt>`, the RealWorld scheme: the same access token.",
            ))),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "basalt_session",
                "The browser session cookie from `POST /api/auth/login`; named \
                 `__Host-basalt_session` when served over HTTPS. Writes also need \
                 the `X-CSRF-Token` header.",
            ))),
        );
    }
}

/// How a module's errors look, so that [`document_errors`] can describe the
/// statuses every operation of it can answer with.
#[derive(Debug, Clone, Copy)]
pub struct ErrorDocs {
    /// Media type of error bodies (`application/problem+json`).
    pub content_type: &'static str,
    /// Component name of the error body's schema (registered by the module).
    pub schema: &'static str,
    /// Statuses of a refused JSON body (content type, syntax, types, NUL).
    pub body_errors: &'static [(u16, &'static str)],
    /// Statuses of a refused path or query value.
    pub param_errors: &'static [(u16, &'static str)],
}

/// The platform's problem+json errors, as the platform extractors
/// ([`crate::http::input`]) and axum's rejections answer.
pub const PROBLEM_ERRORS: ErrorDocs = ErrorDocs {
    content_type: PROBLEM_JSON,
    schema: "Problem",
    body_errors: &[
        (400, "Malformed JSON"),
        (415, "The body is not `application/json`"),
        (
            422,
            "A field is missing, of the wrong type, invalid or holds a NUL",
        ),
    ],
    param_errors: &[(
        400,
        "A path or query value is malformed, out of range or holds a control character",
    )],
};

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
        &mut item.head,
        &mut item.options,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

fn add_response(op: &mut Operation, status: u16, description: &str) {
    op.responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| RefOr::T(ResponseBuilder::new().description(description).build()));
}

/// Documents `responses` on every operation that takes the request header
/// `header`: the answers a middleware behind that header gives before the
/// handler runs (the idempotency keys' 400, 409 and 422). Call it before
/// [`document_errors`], which gives them their problem content.
pub fn document_header_responses(doc: &mut OpenApiDoc, header: &str, responses: &[(u16, &str)]) {
    for item in doc.paths.paths.values_mut() {
        for op in operations_mut(item) {
            let takes_header = op.parameters.iter().flatten().any(|param| {
                matches!(param, RefOr::T(p) if p.parameter_in == ParameterIn::Header
                    && p.name.eq_ignore_ascii_case(header))
            });
            if takes_header {
                for (status, description) in responses {
                    add_response(op, *status, description);
                }
            }
        }
    }
}

/// What [`crate::http::input`] enforces on path and query values: no C0
/// control character, no DEL.
pub const NO_CONTROLS_PATTERN: &str = "^[^\\u0000-\\u001f\\u007f]*$";

/// Documents the control-character rule on a free-form string parameter
/// (one with a format or a list of values says more already).
fn forbid_controls(schema: &mut Object) {
    let is_string = match &schema.schema_type {
        SchemaType::Type(Type::String) => true,
        SchemaType::Array(types) => types.contains(&Type::String),
        _ => false,
    };
    if is_string
        && schema.pattern.is_none()
        && schema.format.is_none()
        && schema.enum_values.is_none()
    {
        schema.pattern = Some(NO_CONTROLS_PATTERN.to_owned());
    }
}

/// Completes the error responses of every operation in `doc` (a module's
/// routes): the statuses its extractors and the platform's layers answer
/// with but handlers do not list (body and parameter rejections, 401 where
/// credentials are accepted, 413 above the body limit), and every error's
/// body in `style`'s media type and schema. Statuses already documented keep
/// their description. Free-form string parameters get the pattern the
/// input checks enforce ([`NO_CONTROLS_PATTERN`]).
pub fn document_errors(doc: &mut OpenApiDoc, style: &ErrorDocs) {
    let mut problem_used = false;
    for item in doc.paths.paths.values_mut() {
        for op in operations_mut(item) {
            if op.request_body.is_some() {
                for (status, description) in style.body_errors {
                    add_response(op, *status, description);
                }
                // The platform's body limit answers before any module code.
                op.responses
                    .responses
                    .entry("413".into())
                    .or_insert_with(|| {
                        RefOr::T(
                            ResponseBuilder::new()
                                .description("The body is larger than the configured limit")
                                .content(
                                    PROBLEM_JSON,
                                    ContentBuilder::new()
                                        .schema(Some(Ref::from_schema_name("Problem")))
                                        .build(),
                                )
                                .build(),
                        )
                    });
                problem_used = true;
            }
            if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
                for (status, description) in style.param_errors {
                    add_response(op, *status, description);
                }
            }
            for param in op.parameters.iter_mut().flatten() {
                if let RefOr::T(param) = param
                    && matches!(param.parameter_in, ParameterIn::Path | ParameterIn::Query)
                    && let Some(RefOr::T(Schema::Object(schema))) = &mut param.schema
                {
                    forbid_controls(schema);
                }
            }
            if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                add_response(op, 401, "Missing or invalid credentials");
            }
            for (status, response) in &mut op.responses.responses {
                let code = status.parse::<u16>().ok();
                let RefOr::T(response) = response else {
                    continue;
                };
                // OpenAPI 3.1 requires a description; the reason phrase will do.
                if response.description.is_empty() {
                    response.description = code
                        .and_then(|c| axum::http::StatusCode::from_u16(c).ok())
                        .and_then(|c| c.canonical_reason())
                        .unwrap_or("Response")
                        .to_owned();
                }
                if code.is_none_or(|c| c < 400) {
                    continue;
                }
                if let Some(content) = response.content.shift_remove("application/json") {
                    response
                        .content
                        .insert(style.content_type.to_owned(), content);
                } else if response.content.is_empty() {
                    response.content.insert(
                        style.content_type.to_owned(),
                        RefOr::T(
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name(style.schema)))
                                .build(),
                        ),
                    );
                }
            }
        }
    }
    if problem_used || style.schema == "Problem" {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut schemas = vec![(Problem::name().into_owned(), Problem::schema())];
        Problem::schemas(&mut schemas);
        for (name, schema) in schemas {
            components.schemas.entry(name).or_insert(schema);
        }
    }
}

/// Merges a module's document into the whole one, refusing two different
/// schemas under one component name (the later one would silently replace
/// the earlier, documenting some operations with the wrong body).
pub fn check_components(
    whole: &OpenApiDoc,
    part: &OpenApiDoc,
    part_name: &str,
) -> Result<(), String> {
    let (Some(whole), Some(part)) = (&whole.components, &part.components) else {
        return Ok(());
    };
    for (name, schema) in &part.schemas {
        if let Some(existing) = whole.schemas.get(name)
            && serde_json::to_value(existing).ok() != serde_json::to_value(schema).ok()
        {
            return Err(format!(
                "module `{part_name}` documents a schema `{name}` different from one \
                 already registered under that name; rename one with #[schema(as = ...)]"
            ));
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::openapi::ComponentsBuilder;

    #[allow(dead_code)]
    mod a {
        /// One shape.
        #[derive(utoipa::ToSchema)]
        #[schema(as = Thing)]
        pub struct Thing {
            pub name: String,
        }
    }

    #[allow(dead_code)]
    mod b {
        /// Another shape under the same name.
        #[derive(utoipa::ToSchema)]
        #[schema(as = Thing)]
        pub struct Thing {
            pub id: i64,
        }
    }

    fn doc_with<T: ToSchema>() -> OpenApiDoc {
        let mut doc = OpenApiDoc::default();
        doc.components = Some(
            ComponentsBuilder::new()
                .schema(T::name(), T::schema())
                .build(),
        );
        doc
    }

    #[test]
    fn two_schemas_under_one_name_are_refused() {
        let whole = doc_with::<a::Thing>();
        assert!(check_components(&whole, &doc_with::<a::Thing>(), "same").is_ok());
        let error =
            check_components(&whole, &doc_with::<b::Thing>(), "other").expect_err("a collision");
        assert!(error.contains("`Thing`"), "{error}");
    }

    #[test]
    fn errors_are_documented_in_the_module_style() {
        let mut doc: OpenApiDoc = serde_json::from_value(serde_json::json!({
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1"},
            "paths": {"/x/{id}": {"post": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {
                    "200": {"description": "ok"},
                    "404": {"description": "none", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
                },
                "security": [{"bearer": []}]
            }}}
        }))
        .expect("document");
        document_errors(&mut doc, &PROBLEM_ERRORS);
        let json = serde_json::to_value(&doc).expect("json");
        let responses = &json["paths"]["/x/{id}"]["post"]["responses"];
        for status in ["400", "401", "404", "413", "415", "422"] {
            assert!(
                responses[status]["content"][PROBLEM_JSON]["schema"].is_object(),
                "{status}: {responses}"
            );
        }
        assert!(responses["404"]["content"]["application/json"].is_null());
        assert!(json["components"]["schemas"]["Problem"].is_object());
        assert!(json["components"]["schemas"]["FieldError"].is_object());
    }
}
