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

/// Runs `ferrymq serve` over `dir` with `extra` arguments; returns the child (stderr piped)
/// and its URL, without waiting for it to become healthy.
fn spawn_serve(dir: &std::path::Path, extra: &[&str]) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = ferrymq()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--set", "segment_bytes=1MiB"])
        .args(extra)
        .arg("--data-dir")
        .arg(dir)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    (child, format!("http://127.0.0.1:{port}"))
}

#[tokio::test]
async fn damage_below_the_durable_position_refuses_to_start_until_repair() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = serve_binary(dir.path()).await;
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for body in ["first-body", "second-body-will-rot", "third-body"] {
        let sent: Value =
            http.post(format!("{url}/v1/topics/rot/messages")).body(body).send().await.unwrap().json().await.unwrap();
        ids.push(sent["msg_id"].as_str().unwrap().to_string());
    }
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(exit.success());

    // Bit rot in the second message's body, then a crash after the checkpoint (the abort
    // file is what a crash leaves): everything was flushed, so this is not a torn tail.
    let segment = dir.path().join("commitlog").join(format!("{:020}", 0));
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.windows(8).position(|w| w == b"will-rot").expect("the body is in the first segment");
    bytes[at] ^= 0x20;
    std::fs::write(&segment, &bytes).unwrap();
    std::fs::write(dir.path().join("abort"), b"").unwrap();

    let (child, _) = spawn_serve(dir.path(), &[]);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "serve must refuse to start: {stderr}");
    assert!(stderr.contains(&segment.display().to_string()) && stderr.contains("offset"), "{stderr}");
    assert!(stderr.contains("--repair"), "{stderr}");
    assert_eq!(std::fs::read(&segment).unwrap(), bytes, "the refused start changed the segment");
    assert!(!dir.path().join("quarantine").exists());

    let (mut child, url) = spawn_serve(dir.path(), &["--repair"]);
    let mut healthy = false;
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("{url}/healthz")).send().await {
            if r.status() == 200 {
                healthy = true;
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(healthy, "serve --repair did not become healthy");
    for (id, body) in [(&ids[0], "first-body"), (&ids[2], "third-body")] {
        let m: Value = http.get(format!("{url}/v1/messages/{id}")).send().await.unwrap().json().await.unwrap();
        assert_eq!(m["body"], body);
    }
    let gone = http.get(format!("{url}/v1/messages/{}", ids[1])).send().await.unwrap();
    assert_eq!(gone.status(), 404);
    assert_eq!(std::fs::read_dir(dir.path().join("quarantine")).unwrap().count(), 1);
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits for `/healthz` to answer 200.
async fn wait_healthy(url: &str) -> bool {
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("{url}/healthz")).send().await {
            if r.status() == 200 {
                return true;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_full_disk_answers_507_and_the_server_carries_on() {
    // A small tmpfs, which needs root; elsewhere say why and stop.
    let mnt = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=512m", "tmpfs"]).arg(mnt.path()).output();
    match mounted {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            eprintln!("SKIPPED: cannot mount a tmpfs (needs root): {}", String::from_utf8_lossy(&o.stderr).trim());
            return;
        }
        Err(e) => {
            eprintln!("SKIPPED: cannot run mount: {e}");
            return;
        }
    }
    struct Unmount<'a>(&'a std::path::Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(mnt.path());
    let data = mnt.path().join("data");
    let (child, url) =
        spawn_serve(&data, &["--set", "disk_max_used_ratio=1.0", "--set", "segment_bytes=8MiB", "--set", "flush=sync"]);
    // Killed before the file system is unmounted, also when an assertion fails.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Kill(child);
    assert!(wait_healthy(&url).await, "serve did not become healthy");
    let http = reqwest::Client::new();
    let publish = |i: usize| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let body = format!("{i:08}-").repeat(64 * 1024 / 9);
            http.post(format!("{url}/v1/topics/full/messages")).body(body).send().await.unwrap()
        }
    };
    let first: Value = publish(0).await.json().await.unwrap();
    // Fill what is left of the file system.
    let ballast = mnt.path().join("ballast");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&ballast).unwrap();
        let chunk = vec![7u8; 1 << 20];
        while f.write_all(&chunk).is_ok() {}
    }
    let mut acked = vec![first["msg_id"].as_str().unwrap().to_string()];
    let mut refused = None;
    for i in 1..2000 {
        let r = publish(i).await;
        if r.status() == 200 || r.status() == 201 {
            let v: Value = r.json().await.unwrap();
            acked.push(v["msg_id"].as_str().unwrap().to_string());
        } else {
            refused = Some((r.status(), r.text().await.unwrap()));
            break;
        }
    }
    let (status, problem) = refused.expect("publishing never hit the full disk");
    assert_eq!(status, 507, "{problem}");
    assert!(problem.contains("insufficient-storage"), "{problem}");
    // Still up, and every acknowledged message reads back while the disk is full (the store's
    // space reserve lets its queue and index entries be written).
    assert!(wait_healthy(&url).await);
    let read_all = |acked: Vec<String>| {
        let http = http.clone();
        let url = url.clone();
        async move {
            for (i, id) in acked.iter().enumerate() {
                let mut status = 0;
                for _ in 0..100 {
                    let r = http.get(format!("{url}/v1/messages/{id}")).send().await.unwrap();
                    status = r.status().as_u16();
                    if status == 200 {
                        let m: Value = r.json().await.unwrap();
                        assert!(m["body"].as_str().unwrap().starts_with(&format!("{i:08}-")));
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                assert_eq!(status, 200, "acknowledged message {i} unreadable");
            }
        }
    };
    read_all(acked.clone()).await;
    // Space freed: publishing works again, and every acknowledged message reads back.
    std::fs::remove_file(&ballast).unwrap();
    let mut resumed = false;
    for _ in 0..100 {
        if publish(acked.len()).await.status().is_success() {
            resumed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(resumed, "publishing did not resume after space was freed");
    read_all(acked.clone()).await;
    assert!(child.0.try_wait().unwrap().is_none(), "the server died");
}
