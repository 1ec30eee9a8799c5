//! The web console at `/console`: a static single-page app (plain HTML, CSS and ES modules from
//! `gateway/console/`) embedded in the binary, so `ferrymq serve` needs nothing else on disk and
//! nothing is fetched from elsewhere at run time.
//!
//! The console talks to the broker only through the public REST and WebSocket API, with the
//! token the user types in, so its files are open to everyone: they hold no data and no secret.
//! These routes sit outside the auth middleware and are not part of the OpenAPI document.
//!
//! Caching: the files are not fingerprinted, so every response says `Cache-Control: no-cache`
//! with a strong `ETag` (SHA-256 of the bytes); a browser revalidates and gets `304` until the
//! binary changes. A `Content-Security-Policy` limits the page to its own origin.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::problem::ApiError;

/// One embedded file.
struct Asset {
    /// The path under `/console/`.
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset { path: $path, content_type: $content_type, bytes: include_bytes!(concat!("../../console/", $path)) }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every file of the console; `index.html` answers `/console` itself.
const ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("console.css", CSS),
    asset!("favicon.svg", SVG),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("ui.js", JS),
    asset!("chart.js", JS),
    asset!("views/overview.js", JS),
    asset!("views/topics.js", JS),
    asset!("views/group.js", JS),
    asset!("views/messages.js", JS),
    asset!("views/dlq.js", JS),
    asset!("views/tail.js", JS),
];

/// The page may load its own files and talk to its own origin (REST and WebSocket), nothing else.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Strong entity tags, computed once.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let digest = Sha256::digest(asset.bytes);
            let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
            format!("\"{hex}\"")
        })
        .collect()
});

/// The console's routes, to be merged outside the auth layer.
pub fn router() -> Router {
    Router::new().route("/console", get(index)).route("/console/", get(index)).route("/console/{*path}", get(file))
}

async fn index(headers: HeaderMap) -> Response {
    serve(0, &headers)
}

async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().position(|asset| asset.path == path) {
        Some(index) => serve(index, &headers),
        None => ApiError::RouteNotFound(format!("/console/{path}")).into_response(),
    }
}

fn serve(index: usize, request: &HeaderMap) -> Response {
    let asset = &ASSETS[index];
    let etag = &ETAGS[index];
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    let status = if fresh { StatusCode::NOT_MODIFIED } else { StatusCode::OK };
    let mut response = if fresh { status.into_response() } else { asset.bytes.into_response() };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_path_is_unique_and_index_comes_first() {
        assert_eq!(ASSETS[0].path, "index.html");
        for (i, a) in ASSETS.iter().enumerate() {
            assert!(ASSETS[i + 1..].iter().all(|b| b.path != a.path), "{} twice", a.path);
            assert!(!a.bytes.is_empty(), "{} is empty", a.path);
        }
    }

    #[test]
    fn every_file_of_the_console_directory_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
        let mut pending = vec![root.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let relative = path.strip_prefix(&root).unwrap().to_str().unwrap().replace('\\', "/");
                assert!(ASSETS.iter().any(|a| a.path == relative), "gateway/console/{relative} is not in ASSETS");
            }
        }
    }

    #[test]
    fn every_module_the_page_imports_is_embedded() {
        // A relative import (`./x.js`, `../x.js`) of an embedded module must resolve to another
        // embedded file, or the browser gets a 404 at run time.
        for asset in ASSETS.iter().filter(|a| a.content_type == JS) {
            let text = std::str::from_utf8(asset.bytes).unwrap();
            let dir = asset.path.rsplit_once('/').map_or("", |(dir, _)| dir);
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let spec = line.split('"').nth(1).unwrap_or_else(|| panic!("{}: {line}", asset.path));
                let join =
                    |dir: &str, rest: &str| if dir.is_empty() { rest.to_string() } else { format!("{dir}/{rest}") };
                let resolved = if let Some(rest) = spec.strip_prefix("../") {
                    join(dir.rsplit_once('/').map_or("", |(parent, _)| parent), rest)
                } else if let Some(rest) = spec.strip_prefix("./") {
                    join(dir, rest)
                } else {
                    spec.trim_start_matches("/console/").to_string()
                };
                assert!(ASSETS.iter().any(|a| a.path == resolved), "{} imports {spec}, not embedded", asset.path);
            }
        }
    }
}
