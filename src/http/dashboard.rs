//! The dashboard (docs/dashboard.md): `GET /` redirects to `GET /dashboard`, a page of plain
//! HTML, CSS and JavaScript modules compiled into the binary. Its scripts call `/v1` from the
//! browser with the user's API key; nothing here reads the store.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::routes;

use super::error::{ApiError, Result};
use super::openapi::Routes;
use super::openapi::responses::NotFound;

pub fn router() -> Routes {
    Routes::new()
        .routes(routes!(root))
        .routes(routes!(page))
        .routes(routes!(asset))
}

/// What the page may load and call: only this origin, no inline script or style, no frames.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// The page's files: name, content type, contents.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("dashboard/style.css"),
    ),
    ("main.js", JS, include_str!("dashboard/main.js")),
    ("api.js", JS, include_str!("dashboard/api.js")),
    ("format.js", JS, include_str!("dashboard/format.js")),
    ("charts.js", JS, include_str!("dashboard/charts.js")),
    ("overview.js", JS, include_str!("dashboard/overview.js")),
    ("calls.js", JS, include_str!("dashboard/calls.js")),
    ("call.js", JS, include_str!("dashboard/call.js")),
    ("deliveries.js", JS, include_str!("dashboard/deliveries.js")),
    ("live.js", JS, include_str!("dashboard/live.js")),
];

const JS: &str = "text/javascript; charset=utf-8";

/// Sends a browser to the dashboard.
#[utoipa::path(
    get,
    path = "/",
    operation_id = "dashboard_root",
    tag = "dashboard",
    responses((status = 303, description = "To the dashboard.",
        headers(("Location" = String, description = "`dashboard`")))),
)]
async fn root() -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, "dashboard")]).into_response()
}

/// The dashboard: overview, calls, one call, deliveries and live outcomes.
#[utoipa::path(
    get,
    path = "/dashboard",
    operation_id = "dashboard",
    tag = "dashboard",
    responses((status = 200, description = "An HTML page.", body = String, content_type = "text/html")),
)]
async fn page() -> Response {
    served(
        "text/html; charset=utf-8",
        include_str!("dashboard/index.html"),
    )
}

/// A file of the dashboard, compiled into the binary.
#[utoipa::path(
    get,
    path = "/dashboard/{file}",
    operation_id = "dashboard_asset",
    tag = "dashboard",
    params(("file" = String, Path, description = "The file's name.", example = "main.js")),
    responses(
        (status = 200, description = "The file, with its content type.",
            content(("text/javascript"), ("text/css"))),
        (status = 404, response = NotFound),
    ),
)]
async fn asset(Path(file): Path<String>) -> Result<Response> {
    let (_, content_type, contents) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(|| ApiError::NotFound(format!("no file `{file}` in the dashboard")))?;
    Ok(served(content_type, contents))
}

fn served(content_type: &'static str, contents: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        // Assets change with the binary; revalidating costs one small request each.
        (header::CACHE_CONTROL, "no-cache"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    (headers, contents).into_response()
}
