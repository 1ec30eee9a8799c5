//! The web console's files: served at `/console` with their content types and caching headers,
//! open without a token when an auth file is set, and kept out of the OpenAPI document.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::*;
use ferrymq_gateway::auth::AuthConfig;
use ferrymq_gateway::GatewaySettings;

#[tokio::test]
async fn console_page_and_assets_are_served_with_their_types() {
    let t = TestApp::start().await;
    for (path, content_type) in [
        ("/console", "text/html; charset=utf-8"),
        ("/console/", "text/html; charset=utf-8"),
        ("/console/index.html", "text/html; charset=utf-8"),
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/views/tail.js", "text/javascript; charset=utf-8"),
        ("/console/console.css", "text/css; charset=utf-8"),
        ("/console/favicon.svg", "image/svg+xml"),
    ] {
        let reply = t.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.content_type(), content_type, "{path}");
        assert_eq!(reply.headers[header::CACHE_CONTROL], "no-cache", "{path}");
        assert_eq!(reply.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert!(reply.headers[header::ETAG].to_str().unwrap().starts_with('"'), "{path}");
    }
    let page = t.get("/console").await;
    assert!(page.text.contains(r#"<script type="module" src="/console/app.js">"#), "{}", page.text);
    let csp = page.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("connect-src 'self'"), "{csp}");
}

#[tokio::test]
async fn a_matching_etag_gets_304_and_a_stale_one_the_file() {
    let t = TestApp::start().await;
    let first = t.get("/console/app.js").await;
    let etag = first.headers[header::ETAG].to_str().unwrap().to_string();
    let again = Request::get("/console/app.js").header(header::IF_NONE_MATCH, &etag).body(Body::empty()).unwrap();
    let reply = t.send(again).await;
    assert_eq!(reply.status, StatusCode::NOT_MODIFIED);
    assert!(reply.text.is_empty());
    assert_eq!(reply.headers[header::ETAG], etag.as_str());
    let stale = Request::get("/console/app.js").header(header::IF_NONE_MATCH, "\"0000\"").body(Body::empty()).unwrap();
    let reply = t.send(stale).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text, first.text);
    // Each file has its own tag.
    assert_ne!(t.get("/console/api.js").await.headers[header::ETAG], etag.as_str());
}

#[tokio::test]
async fn an_unknown_console_file_is_a_404_problem() {
    let t = TestApp::start().await;
    t.get("/console/nope.js").await.problem(404, "not-found");
    t.get("/console/../Cargo.toml").await.problem(404, "not-found");
}

#[tokio::test]
async fn the_console_is_open_with_an_auth_file_but_the_api_is_not() {
    let auth =
        AuthConfig::parse("[[tokens]]\ntoken = \"t\"\ntopics = [\"*\"]\ngroups = [\"*\"]\nactions = [\"consume\"]\n")
            .unwrap();
    let t = TestApp::start_with(|_| {}, GatewaySettings { auth: Some(auth), ..settings() }).await;
    assert_eq!(t.get("/console").await.status, StatusCode::OK);
    assert_eq!(t.get("/console/api.js").await.status, StatusCode::OK);
    t.get("/v1/topics").await.problem(401, "unauthorized");
}

#[tokio::test]
async fn the_console_is_not_in_the_openapi_document() {
    let t = TestApp::start().await;
    let spec = t.get("/openapi.json").await;
    assert_eq!(spec.status, StatusCode::OK);
    let paths = spec.body["paths"].as_object().unwrap();
    assert!(paths.contains_key("/v1/topics"));
    assert!(paths.keys().all(|p| !p.starts_with("/console")), "{:?}", paths.keys());
}
