//! Tag expressions: `*`, `TagA`, `TagA || TagB || ...`.

use std::collections::BTreeSet;

use super::invalid_filter;
use crate::store::tag_hash;
use crate::Result;

/// A filter that accepts the messages whose tag is one of a fixed set.
///
/// Built by [`Filter::tag`](super::Filter::tag). It keeps the tags themselves for the exact
/// match and their hashes for the consume-queue prefilter, so a pull can skip a message without
/// reading it from the commit log.
#[derive(Clone, Debug)]
pub struct TagFilter {
    /// The expression as given, for reporting the subscription.
    expression: String,
    /// The accepted tags, trimmed and deduplicated. Never empty.
    tags: BTreeSet<String>,
    /// `tag_hash` of every accepted tag.
    hashes: BTreeSet<u64>,
}

impl TagFilter {
    /// Parses a tag expression; `Ok(None)` means "all messages" (`*`, empty, or `*` among tags).
    pub(super) fn parse(expression: &str) -> Result<Option<TagFilter>> {
        let trimmed = expression.trim();
        if trimmed.is_empty() || trimmed == "*" {
            return Ok(None);
        }
        let mut tags = BTreeSet::new();
        let mut all = false;
        // Every alternative is validated, even after a `*`, so that typos are reported.
        for (index, alternative) in trimmed.split("||").enumerate() {
            let tag = alternative.trim();
            if tag.is_empty() {
                return Err(invalid_filter(
                    expression,
                    format!("tag alternative {} is empty (dangling '||'?)", index + 1),
                ));
            }
            if tag.contains('|') {
                return Err(invalid_filter(expression, format!("tag {tag:?} contains '|'; separate tags with '||'")));
            }
            if tag == "*" {
                all = true;
            } else {
                tags.insert(tag.to_owned());
            }
        }
        if all {
            return Ok(None);
        }
        let hashes = tags.iter().map(|tag| tag_hash(tag)).collect();
        Ok(Some(TagFilter { expression: expression.to_owned(), tags, hashes }))
    }

    /// The accepted tags, in sorted order.
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.tags.iter().map(String::as_str)
    }

    /// The expression as given.
    pub(super) fn expression(&self) -> &str {
        &self.expression
    }

    /// False only when no accepted tag has this hash (hash 0 = no tag never matches).
    pub(super) fn may_match_hash(&self, tag_hash: u64) -> bool {
        self.hashes.contains(&tag_hash)
    }

    /// True when the message has one of the accepted tags, compared exactly.
    pub(super) fn matches(&self, tag: Option<&str>) -> bool {
        tag.is_some_and(|tag| self.tags.contains(tag))
    }
}
