//! `ferrymq serve` with `tls_cert` and `tls_key` speaks HTTPS and WSS on its port: plain REST
//! with the CA trusted, the Rust client over `https://` (WebSocket publish and REST receive), a
//! refused untrusted certificate, and a half-configured TLS that stops the server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ferrymq_core::client::{Client, FilterSpec, MessageBuilder, RemoteOptions};
use ferrymq_core::Error;

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM files.
struct Pki {
    cert: PathBuf,
    key: PathBuf,
}

fn make_pki(dir: &Path) -> Pki {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let rcgen::CertifiedKey { cert, key_pair } = rcgen::generate_simple_self_signed(names).expect("certificate");
    let pki = Pki { cert: dir.join("cert.pem"), key: dir.join("key.pem") };
    std::fs::write(&pki.cert, cert.pem()).unwrap();
    std::fs::write(&pki.key, key_pair.serialize_pem()).unwrap();
    pki
}

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ferrymq() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ferrymq"))
}

/// Starts `ferrymq serve` with TLS and waits until `/healthz` answers over HTTPS.
async fn serve_tls(dir: &Path, pki: &Pki) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = ferrymq()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--set", "segment_bytes=1MiB"])
        .arg("--set")
        .arg(format!("tls_cert={}", pki.cert.display()))
        .arg("--set")
        .arg(format!("tls_key={}", pki.key.display()))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ferrymq");
    let server = Server { child, port };
    let http = https_client(&pki.cert);
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("https://127.0.0.1:{port}/healthz")).send().await {
            if r.status().is_success() {
                return server;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("ferrymq serve with TLS never became healthy");
}

/// An HTTP client that trusts exactly `ca` (as `curl --cacert` would).
fn https_client(ca: &Path) -> reqwest::Client {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder().use_preconfigured_tls(config).build().unwrap()
}

#[tokio::test]
async fn rest_over_https_with_the_ca_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let server = serve_tls(dir.path(), &pki).await;
    let http = https_client(&pki.cert);
    let base = format!("https://localhost:{}", server.port);

    let published = http.post(format!("{base}/v1/topics/secure/messages")).body("hello").send().await.unwrap();
    assert_eq!(published.status(), 200);
    let received: serde_json::Value = http
        .post(format!("{base}/v1/groups/g/receive"))
        .json(&serde_json::json!({"topic": "secure", "wait_ms": 1000}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(received["messages"][0]["body"], "hello");

    // Plain HTTP to the TLS port gets no answer a client could mistake for success.
    let plain = reqwest::Client::new().get(format!("http://127.0.0.1:{}/healthz", server.port)).send().await;
    assert!(!plain.map(|r| r.status().is_success()).unwrap_or(false));
}

#[tokio::test]
async fn the_rust_client_publishes_over_wss_and_receives_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let server = serve_tls(dir.path(), &pki).await;
    let options = RemoteOptions { ca_file: Some(pki.cert.clone()), ..RemoteOptions::default() };
    let client = Client::connect_with(&format!("https://localhost:{}", server.port), options).await.expect("connects");

    let sent = client.producer(None).send("orders", MessageBuilder::new("over tls")).await.expect("sent");
    let consumer = client.simple_consumer("billing", "orders", FilterSpec::default()).expect("consumer");
    let messages = consumer.receive(16, Duration::from_secs(2), Duration::from_secs(30)).await.expect("received");
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].msg_id, sent.msg_id);
    assert_eq!(messages[0].body, b"over tls");
    client.close().await.unwrap();
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let server = serve_tls(dir.path(), &pki).await;
    let url = format!("https://localhost:{}", server.port);

    // The system roots do not know a self-signed certificate.
    let err = Client::connect(&url).await.expect_err("untrusted");
    assert!(matches!(err, Error::Connection(_)), "{err:?}");
    assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");

    // Nor does another CA.
    let other_dir = tempfile::tempdir().unwrap();
    let other_ca = make_pki(other_dir.path()).cert;
    let options = RemoteOptions { ca_file: Some(other_ca), ..RemoteOptions::default() };
    let err = Client::connect_with(&url, options).await.expect_err("wrong CA");
    assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");

    // A CA file that is not PEM is a bad argument, named.
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let options = RemoteOptions { ca_file: Some(bogus), ..RemoteOptions::default() };
    let err = Client::connect_with(&url, options).await.expect_err("bogus CA file");
    assert!(matches!(&err, Error::InvalidArgument { field, .. } if field == "/ca_file"), "{err:?}");
}

#[test]
fn a_certificate_without_its_key_stops_the_server_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let output = ferrymq()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--set")
        .arg(format!("tls_cert={}", pki.cert.display()))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("tls_key"));

    let output = ferrymq()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--set")
        .arg(format!("tls_cert={}", pki.key.display()))
        .arg("--set")
        .arg(format!("tls_key={}", pki.key.display()))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "a key is not a certificate");
}

#[tokio::test]
async fn the_cli_talks_https_with_a_ca_file_and_refuses_an_unknown_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let server = serve_tls(dir.path(), &pki).await;
    let url = format!("https://localhost:{}", server.port);
    let cert = pki.cert.clone();
    let (with_ca, without_ca) = tokio::task::spawn_blocking(move || {
        let with_ca =
            ferrymq().env("FERRYMQ_URL", &url).args(["produce", "cli", "hi", "--ca-file"]).arg(&cert).output();
        let without_ca = ferrymq().env("FERRYMQ_URL", &url).args(["produce", "cli", "hi"]).output();
        (with_ca.unwrap(), without_ca.unwrap())
    })
    .await
    .unwrap();
    assert!(with_ca.status.success(), "{}", String::from_utf8_lossy(&with_ca.stderr));
    let sent: serde_json::Value = serde_json::from_slice(&with_ca.stdout).unwrap();
    assert!(sent["msg_id"].is_string());
    assert!(!without_ca.status.success());
    let stderr = String::from_utf8_lossy(&without_ca.stderr).to_lowercase();
    assert!(stderr.contains("certificate"), "{stderr}");
}
