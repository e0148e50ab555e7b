//! `GET /openapi.json` and `GET /docs`: the document describes exactly what the server
//! serves (every operation, parameter, enumeration and error), and the reference page works
//! from the binary alone.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, Url};
use serde_json::Value;

use crate::helpers::{TestApp, fixture, fresh_db, spawn_ready, test_settings};
use crate::support::{Backend, TestDb, both_stores};

const TOKEN: &str = "n0tify-t0ken";
const KEY: &str = "api-k3y";

/// A server with a token and an API key configured, so that the document's security is in
/// force, and one stored notification to point path parameters at.
async fn secured_app(backend: Backend, name: &str) -> Option<(TestDb, TestApp, Examples)> {
    let db = fresh_db(backend, name).await?;
    let mut settings = test_settings(&db.url);
    settings.notify.tokens = vec![TOKEN.into()];
    settings.api.keys = vec![KEY.into()];
    let app = spawn_ready(settings).await;
    let receipt: Value = app
        .post(
            &format!("/notify/{TOKEN}"),
            fixture("samples/01-completed-human.json"),
        )
        .await
        .json()
        .await
        .unwrap();
    let examples = Examples {
        conversation_id: receipt["conversation_id"].as_str().unwrap().to_owned(),
        delivery_id: receipt["delivery_id"].to_string(),
    };
    Some((db, app, examples))
}

/// Values for the path parameters of the documented operations.
struct Examples {
    conversation_id: String,
    delivery_id: String,
}

impl Examples {
    /// `template` with its `{parameters}` filled in.
    fn path(&self, template: &str) -> String {
        let mut path = template.to_owned();
        while let Some(start) = path.find('{') {
            let end = start + path[start..].find('}').unwrap();
            let value = match &path[start + 1..end] {
                "conversation_id" => self.conversation_id.as_str(),
                "id" => self.delivery_id.as_str(),
                "token" => TOKEN,
                "file" if template.starts_with("/dashboard") => "main.js",
                "file" => "swagger-ui-bundle.js",
                other => {
                    panic!("give the path parameter `{other}` of {template} an example value here")
                }
            };
            path.replace_range(start..=end, value);
        }
        path
    }
}

/// One documented operation.
struct Operation {
    method: Method,
    path: String,
    spec: Value,
}

impl Operation {
    fn documented_statuses(&self) -> BTreeSet<u16> {
        self.spec["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(|status| status.parse().unwrap())
            .collect()
    }

    fn query_parameters(&self) -> Vec<&Value> {
        self.spec["parameters"]
            .as_array()
            .map(|all| all.iter().filter(|p| p["in"] == "query").collect())
            .unwrap_or_default()
    }

    fn is_v1(&self) -> bool {
        self.path.starts_with("/v1/")
    }

    /// The schema the document gives for a `status` answer of `content_type`.
    fn json_schema<'a>(
        &'a self,
        document: &'a Value,
        status: &str,
        content_type: &str,
    ) -> Option<&'a Value> {
        let response = resolve(document, self.spec["responses"].get(status)?);
        response["content"].get(content_type)?.get("schema")
    }
}

async fn document(app: &TestApp) -> Value {
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("the document is JSON")
}

fn operations(document: &Value) -> Vec<Operation> {
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, spec) in item.as_object().unwrap() {
            operations.push(Operation {
                method: method.to_uppercase().parse().unwrap(),
                path: path.clone(),
                spec: spec.clone(),
            });
        }
    }
    operations
}

/// Sends `method path?query` with credentials (and a notification body where one is
/// expected), returning the status and body.
async fn send(app: &TestApp, method: &Method, path: &str, query: &str) -> (u16, Value) {
    let url = if query.is_empty() {
        app.url(path)
    } else {
        app.url(&format!("{path}?{query}"))
    };
    // Not following redirects: the answer is the route's own.
    static CLIENT: std::sync::LazyLock<reqwest::Client> = std::sync::LazyLock::new(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    });
    let mut request = CLIENT
        .request(method.clone(), url)
        .header("x-api-key", KEY)
        .header("x-calltrail-token", TOKEN);
    if path.starts_with("/notify") {
        request = request.body(fixture("samples/05-failed-486-busy.json"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// True when an answer came from the router's fallbacks rather than from a route.
fn is_fallback(status: u16, body: &Value) -> bool {
    status == 405 || (status == 404 && body["detail"] == "no such route")
}

async fn the_document_is_openapi_3_1_and_open(backend: Backend) {
    let Some((_db, app, _)) = secured_app(backend, "the_document_is_openapi_3_1_and_open").await
    else {
        return;
    };

    // No API key: the document and the page stay open while `/v1` is not.
    let response = app.get("/openapi.json").await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let document: Value = response.json().await.unwrap();
    let version = document["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "openapi {version}");
    assert_eq!(document["info"]["title"], "calltrail");
    assert_eq!(app.get("/docs").await.status(), 200);
    assert_eq!(app.get("/v1/calls").await.status(), 401);
    app.stop().await;
}

both_stores!(the_document_is_openapi_3_1_and_open);

async fn the_document_and_the_router_serve_the_same_operations(backend: Backend) {
    let name = "the_document_and_the_router_serve_the_same_operations";
    let Some((_db, app, examples)) = secured_app(backend, name).await else {
        return;
    };
    let document = document(&app).await;
    let operations = operations(&document);
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];

    // The fallbacks are recognised, so that a route answering like them would be caught.
    let (status, body) = send(&app, &Method::GET, "/no/such/route", "").await;
    assert!(is_fallback(status, &body), "{status} {body}");

    let mut succeeded = BTreeSet::new();
    for operation in &operations {
        let path = examples.path(&operation.path);
        let label = format!("{} {}", operation.method, operation.path);

        // Every documented operation is served, and answers as documented.
        let (status, body) = send(&app, &operation.method, &path, "").await;
        assert!(
            !is_fallback(status, &body),
            "{label}: not served ({status} {body})"
        );
        assert!(
            operation.documented_statuses().contains(&status),
            "{label}: undocumented {status} {body}"
        );
        let content_type = if status < 300 {
            "application/json"
        } else {
            "application/problem+json"
        };
        if let Some(schema) = operation.json_schema(&document, &status.to_string(), content_type) {
            assert_matches_schema(&document, schema, &body, &label);
        }
        if status == 200 || status == 303 {
            succeeded.insert(label);
        }

        // A method the document does not list for this path is not served there.
        let documented: BTreeSet<&str> = document["paths"][&operation.path]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for method in methods
            .iter()
            .filter(|m| !documented.contains(m.as_str().to_lowercase().as_str()))
        {
            let (status, body) = send(&app, method, &path, "").await;
            assert_eq!(
                status, 405,
                "{method} {path} is served but not documented: {body}"
            );
        }
    }
    // The export's NDJSON lines are documented calls.
    let export = operations
        .iter()
        .find(|o| o.path == "/v1/calls/export")
        .unwrap();
    let schema = export
        .json_schema(&document, "200", "application/x-ndjson")
        .unwrap();
    let response = app
        .client
        .get(app.url("/v1/calls/export?format=ndjson"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    let lines = response.text().await.unwrap();
    assert!(!lines.is_empty());
    for line in lines.lines() {
        assert_matches_schema(
            &document,
            schema,
            &serde_json::from_str(line).unwrap(),
            "an NDJSON line",
        );
    }
    // The operations a user expects are all there, and answered the requests above.
    for expected in [
        "POST /notify",
        "POST /notify/{token}",
        "GET /healthz",
        "GET /readyz",
        "GET /v1/calls",
        "GET /v1/calls/export",
        "GET /v1/calls/{conversation_id}",
        "GET /v1/stats",
        "GET /v1/deliveries",
        "GET /v1/deliveries/{id}",
        "POST /v1/deliveries/{id}/reprocess",
        "POST /v1/deliveries/reprocess",
        "GET /openapi.json",
        "GET /docs",
        "GET /",
        "GET /dashboard",
        "GET /dashboard/{file}",
        "GET /metrics",
    ] {
        assert!(
            succeeded.contains(expected),
            "{expected} is not documented or failed: {succeeded:?}"
        );
    }
    app.stop().await;
}

both_stores!(the_document_and_the_router_serve_the_same_operations);

async fn every_operation_documents_its_errors_and_security(backend: Backend) {
    let name = "every_operation_documents_its_errors_and_security";
    let Some((_db, app, _)) = secured_app(backend, name).await else {
        return;
    };
    let document = document(&app).await;

    for operation in operations(&document) {
        let label = format!("{} {}", operation.method, operation.path);
        assert!(
            operation.spec["operationId"].is_string(),
            "{label}: operationId"
        );
        assert!(operation.spec["summary"].is_string(), "{label}: summary");
        assert!(operation.spec["tags"].is_array(), "{label}: tags");

        // Every path parameter is documented.
        let documented: BTreeSet<&str> = operation.spec["parameters"]
            .as_array()
            .map(|all| {
                all.iter()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        let in_template: BTreeSet<&str> = operation
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        assert_eq!(documented, in_template, "{label}: path parameters");

        // Every error is a problem-details response (a redirect is not an error).
        let responses = operation.spec["responses"].as_object().unwrap();
        for (status, response) in responses
            .iter()
            .filter(|(status, _)| !status.starts_with('2') && !status.starts_with('3'))
        {
            let response = resolve(&document, response);
            let schema = &response["content"]["application/problem+json"]["schema"]["$ref"];
            assert_eq!(
                schema, "#/components/schemas/Problem",
                "{label} {status}: {response}"
            );
        }
        let statuses = operation.documented_statuses();
        // `/notify`, `/jambonz/notify`, `/twilio/notify`, each also with a path token.
        let receiving = operation.path.split('/').any(|segment| segment == "notify");
        if operation.is_v1() || receiving {
            for status in [401, 500, 503] {
                assert!(statuses.contains(&status), "{label}: no {status}");
            }
            let security = operation.spec["security"].as_array().expect("security");
            assert!(!security.is_empty(), "{label}: security");
        }
        if receiving {
            for status in [400, 413, 422] {
                assert!(statuses.contains(&status), "{label}: no {status}");
            }
            // Every source is received alike: spooled while the database is away.
            assert_eq!(
                operation.spec["responses"], document["paths"]["/notify"]["post"]["responses"],
                "{label}: answers other than /notify's"
            );
            let stored = &operation.spec["responses"]["200"]["description"];
            assert!(
                stored.as_str().unwrap().contains("`spooled`"),
                "{label}: {stored}"
            );
        }
        if operation.path.contains('{') && operation.is_v1() {
            assert!(statuses.contains(&404), "{label}: no 404");
        }
        if !operation.query_parameters().is_empty() {
            assert!(
                statuses.contains(&400),
                "{label}: query parameters but no 400"
            );
        }
    }

    // The security schemes cover every place a credential may come from.
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["api_key"]["scheme"], "bearer");
    assert_eq!(schemes["api_key_header"]["name"], "X-Api-Key");
    assert_eq!(schemes["notify_token"]["scheme"], "bearer");
    assert_eq!(schemes["notify_token_header"]["name"], "X-Calltrail-Token");
    assert_eq!(schemes["notify_token_query"]["in"], "query");
    // `/notify` takes any content type; the export answers CSV or NDJSON.
    let notify = &document["paths"]["/notify"]["post"]["requestBody"]["content"];
    assert!(notify["*/*"].is_object(), "{notify}");
    let export = &document["paths"]["/v1/calls/export"]["get"]["responses"]["200"]["content"];
    assert!(
        export["text/csv"].is_object() && export["application/x-ndjson"].is_object(),
        "{export}"
    );
    app.stop().await;
}

both_stores!(every_operation_documents_its_errors_and_security);

async fn the_documented_query_parameters_are_exactly_the_accepted_ones(backend: Backend) {
    let name = "the_documented_query_parameters_are_exactly_the_accepted_ones";
    let Some((_db, app, examples)) = secured_app(backend, name).await else {
        return;
    };
    let document = document(&app).await;

    for operation in operations(&document) {
        let label = format!("{} {}", operation.method, operation.path);
        let path = examples.path(&operation.path);
        let documented: BTreeSet<String> = operation
            .query_parameters()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();

        // An unknown parameter is refused with the list of accepted ones, or ignored by an
        // operation that takes none.
        let (status, body) = send(&app, &operation.method, &path, "zz_undocumented=1").await;
        if let Some(schema) =
            operation.json_schema(&document, &status.to_string(), "application/problem+json")
        {
            assert_matches_schema(&document, schema, &body, &label);
        }
        match accepted_values(
            status,
            &body,
            "zz_undocumented",
            "unknown parameter; accepted: ",
        ) {
            Some(accepted) => assert_eq!(accepted, documented, "{label}: query parameters"),
            None => assert!(
                documented.is_empty(),
                "{label} ignores its query string: {status} {body}"
            ),
        }

        for parameter in operation.query_parameters() {
            let name = parameter["name"].as_str().unwrap();
            let schema = &parameter["schema"];
            // Every documented value is accepted…
            let values = schema["enum"]
                .as_array()
                .or(schema["items"]["enum"].as_array());
            for value in values.into_iter().flatten().chain(parameter.get("example")) {
                let query = query_value(name, value);
                let (status, body) = send(&app, &operation.method, &path, &query).await;
                assert_ne!(status, 400, "{label}?{query}: {body}");
            }
            // …and an enumeration is exactly what the parameter accepts.
            if let Some(values) = values {
                let documented: BTreeSet<String> = values
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect();
                let (status, body) =
                    send(&app, &operation.method, &path, &format!("{name}=zz_bogus")).await;
                let accepted = accepted_values(status, &body, name, "`zz_bogus` is not one of ");
                assert_eq!(
                    accepted,
                    Some(documented),
                    "{label}: values of {name}: {body}"
                );
            }
        }
    }
    app.stop().await;
}

both_stores!(the_documented_query_parameters_are_exactly_the_accepted_ones);

async fn the_reference_page_is_served_from_the_binary(backend: Backend) {
    let name = "the_reference_page_is_served_from_the_binary";
    let Some((_db, app, _)) = secured_app(backend, name).await else {
        return;
    };

    let response = app.get("/docs").await;

    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page_url = response.url().clone();
    let page = response.text().await.unwrap();
    let assets = attribute_values(&page, &["href", "src"]);
    assert!(
        assets.iter().any(|a| a.ends_with(".js")),
        "no script in {page}"
    );
    for asset in &assets {
        let url = local_url(&page_url, asset);
        let response = app.client.get(url.clone()).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        assert!(
            !response.bytes().await.unwrap().is_empty(),
            "{url} is empty"
        );
    }
    // The script that starts the page points at our document, and at nothing online.
    let initializer = local_url(&page_url, "docs/swagger-initializer.js");
    let script = app
        .client
        .get(initializer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(script.contains(r#""url": "openapi.json""#), "{script}");
    assert!(
        !script.contains("http://") && !script.contains("https://"),
        "{script}"
    );
    let document = app
        .client
        .get(local_url(&page_url, "openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(document.status(), 200);
    // An unknown asset is a 404 problem, not a page.
    assert_eq!(app.get("/docs/no-such-file.js").await.status(), 404);
    app.stop().await;
}

both_stores!(the_reference_page_is_served_from_the_binary);

/// `reference` resolved when it is a `$ref` into the document's components.
fn resolve<'a>(document: &'a Value, reference: &'a Value) -> &'a Value {
    match reference["$ref"].as_str() {
        Some(pointer) => document
            .pointer(pointer.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{pointer} does not resolve")),
        None => reference,
    }
}

/// Asserts that `body` is what `schema`, a schema of `document`, describes.
fn assert_matches_schema(document: &Value, schema: &Value, body: &Value, label: &str) {
    let mut schema = schema.clone();
    schema["components"] = document["components"].clone();
    let validator = jsonschema::draft202012::new(&schema)
        .expect("the document's schemas are valid JSON Schema");
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{label}: the answer does not match the document: {errors:?}\n{body}"
    );
}

/// The list an invalid-parameter `400` names as accepted for `parameter`, after `prefix` in
/// its message; `None` for any other answer.
fn accepted_values(
    status: u16,
    body: &Value,
    parameter: &str,
    prefix: &str,
) -> Option<BTreeSet<String>> {
    if status != 400 || body["type"] != "urn:calltrail:problem:invalid-parameter" {
        return None;
    }
    let error = &body["errors"][0];
    assert_eq!(error["field"], parameter, "{body}");
    let message = error["message"].as_str().unwrap();
    let list = message
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{message}"));
    Some(list.split(", ").map(str::to_owned).collect())
}

/// `name=value` for a documented value or example (an array repeats the parameter).
fn query_value(name: &str, value: &Value) -> String {
    let one = |v: &Value| {
        let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        form_urlencoded::Serializer::new(String::new())
            .append_pair(name, &text)
            .finish()
    };
    match value.as_array() {
        Some(values) => values.iter().map(one).collect::<Vec<_>>().join("&"),
        None => one(value),
    }
}

/// Every value of the attributes `names` in `html`.
pub fn attribute_values(html: &str, names: &[&str]) -> Vec<String> {
    let mut values = BTreeMap::new();
    for name in names {
        let needle = format!(r#"{name}=""#);
        for (start, _) in html.match_indices(&needle) {
            let rest = &html[start + needle.len()..];
            let value = &rest[..rest.find('"').unwrap()];
            values.insert(value.to_owned(), ());
        }
    }
    values.into_keys().collect()
}

/// `reference` resolved against `page`, asserting it stays on the server that served the page.
pub fn local_url(page: &Url, reference: &str) -> Url {
    let url = page.join(reference).unwrap();
    assert_eq!(url.origin(), page.origin(), "{reference} leaves the server");
    url
}
