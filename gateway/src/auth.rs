//! Authentication and authorisation: the tokens of the `auth_file`, the [`Grants`] each one
//! carries, and the single-use WebSocket tickets that carry a token's grants to browsers.
//!
//! This module decides *whether* a request is allowed; it knows nothing of HTTP. The gateway
//! extracts the token or ticket and says which action, topic and group a route touches.
// The server wiring is in progress: until `main` uses every item, unused ones are expected.
#![cfg_attr(not(test), allow(dead_code))]

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// What a request does, for authorisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Publishing (and the topic auto-creation it causes), ending transactions.
    Publish,
    /// Receiving, acking, subscribing, lookups, and reads of topics, groups and the DLQ.
    Consume,
    /// Topic create and delete, group settings, offset resets, DLQ resend, producer
    /// registration, metrics.
    Admin,
}

impl Action {
    /// The name used in the auth file.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Consume => "consume",
            Action::Admin => "admin",
        }
    }

    fn parse(name: &str) -> Option<Action> {
        match name {
            "publish" => Some(Action::Publish),
            "consume" => Some(Action::Consume),
            "admin" => Some(Action::Admin),
            _ => None,
        }
    }

    /// This action's bit in [`Grants::actions`].
    fn bit(self) -> u8 {
        match self {
            Action::Publish => 1,
            Action::Consume => 2,
            Action::Admin => 4,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one token (or a ticket issued for it) may do: a set of actions, on topics and groups
/// matching glob patterns (`*` any run of characters, `?` one character).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grants {
    /// Bit set of [`Action::bit`].
    actions: u8,
    topics: Vec<String>,
    groups: Vec<String>,
}

impl Grants {
    /// Grants `actions` on the topics and groups matching `topics` and `groups`.
    pub fn new(actions: impl IntoIterator<Item = Action>, topics: Vec<String>, groups: Vec<String>) -> Self {
        Grants { actions: actions.into_iter().fold(0, |bits, a| bits | a.bit()), topics, groups }
    }

    /// Everything on everything: what a request gets when no `auth_file` is set.
    pub fn unrestricted() -> Self {
        Grants::new([Action::Publish, Action::Consume, Action::Admin], vec!["*".to_string()], vec!["*".to_string()])
    }

    /// Whether `action` is allowed on `topic` and `group`. A request touching a topic must match
    /// one of the topic patterns, one touching a group one of the group patterns; `None` means
    /// the request touches none.
    pub fn allows(&self, action: Action, topic: Option<&str>, group: Option<&str>) -> bool {
        self.actions & action.bit() != 0 && matches_any(&self.topics, topic) && matches_any(&self.groups, group)
    }
}

/// Whether `name` matches one of `patterns`; a request that names nothing passes.
fn matches_any(patterns: &[String], name: Option<&str>) -> bool {
    match name {
        None => true,
        Some(name) => patterns.iter().any(|pattern| glob_match(pattern, name)),
    }
}

/// Whether `text` matches the glob `pattern`, where `*` matches any run of characters (also
/// none) and `?` exactly one; every other character matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    // Checked per frame: ASCII names (nearly all) match byte by byte without collecting.
    if pattern.is_ascii() && text.is_ascii() {
        return glob(pattern.as_bytes(), text.as_bytes(), b'*', b'?');
    }
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    glob(&pattern, &text, '*', '?')
}

fn glob<T: Copy + PartialEq>(pattern: &[T], text: &[T], any_run: T, any_one: T) -> bool {
    let (mut p, mut t) = (0, 0);
    // The last `*` seen and the text position it is currently taken to stop at. On a mismatch
    // the star swallows one more character; linear backtracking suffices because a later star
    // can always absorb what an earlier one would have.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == any_one || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == any_run {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            star = Some((star_p, star_t + 1));
            p = star_p + 1;
            t = star_t + 1;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == any_run)
}

/// Why an auth file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The file could not be read.
    #[error("cannot read auth file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has fields the format does not know.
    #[error("auth file is not valid: {source}")]
    Syntax {
        /// The TOML error, with line and column.
        source: toml::de::Error,
    },
    /// One `[[tokens]]` entry is wrong.
    #[error("auth file: tokens[{index}]: {problem}")]
    Token {
        /// The entry, counting from 0 in file order.
        index: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// The file grants nothing: with it, every request would be refused.
    #[error("auth file defines no [[tokens]]")]
    NoTokens,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFile {
    #[serde(default)]
    tokens: Vec<TokenEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    token: Option<String>,
    token_sha256: Option<String>,
    #[serde(default)]
    topics: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    actions: Vec<String>,
}

type Sha256Digest = [u8; 32];

/// The tokens of an auth file: each known only by its SHA-256 digest, with its [`Grants`].
/// Omitted `topics`, `groups` or `actions` grant nothing.
#[derive(Clone)]
pub struct AuthConfig {
    tokens: Vec<(Sha256Digest, Grants)>,
}

impl fmt::Debug for AuthConfig {
    // Digests stay out of logs: they are as good as the token to an offline guesser.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig").field("tokens", &self.tokens.len()).finish()
    }
}

impl AuthConfig {
    /// Reads and parses the auth file at `path`.
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| AuthError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text)
    }

    /// Parses the text of an auth file: `[[tokens]]` entries, each with `token` or
    /// `token_sha256` (lower-case hex SHA-256 of the token), `topics`, `groups` and `actions`.
    pub fn parse(text: &str) -> Result<Self, AuthError> {
        let file: AuthFile = toml::from_str(text).map_err(|source| AuthError::Syntax { source })?;
        if file.tokens.is_empty() {
            return Err(AuthError::NoTokens);
        }
        let mut tokens: Vec<(Sha256Digest, Grants)> = Vec::with_capacity(file.tokens.len());
        for (index, entry) in file.tokens.into_iter().enumerate() {
            let problem = |problem: String| AuthError::Token { index, problem };
            let digest = match (entry.token, entry.token_sha256) {
                (Some(token), None) if token.is_empty() => return Err(problem("`token` is empty".into())),
                (Some(token), None) => sha256(&token),
                (None, Some(hex)) => parse_sha256_hex(&hex)
                    .ok_or_else(|| problem("`token_sha256` must be 64 lower-case hex digits".into()))?,
                (None, None) => return Err(problem("missing `token` or `token_sha256`".into())),
                (Some(_), Some(_)) => return Err(problem("has both `token` and `token_sha256`; give one".into())),
            };
            if let Some(earlier) = tokens.iter().position(|(d, _)| *d == digest) {
                return Err(problem(format!("the same token as tokens[{earlier}]")));
            }
            let actions = entry
                .actions
                .iter()
                .map(|name| {
                    Action::parse(name)
                        .ok_or_else(|| problem(format!("unknown action `{name}` (expected publish, consume or admin)")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            tokens.push((digest, Grants::new(actions, entry.topics, entry.groups)));
        }
        Ok(AuthConfig { tokens })
    }

    /// The grants of `token`, or `None` if the file does not know it. Compares digests in
    /// constant time and always looks at every entry, so timing reveals neither how much of a
    /// guess was right nor which entry matched.
    pub fn authenticate(&self, token: &str) -> Option<Grants> {
        let presented = sha256(token);
        let mut found = None;
        for (digest, grants) in &self.tokens {
            if constant_time_eq(digest, &presented) && found.is_none() {
                found = Some(grants);
            }
        }
        found.cloned()
    }
}

fn sha256(text: &str) -> Sha256Digest {
    Sha256::digest(text.as_bytes()).into()
}

/// Decodes exactly 64 lower-case hex digits.
fn parse_sha256_hex(hex: &str) -> Option<Sha256Digest> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(bytes.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(digest)
}

/// Equality that takes the same time whichever bytes differ.
fn constant_time_eq(a: &Sha256Digest, b: &Sha256Digest) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keeps the optimiser from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Fewest live tickets before a prune is worth its scan.
const PRUNE_MIN: usize = 64;

/// Single-use WebSocket tickets: a browser cannot set headers on a WebSocket, so it trades its
/// token for a short-lived ticket (`POST /v1/ws/tickets`) and passes it as `?ticket=`. A ticket
/// carries the grants it was issued with and works once.
#[derive(Debug, Default)]
pub struct TicketStore {
    inner: Mutex<Tickets>,
}

#[derive(Debug, Default)]
struct Tickets {
    live: HashMap<String, Issued>,
    /// Prune expired tickets when `live` reaches this size, so that tickets issued and never
    /// redeemed cannot pile up, while a prune scan stays amortised O(1) per issue.
    prune_at: usize,
}

#[derive(Debug)]
struct Issued {
    grants: Grants,
    expires_at_ms: u64,
}

impl TicketStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Issues a ticket carrying `grants`, valid for `ttl`. Returns the ticket (43 URL-safe
    /// characters encoding 32 random bytes) and its expiry in epoch milliseconds.
    pub fn issue(&self, grants: Grants, ttl: Duration) -> (String, u64) {
        self.issue_at(grants, ttl, now_ms())
    }

    /// Redeems `ticket`: its grants if it is live, and it is gone either way. An expired,
    /// already redeemed or unknown ticket gives `None`.
    pub fn redeem(&self, ticket: &str) -> Option<Grants> {
        self.redeem_at(ticket, now_ms())
    }

    /// Tickets held, expired ones not yet pruned included.
    pub fn len(&self) -> usize {
        self.lock().live.len()
    }

    /// Whether no ticket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn issue_at(&self, grants: Grants, ttl: Duration, now_ms: u64) -> (String, u64) {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let expires_at_ms = now_ms.saturating_add(ttl_ms);
        let ticket = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let mut tickets = self.lock();
        if tickets.live.len() >= tickets.prune_at {
            tickets.live.retain(|_, issued| issued.expires_at_ms > now_ms);
            tickets.prune_at = (tickets.live.len() * 2).max(PRUNE_MIN);
        }
        tickets.live.insert(ticket.clone(), Issued { grants, expires_at_ms });
        (ticket, expires_at_ms)
    }

    fn redeem_at(&self, ticket: &str, now_ms: u64) -> Option<Grants> {
        let issued = self.lock().live.remove(ticket)?;
        (issued.expires_at_ms > now_ms).then_some(issued.grants)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tickets> {
        // The map stays consistent even if a holder panicked: every critical section is a
        // single insert, remove or retain.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
        [[tokens]]
        token = "s3cret"
        topics = ["orders-*"]
        groups = ["billing"]
        actions = ["publish", "consume"]

        [[tokens]]
        # sha256("admin-token")
        token_sha256 = "HASH"
        topics = ["*"]
        groups = ["*"]
        actions = ["admin"]
    "#;

    fn hex(digest: &Sha256Digest) -> String {
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn config() -> AuthConfig {
        let text = FILE.replace("HASH", &hex(&sha256("admin-token")));
        AuthConfig::parse(&text).expect("valid auth file")
    }

    fn parse_err(text: &str) -> String {
        AuthConfig::parse(text).expect_err("should be refused").to_string()
    }

    #[test]
    fn token_and_token_sha256_both_authenticate() {
        let auth = config();
        let user = auth.authenticate("s3cret").expect("plain token");
        assert!(user.allows(Action::Publish, Some("orders-eu"), None));
        let admin = auth.authenticate("admin-token").expect("hashed token");
        assert!(admin.allows(Action::Admin, Some("anything"), Some("any")));
        assert!(!admin.allows(Action::Publish, Some("anything"), None));
    }

    #[test]
    fn wrong_token_is_refused() {
        let auth = config();
        for wrong in ["", "s3cre", "s3cret ", "S3CRET", "admin-token\n"] {
            assert!(auth.authenticate(wrong).is_none(), "{wrong:?}");
        }
        // The digest itself is not a token.
        assert!(auth.authenticate(&hex(&sha256("admin-token"))).is_none());
    }

    #[test]
    fn actions_topics_and_groups_are_checked() {
        let user = config().authenticate("s3cret").expect("known");
        assert!(user.allows(Action::Publish, Some("orders-1"), None));
        assert!(user.allows(Action::Consume, Some("orders-1"), Some("billing")));
        assert!(user.allows(Action::Consume, None, Some("billing")));
        assert!(user.allows(Action::Consume, None, None));
        assert!(!user.allows(Action::Admin, None, None), "no admin");
        assert!(!user.allows(Action::Publish, Some("payments"), None), "topic");
        assert!(!user.allows(Action::Consume, Some("orders-1"), Some("audit")), "group");
        assert!(!user.allows(Action::Consume, Some("orders"), Some("billing")), "prefix");
    }

    #[test]
    fn omitted_lists_grant_nothing() {
        let auth = AuthConfig::parse("[[tokens]]\ntoken = \"t\"\n").expect("valid");
        let grants = auth.authenticate("t").expect("known");
        for action in [Action::Publish, Action::Consume, Action::Admin] {
            assert!(!grants.allows(action, None, None), "{action}");
        }
        let grants = Grants::new([Action::Consume], Vec::new(), Vec::new());
        assert!(grants.allows(Action::Consume, None, None));
        assert!(!grants.allows(Action::Consume, Some("t"), None));
        assert!(!grants.allows(Action::Consume, None, Some("g")));
    }

    #[test]
    fn unrestricted_allows_everything() {
        let all = Grants::unrestricted();
        for action in [Action::Publish, Action::Consume, Action::Admin] {
            assert!(all.allows(action, Some("t"), Some("g")));
            assert!(all.allows(action, Some(""), None));
            assert!(all.allows(action, None, None));
        }
    }

    #[test]
    fn glob_matching() {
        for (pattern, text, expected) in [
            ("*", "", true),
            ("*", "anything", true),
            ("", "", true),
            ("", "a", false),
            ("orders", "orders", true),
            ("orders", "orders2", false),
            ("orders-*", "orders-", true),
            ("orders-*", "orders-eu", true),
            ("orders-*", "orders", false),
            ("orders-*", "xorders-eu", false),
            ("*-dlq", "billing-dlq", true),
            ("*-dlq", "billing-dlq2", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("a*b*c", "acbc", true),
            ("*a*", "bab", true),
            ("**", "x", true),
            ("?", "x", true),
            ("?", "", false),
            ("?", "xy", false),
            ("t?p", "top", true),
            ("t?p", "tp", false),
            ("??-*", "eu-orders", true),
            ("é?", "éü", true),
            ("?", "é", true),
            ("o?", "oé", true),
            ("*x", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
            ("a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
        ] {
            assert_eq!(glob_match(pattern, text), expected, "{pattern:?} vs {text:?}");
        }
    }

    #[test]
    fn malformed_files_name_the_problem() {
        let err = parse_err("[[tokens]]\ntopics = [\"*\"]\n");
        assert!(err.contains("tokens[0]") && err.contains("missing `token`"), "{err}");

        let err = parse_err(
            "[[tokens]]\ntoken = \"a\"\nactions = [\"publish\"]\n\
             [[tokens]]\ntoken = \"b\"\nactions = [\"publish\", \"write\"]\n",
        );
        assert!(err.contains("tokens[1]") && err.contains("unknown action `write`"), "{err}");

        let err = parse_err("[[tokens]]\ntoken = \"a\"\ntoken_sha256 = \"00\"\n");
        assert!(err.contains("both"), "{err}");

        let err = parse_err("[[tokens]]\ntoken_sha256 = \"ABC\"\n");
        assert!(err.contains("64 lower-case hex"), "{err}");
        let upper = hex(&sha256("x")).to_uppercase();
        let err = parse_err(&format!("[[tokens]]\ntoken_sha256 = \"{upper}\"\n"));
        assert!(err.contains("64 lower-case hex"), "{err}");

        let err = parse_err("[[tokens]]\ntoken = \"\"\n");
        assert!(err.contains("empty"), "{err}");

        let err = parse_err("[[tokens]]\ntoken = \"a\"\n[[tokens]]\ntoken = \"a\"\n");
        assert!(err.contains("same token as tokens[0]"), "{err}");

        let err = parse_err("[[tokens]]\ntoken = \"a\"\ntopic = [\"*\"]\n");
        assert!(err.contains("topic"), "{err}");

        assert!(matches!(AuthConfig::parse(""), Err(AuthError::NoTokens)));
        assert!(matches!(AuthConfig::parse("tokens = 3"), Err(AuthError::Syntax { .. })));
    }

    #[test]
    fn load_reads_a_file_and_reports_a_missing_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("auth.toml");
        std::fs::write(&path, "[[tokens]]\ntoken = \"t\"\nactions = [\"admin\"]\n").expect("write");
        let auth = AuthConfig::load(&path).expect("valid");
        assert!(auth.authenticate("t").is_some());
        assert!(!format!("{auth:?}").contains(&hex(&sha256("t"))));

        let err = AuthConfig::load(&dir.path().join("missing.toml")).expect_err("missing");
        assert!(matches!(err, AuthError::Read { .. }));
    }

    #[test]
    fn tickets_are_single_use() {
        let store = TicketStore::new();
        let grants = Grants::new([Action::Consume], vec!["t".into()], vec!["g".into()]);
        let (ticket, expires_at) = store.issue(grants.clone(), Duration::from_secs(60));
        assert_eq!(ticket.len(), 43);
        assert!(ticket.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert!(expires_at > now_ms());

        let (other, _) = store.issue(grants.clone(), Duration::from_secs(60));
        assert_ne!(ticket, other, "tickets are random");

        assert_eq!(store.redeem(&ticket), Some(grants));
        assert_eq!(store.redeem(&ticket), None, "second use");
        assert_eq!(store.redeem("not-a-ticket"), None);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn tickets_expire() {
        let store = TicketStore::new();
        let (ticket, expires_at) = store.issue_at(Grants::unrestricted(), Duration::from_millis(1_000), 5_000);
        assert_eq!(expires_at, 6_000);
        assert_eq!(store.redeem_at(&ticket, 6_000), None, "expired at its deadline");
        assert!(store.is_empty(), "an expired ticket is removed when tried");

        let (ticket, _) = store.issue_at(Grants::unrestricted(), Duration::from_millis(1_000), 5_000);
        assert!(store.redeem_at(&ticket, 5_999).is_some());
    }

    #[test]
    fn expired_tickets_are_pruned() {
        let store = TicketStore::new();
        for _ in 0..PRUNE_MIN {
            store.issue_at(Grants::unrestricted(), Duration::from_millis(10), 0);
        }
        assert_eq!(store.len(), PRUNE_MIN);
        let (live, _) = store.issue_at(Grants::unrestricted(), Duration::from_secs(1), 1_000);
        assert_eq!(store.len(), 1, "the expired ones are gone");
        assert!(store.redeem_at(&live, 1_001).is_some());
    }

    #[test]
    fn tickets_work_across_threads() {
        let store = std::sync::Arc::new(TicketStore::new());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..50).map(|_| store.issue(Grants::unrestricted(), Duration::from_secs(60)).0).collect::<Vec<_>>()
                })
            })
            .collect();
        let tickets: Vec<String> = handles.into_iter().flat_map(|h| h.join().expect("thread")).collect();
        assert_eq!(store.len(), 200);
        assert!(tickets.iter().all(|t| store.redeem(t).is_some()));
        assert!(store.is_empty());
    }
}
