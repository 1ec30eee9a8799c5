//! SQL92 filter expressions over message properties, in RocketMQ's dialect.
//!
//! The text goes through a hand-written [`lexer`] and a recursive-descent [`parser`] into a
//! small tree that [`eval`] walks for each message with three-valued logic. The parser bounds
//! nesting (parentheses and `NOT`) so hostile input cannot overflow the stack, and chains of
//! `AND` / `OR` are kept flat so their length does not deepen the tree.

mod eval;
mod lexer;
mod parser;

use std::collections::BTreeMap;

use super::invalid_filter;
use crate::Result;

/// A compiled SQL92 filter over a message's properties (and its tag, as `TAGS`).
///
/// Built by [`Filter::sql`](super::Filter::sql). A message matches when the expression is
/// true; false and unknown (a missing or non-numeric property) both mean no match.
#[derive(Clone, Debug)]
pub struct SqlFilter {
    /// The expression as given, for reporting the subscription.
    expression: String,
    /// The parsed expression.
    root: Expr,
}

impl SqlFilter {
    /// Lexes and parses `expression`; every failure is an [`Error::InvalidFilter`](crate::Error::InvalidFilter).
    pub(super) fn compile(expression: &str) -> Result<SqlFilter> {
        let tokens = lexer::tokenize(expression).map_err(|m| invalid_filter(expression, m))?;
        let root = parser::parse(&tokens).map_err(|m| invalid_filter(expression, m))?;
        Ok(SqlFilter { expression: expression.to_owned(), root })
    }

    /// The expression as given.
    pub(super) fn expression(&self) -> &str {
        &self.expression
    }

    /// True when the expression evaluates to true for this message.
    pub(super) fn matches(&self, tag: Option<&str>, properties: &BTreeMap<String, String>) -> bool {
        eval::evaluate(&self.root, tag, properties) == eval::Truth::True
    }
}

/// A node of a parsed expression.
#[derive(Clone, Debug)]
enum Expr {
    /// All of them (at least two).
    And(Vec<Expr>),
    /// Any of them (at least two).
    Or(Vec<Expr>),
    /// Negation; unknown stays unknown.
    Not(Box<Expr>),
    /// `TRUE` or `FALSE` on its own.
    Constant(bool),
    /// `left op right`.
    Compare { left: Operand, op: CompareOp, right: Operand },
    /// `operand [NOT] BETWEEN low AND high`, bounds inclusive.
    Between { operand: Operand, low: Operand, high: Operand, negated: bool },
    /// `operand [NOT] IN ('a', 2, ...)`: string and numeric literals, each compared as `=`
    /// compares.
    In { operand: Operand, list: Vec<Operand>, negated: bool },
    /// `operand IS [NOT] NULL`.
    IsNull { operand: Operand, negated: bool },
    /// `operand [NOT] CONTAINS|STARTSWITH|ENDSWITH 'text'`.
    Text { operand: Operand, op: TextOp, pattern: String, negated: bool },
}

/// One side of a comparison.
#[derive(Clone, Debug)]
enum Operand {
    /// A property name; `TAGS` falls back to the message tag.
    Property(String),
    /// A constant.
    Literal(Literal),
}

/// A constant in the expression.
#[derive(Clone, Debug)]
enum Literal {
    /// `'text'`.
    Str(String),
    /// `42`, `-7`.
    Int(i64),
    /// `1.5`, `-2e3`.
    Float(f64),
    /// `TRUE`, `FALSE`.
    Bool(bool),
}

/// Binary comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    /// True for the operators RocketMQ allows on numbers only.
    fn is_ordering(self) -> bool {
        matches!(self, CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge)
    }

    /// The operator as written, for messages.
    fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "<>",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

/// String operators (RocketMQ extensions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TextOp {
    Contains,
    StartsWith,
    EndsWith,
}
