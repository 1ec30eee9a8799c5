//! Queue allocation strategies for push consumers.
//!
//! Every member of a consumer group runs the same [`Strategy`] on the same inputs (the group's
//! members and the topic's queues, as learnt from heartbeats) and keeps only its own share. No
//! coordinator is involved, so a strategy must be a pure function of its inputs: it sorts and
//! deduplicates both lists first, which makes the result independent of the order in which a
//! member happened to learn them, and it hands every queue to exactly one member.
//!
//! This module owns the arithmetic only. It knows nothing of heartbeats, timers, pulling or
//! offsets; the push consumer decides when to rebalance and what to do with the answer.
//!
//! The strategies follow RocketMQ's, under the names used by the SDKs:
//!
//! | name | RocketMQ | share of the member at index `i` of `m` (sorted) |
//! |---|---|---|
//! | `average` | `AllocateMessageQueueAveragely` | a contiguous block of `q / m` queues, one more if `i < q % m` |
//! | `average_by_circle` | `AllocateMessageQueueAveragelyByCircle` | queues `j` with `j % m == i` |
//! | `consistent_hash` | `AllocateMessageQueueConsistentHash` | queues whose next node clockwise on a hash ring is one of its virtual nodes |
//! | `machine_room` | `AllocateMachineRoomNearby` | `average` within its own room, plus `average` of the queues no room serves |

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// Virtual nodes per member on the consistent-hash ring when none are given, as in RocketMQ.
pub const DEFAULT_VIRTUAL_NODES: usize = 10;

/// Upper bound on virtual nodes per member; larger values are clamped to it.
///
/// The ring holds `members × virtual_nodes` entries and is rebuilt at every rebalance, so an
/// unbounded value from configuration could exhaust memory. A thousand nodes per member already
/// balances far better than the queue counts of a topic can show.
pub const MAX_VIRTUAL_NODES: usize = 1024;

/// A queue of a topic, as the rebalancer sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueRef {
    /// The topic the queue belongs to.
    pub topic: String,
    /// The queue's number within its topic.
    pub queue_id: u32,
}

impl QueueRef {
    /// A queue of `topic` numbered `queue_id`.
    pub fn new(topic: impl Into<String>, queue_id: u32) -> Self {
        QueueRef { topic: topic.into(), queue_id }
    }
}

/// A group member as the rebalancer sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Member {
    /// The member's client id, unique within the group.
    pub client_id: String,
    /// The machine room the member runs in, if it advertises one; used by
    /// [`Strategy::MachineRoom`] only.
    pub machine_room: Option<String>,
}

impl Member {
    /// A member with no machine room.
    pub fn new(client_id: impl Into<String>) -> Self {
        Member { client_id: client_id.into(), machine_room: None }
    }

    /// A member running in `room`.
    pub fn in_room(client_id: impl Into<String>, room: impl Into<String>) -> Self {
        Member { client_id: client_id.into(), machine_room: Some(room.into()) }
    }
}

/// Allocation strategy, named as in the SDKs: `average`, `average_by_circle`,
/// `consistent_hash`, `machine_room`.
///
/// Every member of a group must use the same strategy with the same parameters; otherwise two
/// members can claim one queue, or none can.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Strategy {
    /// Contiguous blocks of queues, as RocketMQ's `AllocateMessageQueueAveragely`.
    ///
    /// With `q` queues and `m` members, the member at index `i` gets `q / m` queues, plus one if
    /// `i < q % m`; the blocks follow each other in member order. With fewer queues than members,
    /// the first `q` members get one queue each and the rest get none.
    #[default]
    Average,
    /// Queues dealt round-robin, as RocketMQ's `AllocateMessageQueueAveragelyByCircle`: queue
    /// `j` goes to member `j % m`.
    AverageByCircle,
    /// A consistent-hash ring, as RocketMQ's `AllocateMessageQueueConsistentHash`.
    ///
    /// Each member places `virtual_nodes` nodes on a 64-bit ring at the hashes of
    /// `"{client_id}-{i}"` for `i` in `0..virtual_nodes`; each queue goes to the first node at or
    /// after the hash of `"{topic}@{queue_id}"`, wrapping around. When a member leaves, only the
    /// queues it held move; when one joins, only queues it takes move. The hash is
    /// [`stable_hash`], which is fixed by this crate rather than by the Rust release, so members
    /// built with different toolchains agree.
    ConsistentHash {
        /// Nodes per member on the ring ([`DEFAULT_VIRTUAL_NODES`] when parsed from a name).
        /// More nodes balance better; `0` counts as `1` and values above
        /// [`MAX_VIRTUAL_NODES`] are clamped to it.
        virtual_nodes: usize,
    },
    /// Machine-room affinity, in the spirit of RocketMQ's `AllocateMachineRoomNearby`: consume
    /// queues in one's own room, and share the queues of rooms nobody serves.
    ///
    /// A queue's room is `queue_rooms[queue_id]` (the same for every topic, since FerryMQ has a
    /// single broker whose queues are spread over rooms by number). A member's room is its
    /// [`Member::machine_room`], as advertised to the whole group: it must come from the member
    /// list rather than from local configuration, or members would disagree on who serves what.
    ///
    /// - Queues whose room has at least one member are allocated as [`Strategy::Average`]
    ///   among the members of that room.
    /// - All other queues (rooms with no member, or queue ids missing from `queue_rooms`) are
    ///   allocated as [`Strategy::Average`] among all members, in one pool, so they keep being
    ///   consumed while a room is empty.
    ///
    /// With an empty map this is [`Strategy::Average`].
    MachineRoom {
        /// The room of each queue id; queue ids not listed belong to no room.
        queue_rooms: BTreeMap<u32, String>,
    },
}

/// The SDK names, in declaration order.
const NAMES: [&str; 4] = ["average", "average_by_circle", "consistent_hash", "machine_room"];

impl Strategy {
    /// Parses the SDK name: `average`, `average_by_circle`, `consistent_hash` (with
    /// [`DEFAULT_VIRTUAL_NODES`]) or `machine_room` (with an empty room map, to be filled in
    /// by the caller).
    ///
    /// An unknown name is [`Error::InvalidArgument`] on the field `/strategy`.
    pub fn from_name(name: &str) -> Result<Strategy> {
        match name {
            "average" => Ok(Strategy::Average),
            "average_by_circle" => Ok(Strategy::AverageByCircle),
            "consistent_hash" => Ok(Strategy::ConsistentHash { virtual_nodes: DEFAULT_VIRTUAL_NODES }),
            "machine_room" => Ok(Strategy::MachineRoom { queue_rooms: BTreeMap::new() }),
            other => Err(Error::invalid(
                "/strategy",
                format!("unknown allocation strategy {other:?}; expected one of {}", NAMES.join(", ")),
            )),
        }
    }

    /// The SDK name, as accepted by [`Strategy::from_name`].
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Average => NAMES[0],
            Strategy::AverageByCircle => NAMES[1],
            Strategy::ConsistentHash { .. } => NAMES[2],
            Strategy::MachineRoom { .. } => NAMES[3],
        }
    }

    /// The queues the member `me` should consume, sorted.
    ///
    /// Both lists may come in any order and with repetitions: they are sorted and deduplicated
    /// first (members by client id; of two entries with one client id, the smaller one in
    /// [`Member`]'s order wins), so the result depends only on the sets. If `me` is not among
    /// `members` the share is empty. Across all members, every queue is allocated exactly once.
    pub fn allocate(&self, me: &str, members: &[Member], queues: &[QueueRef]) -> Vec<QueueRef> {
        let members = normalize_members(members);
        let Some(index) = members.iter().position(|m| m.client_id == me) else {
            return Vec::new();
        };
        let queues = normalize_queues(queues);
        match self {
            Strategy::Average => average_share(&queues, members.len(), index).to_vec(),
            Strategy::AverageByCircle => circle_share(&queues, members.len(), index),
            Strategy::ConsistentHash { virtual_nodes } => {
                consistent_hash_share(&queues, &members, index, *virtual_nodes)
            }
            Strategy::MachineRoom { queue_rooms } => machine_room_share(&queues, &members, index, queue_rooms),
        }
    }
}

impl FromStr for Strategy {
    type Err = Error;

    fn from_str(name: &str) -> Result<Strategy> {
        Strategy::from_name(name)
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The hash of the consistent-hash ring: 64-bit FNV-1a over the UTF-8 bytes, followed by the
/// `fmix64` finalizer of MurmurHash3.
///
/// FNV-1a alone is stable and cheap but leaves the high bits nearly unchanged between keys that
/// differ only in their last byte (`"c-1"`, `"c-2"`), which would bunch a member's virtual nodes
/// together on the ring; the finalizer spreads every input bit over all output bits. Both
/// halves are fixed, published algorithms, so the value never changes between releases or
/// platforms (unlike `std`'s `DefaultHasher`), and every member computes the same ring.
pub fn stable_hash(key: &str) -> u64 {
    fmix64(fnv1a64(key.as_bytes()))
}

/// 64-bit FNV-1a.
fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(PRIME))
}

/// MurmurHash3's 64-bit finalizer: a bijection that makes each output bit depend on every
/// input bit.
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// Sorts members and keeps one entry per client id.
fn normalize_members(members: &[Member]) -> Vec<Member> {
    let mut members = members.to_vec();
    members.sort();
    members.dedup_by(|later, earlier| later.client_id == earlier.client_id);
    members
}

/// Sorts queues and drops repetitions.
fn normalize_queues(queues: &[QueueRef]) -> Vec<QueueRef> {
    let mut queues = queues.to_vec();
    queues.sort();
    queues.dedup();
    queues
}

/// The contiguous block of `items` for index `index` of `count`, as RocketMQ's
/// `AllocateMessageQueueAveragely`: the first `len % count` blocks are one item longer.
fn average_share<T>(items: &[T], count: usize, index: usize) -> &[T] {
    if count == 0 || index >= count {
        return &[];
    }
    let base = items.len() / count;
    let extra = items.len() % count;
    let start = index * base + index.min(extra);
    let len = base + usize::from(index < extra);
    items.get(start..start + len).unwrap_or(&[])
}

/// Items `j` with `j % count == index`.
fn circle_share<T: Clone>(items: &[T], count: usize, index: usize) -> Vec<T> {
    if count == 0 || index >= count {
        return Vec::new();
    }
    items.iter().skip(index).step_by(count).cloned().collect()
}

/// The queues whose successor node on the ring belongs to `members[index]`.
fn consistent_hash_share(queues: &[QueueRef], members: &[Member], index: usize, virtual_nodes: usize) -> Vec<QueueRef> {
    let virtual_nodes = virtual_nodes.clamp(1, MAX_VIRTUAL_NODES);
    // Ties between equal hashes are broken by member index (client-id order), then node number,
    // so the ring is the same on every member; removing a member never reorders the others.
    let mut ring: Vec<(u64, usize)> = members
        .iter()
        .enumerate()
        .flat_map(|(owner, member)| {
            (0..virtual_nodes).map(move |i| (stable_hash(&format!("{}-{i}", member.client_id)), owner))
        })
        .collect();
    ring.sort_unstable();
    let Some(&(_, first_owner)) = ring.first() else {
        return Vec::new();
    };
    queues
        .iter()
        .filter(|queue| {
            let hash = stable_hash(&format!("{}@{}", queue.topic, queue.queue_id));
            let successor = ring.partition_point(|&(node, _)| node < hash);
            let owner = ring.get(successor).map_or(first_owner, |&(_, owner)| owner);
            owner == index
        })
        .cloned()
        .collect()
}

/// [`Strategy::MachineRoom`]: `average` within the member's room, plus `average` among all
/// members of the queues whose room has no member.
fn machine_room_share(
    queues: &[QueueRef],
    members: &[Member],
    index: usize,
    queue_rooms: &BTreeMap<u32, String>,
) -> Vec<QueueRef> {
    let served: BTreeSet<&str> = members.iter().filter_map(|m| m.machine_room.as_deref()).collect();
    let Some(me) = members.get(index) else {
        return Vec::new();
    };
    let my_room = me.machine_room.as_deref();

    let mut mine_in_room = Vec::new();
    let mut orphans = Vec::new();
    for queue in queues {
        match queue_rooms.get(&queue.queue_id).map(String::as_str) {
            Some(room) if served.contains(room) => {
                if Some(room) == my_room {
                    mine_in_room.push(queue.clone());
                }
            }
            _ => orphans.push(queue.clone()),
        }
    }

    let mut share = Vec::new();
    if let Some(room) = my_room {
        // Members are sorted, so the room's members keep their relative order on every member.
        let roommates: Vec<&Member> = members.iter().filter(|m| m.machine_room.as_deref() == Some(room)).collect();
        if let Some(room_index) = roommates.iter().position(|m| m.client_id == me.client_id) {
            share.extend_from_slice(average_share(&mine_in_room, roommates.len(), room_index));
        }
    }
    share.extend_from_slice(average_share(&orphans, members.len(), index));
    share.sort();
    share
}

#[cfg(test)]
mod tests {
    use super::*;
    // The prelude also exports proptest's `Strategy` trait; the explicit import below makes
    // `Strategy` mean ours, and the trait's methods stay in scope anonymously.
    use super::Strategy;
    use proptest::prelude::*;
    use proptest::strategy::Strategy as _;

    fn members(ids: &[&str]) -> Vec<Member> {
        ids.iter().map(|id| Member::new(*id)).collect()
    }

    fn queues(topic: &str, count: u32) -> Vec<QueueRef> {
        (0..count).map(|id| QueueRef::new(topic, id)).collect()
    }

    fn ids(share: &[QueueRef]) -> Vec<u32> {
        share.iter().map(|q| q.queue_id).collect()
    }

    /// Every distinct member's share, keyed by client id.
    fn all_shares(strategy: &Strategy, members: &[Member], queues: &[QueueRef]) -> BTreeMap<String, Vec<QueueRef>> {
        members.iter().map(|m| (m.client_id.clone(), strategy.allocate(&m.client_id, members, queues))).collect()
    }

    /// Asserts that the shares partition the distinct queues.
    fn assert_partition(shares: &BTreeMap<String, Vec<QueueRef>>, queues: &[QueueRef]) {
        let mut allocated: Vec<QueueRef> = shares.values().flatten().cloned().collect();
        let total = allocated.len();
        allocated.sort();
        allocated.dedup();
        assert_eq!(allocated.len(), total, "a queue was allocated twice: {shares:?}");
        let expected: BTreeSet<QueueRef> = queues.iter().cloned().collect();
        let actual: BTreeSet<QueueRef> = allocated.into_iter().collect();
        assert_eq!(actual, expected, "allocation is not the queue set");
    }

    /// Runs `strategy` for each of `ids` over `queue_count` queues of one topic.
    fn table(strategy: &Strategy, ids_: &[&str], queue_count: u32) -> Vec<Vec<u32>> {
        let members = members(ids_);
        let queues = queues("t", queue_count);
        ids_.iter().map(|id| ids(&strategy.allocate(id, &members, &queues))).collect()
    }

    #[test]
    fn names_round_trip() {
        for name in NAMES {
            let strategy = Strategy::from_name(name).unwrap();
            assert_eq!(strategy.name(), name);
            assert_eq!(strategy.to_string(), name);
            assert_eq!(name.parse::<Strategy>().unwrap(), strategy);
        }
        assert_eq!(Strategy::from_name("consistent_hash").unwrap(), Strategy::ConsistentHash { virtual_nodes: 10 });
        assert_eq!(Strategy::default(), Strategy::Average);
    }

    #[test]
    fn unknown_name_is_invalid_argument_on_strategy() {
        for name in ["", "Average", "averagely", "hash"] {
            let err = Strategy::from_name(name).unwrap_err();
            assert!(matches!(&err, Error::InvalidArgument { field, .. } if field == "/strategy"));
            assert_eq!(err.kind(), "invalid-argument");
            assert!(name.parse::<Strategy>().is_err());
        }
    }

    #[test]
    fn average_tables() {
        let s = Strategy::Average;
        assert_eq!(table(&s, &["a", "b", "c"], 8), vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7]]);
        assert_eq!(table(&s, &["a", "b", "c", "d"], 10), vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7], vec![8, 9]]);
        assert_eq!(table(&s, &["a", "b", "c"], 9), vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7, 8]]);
        assert_eq!(table(&s, &["a", "b", "c"], 2), vec![vec![0], vec![1], vec![]]);
        assert_eq!(table(&s, &["a"], 5), vec![vec![0, 1, 2, 3, 4]]);
        assert_eq!(table(&s, &["a", "b", "c"], 0), vec![Vec::<u32>::new(); 3]);
    }

    #[test]
    fn average_by_circle_tables() {
        let s = Strategy::AverageByCircle;
        assert_eq!(table(&s, &["a", "b", "c"], 8), vec![vec![0, 3, 6], vec![1, 4, 7], vec![2, 5]]);
        assert_eq!(table(&s, &["a", "b", "c"], 2), vec![vec![0], vec![1], vec![]]);
        assert_eq!(table(&s, &["a"], 5), vec![vec![0, 1, 2, 3, 4]]);
        assert_eq!(table(&s, &["a", "b", "c"], 0), vec![Vec::<u32>::new(); 3]);
    }

    #[test]
    fn stranger_gets_nothing() {
        let queues = queues("t", 8);
        for name in NAMES {
            let s = Strategy::from_name(name).unwrap();
            assert!(s.allocate("z", &members(&["a", "b"]), &queues).is_empty());
            assert!(s.allocate("a", &[], &queues).is_empty());
        }
    }

    #[test]
    fn input_order_and_repetitions_do_not_matter() {
        let sorted = members(&["a", "b", "c"]);
        let shuffled = members(&["c", "a", "b", "a"]);
        let mut queues_shuffled = queues("t", 8);
        queues_shuffled.reverse();
        queues_shuffled.push(QueueRef::new("t", 3));
        assert_eq!(
            Strategy::Average.allocate("b", &shuffled, &queues_shuffled),
            Strategy::Average.allocate("b", &sorted, &queues("t", 8))
        );
        assert_eq!(ids(&Strategy::Average.allocate("b", &shuffled, &queues_shuffled)), vec![3, 4, 5]);
    }

    #[test]
    fn queues_of_several_topics_are_ordered_by_topic_then_id() {
        let mut queues = queues("b", 2);
        queues.extend(self::queues("a", 2));
        let share = Strategy::Average.allocate("x", &members(&["x", "y"]), &queues);
        assert_eq!(share, vec![QueueRef::new("a", 0), QueueRef::new("a", 1)]);
    }

    #[test]
    fn stable_hash_is_pinned() {
        // FNV-1a 64 reference vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        // fmix64 fixes zero; the composition must not change between releases.
        assert_eq!(fmix64(0), 0);
        assert_eq!(stable_hash("a"), fmix64(0xaf63_dc4c_8601_ec8c));
        assert_ne!(stable_hash("c-1") >> 48, stable_hash("c-2") >> 48);
    }

    #[test]
    fn consistent_hash_assigns_every_queue_once_and_spreads_them() {
        let s = Strategy::ConsistentHash { virtual_nodes: 10 };
        let members = members(&["consumer-1", "consumer-2", "consumer-3"]);
        let queues = queues("orders", 64);
        let shares = all_shares(&s, &members, &queues);
        assert_partition(&shares, &queues);
        for (id, share) in &shares {
            assert!(!share.is_empty(), "{id} got no queue out of 64");
        }
    }

    #[test]
    fn consistent_hash_moves_only_the_leavers_queues() {
        let s = Strategy::ConsistentHash { virtual_nodes: 10 };
        let before_members = members(&["c1", "c2", "c3", "c4"]);
        let after_members = members(&["c1", "c2", "c4"]);
        let queues = queues("t", 32);
        let before = all_shares(&s, &before_members, &queues);
        let after = all_shares(&s, &after_members, &queues);
        assert_partition(&after, &queues);
        for (id, share) in &after {
            for queue in &before[id] {
                assert!(share.contains(queue), "{id} lost {queue:?}");
            }
            for queue in share {
                assert!(
                    before[id].contains(queue) || before["c3"].contains(queue),
                    "{queue:?} moved to {id} though c3 did not hold it"
                );
            }
        }
    }

    #[test]
    fn consistent_hash_with_zero_virtual_nodes_uses_one() {
        let s = Strategy::ConsistentHash { virtual_nodes: 0 };
        let members = members(&["a", "b"]);
        let queues = queues("t", 16);
        assert_partition(&all_shares(&s, &members, &queues), &queues);
        let huge = Strategy::ConsistentHash { virtual_nodes: usize::MAX };
        assert_partition(&all_shares(&huge, &members, &queues), &queues);
    }

    fn two_rooms() -> Strategy {
        let queue_rooms =
            (0..4).map(|id| (id, "east".to_string())).chain((4..8).map(|id| (id, "west".to_string()))).collect();
        Strategy::MachineRoom { queue_rooms }
    }

    #[test]
    fn machine_room_keeps_queues_in_their_room() {
        let s = two_rooms();
        let members = vec![Member::in_room("e1", "east"), Member::in_room("e2", "east"), Member::in_room("w1", "west")];
        let queues = queues("t", 8);
        let table: Vec<Vec<u32>> =
            ["e1", "e2", "w1"].iter().map(|id| ids(&s.allocate(id, &members, &queues))).collect();
        assert_eq!(table, vec![vec![0, 1], vec![2, 3], vec![4, 5, 6, 7]]);
    }

    #[test]
    fn machine_room_shares_unserved_rooms_among_everyone() {
        let s = two_rooms();
        // Nobody in the west; queue 8 has no room; `x` advertises no room.
        let members = vec![Member::in_room("e1", "east"), Member::in_room("e2", "east"), Member::new("x")];
        let queues = queues("t", 9);
        let table: Vec<Vec<u32>> = ["e1", "e2", "x"].iter().map(|id| ids(&s.allocate(id, &members, &queues))).collect();
        // East: 0..4 between e1 and e2. Orphans 4..9 (five queues) among all three.
        assert_eq!(table, vec![vec![0, 1, 4, 5], vec![2, 3, 6, 7], vec![8]]);
    }

    #[test]
    fn machine_room_without_a_map_is_average() {
        let s = Strategy::from_name("machine_room").unwrap();
        assert_eq!(table(&s, &["a", "b", "c"], 8), table(&Strategy::Average, &["a", "b", "c"], 8));
    }

    fn arb_members() -> impl proptest::strategy::Strategy<Value = Vec<Member>> {
        prop::collection::vec(
            (0u8..12, prop::option::of(prop::sample::select(vec!["east", "west", "north"]))).prop_map(|(id, room)| {
                Member { client_id: format!("client-{id}"), machine_room: room.map(str::to_string) }
            }),
            0..10,
        )
    }

    fn arb_queues() -> impl proptest::strategy::Strategy<Value = Vec<QueueRef>> {
        prop::collection::vec(
            (prop::sample::select(vec!["t1", "t2"]), 0u32..24).prop_map(|(topic, id)| QueueRef::new(topic, id)),
            0..40,
        )
    }

    fn arb_strategy() -> impl proptest::strategy::Strategy<Value = Strategy> {
        prop_oneof![
            Just(Strategy::Average),
            Just(Strategy::AverageByCircle),
            (0usize..20).prop_map(|virtual_nodes| Strategy::ConsistentHash { virtual_nodes }),
            prop::collection::btree_map(
                0u32..24,
                prop::sample::select(vec!["east", "west", "south"]).prop_map(str::to_string),
                0..24,
            )
            .prop_map(|queue_rooms| Strategy::MachineRoom { queue_rooms }),
        ]
    }

    /// A list and a shuffled copy of it.
    type WithShuffled<T> = (Vec<T>, Vec<T>);

    /// Members and queues, each with a shuffled copy.
    fn arb_inputs() -> impl proptest::strategy::Strategy<Value = (WithShuffled<Member>, WithShuffled<QueueRef>)> {
        (
            arb_members().prop_flat_map(|m| (Just(m.clone()), Just(m).prop_shuffle())),
            arb_queues().prop_flat_map(|q| (Just(q.clone()), Just(q).prop_shuffle())),
        )
    }

    proptest! {
        #[test]
        fn every_queue_goes_to_exactly_one_member_whatever_the_order(
            strategy in arb_strategy(),
            ((members, members_shuffled), (queues, queues_shuffled)) in arb_inputs(),
        ) {
            let shares = all_shares(&strategy, &members, &queues);
            if members.is_empty() {
                prop_assert!(shares.is_empty());
            } else {
                assert_partition(&shares, &queues);
            }
            for (id, share) in &shares {
                prop_assert_eq!(share, &strategy.allocate(id, &members_shuffled, &queues_shuffled));
                prop_assert!(share.windows(2).all(|w| w[0] < w[1]), "share not sorted");
            }
        }

        #[test]
        fn average_and_circle_sizes_differ_by_at_most_one(
            ((members, _), (queues, _)) in arb_inputs(),
        ) {
            for strategy in [Strategy::Average, Strategy::AverageByCircle] {
                let shares = all_shares(&strategy, &members, &queues);
                let sizes: Vec<usize> = shares.values().map(Vec::len).collect();
                if let (Some(min), Some(max)) = (sizes.iter().min(), sizes.iter().max()) {
                    prop_assert!(max - min <= 1, "{} sizes {:?}", strategy, sizes);
                }
            }
        }

        #[test]
        fn consistent_hash_moves_only_queues_of_a_leaver(
            ((members, _), (queues, _)) in arb_inputs(),
            leaver in any::<prop::sample::Index>(),
            virtual_nodes in 1usize..16,
        ) {
            let distinct = normalize_members(&members);
            prop_assume!(distinct.len() >= 2);
            let gone = distinct[leaver.index(distinct.len())].client_id.clone();
            let remaining: Vec<Member> =
                members.iter().filter(|m| m.client_id != gone).cloned().collect();
            let s = Strategy::ConsistentHash { virtual_nodes };
            let before = all_shares(&s, &members, &queues);
            let after = all_shares(&s, &remaining, &queues);
            assert_partition(&after, &queues);
            for (id, share) in &after {
                for queue in share {
                    prop_assert!(before[id].contains(queue) || before[&gone].contains(queue));
                }
                for queue in &before[id] {
                    prop_assert!(share.contains(queue));
                }
            }
        }
    }
}
