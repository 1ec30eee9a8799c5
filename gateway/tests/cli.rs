//! The `ferrymq` binary: a bad configuration key stops `serve` with status 2, and the client
//! subcommands talk to a running server.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

fn ferrymq() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ferrymq"))
}

#[test]
fn unknown_config_key_exits_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = ferrymq()
        .args(["serve", "--listen", "127.0.0.1:0", "--set", "no_such_key=1"])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no_such_key"), "{stderr}");
}

#[test]
fn unknown_key_in_the_config_file_exits_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ferrymq.toml");
    std::fs::write(&file, "flush = \"sync\"\nbogus = 3\n").unwrap();
    let output = ferrymq()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn config_lists_every_key_with_its_default_and_bounds() {
    let output = ferrymq().arg("config").output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    for key in ferrymq_core::config::KEYS {
        let at = lines
            .iter()
            .position(|line| line.split_whitespace().next() == Some(key.name()))
            .unwrap_or_else(|| panic!("{} is not listed:\n{stdout}", key.name()));
        let row = lines[at];
        let default = key.default_text();
        let cells: Vec<&str> = row.split("  ").map(str::trim).filter(|cell| !cell.is_empty()).collect();
        assert_eq!(cells[1], key.kind(), "{row}");
        assert_eq!(cells[2], if default.is_empty() { "(unset)" } else { default.as_str() }, "{row}");
        assert_eq!(cells[3], key.bounds(), "{row}");
        let server_only = key.scope() == ferrymq_core::config::Scope::Server;
        assert_eq!(row.ends_with("server only"), server_only, "{row}");
        assert_eq!(lines[at + 1].trim(), key.doc(), "{row}");
    }
    assert!(stdout.contains("segment_bytes") && stdout.contains("1GiB"), "{stdout}");
    assert!(stdout.contains("1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"), "{stdout}");

    let help = ferrymq().args(["serve", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("ferrymq config"));
}

#[test]
fn a_zero_max_delay_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let output = ferrymq()
        .args(["serve", "--listen", "127.0.0.1:0", "--set", "max_delay=0s"])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`max_delay`") && stderr.contains("must be longer than zero"), "{stderr}");
}

async fn run(url: &str, args: &[&str]) -> (bool, String) {
    let url = url.to_string();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let output = ferrymq().env("FERRYMQ_URL", url).args(args).output().unwrap();
        (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn client_subcommands_round_trip() {
    let t = TestApp::start().await;
    let url = format!("http://{}", t.serve().await);
    let (ok, out) = run(&url, &["topic", "create", "cli", "--queues", "2"]).await;
    assert!(ok, "{out}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["queues"], 2);
    let (ok, out) = run(&url, &["topic", "list"]).await;
    assert!(ok && out.contains("\"cli\""), "{out}");

    let (ok, out) = run(&url, &["produce", "cli", "hello", "--key", "k1", "--tag", "T"]).await;
    assert!(ok, "{out}");
    let sent: Value = serde_json::from_str(&out).unwrap();
    let msg_id = sent["msg_id"].as_str().unwrap();

    let (ok, out) = run(&url, &["message", "get", msg_id]).await;
    assert!(ok);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["body"], "hello");
    let (ok, out) = run(&url, &["message", "find", "cli", "--key", "k1"]).await;
    assert!(ok);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["messages"][0]["msg_id"], msg_id);

    let (ok, out) = run(&url, &["consume", "cg", "cli", "--count", "1", "--wait-ms", "500"]).await;
    assert!(ok);
    let line: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(line["body"], "hello");

    let (ok, out) = run(&url, &["group", "show", "cg"]).await;
    assert!(ok);
    let group: Value = serde_json::from_str(&out).unwrap();
    let lag: u64 = group["offsets"].as_array().unwrap().iter().map(|o| o["lag"].as_u64().unwrap()).sum();
    assert_eq!(lag, 0, "consume acked");

    let (ok, out) = run(&url, &["group", "reset", "cg", "--topic", "cli", "--to", "earliest"]).await;
    assert!(ok, "{out}");
    assert!(serde_json::from_str::<Value>(&out).unwrap()["offsets"].is_array());

    let (ok, _) = run(&url, &["message", "get", "missing"]).await;
    assert!(!ok, "a 404 fails the command");
}

#[tokio::test]
async fn bench_runs_each_mode() {
    let t = TestApp::start().await;
    let url = format!("http://{}", t.serve().await);
    for mode in ["rest-batch", "produce", "consume"] {
        let (ok, out) =
            run(&url, &["bench", "--mode", mode, "--messages", "60", "--size", "32", "--batch", "20"]).await;
        assert!(ok, "{mode}: {out}");
        assert!(out.contains("messages=60"), "{mode}: {out}");
        assert!(out.contains("msgs_per_s="), "{mode}: {out}");
    }
    let (ok, out) = run(&url, &["bench", "--mode", "produce", "--messages", "40", "--producers", "3"]).await;
    assert!(ok && out.contains("messages=40") && out.contains("p99_ms="), "{out}");
    // e2e: 200 msgs/s for 1 s, all received, none lost.
    let (ok, out) = run(&url, &["bench", "--mode", "e2e", "--rate", "200", "--secs", "1", "--size", "64"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("scenario=e2e messages=200") && out.contains("lost=0"), "{out}");
}

/// Starts `ferrymq serve` on a free port over `dir`; returns the child and its URL once healthy.
async fn serve_binary(dir: &std::path::Path) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = ferrymq()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--set", "segment_bytes=1MiB"])
        .arg("--data-dir")
        .arg(dir)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("{url}/healthz")).send().await {
            if r.status() == 200 {
                return (child, url);
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("ferrymq serve did not become healthy");
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly_and_data_survives() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = serve_binary(dir.path()).await;
    let http = reqwest::Client::new();
    let sent: Value = http
        .post(format!("{url}/v1/topics/kept/messages"))
        .body("survives")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let msg_id = sent["msg_id"].as_str().unwrap().to_string();

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");

    let (mut child, url) = serve_binary(dir.path()).await;
    let message: Value = http.get(format!("{url}/v1/messages/{msg_id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(message["body"], "survives");
    let _ = child.kill();
    let _ = child.wait();
}
