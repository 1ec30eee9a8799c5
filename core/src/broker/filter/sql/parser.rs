//! Recursive-descent parser from tokens to an [`Expr`].
//!
//! Grammar, loosest first (keywords case-insensitive):
//!
//! ```text
//! or      := and ( OR and )*
//! and     := not ( AND not )*
//! not     := NOT not | primary
//! primary := '(' or ')' | comparison
//! comparison := operand ( ('=' | '<>' | '!=' | '<' | '<=' | '>' | '>=') operand
//!                       | [NOT] BETWEEN operand AND operand
//!                       | [NOT] IN '(' string ( ',' string )* ')'
//!                       | [NOT] (CONTAINS | STARTSWITH | ENDSWITH) string
//!                       | IS [NOT] NULL )
//!             | TRUE | FALSE
//! operand := identifier | string | ['-'] number | TRUE | FALSE
//! ```
//!
//! As in RocketMQ, `<`, `<=`, `>`, `>=` and `BETWEEN` compare numbers only, so a string or
//! boolean literal there is rejected here rather than silently never matching.

use super::lexer::{Keyword, Token, TokenKind};
use super::{CompareOp, Expr, Literal, Operand, TextOp};

/// How deep parentheses and `NOT` may nest before the expression is refused.
pub(super) const MAX_DEPTH: usize = 64;

/// Parses a whole expression; the error is a message naming the problem and its position.
pub(super) fn parse(tokens: &[Token]) -> Result<Expr, String> {
    if tokens.is_empty() {
        return Err("empty SQL expression".to_owned());
    }
    let mut parser = Parser { tokens, next: 0, depth: 0 };
    let expr = parser.or()?;
    match parser.peek() {
        None => Ok(expr),
        Some(Token { kind: TokenKind::RParen, pos }) => {
            Err(format!("unexpected ')' at position {pos} without a matching '('"))
        }
        Some(token) => Err(format!(
            "unexpected {} at position {}; expected AND, OR or the end of the expression",
            token.kind, token.pos
        )),
    }
}

/// Cursor over the tokens.
struct Parser<'t> {
    tokens: &'t [Token],
    /// Index of the next unread token.
    next: usize,
    /// Current nesting of parentheses and `NOT`.
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn advance(&mut self) -> Option<&Token> {
        let token = self.tokens.get(self.next);
        if token.is_some() {
            self.next += 1;
        }
        token
    }

    /// Consumes the next token if it is `keyword`.
    fn eat_keyword(&mut self, keyword: Keyword) -> bool {
        let found = matches!(self.peek(), Some(Token { kind: TokenKind::Keyword(k), .. }) if *k == keyword);
        if found {
            self.next += 1;
        }
        found
    }

    /// Describes the next token for an error: "'x' at position N" or "the end of the expression".
    fn found(&self) -> String {
        match self.peek() {
            Some(token) => format!("{} at position {}", token.kind, token.pos),
            None => "the end of the expression".to_owned(),
        }
    }

    /// Enters one level of nesting, refusing to go beyond [`MAX_DEPTH`].
    fn descend(&mut self, pos: usize) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("expression nests deeper than {MAX_DEPTH} levels at position {pos}"));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, String> {
        let first = self.and()?;
        let mut items = vec![first];
        while self.eat_keyword(Keyword::Or) {
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Expr::Or(items) })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let first = self.not()?;
        let mut items = vec![first];
        while self.eat_keyword(Keyword::And) {
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Expr::And(items) })
    }

    fn not(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some(Token { kind: TokenKind::Keyword(Keyword::Not), pos }) => {
                let pos = *pos;
                self.next += 1;
                self.descend(pos)?;
                let inner = self.not()?;
                self.depth -= 1;
                Ok(Expr::Not(Box::new(inner)))
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some(Token { kind: TokenKind::LParen, pos }) => {
                let open = *pos;
                self.next += 1;
                self.descend(open)?;
                let inner = self.or()?;
                match self.advance() {
                    Some(Token { kind: TokenKind::RParen, .. }) => {}
                    Some(token) => {
                        return Err(format!(
                            "expected ')' to close '(' at position {open}, found {} at position {}",
                            token.kind, token.pos
                        ))
                    }
                    None => return Err(format!("missing ')' to close '(' at position {open}")),
                }
                self.depth -= 1;
                Ok(inner)
            }
            _ => self.comparison(),
        }
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let (left, left_pos) = self.operand()?;
        let Some(token) = self.peek() else {
            return lone_operand(left, left_pos, "the end of the expression");
        };
        let pos = token.pos;
        let op = match &token.kind {
            TokenKind::Eq => Some(CompareOp::Eq),
            TokenKind::Ne => Some(CompareOp::Ne),
            TokenKind::Lt => Some(CompareOp::Lt),
            TokenKind::Le => Some(CompareOp::Le),
            TokenKind::Gt => Some(CompareOp::Gt),
            TokenKind::Ge => Some(CompareOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.next += 1;
            let (right, right_pos) = self.operand()?;
            if op.is_ordering() {
                let name = format!("operator '{}'", op.symbol());
                numeric_only(&left, left_pos, &name, pos)?;
                numeric_only(&right, right_pos, &name, pos)?;
            }
            return Ok(Expr::Compare { left, op, right });
        }
        let negated = self.eat_keyword(Keyword::Not);
        let (keyword, pos) = match self.peek() {
            Some(Token { kind: TokenKind::Keyword(k), pos }) => (Some(*k), *pos),
            Some(token) => (None, token.pos),
            None => (None, pos),
        };
        match keyword {
            Some(Keyword::Between) => {
                self.next += 1;
                self.between(left, left_pos, negated, pos)
            }
            Some(Keyword::In) => {
                self.next += 1;
                self.in_list(left, negated, pos)
            }
            Some(k @ (Keyword::Contains | Keyword::StartsWith | Keyword::EndsWith)) => {
                self.next += 1;
                let op = match k {
                    Keyword::Contains => TextOp::Contains,
                    Keyword::StartsWith => TextOp::StartsWith,
                    _ => TextOp::EndsWith,
                };
                match self.peek() {
                    Some(Token { kind: TokenKind::Str(pattern), .. }) => {
                        let pattern = pattern.clone();
                        self.next += 1;
                        Ok(Expr::Text { operand: left, op, pattern, negated })
                    }
                    _ => Err(format!(
                        "{} at position {pos} expects a string literal, found {}",
                        text_op_name(op),
                        self.found()
                    )),
                }
            }
            Some(Keyword::Is) if !negated => {
                self.next += 1;
                let negated = self.eat_keyword(Keyword::Not);
                if self.eat_keyword(Keyword::Null) {
                    Ok(Expr::IsNull { operand: left, negated })
                } else {
                    Err(format!("expected NULL after IS at position {pos}, found {}", self.found()))
                }
            }
            _ if negated => {
                Err(format!("expected BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH after NOT, found {}", self.found()))
            }
            _ => lone_operand(left, left_pos, &self.found()),
        }
    }

    /// After `[NOT] BETWEEN`: `low AND high`, both numeric.
    fn between(&mut self, operand: Operand, operand_pos: usize, negated: bool, pos: usize) -> Result<Expr, String> {
        numeric_only(&operand, operand_pos, "BETWEEN", pos)?;
        let (low, low_pos) = self.operand()?;
        numeric_only(&low, low_pos, "BETWEEN", pos)?;
        if !self.eat_keyword(Keyword::And) {
            return Err(format!("BETWEEN at position {pos} expects AND after its lower bound, found {}", self.found()));
        }
        let (high, high_pos) = self.operand()?;
        numeric_only(&high, high_pos, "BETWEEN", pos)?;
        Ok(Expr::Between { operand, low, high, negated })
    }

    /// After `[NOT] IN`: `('a', 2, ...)`, string and numeric literals, at least one.
    fn in_list(&mut self, operand: Operand, negated: bool, pos: usize) -> Result<Expr, String> {
        if !matches!(self.peek(), Some(Token { kind: TokenKind::LParen, .. })) {
            return Err(format!("expected '(' after IN at position {pos}, found {}", self.found()));
        }
        self.next += 1;
        if matches!(self.peek(), Some(Token { kind: TokenKind::RParen, .. })) {
            return Err(format!("empty IN list at position {pos}"));
        }
        let mut list = Vec::new();
        loop {
            let literal = matches!(
                self.peek(),
                Some(Token { kind: TokenKind::Str(_) | TokenKind::Number { .. } | TokenKind::Minus, .. })
            );
            if !literal {
                return Err(format!(
                    "IN list at position {pos} accepts only string and numeric literals, found {}",
                    self.found()
                ));
            }
            list.push(self.operand()?.0);
            match self.peek() {
                Some(Token { kind: TokenKind::Comma, .. }) => self.next += 1,
                Some(Token { kind: TokenKind::RParen, .. }) => {
                    self.next += 1;
                    return Ok(Expr::In { operand, list, negated });
                }
                _ => return Err(format!("expected ',' or ')' in IN list at position {pos}, found {}", self.found())),
            }
        }
    }

    /// A property name or a literal, with its position.
    fn operand(&mut self) -> Result<(Operand, usize), String> {
        let Some(token) = self.peek() else {
            return Err("unexpected end of expression; expected a property name or a literal".to_owned());
        };
        let pos = token.pos;
        let operand = match &token.kind {
            TokenKind::Ident(name) => Operand::Property(name.clone()),
            TokenKind::Str(value) => Operand::Literal(Literal::Str(value.clone())),
            TokenKind::Number { text, float } => Operand::Literal(number(text, *float, pos)?),
            TokenKind::Keyword(Keyword::True) => Operand::Literal(Literal::Bool(true)),
            TokenKind::Keyword(Keyword::False) => Operand::Literal(Literal::Bool(false)),
            TokenKind::Keyword(Keyword::Null) => {
                return Err(format!("NULL at position {pos} is only allowed in IS NULL or IS NOT NULL"))
            }
            TokenKind::Minus => match self.tokens.get(self.next + 1) {
                Some(Token { kind: TokenKind::Number { text, float }, .. }) => {
                    self.next += 1;
                    Operand::Literal(number(&format!("-{text}"), *float, pos)?)
                }
                _ => {
                    self.next += 1;
                    return Err(format!("expected a number after '-' at position {pos}, found {}", self.found()));
                }
            },
            other => {
                return Err(format!("unexpected {other} at position {pos}; expected a property name or a literal"))
            }
        };
        self.next += 1;
        Ok((operand, pos))
    }
}

/// The name of a string operator, for messages.
fn text_op_name(op: TextOp) -> &'static str {
    match op {
        TextOp::Contains => "CONTAINS",
        TextOp::StartsWith => "STARTSWITH",
        TextOp::EndsWith => "ENDSWITH",
    }
}

/// An operand with no operator after it: fine for `TRUE` / `FALSE`, an error otherwise.
fn lone_operand(operand: Operand, pos: usize, found: &str) -> Result<Expr, String> {
    match operand {
        Operand::Literal(Literal::Bool(value)) => Ok(Expr::Constant(value)),
        Operand::Property(name) => {
            Err(format!("expected a comparison after identifier '{name}' at position {pos}, found {found}"))
        }
        Operand::Literal(_) => Err(format!("expected a comparison after the literal at position {pos}, found {found}")),
    }
}

/// Refuses string and boolean literals where RocketMQ compares numbers only.
fn numeric_only(operand: &Operand, pos: usize, op: &str, op_pos: usize) -> Result<(), String> {
    let what = match operand {
        Operand::Literal(Literal::Str(_)) => "a string literal",
        Operand::Literal(Literal::Bool(_)) => "a boolean literal",
        _ => return Ok(()),
    };
    Err(format!("{op} at position {op_pos} compares numbers only, but found {what} at position {pos}"))
}

/// Converts a number's text (sign included) to a literal.
fn number(text: &str, float: bool, pos: usize) -> Result<Literal, String> {
    if float {
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(Literal::Float(value)),
            _ => Err(format!("number '{text}' at position {pos} is out of range")),
        }
    } else {
        text.parse::<i64>()
            .map(Literal::Int)
            .map_err(|_| format!("integer '{text}' at position {pos} is out of range for 64 bits"))
    }
}
