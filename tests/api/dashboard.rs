//! `GET /` and `/dashboard`: the page and its files come from the binary, with a policy that
//! keeps the browser on this server; the data stays behind the API key.

use reqwest::header;

use crate::helpers::{fresh_db, spawn_ready, test_settings};
use crate::openapi::{attribute_values, local_url};
use crate::support::{Backend, both_stores};

async fn the_dashboard_is_served_from_the_binary(backend: Backend) {
    let name = "the_dashboard_is_served_from_the_binary";
    let Some(db) = fresh_db(backend, name).await else {
        return;
    };
    let mut settings = test_settings(&db.url);
    settings.api.keys = vec!["k3y".into()];
    let app = spawn_ready(settings).await;

    // The root sends a browser to the page, which needs no key: it holds no data.
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.url().path(), "/dashboard");
    let headers = response.headers().clone();
    let page_url = response.url().clone();
    let page = response.text().await.unwrap();
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
    ] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );

    // Every file the page names is served, with its type; so is every module they import.
    let assets: Vec<String> = attribute_values(&page, &["href", "src"])
        .into_iter()
        .filter(|a| a.starts_with("dashboard/"))
        .collect();
    assert!(assets.iter().any(|a| a.ends_with("main.js")), "{assets:?}");
    let main = local_url(&page_url, "dashboard/main.js");
    let script = app.client.get(main.clone()).send().await.unwrap();
    assert_eq!(
        script.headers()[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    let script = script.text().await.unwrap();
    let imports: Vec<&str> = script
        .lines()
        .filter_map(|l| {
            l.strip_prefix("import ")?
                .split("from '")
                .nth(1)?
                .strip_suffix("';")
        })
        .collect();
    assert!(imports.len() >= 5, "{imports:?}");
    for asset in assets
        .iter()
        .map(|a| local_url(&page_url, a))
        .chain(imports.iter().map(|i| local_url(&main, i)))
    {
        let response = app.client.get(asset.clone()).send().await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        assert!(
            response
                .headers()
                .contains_key(header::CONTENT_SECURITY_POLICY)
        );
        assert!(
            !response.text().await.unwrap().is_empty(),
            "{asset} is empty"
        );
    }
    assert_eq!(app.get("/dashboard/no-such-file.js").await.status(), 404);
    // The page's data is not open because the page is.
    assert_eq!(app.get("/v1/stats").await.status(), 401);
    app.stop().await;
}

both_stores!(the_dashboard_is_served_from_the_binary);
