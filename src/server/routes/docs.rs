//! The API's documentation page: Redoc over `/openapi.json`, vendored like Leaflet so the page
//! needs no internet.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

const REDOC_JS: &str = include_str!("../assets/redoc/redoc.standalone.js");
const REDOC_LICENSE: &str = include_str!("../assets/redoc/LICENSE.txt");

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kdsled API</title>
<style>body { margin: 0; font-family: system-ui, sans-serif; }</style>
</head>
<body>
<redoc spec-url="/openapi.json" hide-download-button="false"></redoc>
<script src="/assets/redoc.standalone.js"></script>
</body>
</html>
"#;

/// The API documentation, rendered from the OpenAPI description.
#[utoipa::path(
    get, path = "/docs", tag = "operations",
    responses((status = 200, description = "The documentation page", content_type = "text/html"))
)]
pub async fn page() -> Response {
    ([(CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

/// Redoc 2.5.4, vendored from the npm registry.
#[utoipa::path(get, path = "/assets/redoc.standalone.js", tag = "operations", responses((status = 200, description = "Redoc", content_type = "text/javascript")))]
pub async fn redoc_js() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=86400"),
        ],
        REDOC_JS,
    )
        .into_response()
}

/// Redoc's licence (MIT) and those of what it bundles.
#[utoipa::path(get, path = "/assets/LICENSE-redoc.txt", tag = "operations", responses((status = 200, description = "The licence", content_type = "text/plain")))]
pub async fn redoc_license() -> Response {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], REDOC_LICENSE).into_response()
}
