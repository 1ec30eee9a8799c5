//! Consumer groups: clustering delivers each message to one member, broadcasting to every
//! member; offsets, lag, members and start positions.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use ferrymq_core::broker::*;
use support::*;

#[tokio::test]
async fn clustering_delivers_each_message_to_exactly_one_member() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.create_topic("jobs", Some(4), None).unwrap();
    for i in 0..300 {
        broker.send("jobs", msg(&format!("m{i}"))).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut per_member = [0usize; 3];
    for round in 0..50 {
        for (k, client) in ["c1", "c2", "c3"].iter().enumerate() {
            let mut req = receive("workers", "jobs", client);
            req.max_messages = 7;
            let got = broker.receive(req).await.unwrap();
            per_member[k] += got.len();
            for m in got {
                assert!(broker.ack("workers", m.receipt.as_ref().unwrap()).await.unwrap().is_ok());
                seen.push(String::from_utf8(m.body).unwrap());
            }
        }
        if seen.len() == 300 {
            assert!(round < 50);
            break;
        }
    }
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(seen.len(), 300, "no message lost");
    assert_eq!(unique.len(), 300, "no message handed to two members");
    assert!(per_member.iter().all(|n| *n > 0), "every member got work: {per_member:?}");
    let group = broker.group("workers").unwrap();
    assert_eq!(group.members.len(), 3);
    assert!(group.offsets.iter().all(|o| o.lag == 0 && o.committed == o.max), "{:?}", group.offsets);
    assert_eq!(broker.groups()[0].topics, vec!["jobs".to_string()]);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn held_messages_are_invisible_to_other_members() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.send("t", msg("only")).await.unwrap();
    let got = broker.receive(receive("g", "t", "a")).await.unwrap();
    assert_eq!(bodies(&got), ["only"]);
    assert!(broker.receive(receive("g", "t", "b")).await.unwrap().is_empty());
    let detail = broker.group("g").unwrap();
    assert_eq!(detail.offsets.iter().map(|o| o.lag).sum::<u64>(), 1, "unacked counts as lag");
    broker.release_client("g", "a");
    let again = broker.receive(receive("g", "t", "b")).await.unwrap();
    assert_eq!(bodies(&again), ["only"]);
    assert_eq!(again[0].reconsume_times, 0, "a closed connection's messages return without a reconsume");
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn broadcasting_gives_every_member_every_message() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    for i in 0..20 {
        broker.send("news", msg(&format!("n{i}"))).await.unwrap();
    }
    for client in ["x", "y", "z"] {
        let mut req = receive("readers", "news", client);
        req.mode = ConsumeMode::Broadcasting;
        let got = drain(&broker, &req, 20, Duration::from_secs(5)).await;
        let set: HashSet<_> = bodies(&got).into_iter().collect();
        assert_eq!(set.len(), 20, "{client} saw everything");
    }
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn start_positions_apply_only_without_a_committed_offset() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.create_topic("t", Some(1), None).unwrap();
    broker.send("t", msg("old")).await.unwrap();
    let mut last = receive("late", "t", "c");
    last.start = StartPosition::Last;
    assert!(broker.receive(last.clone()).await.unwrap().is_empty());
    broker.send("t", msg("new")).await.unwrap();
    assert_eq!(bodies(&drain(&broker, &last, 1, Duration::from_secs(2)).await), ["new"]);
    let first = receive("early", "t", "c");
    assert_eq!(bodies(&drain(&broker, &first, 2, Duration::from_secs(2)).await), ["old", "new"]);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_start_fixed_at_subscribing_holds_until_the_first_receive() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path()).await;
    broker.create_topic("t", Some(2), None).unwrap();
    for i in 0..4 {
        broker.send("t", msg(&format!("old{i}"))).await.unwrap();
    }
    for mode in [ConsumeMode::Clustering, ConsumeMode::Broadcasting] {
        let group = format!("late-{mode:?}");
        broker.fix_start(&group, "c", "t", mode, StartPosition::Last).unwrap();
        broker.send("t", msg(&format!("after-{mode:?}"))).await.unwrap();
        let mut last = receive(&group, "t", "c");
        last.start = StartPosition::Last;
        last.mode = mode;
        // Stored after the start was fixed, before the first receive: delivered, and nothing older.
        let got = drain(&broker, &last, 1, Duration::from_secs(2)).await;
        assert_eq!(bodies(&got), [format!("after-{mode:?}")], "{mode:?}");
        assert!(broker.receive(last).await.unwrap().is_empty(), "{mode:?}");
    }
    // Fixing again moves nothing: a group with a position keeps it.
    broker.send("t", msg("later")).await.unwrap();
    broker.fix_start("late-Clustering", "c", "t", ConsumeMode::Clustering, StartPosition::Last).unwrap();
    let mut again = receive("late-Clustering", "t", "c");
    again.start = StartPosition::Last;
    let mut rest = bodies(&drain(&broker, &again, 2, Duration::from_secs(2)).await);
    rest.sort();
    assert_eq!(rest, ["after-Broadcasting", "later"]);
    assert!(matches!(
        broker.fix_start("g", "c", "missing", ConsumeMode::Clustering, StartPosition::Last),
        Err(ferrymq_core::Error::NotFound { .. })
    ));
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn membership_changes_are_observable_and_members_expire() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.lease_ttl = Duration::from_millis(300);
    let broker = Broker::open(config).await.unwrap();
    let mut watch = broker.watch_membership();
    let sub = Subscription { topic: "t".into(), filter: FilterSpec::default(), mode: ConsumeMode::Clustering };
    broker.heartbeat("g", "n1", MemberTransport::Native, vec![sub.clone()]).unwrap();
    assert!(watch.has_changed().unwrap(), "joining is a membership change");
    assert_eq!(broker.members("g").len(), 1);
    watch.borrow_and_update();
    assert_eq!(broker.group("g").unwrap().subscriptions, vec![sub]);
    tokio::time::timeout(Duration::from_secs(3), watch.changed()).await.unwrap().unwrap();
    assert!(broker.members("g").is_empty(), "expired after lease_ttl without heartbeats");
    assert!(broker.lock_queue("g", "t", 0, "n1").unwrap());
    assert!(!broker.lock_queue("g", "t", 0, "n2").unwrap());
    broker.unlock_queue("g", "t", 0, "n1");
    assert!(broker.lock_queue("g", "t", 0, "n2").unwrap());
    broker.shutdown().await.unwrap();
}
