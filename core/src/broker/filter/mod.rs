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
    ///
    /// # Errors
    ///
    /// [`Error::InvalidFilter`] for an empty alternative (`TagA ||`) or a tag containing `|`.
    pub fn tag(expression: &str) -> crate::Result<Filter> {
        Ok(match TagFilter::parse(expression)? {
            Some(tags) => Filter::Tags(tags),
            None => Filter::All,
        })
    }

    /// Parses a SQL92 expression over message properties, in RocketMQ's dialect.
    ///
    /// Supports `=`, `<>` / `!=`, `<`, `<=`, `>`, `>=` (numbers only), `[NOT] BETWEEN .. AND ..`
    /// (numbers only), `[NOT] IN ('a', 2, ...)`, `IS [NOT] NULL`, `[NOT] CONTAINS` / `STARTSWITH` /
    /// `ENDSWITH 'text'`, `AND`, `OR`, `NOT` and parentheses; string literals in single quotes
    /// (`''` escapes a quote), integers, decimals, `TRUE`, `FALSE`. The identifier `TAGS` is the
    /// message tag unless a property has that name. Errors name the problem and its 1-based
    /// character position.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidFilter`] for an empty or malformed expression, a string or boolean
    /// literal where numbers are required, or nesting deeper than 64 levels.
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
    Error::InvalidFilter { expression: expression.to_owned(), message: message.into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn message_of(tag: Option<&str>, pairs: &[(&str, &str)]) -> (Option<String>, BTreeMap<String, String>) {
        (tag.map(str::to_owned), props(pairs))
    }

    /// Tag expression, message tag, expected match.
    const TAG_CASES: &[(&str, Option<&str>, bool)] = &[
        ("*", Some("TagA"), true),
        ("*", None, true),
        ("", None, true),
        ("   ", Some("x"), true),
        ("TagA", Some("TagA"), true),
        ("TagA", Some("TagB"), false),
        ("TagA", None, false),
        ("TagA", Some("taga"), false),
        (" TagA ", Some("TagA"), true),
        ("TagA || TagB", Some("TagB"), true),
        ("TagA||TagB", Some("TagA"), true),
        ("TagA||TagB", Some("TagC"), false),
        ("TagA || TagB || TagC", Some("TagC"), true),
        ("TagA || *", Some("Other"), true),
        ("TagA || *", None, true),
        ("TagA || TagA", Some("TagA"), true),
        ("Tag A", Some("Tag A"), true),
    ];

    #[test]
    fn tag_expressions_match_as_expected() {
        for &(expression, tag, expected) in TAG_CASES {
            let filter = Filter::tag(expression).expect(expression);
            assert_eq!(filter.matches(tag, &BTreeMap::new()), expected, "{expression:?} on {tag:?}");
            assert!(!filter.is_sql());
            // The prefilter must never reject a message the exact match accepts.
            if expected {
                let hash = tag.map_or(0, crate::store::tag_hash);
                assert!(filter.may_match_hash(hash), "{expression:?} prefilter on {tag:?}");
            }
        }
    }

    #[test]
    fn tag_prefilter_uses_tag_hashes() {
        let filter = Filter::tag("TagA || TagB").expect("parses");
        assert!(filter.may_match_hash(crate::store::tag_hash("TagA")));
        assert!(filter.may_match_hash(crate::store::tag_hash("TagB")));
        assert!(!filter.may_match_hash(crate::store::tag_hash("TagC")));
        assert!(!filter.may_match_hash(0), "messages without a tag have hash 0");
        assert!(Filter::all().may_match_hash(0));
        assert!(Filter::sql("a = 1").expect("parses").may_match_hash(12345));
    }

    #[test]
    fn expression_reports_the_original_text() {
        assert_eq!(Filter::all().expression(), "*");
        assert_eq!(Filter::tag("").expect("parses").expression(), "*");
        assert_eq!(Filter::tag("TagA || *").expect("parses").expression(), "*");
        assert_eq!(Filter::tag("TagA || TagB").expect("parses").expression(), "TagA || TagB");
        let sql = Filter::sql("a > 1 AND b = 'x'").expect("parses");
        assert_eq!(sql.expression(), "a > 1 AND b = 'x'");
        assert!(sql.is_sql());
        assert!(matches!(Filter::tag("*"), Ok(Filter::All)));
        let Ok(Filter::Tags(tags)) = Filter::tag("B || A || B") else { panic!("expected tags") };
        assert_eq!(tags.tags().collect::<Vec<_>>(), ["A", "B"]);
    }

    /// SQL expression, message tag, message properties, expected match.
    type SqlCase = (&'static str, Option<&'static str>, &'static [(&'static str, &'static str)], bool);

    const SQL_CASES: &[SqlCase] = &[
        // Equality on strings is exact.
        ("color = 'red'", None, &[("color", "red")], true),
        ("color = 'red'", None, &[("color", "Red")], false),
        ("color = 'red'", None, &[], false),
        ("color <> 'red'", None, &[("color", "blue")], true),
        ("color != 'red'", None, &[("color", "red")], false),
        ("color <> 'red'", None, &[], false),
        ("name = 'O''Brien'", None, &[("name", "O'Brien")], true),
        ("'red' = color", None, &[("color", "red")], true),
        // Numbers: the property is read as a number.
        ("price > 10", None, &[("price", "11")], true),
        ("price > 10", None, &[("price", "10")], false),
        ("price >= 10", None, &[("price", "10")], true),
        ("price < 10.5", None, &[("price", "10.4")], true),
        ("price <= -1", None, &[("price", "-1")], true),
        ("price = 5", None, &[("price", "5.0")], true),
        ("price = 5", None, &[("price", "05")], true),
        ("price > 10", None, &[("price", "abc")], false),
        ("price > 10", None, &[], false),
        ("10 < price", None, &[("price", "11")], true),
        ("price > 1e3", None, &[("price", "1001")], true),
        ("price > 1.5", None, &[("price", "1.25e1")], true),
        ("a < b", None, &[("a", "9"), ("b", "10")], true),
        ("a = b", None, &[("a", "x"), ("b", "x")], true),
        ("price > 10", None, &[("price", "inf")], false),
        ("n = -9223372036854775808", None, &[("n", "-9223372036854775808")], true),
        // BETWEEN is inclusive.
        ("price BETWEEN 1 AND 5", None, &[("price", "1")], true),
        ("price BETWEEN 1 AND 5", None, &[("price", "5")], true),
        ("price BETWEEN 1 AND 5", None, &[("price", "6")], false),
        ("price NOT BETWEEN 1 AND 5", None, &[("price", "6")], true),
        ("price NOT BETWEEN 1 AND 5", None, &[], false),
        ("price between 1 and 5 and color = 'red'", None, &[("price", "3"), ("color", "red")], true),
        // IN.
        ("region IN ('eu', 'us')", None, &[("region", "us")], true),
        ("region IN ('eu', 'us')", None, &[("region", "asia")], false),
        ("region NOT IN ('eu', 'us')", None, &[("region", "asia")], true),
        ("region NOT IN ('eu', 'us')", None, &[], false),
        // Numeric literals compare as `=` does: the property read as a number.
        ("n IN (5, 15)", None, &[("n", "15")], true),
        ("n IN (5, 15)", None, &[("n", "15.0")], true),
        ("n IN (5, 15)", None, &[("n", "7")], false),
        ("n IN (-1.5, 'x')", None, &[("n", "-1.5")], true),
        ("n IN (-1.5, 'x')", None, &[("n", "x")], true),
        ("n NOT IN (5, 15)", None, &[("n", "7")], true),
        ("n IN (5, 15)", None, &[("n", "abc")], false),
        ("n NOT IN (5, 15)", None, &[("n", "abc")], false),
        // IS NULL.
        ("region IS NULL", None, &[], true),
        ("region IS NULL", None, &[("region", "")], false),
        ("region IS NOT NULL", None, &[("region", "")], true),
        // Boolean logic and precedence: NOT > AND > OR.
        ("a = 1 OR b = 1 AND c = 1", None, &[("a", "1")], true),
        ("(a = 1 OR b = 1) AND c = 1", None, &[("a", "1")], false),
        ("NOT a = 1", None, &[("a", "2")], true),
        ("NOT a = 1 AND b = 1", None, &[("a", "2"), ("b", "1")], true),
        ("NOT (a = 1 AND b = 1)", None, &[("a", "1"), ("b", "2")], true),
        ("NOT NOT a = 1", None, &[("a", "1")], true),
        // Unknown stays unknown under NOT, and OR with true is true.
        ("NOT (price > 10)", None, &[], false),
        ("NOT (price > 10)", None, &[("price", "abc")], false),
        ("price > 10 OR color = 'red'", None, &[("color", "red")], true),
        ("price > 10 AND color = 'red'", None, &[("color", "red")], false),
        ("NOT (price > 10 AND color = 'blue')", None, &[("color", "red")], true),
        // Keywords are case-insensitive; property names are not.
        ("a = 1 and NOT b is null", None, &[("a", "1"), ("b", "x")], true),
        ("A = 1", None, &[("a", "1")], false),
        ("x.y_z = 'ok'", None, &[("x.y_z", "ok")], true),
        // Booleans.
        ("TRUE", None, &[], true),
        ("FALSE OR flag = TRUE", None, &[("flag", "true")], true),
        ("flag = FALSE", None, &[("flag", "False")], true),
        ("flag = TRUE", None, &[("flag", "yes")], false),
        // TAGS is the message tag unless a property has that name.
        ("TAGS = 'TagA'", Some("TagA"), &[], true),
        ("TAGS IN ('TagA', 'TagB')", Some("TagB"), &[], true),
        ("TAGS = 'TagA'", None, &[], false),
        ("TAGS IS NULL", None, &[], true),
        ("TAGS = 'TagA'", Some("TagA"), &[("TAGS", "other")], false),
        // String operators.
        ("name CONTAINS 'rus'", None, &[("name", "ferrust")], true),
        ("name STARTSWITH 'fer'", None, &[("name", "ferrust")], true),
        ("name ENDSWITH 'fer'", None, &[("name", "ferrust")], false),
        ("name NOT CONTAINS 'x'", None, &[("name", "ferrust")], true),
        ("name NOT CONTAINS 'x'", None, &[], false),
    ];

    #[test]
    fn sql_expressions_match_as_expected() {
        for &(expression, tag, pairs, expected) in SQL_CASES {
            let filter = Filter::sql(expression).unwrap_or_else(|e| panic!("{expression:?}: {e}"));
            let (tag, properties) = message_of(tag, pairs);
            assert_eq!(
                filter.matches(tag.as_deref(), &properties),
                expected,
                "{expression:?} on tag {tag:?}, properties {properties:?}"
            );
        }
    }

    /// Expression, and a piece the error message must contain.
    const BAD_SQL: &[(&str, &str)] = &[
        ("", "empty SQL expression"),
        ("   ", "empty SQL expression"),
        ("(a = 1", "missing ')' to close '(' at position 1"),
        ("a = 1)", "unexpected ')' at position 6"),
        ("((a = 1) AND b = 2", "missing ')'"),
        ("()", "unexpected ')' at position 2"),
        ("a =", "unexpected end of expression"),
        ("a = 1 AND", "unexpected end of expression"),
        ("OR a = 1", "unexpected 'OR' at position 1"),
        ("a = 1 b = 2", "unexpected identifier 'b' at position 7"),
        ("a = = 1", "unexpected '=' at position 5"),
        ("a == 1", "unexpected '=' at position 4"),
        ("a", "expected a comparison after identifier 'a' at position 1"),
        ("NOT", "unexpected end of expression"),
        ("a = 'abc", "unterminated string literal starting at position 5"),
        ("a = 'it''s", "unterminated string literal"),
        ("a = \"abc\"", "single quotes"),
        ("a = 1.2.3", "malformed number"),
        ("a = 12abc", "malformed number '12a' at position 5"),
        ("a = 1e", "exponent has no digits"),
        ("a = 99999999999999999999", "out of range"),
        ("a = 1e999", "out of range"),
        ("a = - b", "expected a number after '-' at position 5"),
        ("a # 1", "unexpected character '#' at position 3"),
        ("a ! 1", "unexpected character '!' at position 3"),
        ("a > 'x'", "operator '>' at position 3 compares numbers only, but found a string literal at position 5"),
        ("a <= TRUE", "compares numbers only"),
        ("a BETWEEN 1 5", "BETWEEN at position 3 expects AND after its lower bound"),
        ("a BETWEEN 1", "expects AND"),
        ("a BETWEEN 'a' AND 'z'", "compares numbers only"),
        ("a BETWEEN 1 AND", "unexpected end of expression"),
        ("a IN ()", "empty IN list at position 3"),
        ("a IN 'x'", "expected '(' after IN"),
        ("a IN ('x',)", "accepts only string and numeric literals, found ')'"),
        ("a IN ('x' 'y')", "expected ',' or ')'"),
        ("a IN (TRUE)", "accepts only string and numeric literals, found 'TRUE'"),
        ("a IN (b)", "accepts only string and numeric literals, found"),
        ("a IN ('x'", "expected ',' or ')' in IN list at position 3, found the end"),
        ("a = NULL", "NULL at position 5 is only allowed in IS NULL"),
        ("a IS 1", "expected NULL after IS"),
        ("a NOT = 1", "expected BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH after NOT"),
        ("a CONTAINS 1", "CONTAINS at position 3 expects a string literal"),
        ("a = 1 AND AND b = 2", "unexpected 'AND' at position 11"),
        ("a = 1 OR", "unexpected end of expression"),
    ];

    #[test]
    fn malformed_sql_is_an_invalid_filter_error() {
        for &(expression, needle) in BAD_SQL {
            match Filter::sql(expression) {
                Err(Error::InvalidFilter { expression: reported, message }) => {
                    assert_eq!(reported, expression);
                    assert!(message.contains(needle), "{expression:?}: {message:?} lacks {needle:?}");
                }
                other => panic!("{expression:?} should not parse, got {other:?}"),
            }
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |depth: usize| format!("{}a = 1{}", "(".repeat(depth), ")".repeat(depth));
        assert!(Filter::sql(&nested(64)).is_ok());
        let Err(Error::InvalidFilter { message, .. }) = Filter::sql(&nested(65)) else {
            panic!("65 levels must be refused")
        };
        assert!(message.contains("nests deeper than 64"), "{message}");
        assert!(Filter::sql(&nested(100_000)).is_err());
        assert!(Filter::sql(&format!("{}a = 1", "NOT ".repeat(100_000))).is_err());
        assert!(Filter::sql(&format!("{}a = 1", "NOT ".repeat(64))).is_ok());
        // Long flat chains are not nesting.
        let chain = vec!["a = 1"; 50_000].join(" AND ");
        let filter = Filter::sql(&chain).expect("a long chain parses");
        assert!(filter.matches(None, &props(&[("a", "1")])));
    }

    #[test]
    fn malformed_tags_are_an_invalid_filter_error() {
        for expression in ["TagA ||", "|| TagA", "TagA || || TagB", "TagA ||| TagB", "TagA | TagB", "||"] {
            assert!(
                matches!(Filter::tag(expression), Err(Error::InvalidFilter { .. })),
                "{expression:?} should not parse"
            );
        }
    }

    #[test]
    fn error_kind_is_invalid_filter() {
        let error = Filter::sql("a =").expect_err("does not parse");
        assert_eq!(error.kind(), "invalid-filter");
    }

    /// Pieces of SQL, so that random expressions get past the lexer often.
    fn sql_piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "a",
            "b",
            "TAGS",
            "'x'",
            "''",
            "'",
            "1",
            "-",
            "2.5",
            "1e3",
            "(",
            ")",
            ",",
            "=",
            "<>",
            "!=",
            "<",
            "<=",
            ">",
            ">=",
            "AND",
            "OR",
            "NOT",
            "BETWEEN",
            "IN",
            "IS",
            "NULL",
            "TRUE",
            "FALSE",
            "CONTAINS",
            "STARTSWITH",
            "ENDSWITH",
            " ",
            "é",
            "\"",
            "||",
            "*",
        ])
    }

    proptest! {
        #[test]
        fn random_text_never_panics(text in any::<String>(), value in ".{0,8}") {
            let properties = props(&[("a", value.as_str()), ("b", "3")]);
            if let Ok(filter) = Filter::sql(&text) {
                let _ = filter.matches(Some(&value), &properties);
            }
            if let Ok(filter) = Filter::tag(&text) {
                let _ = filter.matches(Some(&value), &properties);
                let _ = filter.may_match_hash(0);
            }
        }

        #[test]
        fn random_sql_pieces_never_panic(
            pieces in prop::collection::vec(sql_piece(), 0..24),
            value in prop::sample::select(vec!["1", "2.5", "x", "true", "", "-3"]),
            tag in prop::option::of("[a-z]{0,3}"),
        ) {
            let text = pieces.join(" ");
            let properties = props(&[("a", value)]);
            match Filter::sql(&text) {
                Ok(filter) => { let _ = filter.matches(tag.as_deref(), &properties); }
                Err(error) => prop_assert!(
                    matches!(error, Error::InvalidFilter { .. }),
                    "unexpected error {:?}",
                    error
                ),
            }
            let joined = pieces.concat();
            if let Ok(filter) = Filter::sql(&joined) {
                let _ = filter.matches(tag.as_deref(), &properties);
            }
        }
    }
}
