//! The WebSocket loop is generic over `Sink`/`Stream`: these tests drive it through channels,
//! without a socket.

mod common;

use std::time::Duration;

use common::*;
use ferrymq_gateway::access::Caller;
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};

struct Channel {
    to_server: mpsc::Sender<String>,
    from_server: mpsc::Receiver<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Channel {
    fn open(t: &TestApp) -> Channel {
        let (to_server, server_rx) = mpsc::channel(16);
        let (server_tx, from_server) = mpsc::channel(16);
        let task =
            tokio::spawn(ferrymq_gateway::ws::run(t.state.clone(), Caller::unrestricted(), server_tx, server_rx));
        Channel { to_server, from_server, task }
    }

    async fn send(&mut self, frame: Value) {
        self.to_server.send(frame.to_string()).await.unwrap();
    }

    async fn next(&mut self) -> Option<Value> {
        let text = tokio::time::timeout(Duration::from_secs(5), self.from_server.next()).await.ok()??;
        Some(serde_json::from_str(&text).unwrap())
    }
}

#[tokio::test]
async fn publish_and_subscribe_through_channels() {
    let t = TestApp::start().await;
    let mut c = Channel::open(&t);
    c.send(json!({"op": "publish", "req_id": "1", "topic": "ch", "body": "via channel"})).await;
    let published = c.next().await.unwrap();
    assert_eq!(published["op"], "published");
    c.send(json!({"op": "subscribe", "id": "s", "group": "g", "topic": "ch", "credits": 1})).await;
    assert_eq!(c.next().await.unwrap(), json!({"op": "subscribed", "id": "s"}));
    let message = c.next().await.unwrap();
    assert_eq!(message["op"], "message");
    assert_eq!(message["body"], "via channel");
    assert_eq!(message["msg_id"], published["msg_id"]);
}

#[tokio::test]
async fn closing_the_client_stream_ends_the_connection() {
    let t = TestApp::start().await;
    let mut c = Channel::open(&t);
    c.send(json!({"op": "bogus"})).await;
    assert_eq!(c.next().await.unwrap()["op"], "error");
    drop(c.to_server);
    tokio::time::timeout(Duration::from_secs(5), c.task).await.expect("loop ends").unwrap();
    assert!(c.from_server.next().await.is_none(), "the server side closed its sink");
}

#[tokio::test]
async fn server_shutdown_ends_open_connections() {
    let t = TestApp::start().await;
    let c = Channel::open(&t);
    tokio::time::sleep(Duration::from_millis(50)).await;
    t.state.begin_shutdown();
    tokio::time::timeout(Duration::from_secs(5), c.task).await.expect("loop ends on shutdown").unwrap();
}
