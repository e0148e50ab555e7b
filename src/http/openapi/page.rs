//! `GET /docs`: the browsable API reference, Swagger UI over `/openapi.json`, with its assets
//! compiled into the binary (`utoipa-swagger-ui`'s `vendored` Swagger UI).

use std::sync::{Arc, LazyLock};

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use utoipa_swagger_ui::Config;

use super::responses::{InvalidParameter, NotFound};
use crate::http::error::{ApiError, Result};
use crate::http::extract::Path;

/// The browsable API reference (Swagger UI). Its assets are served from `/docs/`.
#[utoipa::path(
    get,
    path = "/docs",
    operation_id = "docs",
    tag = "reference",
    responses((status = 200, description = "An HTML page.", body = String, content_type = "text/html")),
)]
pub(super) async fn docs() -> Html<&'static str> {
    Html(DOCS_PAGE)
}

/// The reference page. Asset paths are relative, so that it also works behind a proxy that
/// mounts calltrail under a prefix.
const DOCS_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>calltrail API reference</title>
  <link rel="stylesheet" href="docs/swagger-ui.css">
  <link rel="stylesheet" href="docs/index.css">
  <link rel="icon" type="image/png" href="docs/favicon-32x32.png" sizes="32x32">
  <link rel="icon" type="image/png" href="docs/favicon-16x16.png" sizes="16x16">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/swagger-ui-bundle.js"></script>
  <script src="docs/swagger-ui-standalone-preset.js"></script>
  <script src="docs/swagger-initializer.js"></script>
</body>
</html>
"#;

/// Swagger UI's settings, written into `swagger-initializer.js`: our document, and no
/// online validator.
static SWAGGER_CONFIG: LazyLock<Arc<Config<'static>>> =
    LazyLock::new(|| Arc::new(Config::new(["openapi.json"]).validator_url("none")));

/// A file of the reference page (Swagger UI's own), bundled in the binary.
#[utoipa::path(
    get,
    path = "/docs/{file}",
    operation_id = "docs_asset",
    tag = "reference",
    params(("file" = String, Path, description = "The file's name.", example = "swagger-ui-bundle.js")),
    responses(
        (status = 200, description = "The file, with its content type.", content(
            ("text/javascript"), ("text/css"), ("image/png"), ("application/json"), ("text/html"),
        )),
        (status = 400, response = InvalidParameter),
        (status = 404, response = NotFound),
    ),
)]
pub(super) async fn docs_asset(Path(file): Path<String>) -> Result<Response> {
    let served = utoipa_swagger_ui::serve(&file, SWAGGER_CONFIG.clone())
        .map_err(|err| ApiError::Internal(anyhow::anyhow!("serving {file}: {err}")))?;
    let asset = served
        .ok_or_else(|| ApiError::NotFound(format!("no file `{file}` in the reference page")))?;
    Ok((
        [(header::CONTENT_TYPE, asset.content_type)],
        asset.bytes.into_owned(),
    )
        .into_response())
}
