//! Evaluates a parsed expression against one message, with SQL's three-valued logic.
//!
//! Property values are strings. Compared with a number they are read as a number (`i64`, else
//! `f64`); compared with `TRUE` / `FALSE` they are read as a boolean (`true` / `false`, any
//! case). A missing property, or one that does not read as the type needed, makes the
//! comparison *unknown*: unknown is not a match, and `NOT unknown` is still unknown, so
//! `NOT (price > 10)` does not match a message without a numeric `price`.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::{CompareOp, Expr, Literal, Operand, TextOp};

/// The property name that falls back to the message tag when no such property exists.
const TAGS: &str = "TAGS";

/// A truth value of three-valued logic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Truth {
    True,
    False,
    Unknown,
}

impl Truth {
    fn from_bool(value: bool) -> Truth {
        if value {
            Truth::True
        } else {
            Truth::False
        }
    }

    fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }

    /// `self` or its negation.
    fn negate_if(self, negated: bool) -> Truth {
        if negated {
            self.not()
        } else {
            self
        }
    }

    fn and(self, other: Truth) -> Truth {
        match (self, other) {
            (Truth::False, _) | (_, Truth::False) => Truth::False,
            (Truth::True, Truth::True) => Truth::True,
            _ => Truth::Unknown,
        }
    }
}

/// What a message offers to the expression.
struct Message<'m> {
    tag: Option<&'m str>,
    properties: &'m BTreeMap<String, String>,
}

/// A resolved operand.
#[derive(Clone, Copy, Debug)]
enum Value<'a> {
    Str(&'a str),
    Num(Number),
    Bool(bool),
}

/// A number, kept integral when it is.
#[derive(Clone, Copy, Debug)]
enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    fn partial_cmp(self, other: Number) -> Option<Ordering> {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }

    #[allow(clippy::cast_precision_loss)] // mixed int/float comparisons are done in f64, as in RocketMQ
    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

/// Evaluates `expr` for a message with this tag and these properties.
pub(super) fn evaluate(expr: &Expr, tag: Option<&str>, properties: &BTreeMap<String, String>) -> Truth {
    eval(expr, &Message { tag, properties })
}

fn eval(expr: &Expr, message: &Message<'_>) -> Truth {
    match expr {
        Expr::And(items) => {
            let mut result = Truth::True;
            for item in items {
                match eval(item, message) {
                    Truth::False => return Truth::False,
                    Truth::Unknown => result = Truth::Unknown,
                    Truth::True => {}
                }
            }
            result
        }
        Expr::Or(items) => {
            let mut result = Truth::False;
            for item in items {
                match eval(item, message) {
                    Truth::True => return Truth::True,
                    Truth::Unknown => result = Truth::Unknown,
                    Truth::False => {}
                }
            }
            result
        }
        Expr::Not(inner) => eval(inner, message).not(),
        Expr::Constant(value) => Truth::from_bool(*value),
        Expr::Compare { left, op, right } => match (resolve(left, message), resolve(right, message)) {
            (Some(left), Some(right)) => compare(left, *op, right),
            _ => Truth::Unknown,
        },
        Expr::Between { operand, low, high, negated } => {
            match (resolve(operand, message), resolve(low, message), resolve(high, message)) {
                (Some(value), Some(low), Some(high)) => {
                    compare(value, CompareOp::Ge, low).and(compare(value, CompareOp::Le, high)).negate_if(*negated)
                }
                _ => Truth::Unknown,
            }
        }
        // `x IN (a, b)` is `x = a OR x = b`.
        Expr::In { operand, list, negated } => match resolve(operand, message) {
            Some(value) => {
                let mut result = Truth::False;
                for item in list {
                    match resolve(item, message).map_or(Truth::Unknown, |item| compare(value, CompareOp::Eq, item)) {
                        Truth::True => return Truth::True.negate_if(*negated),
                        Truth::Unknown => result = Truth::Unknown,
                        Truth::False => {}
                    }
                }
                result.negate_if(*negated)
            }
            None => Truth::Unknown,
        },
        Expr::IsNull { operand, negated } => Truth::from_bool(resolve(operand, message).is_none()).negate_if(*negated),
        Expr::Text { operand, op, pattern, negated } => match resolve(operand, message) {
            Some(Value::Str(value)) => Truth::from_bool(match op {
                TextOp::Contains => value.contains(pattern.as_str()),
                TextOp::StartsWith => value.starts_with(pattern.as_str()),
                TextOp::EndsWith => value.ends_with(pattern.as_str()),
            })
            .negate_if(*negated),
            _ => Truth::Unknown,
        },
    }
}

/// The value of an operand; `None` for a missing property (SQL NULL).
fn resolve<'a>(operand: &'a Operand, message: &Message<'a>) -> Option<Value<'a>> {
    match operand {
        Operand::Property(name) => match message.properties.get(name) {
            Some(value) => Some(Value::Str(value)),
            None if name == TAGS => message.tag.map(Value::Str),
            None => None,
        },
        Operand::Literal(Literal::Str(value)) => Some(Value::Str(value)),
        Operand::Literal(Literal::Int(value)) => Some(Value::Num(Number::Int(*value))),
        Operand::Literal(Literal::Float(value)) => Some(Value::Num(Number::Float(*value))),
        Operand::Literal(Literal::Bool(value)) => Some(Value::Bool(*value)),
    }
}

/// Compares two values, converting strings to the other side's type; unknown if that fails.
fn compare(left: Value<'_>, op: CompareOp, right: Value<'_>) -> Truth {
    let ordering = match (left, right) {
        (Value::Str(a), Value::Str(b)) if !op.is_ordering() => Some(a.cmp(b)),
        (Value::Str(a), Value::Str(b)) => numbers(parse_number(a), parse_number(b)),
        (Value::Str(a), Value::Num(b)) => numbers(parse_number(a), Some(b)),
        (Value::Num(a), Value::Str(b)) => numbers(Some(a), parse_number(b)),
        (Value::Num(a), Value::Num(b)) => numbers(Some(a), Some(b)),
        (Value::Bool(a), Value::Bool(b)) => booleans(Some(a), Some(b), op),
        (Value::Str(a), Value::Bool(b)) => booleans(parse_bool(a), Some(b), op),
        (Value::Bool(a), Value::Str(b)) => booleans(Some(a), parse_bool(b), op),
        (Value::Num(_), Value::Bool(_)) | (Value::Bool(_), Value::Num(_)) => None,
    };
    match ordering {
        None => Truth::Unknown,
        Some(ordering) => Truth::from_bool(match op {
            CompareOp::Eq => ordering == Ordering::Equal,
            CompareOp::Ne => ordering != Ordering::Equal,
            CompareOp::Lt => ordering == Ordering::Less,
            CompareOp::Le => ordering != Ordering::Greater,
            CompareOp::Gt => ordering == Ordering::Greater,
            CompareOp::Ge => ordering != Ordering::Less,
        }),
    }
}

fn numbers(a: Option<Number>, b: Option<Number>) -> Option<Ordering> {
    a?.partial_cmp(b?)
}

/// Booleans only support `=` and `<>`; ordering them is unknown.
fn booleans(a: Option<bool>, b: Option<bool>, op: CompareOp) -> Option<Ordering> {
    if op.is_ordering() {
        return None;
    }
    Some(a?.cmp(&b?))
}

/// Reads a property value as a number: an `i64` if it is one, else a decimal `f64`.
/// Only decimal notation is accepted (`1`, `-2.5`, `3e4`), not `inf` or `NaN`.
fn parse_number(text: &str) -> Option<Number> {
    let text = text.trim();
    if let Ok(value) = text.parse::<i64>() {
        return Some(Number::Int(value));
    }
    let decimal = text.bytes().any(|b| b.is_ascii_digit())
        && text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    if !decimal {
        return None;
    }
    text.parse::<f64>().ok().filter(|value| !value.is_nan()).map(Number::Float)
}

/// Reads a property value as a boolean: `true` or `false`, any case.
fn parse_bool(text: &str) -> Option<bool> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}
