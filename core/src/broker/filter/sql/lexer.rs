//! Turns SQL92 filter text into tokens, each with its 1-based character position.

use std::fmt;

/// A token and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Token {
    /// What was read.
    pub(super) kind: TokenKind,
    /// 1-based character position of its first character.
    pub(super) pos: usize,
}

/// The kinds of token.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum TokenKind {
    /// A property name: `[A-Za-z_][A-Za-z0-9_.]*` that is not a keyword.
    Ident(String),
    /// A keyword, matched case-insensitively.
    Keyword(Keyword),
    /// A string literal, `''` already unescaped.
    Str(String),
    /// An unsigned number as written; `float` when it has a fraction or an exponent.
    Number { text: String, float: bool },
    /// `=`.
    Eq,
    /// `<>` or `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `,`.
    Comma,
    /// `-`, only meaningful before a number.
    Minus,
}

/// Reserved words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Keyword {
    And,
    Or,
    Not,
    Between,
    In,
    Is,
    Null,
    True,
    False,
    Contains,
    StartsWith,
    EndsWith,
}

impl Keyword {
    /// The keyword for an identifier, if it is one.
    fn from_word(word: &str) -> Option<Keyword> {
        const WORDS: [(&str, Keyword); 12] = [
            ("AND", Keyword::And),
            ("OR", Keyword::Or),
            ("NOT", Keyword::Not),
            ("BETWEEN", Keyword::Between),
            ("IN", Keyword::In),
            ("IS", Keyword::Is),
            ("NULL", Keyword::Null),
            ("TRUE", Keyword::True),
            ("FALSE", Keyword::False),
            ("CONTAINS", Keyword::Contains),
            ("STARTSWITH", Keyword::StartsWith),
            ("ENDSWITH", Keyword::EndsWith),
        ];
        WORDS.iter().find(|(w, _)| w.eq_ignore_ascii_case(word)).map(|&(_, k)| k)
    }

    /// The keyword in upper case.
    fn as_str(self) -> &'static str {
        match self {
            Keyword::And => "AND",
            Keyword::Or => "OR",
            Keyword::Not => "NOT",
            Keyword::Between => "BETWEEN",
            Keyword::In => "IN",
            Keyword::Is => "IS",
            Keyword::Null => "NULL",
            Keyword::True => "TRUE",
            Keyword::False => "FALSE",
            Keyword::Contains => "CONTAINS",
            Keyword::StartsWith => "STARTSWITH",
            Keyword::EndsWith => "ENDSWITH",
        }
    }
}

impl fmt::Display for TokenKind {
    /// How a token is named in error messages, e.g. `')'`, `'AND'`, `string 'abc'`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenKind::Ident(name) => write!(f, "identifier '{name}'"),
            TokenKind::Keyword(k) => write!(f, "'{}'", k.as_str()),
            TokenKind::Str(s) => write!(f, "string '{}'", s.replace('\'', "''")),
            TokenKind::Number { text, .. } => write!(f, "number '{text}'"),
            TokenKind::Eq => f.write_str("'='"),
            TokenKind::Ne => f.write_str("'<>'"),
            TokenKind::Lt => f.write_str("'<'"),
            TokenKind::Le => f.write_str("'<='"),
            TokenKind::Gt => f.write_str("'>'"),
            TokenKind::Ge => f.write_str("'>='"),
            TokenKind::LParen => f.write_str("'('"),
            TokenKind::RParen => f.write_str("')'"),
            TokenKind::Comma => f.write_str("','"),
            TokenKind::Minus => f.write_str("'-'"),
        }
    }
}

/// Splits `text` into tokens, or says what character is wrong and where.
pub(super) fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let pos = i + 1;
        let next = chars.get(i + 1).copied();
        let (kind, len) = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => (TokenKind::LParen, 1),
            ')' => (TokenKind::RParen, 1),
            ',' => (TokenKind::Comma, 1),
            '-' => (TokenKind::Minus, 1),
            '=' => (TokenKind::Eq, 1),
            '<' => match next {
                Some('>') => (TokenKind::Ne, 2),
                Some('=') => (TokenKind::Le, 2),
                _ => (TokenKind::Lt, 1),
            },
            '>' => match next {
                Some('=') => (TokenKind::Ge, 2),
                _ => (TokenKind::Gt, 1),
            },
            '!' if next == Some('=') => (TokenKind::Ne, 2),
            '\'' => string(&chars, i)?,
            c if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) => number(&chars, i)?,
            c if c.is_ascii_alphabetic() || c == '_' => {
                let len =
                    chars[i..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == '_' || **c == '.').count();
                let word: String = chars[i..i + len].iter().collect();
                let kind = match Keyword::from_word(&word) {
                    Some(keyword) => TokenKind::Keyword(keyword),
                    None => TokenKind::Ident(word),
                };
                (kind, len)
            }
            '"' => {
                return Err(format!("unexpected character '\"' at position {pos}; string literals use single quotes"))
            }
            c => return Err(format!("unexpected character {c:?} at position {pos}")),
        };
        tokens.push(Token { kind, pos });
        i += len;
    }
    Ok(tokens)
}

/// Reads the string literal whose opening quote is at `start`; `''` stands for one quote.
fn string(chars: &[char], start: usize) -> Result<(TokenKind, usize), String> {
    let mut value = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => return Err(format!("unterminated string literal starting at position {}", start + 1)),
            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                value.push('\'');
                i += 2;
            }
            Some('\'') => return Ok((TokenKind::Str(value), i + 1 - start)),
            Some(&c) => {
                value.push(c);
                i += 1;
            }
        }
    }
}

/// Reads an unsigned number at `start`: `digits[.digits][(e|E)[+|-]digits]` or `.digits...`.
fn number(chars: &[char], start: usize) -> Result<(TokenKind, usize), String> {
    let digits = |from: usize| chars[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut i = start + digits(start);
    let mut float = false;
    if chars.get(i) == Some(&'.') {
        float = true;
        i += 1;
        i += digits(i);
    }
    if matches!(chars.get(i), Some('e' | 'E')) {
        float = true;
        i += 1;
        if matches!(chars.get(i), Some('+' | '-')) {
            i += 1;
        }
        let exponent = digits(i);
        if exponent == 0 {
            return Err(format!("malformed number at position {}: exponent has no digits", start + 1));
        }
        i += exponent;
    }
    if let Some(c) = chars.get(i).filter(|c| c.is_ascii_alphanumeric() || **c == '_' || **c == '.') {
        let text: String = chars[start..=i].iter().collect();
        return Err(format!("malformed number '{text}' at position {}: unexpected {c:?} after the number", start + 1));
    }
    let text = chars[start..i].iter().collect();
    Ok((TokenKind::Number { text, float }, i - start))
}
