//! The map page and its vendored Leaflet, served from the binary so the page needs no internet.

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use crate::server::AppState;

const PAGE: &str = include_str!("../assets/index.html");
const LEAFLET_JS: &str = include_str!("../assets/leaflet/leaflet.js");
const LEAFLET_CSS: &str = include_str!("../assets/leaflet/leaflet.css");
const LEAFLET_LICENSE: &str = include_str!("../assets/leaflet/LICENSE.txt");
const COUNTRIES: &str = include_str!("../assets/basemap/countries-50m.json");
const TOPOJSON_JS: &str = include_str!("../assets/basemap/topojson-client.min.js");
const BASEMAP_LICENSE: &str = include_str!("../assets/basemap/LICENSE.txt");

/// The heatmap page: the heatmap layer, a radius control, and a click that lists nearby points.
#[utoipa::path(
    get, path = "/", tag = "map",
    responses((status = 200, description = "The map page", content_type = "text/html"))
)]
pub async fn page(State(s): State<AppState>) -> Response {
    let config = serde_json::json!({
        "basemap": s.config.basemap_url,
        "attribution": s.config.basemap_attribution,
        "data_attribution": s.config.data_attribution,
        "viridis": crate::tiles::render::VIRIDIS,
    });
    // `<` escaped so no configured string can close the script element.
    let config = config.to_string().replace('<', "\\u003c");
    let html = PAGE.replace("/*CONFIG*/{}", &config);
    ([(CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}

/// Leaflet 1.9.4, vendored from the npm registry.
#[utoipa::path(get, path = "/assets/leaflet.js", tag = "map", responses((status = 200, description = "Leaflet", content_type = "text/javascript")))]
pub async fn leaflet_js() -> Response {
    asset(LEAFLET_JS, "text/javascript; charset=utf-8")
}

/// Leaflet's stylesheet.
#[utoipa::path(get, path = "/assets/leaflet.css", tag = "map", responses((status = 200, description = "Leaflet's CSS", content_type = "text/css")))]
pub async fn leaflet_css() -> Response {
    asset(LEAFLET_CSS, "text/css; charset=utf-8")
}

/// Leaflet's licence (BSD-2-Clause).
#[utoipa::path(get, path = "/assets/LICENSE-leaflet.txt", tag = "map", responses((status = 200, description = "The licence", content_type = "text/plain")))]
pub async fn leaflet_license() -> Response {
    asset(LEAFLET_LICENSE, "text/plain; charset=utf-8")
}

/// Country outlines (Natural Earth 1:50m via world-atlas 2.0.2, TopoJSON): the offline base map.
#[utoipa::path(get, path = "/assets/countries-50m.json", tag = "map", responses((status = 200, description = "TopoJSON countries", content_type = "application/json")))]
pub async fn countries() -> Response {
    asset(COUNTRIES, "application/json")
}

/// topojson-client 3.1.0, which turns the outlines into GeoJSON in the page.
#[utoipa::path(get, path = "/assets/topojson-client.min.js", tag = "map", responses((status = 200, description = "topojson-client", content_type = "text/javascript")))]
pub async fn topojson_js() -> Response {
    asset(TOPOJSON_JS, "text/javascript; charset=utf-8")
}

/// The base map's licences (ISC; Natural Earth is public domain).
#[utoipa::path(get, path = "/assets/LICENSE-basemap.txt", tag = "map", responses((status = 200, description = "The licences", content_type = "text/plain")))]
pub async fn basemap_license() -> Response {
    asset(BASEMAP_LICENSE, "text/plain; charset=utf-8")
}
