//! Message filters: tag expressions and SQL92 over properties.
//!
//! A subscription carries a [`Filter`]. On a pull the broker applies it in two steps: first
//! [`Filter::may_match_hash`] on the tag hash kept in the consume queue, which skips most
//! non-matching messages without reading the commit log, then [`Filter::matches`] on the
//! message's tag and properties. This module only compiles and evaluates expressions: it knows
//! nothing of queues, groups or delivery.

mod sql;
mod tag;

use std::collections::BTreeMap;

pub use sql::SqlFilter;
pub use tag::TagFilter;

use crate::Error;

/// A compiled subscription filter.
#[derive(Clone, Debug)]
pub enum Filter {
    /// Matches every message: the tag expression `*`.
    All,
    /// Matches the messages whose tag is one of a set: `TagA || TagB`.
    Tags(TagFilter),
    /// Matches the messages for which a SQL92 expression over their properties is true.
    Sql(SqlFilter),
}

impl Filter {
    /// Parses a tag expression: `*` (or empty / whitespace) = all; `TagA`; `TagA || TagB || ...`
    /// (spaces around `||` optional, tags trimmed, empty alternatives are an error, `*` mixed
    /// with tags means all).
    pub fn tag(expression: &str) -> crate::Result<Filter> {
        Ok(match TagFilter::parse(expression)? {
            Some(tags) => Filter::Tags(tags),
            None => Filter::All,
        })
    }

    /// Parses a SQL92 expression over message properties, in RocketMQ's dialect.
    ///
    /// Supports `=`, `<>` / `!=`, `<`, `<=`, `>`, `>=` (numbers only), `[NOT] BETWEEN .. AND ..`
    /// (numbers only), `[NOT] IN ('a', ...)`, `IS [NOT] NULL`, `[NOT] CONTAINS` / `STARTSWITH` /
    /// `ENDSWITH 'text'`, `AND`, `OR`, `NOT` and parentheses; string literals in single quotes
    /// (`''` escapes a quote), integers, decimals, `TRUE`, `FALSE`. The identifier `TAGS` is the
    /// message tag unless a property has that name. Errors name the problem and its 1-based
    /// character position.
    pub fn sql(expression: &str) -> crate::Result<Filter> {
        SqlFilter::compile(expression).map(Filter::Sql)
    }

    /// Matches everything.
    pub fn all() -> Filter {
        Filter::All
    }

    /// Cheap prefilter on the consume-queue tag hash: false only when the message certainly
    /// does not match. Always true for SQL and `*`.
    pub fn may_match_hash(&self, tag_hash: u64) -> bool {
        match self {
            Filter::All | Filter::Sql(_) => true,
            Filter::Tags(tags) => tags.may_match_hash(tag_hash),
        }
    }

    /// Exact match on the message's tag and properties.
    pub fn matches(&self, tag: Option<&str>, properties: &BTreeMap<String, String>) -> bool {
        match self {
            Filter::All => true,
            Filter::Tags(tags) => tags.matches(tag),
            Filter::Sql(sql) => sql.matches(tag, properties),
        }
    }

    /// The original expression text (`*` for all), for reporting subscriptions.
    pub fn expression(&self) -> &str {
        match self {
            Filter::All => "*",
            Filter::Tags(tags) => tags.expression(),
            Filter::Sql(sql) => sql.expression(),
        }
    }

    /// True for SQL filters.
    pub fn is_sql(&self) -> bool {
        matches!(self, Filter::Sql(_))
    }
}

/// The error for an expression that does not parse.
fn invalid_filter(expression: &str, message: impl Into<String>) -> Error {
    Error::InvalidFilter {
        expression: expression.to_owned(),
        message: message.into(),
    }
}
