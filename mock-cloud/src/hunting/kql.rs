//! A small, documented subset of KQL, parsed into a [`Query`].
//!
//! ```text
//! query    := Table ( "|" operator )*
//! operator := "where" expr
//!           | "project" Column ("," Column)*
//!           | ("take" | "limit") Number
//!           | "count"
//!           | "summarize" "count" "(" ")" ["by" Column ("," Column)*]
//! expr     := conj ("or" conj)*
//! conj     := term ("and" term)*
//! term     := "(" expr ")" | Column op literal
//! op       := "==" | "!=" | "has" | "!has" | "contains" | "!contains"
//! literal  := "string" | 'string' | Number
//! ```
//!
//! Anything else is refused with an error that names the unsupported part and where it is,
//! never answered approximately.

use std::fmt;

/// A parse error: what is wrong, where (byte offset in the query), and what is supported.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at position {position})")]
pub struct QueryError {
    /// What is wrong.
    pub message: String,
    /// Byte offset in the query.
    pub position: usize,
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `==` (case-sensitive for strings, numeric for numbers).
    Eq,
    /// `!=`.
    Ne,
    /// `has`: the value contains the literal as a whole term (case-insensitive).
    Has,
    /// `!has`.
    NotHas,
    /// `contains`: the value contains the literal as a substring (case-insensitive).
    Contains,
    /// `!contains`.
    NotContains,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Has => "has",
            Self::NotHas => "!has",
            Self::Contains => "contains",
            Self::NotContains => "!contains",
        })
    }
}

/// A literal.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// A string.
    Str(String),
    /// A number.
    Num(f64),
}

/// A boolean expression over one row.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// `Column op literal`.
    Compare {
        /// Column name.
        column: String,
        /// Operator.
        op: Op,
        /// Right-hand side.
        value: Literal,
    },
    /// Both.
    And(Box<Expr>, Box<Expr>),
    /// Either.
    Or(Box<Expr>, Box<Expr>),
}

/// One pipeline stage.
#[derive(Clone, Debug, PartialEq)]
pub enum Stage {
    /// `where expr`.
    Where(Expr),
    /// `project a, b`.
    Project(Vec<String>),
    /// `take N` / `limit N`.
    Take(usize),
    /// `count`.
    Count,
    /// `summarize count() by a, b`.
    SummarizeCount(Vec<String>),
}

/// A parsed query.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// The table.
    pub table: String,
    /// The stages, in order.
    pub stages: Vec<Stage>,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Pipe,
    Comma,
    LParen,
    RParen,
    EqEq,
    NotEq,
    Bang,
    Other(char),
}

fn tokenize(query: &str) -> Result<Vec<(Tok, usize)>, QueryError> {
    let bytes: Vec<char> = query.chars().collect();
    let mut offsets = Vec::with_capacity(bytes.len() + 1);
    let mut off = 0;
    for c in &bytes {
        offsets.push(off);
        off += c.len_utf8();
    }
    offsets.push(off);
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let pos = offsets[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '|' => {
                out.push((Tok::Pipe, pos));
                i += 1;
            }
            ',' => {
                out.push((Tok::Comma, pos));
                i += 1;
            }
            '(' => {
                out.push((Tok::LParen, pos));
                i += 1;
            }
            ')' => {
                out.push((Tok::RParen, pos));
                i += 1;
            }
            '=' if bytes.get(i + 1) == Some(&'=') => {
                out.push((Tok::EqEq, pos));
                i += 2;
            }
            '!' if bytes.get(i + 1) == Some(&'=') => {
                out.push((Tok::NotEq, pos));
                i += 2;
            }
            '!' => {
                out.push((Tok::Bang, pos));
                i += 1;
            }
            '"' | '\'' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => {
                            return Err(QueryError {
                                message: "unterminated string literal".into(),
                                position: pos,
                            });
                        }
                        Some('\\') if bytes.get(i + 1).is_some() => {
                            s.push(bytes[i + 1]);
                            i += 2;
                        }
                        Some(&ch) if ch == quote => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push((Tok::Str(s), pos));
            }
            c if c.is_ascii_digit() => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == '.') {
                    i += 1;
                }
                let text: String = bytes[start..i].iter().collect();
                let num = text.parse().map_err(|_| QueryError {
                    message: format!("bad number {text:?}"),
                    position: pos,
                })?;
                out.push((Tok::Num(num), pos));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_alphanumeric() || bytes[i] == '_') {
                    i += 1;
                }
                out.push((Tok::Ident(bytes[start..i].iter().collect()), pos));
            }
            other => {
                out.push((Tok::Other(other), pos));
                i += 1;
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    at: usize,
    end: usize,
    /// Parentheses open around the term being parsed.
    depth: usize,
    /// Comparisons in the query so far.
    comparisons: usize,
}

/// The deepest parenthesis nesting a query may use. The parser, the evaluator and the drop of
/// an expression tree recurse once per level, so a bound here bounds the stack (a query of
/// 5,000 nested parentheses once aborted the whole lab).
pub const MAX_NESTING: usize = 32;

/// The most comparisons one query may make: `and`/`or` chains build a tree as deep as they are
/// long, which the evaluator and the drop walk recursively.
pub const MAX_COMPARISONS: usize = 256;

/// The longest query accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;

const OPERATORS: &str = "where, project, take, limit, count, summarize count() by";

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(t, _)| t)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.at).map_or(self.end, |(_, p)| *p)
    }

    fn next(&mut self) -> Option<Tok> {
        let tok = self.toks.get(self.at).map(|(t, _)| t.clone());
        self.at += 1;
        tok
    }

    fn fail<T>(&self, message: impl Into<String>) -> Result<T, QueryError> {
        Err(QueryError {
            message: message.into(),
            position: self.pos(),
        })
    }

    fn ident(&mut self, what: &str) -> Result<String, QueryError> {
        match self.peek().cloned() {
            Some(Tok::Ident(name)) => {
                self.at += 1;
                Ok(name)
            }
            Some(other) => self.fail(format!("expected {what}, found {}", describe(&other))),
            None => self.fail(format!("expected {what}, found the end of the query")),
        }
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> Result<(), QueryError> {
        if self.peek() == Some(tok) {
            self.at += 1;
            Ok(())
        } else {
            let found = self
                .peek()
                .map_or("the end of the query".to_owned(), describe);
            self.fail(format!("expected {what}, found {found}"))
        }
    }

    fn columns(&mut self) -> Result<Vec<String>, QueryError> {
        let mut cols = vec![self.ident("a column name")?];
        while self.peek() == Some(&Tok::Comma) {
            self.at += 1;
            cols.push(self.ident("a column name")?);
        }
        Ok(cols)
    }

    fn stage(&mut self) -> Result<Stage, QueryError> {
        let start = self.pos();
        let name = self.ident("an operator")?;
        match name.as_str() {
            "where" => Ok(Stage::Where(self.expr()?)),
            "project" => Ok(Stage::Project(self.columns()?)),
            "take" | "limit" => match self.next() {
                Some(Tok::Num(n)) if n >= 0.0 && n.fract() == 0.0 => Ok(Stage::Take(n as usize)),
                _ => Err(QueryError {
                    message: format!("{name} takes a whole number of rows"),
                    position: start,
                }),
            },
            "count" => Ok(Stage::Count),
            "summarize" => {
                let agg_pos = self.pos();
                let agg = self.ident("an aggregation")?;
                if agg != "count" {
                    return Err(QueryError {
                        message: format!("unsupported aggregation {agg:?} (supported: count())"),
                        position: agg_pos,
                    });
                }
                self.expect(&Tok::LParen, "'(' after count")?;
                self.expect(&Tok::RParen, "')' (count() takes no argument)")?;
                match self.peek() {
                    Some(Tok::Ident(by)) if by == "by" => {
                        self.at += 1;
                        Ok(Stage::SummarizeCount(self.columns()?))
                    }
                    None | Some(Tok::Pipe) => Ok(Stage::SummarizeCount(Vec::new())),
                    Some(other) => {
                        let found = describe(other);
                        self.fail(format!(
                            "expected 'by' or the end of summarize, found {found}"
                        ))
                    }
                }
            }
            other => Err(QueryError {
                message: format!("unsupported operator {other:?} (supported: {OPERATORS})"),
                position: start,
            }),
        }
    }

    fn expr(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.conj()?;
        while matches!(self.peek(), Some(Tok::Ident(w)) if w == "or") {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.conj()?));
        }
        Ok(left)
    }

    fn conj(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.term()?;
        while matches!(self.peek(), Some(Tok::Ident(w)) if w == "and") {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.term()?));
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<Expr, QueryError> {
        if self.peek() == Some(&Tok::LParen) {
            if self.depth == MAX_NESTING {
                return self.fail(format!(
                    "parentheses nested deeper than {MAX_NESTING} levels"
                ));
            }
            self.at += 1;
            self.depth += 1;
            let inner = self.expr()?;
            self.depth -= 1;
            self.expect(&Tok::RParen, "')'")?;
            return Ok(inner);
        }
        if self.comparisons == MAX_COMPARISONS {
            return self.fail(format!(
                "more than {MAX_COMPARISONS} comparisons in one query"
            ));
        }
        self.comparisons += 1;
        let column = self.ident("a column name")?;
        let op_pos = self.pos();
        let op = match self.next() {
            Some(Tok::EqEq) => Op::Eq,
            Some(Tok::NotEq) => Op::Ne,
            Some(Tok::Ident(w)) if w == "has" => Op::Has,
            Some(Tok::Ident(w)) if w == "contains" => Op::Contains,
            Some(Tok::Bang) => match self.next() {
                Some(Tok::Ident(w)) if w == "has" => Op::NotHas,
                Some(Tok::Ident(w)) if w == "contains" => Op::NotContains,
                _ => {
                    return Err(QueryError {
                        message: "'!' must be followed by has or contains".into(),
                        position: op_pos,
                    });
                }
            },
            Some(Tok::Other('=')) => {
                return Err(QueryError {
                    message: "'=' is assignment in KQL; compare with '=='".into(),
                    position: op_pos,
                });
            }
            Some(other) => {
                return Err(QueryError {
                    message: format!(
                        "unsupported comparison {} (supported: ==, !=, has, !has, contains, !contains)",
                        describe(&other)
                    ),
                    position: op_pos,
                });
            }
            None => {
                return Err(QueryError {
                    message: format!("expected a comparison after {column}"),
                    position: op_pos,
                });
            }
        };
        let value = match self.next() {
            Some(Tok::Str(s)) => Literal::Str(s),
            Some(Tok::Num(n)) => Literal::Num(n),
            Some(Tok::Ident(fun)) if self.peek() == Some(&Tok::LParen) => {
                return Err(QueryError {
                    message: format!(
                        "unsupported function {fun}() (only literals may be compared)"
                    ),
                    position: op_pos,
                });
            }
            Some(other) => {
                return Err(QueryError {
                    message: format!(
                        "expected a string or number literal, found {}",
                        describe(&other)
                    ),
                    position: op_pos,
                });
            }
            None => {
                return Err(QueryError {
                    message: "expected a literal, found the end of the query".into(),
                    position: op_pos,
                });
            }
        };
        Ok(Expr::Compare { column, op, value })
    }
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(s) => format!("{s:?}"),
        Tok::Str(s) => format!("the string {s:?}"),
        Tok::Num(n) => format!("the number {n}"),
        Tok::Pipe => "'|'".into(),
        Tok::Comma => "','".into(),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::EqEq => "'=='".into(),
        Tok::NotEq => "'!='".into(),
        Tok::Bang => "'!'".into(),
        Tok::Other(c) => format!("{c:?}"),
    }
}

/// Parses a query of the supported subset.
pub fn parse(query: &str) -> Result<Query, QueryError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(QueryError {
            message: format!(
                "the query is {} bytes; at most {MAX_QUERY_BYTES} are accepted",
                query.len()
            ),
            position: MAX_QUERY_BYTES,
        });
    }
    let toks = tokenize(query)?;
    if toks.is_empty() {
        return Err(QueryError {
            message: "empty query: start with a table name".into(),
            position: 0,
        });
    }
    let mut p = Parser {
        toks,
        at: 0,
        end: query.len(),
        depth: 0,
        comparisons: 0,
    };
    let table = p.ident("a table name")?;
    let mut stages = Vec::new();
    while let Some(tok) = p.peek().cloned() {
        if tok != Tok::Pipe {
            return p.fail(format!(
                "expected '|' before the next operator, found {}",
                describe(&tok)
            ));
        }
        p.at += 1;
        stages.push(p.stage()?);
    }
    Ok(Query { table, stages })
}
