//! A real gateway for the remote client's behaviour tests: the `ferrymq` binary that
//! `cargo test --workspace` builds (`target/debug/ferrymq`), or `FERRYMQ_GATEWAY_BIN`, run on
//! a free port and a temporary directory with the fast test settings; without either binary
//! the tests fail.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ferrymq_core::client::{BrokerTimings, Client, RemoteOptions};
use ferrymq_core::Error;

/// A gateway process on a temporary directory, killed on drop.
pub struct Gateway {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Gateway {
    /// Starts one on a fresh directory and a free port.
    pub fn start() -> Gateway {
        Gateway::start_with(&[])
    }

    /// Starts one with more `serve` arguments (a later `--set` of a key wins).
    pub fn start_with(extra: &[&str]) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = spawn_gateway_with(dir.path(), port, extra);
        Gateway { child, dir, port }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the process with `signal` (`KILL`, `TERM`) and waits for it to exit.
    pub fn kill(&mut self, signal: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap().success());
        self.child.wait().unwrap();
    }

    /// Starts the server again on the same directory and port (after [`kill`](Self::kill)).
    pub fn restart(&mut self) {
        self.child = spawn_gateway(self.dir.path(), self.port);
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gateway_binary() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("FERRYMQ_GATEWAY_BIN") {
        return Some(PathBuf::from(path));
    }
    // target/debug/deps/client_remote-… → target/debug/ferrymq
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent()?.parent()?.join("ferrymq");
    candidate.is_file().then_some(candidate)
}

/// Starts `ferrymq serve` on `dir` and `port` with the fast test settings.
pub fn spawn_gateway(dir: &std::path::Path, port: u16) -> Child {
    spawn_gateway_with(dir, port, &[])
}

/// [`spawn_gateway`] with more arguments.
pub fn spawn_gateway_with(dir: &std::path::Path, port: u16, extra: &[&str]) -> Child {
    let binary =
        gateway_binary().expect("no ferrymq binary: `cargo test --workspace` builds it, or set FERRYMQ_GATEWAY_BIN");
    let levels: Vec<String> = (1..=18).map(|n| format!("{}ms", 40 * n)).collect();
    Command::new(binary)
        .arg("serve")
        .arg("--data-dir")
        .arg(dir)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .args(["--set", "lease_ttl=2s", "--set", "orderly_suspend=50ms", "--set", "flush=async"])
        .args(["--set", "transaction_timeout=150ms", "--set", "transaction_check_interval=150ms"])
        .args(["--set", "segment_bytes=4MiB"])
        .arg("--set")
        .arg(format!("delay_levels={}", levels.join(" ")))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gateway starts")
}

/// Client options matching the gateway's test settings.
pub fn options() -> RemoteOptions {
    RemoteOptions {
        timings: BrokerTimings {
            lease_ttl: Duration::from_secs(2),
            orderly_suspend: Duration::from_millis(50),
            max_reconsume_times: 16,
        },
        ..RemoteOptions::default()
    }
}

/// Connects to `url` with `options`, waiting for the server to be ready.
pub async fn connect(url: &str, options: RemoteOptions) -> Client {
    for _ in 0..200 {
        match Client::connect_with(url, options.clone()).await {
            Ok(client) => return client,
            Err(Error::Connection(_) | Error::Unavailable(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("connecting failed: {e}"),
        }
    }
    panic!("the gateway at {url} never became ready");
}
