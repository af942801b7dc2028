//! The expression grammar, parsed by hand (recursive descent) into a [`Node`] tree:
//!
//! ```text
//! expr     := additive (("<" | "<=" | ">" | ">=" | "==" | "!=") additive)?
//! additive := term (("+" | "-") term)*
//! term     := unary (("*" | "/") unary)*
//! unary    := ("-" | "+") unary | primary
//! primary  := number | name | function "(" expr ("," expr)* ")" | "(" expr ")"
//! ```
//!
//! Numbers are integers (`42`), decimals (`0.5`, `.5`, `2.`) and exponents (`1e-3`); a number
//! without `.` or exponent is an integer. Names start with a letter or `_` and continue with
//! letters, digits, `_` and `.`. A name followed by `(` is a function call.

/// A binary arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (true division)
    Div,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

/// A function of the language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `abs(x)`
    Abs,
    /// `sqrt(x)`
    Sqrt,
    /// `exp(x)`
    Exp,
    /// `log(x)` (natural)
    Log,
    /// `where(cond, a, b)`
    Where,
    /// `min(a, b)`, NaN-propagating as `np.minimum`
    Min,
    /// `max(a, b)`, NaN-propagating as `np.maximum`
    Max,
}

const FUNCS: [(&str, Func, usize); 7] = [
    ("abs", Func::Abs, 1),
    ("sqrt", Func::Sqrt, 1),
    ("exp", Func::Exp, 1),
    ("log", Func::Log, 1),
    ("where", Func::Where, 3),
    ("min", Func::Min, 2),
    ("max", Func::Max, 2),
];

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// An integer literal.
    Int(i64),
    /// A decimal or exponent literal.
    Float(f64),
    /// A variable, with the column where it starts.
    Var {
        /// Its name.
        name: String,
        /// 1-based column in the expression.
        column: usize,
    },
    /// Unary minus.
    Neg(Box<Node>),
    /// Arithmetic.
    Binary(BinOp, Box<Node>, Box<Node>),
    /// A comparison.
    Compare(CmpOp, Box<Node>, Box<Node>),
    /// A function call (the argument count is checked by the parser).
    Call(Func, Vec<Node>),
}

/// An expression that does not parse: where, what was expected, and what was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: expected {expected}, found {found}")]
pub struct ParseError {
    /// 1-based column (in characters).
    pub column: usize,
    /// What the grammar allows there.
    pub expected: String,
    /// What is there.
    pub found: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Int(i64),
    Float(f64),
    Name(String),
    Sym(&'static str),
    End,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Int(v) => format!("the number `{v}`"),
            Token::Float(v) => format!("the number `{v}`"),
            Token::Name(n) => format!("`{n}`"),
            Token::Sym(s) => format!("`{s}`"),
            Token::End => "the end of the expression".into(),
        }
    }
}

const SYMBOLS: [&str; 14] = [
    "<=", ">=", "==", "!=", "<", ">", "+", "-", "*", "/", "(", ")", ",", "=",
];

/// Splits `text` into tokens, each with its byte offset.
fn lex(text: &str) -> Result<Vec<(Token, usize)>, ParseError> {
    let err = |at: usize, expected: &str, found: String| ParseError {
        column: column(text, at),
        expected: expected.into(),
        found,
    };
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = bytes.get(i) {
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            let digits = |i: &mut usize| {
                let from = *i;
                while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
                    *i += 1;
                }
                *i > from
            };
            digits(&mut i);
            let mut float = false;
            if bytes.get(i) == Some(&b'.') {
                i += 1;
                digits(&mut i);
                float = true;
            }
            if matches!(bytes.get(i), Some(b'e' | b'E')) {
                i += 1;
                if matches!(bytes.get(i), Some(b'+' | b'-')) {
                    i += 1;
                }
                if !digits(&mut i) {
                    let found = text.get(i..).and_then(|s| s.chars().next());
                    let found =
                        found.map_or("the end of the expression".into(), |c| format!("`{c}`"));
                    return Err(err(i, "the digits of an exponent", found));
                }
                float = true;
            }
            let literal = &text[start..i];
            let token = match float {
                true => literal.parse().map(Token::Float).ok(),
                false => literal.parse().map(Token::Int).ok(),
            };
            let token = token.ok_or_else(|| {
                err(
                    start,
                    "an integer within ±9223372036854775807",
                    format!("`{literal}`"),
                )
            })?;
            tokens.push((token, start));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while bytes
                .get(i)
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
            {
                i += 1;
            }
            tokens.push((Token::Name(text[start..i].to_string()), start));
        } else if let Some(sym) = SYMBOLS
            .iter()
            .find(|s| bytes[i..].starts_with(s.as_bytes()))
        {
            if *sym == "=" {
                return Err(err(i, "`==`", "`=`".into()));
            }
            i += sym.len();
            tokens.push((Token::Sym(sym), start));
        } else {
            let found = text[i..]
                .chars()
                .next()
                .map_or(String::new(), |c| format!("`{c}`"));
            if c == b'!' {
                return Err(err(i, "`!=`", found));
            }
            return Err(err(
                i,
                "a number, a name, an operator or a parenthesis",
                found,
            ));
        }
    }
    tokens.push((Token::End, text.len()));
    Ok(tokens)
}

fn column(text: &str, byte: usize) -> usize {
    text.get(..byte).map_or(byte, |s| s.chars().count()) + 1
}

/// Parses an expression.
///
/// # Errors
/// [`ParseError`] naming the column, what was expected there and what was found.
pub(super) fn parse(text: &str) -> Result<Node, ParseError> {
    let mut parser = Parser {
        text,
        tokens: lex(text)?,
        at: 0,
    };
    let node = parser.compare()?;
    match parser.peek() {
        Token::End => Ok(node),
        _ => Err(parser.error("an operator or the end of the expression")),
    }
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<(Token, usize)>,
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        self.tokens.get(self.at).map_or(&Token::End, |(t, _)| t)
    }

    fn next(&mut self) -> Token {
        let token = self.peek().clone();
        self.at = (self.at + 1).min(self.tokens.len());
        token
    }

    fn offset(&self) -> usize {
        self.tokens
            .get(self.at)
            .map_or(self.text.len(), |(_, o)| *o)
    }

    fn error(&self, expected: &str) -> ParseError {
        ParseError {
            column: column(self.text, self.offset()),
            expected: expected.into(),
            found: self.peek().describe(),
        }
    }

    fn eat(&mut self, sym: &str) -> bool {
        let hit = matches!(self.peek(), Token::Sym(s) if *s == sym);
        if hit {
            self.next();
        }
        hit
    }

    fn expect(&mut self, sym: &str) -> Result<(), ParseError> {
        match self.eat(sym) {
            true => Ok(()),
            false => Err(self.error(&format!("`{sym}`"))),
        }
    }

    fn compare(&mut self) -> Result<Node, ParseError> {
        let lhs = self.additive()?;
        let op = match self.peek() {
            Token::Sym("<") => CmpOp::Lt,
            Token::Sym("<=") => CmpOp::Le,
            Token::Sym(">") => CmpOp::Gt,
            Token::Sym(">=") => CmpOp::Ge,
            Token::Sym("==") => CmpOp::Eq,
            Token::Sym("!=") => CmpOp::Ne,
            _ => return Ok(lhs),
        };
        self.next();
        let rhs = self.additive()?;
        Ok(Node::Compare(op, Box::new(lhs), Box::new(rhs)))
    }

    fn additive(&mut self) -> Result<Node, ParseError> {
        self.left_assoc(&[("+", BinOp::Add), ("-", BinOp::Sub)], Self::term)
    }

    fn term(&mut self) -> Result<Node, ParseError> {
        self.left_assoc(&[("*", BinOp::Mul), ("/", BinOp::Div)], Self::unary)
    }

    /// `operand (op operand)*` for the operators `ops`, grouped to the left.
    fn left_assoc(
        &mut self,
        ops: &[(&str, BinOp)],
        operand: fn(&mut Self) -> Result<Node, ParseError>,
    ) -> Result<Node, ParseError> {
        let mut node = operand(self)?;
        loop {
            let found = match self.peek() {
                Token::Sym(sym) => ops.iter().find(|(s, _)| s == sym).map(|&(_, op)| op),
                _ => None,
            };
            let Some(op) = found else {
                return Ok(node);
            };
            self.next();
            node = Node::Binary(op, Box::new(node), Box::new(operand(self)?));
        }
    }

    fn unary(&mut self) -> Result<Node, ParseError> {
        if self.eat("-") {
            return Ok(Node::Neg(Box::new(self.unary()?)));
        }
        if self.eat("+") {
            return self.unary();
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node, ParseError> {
        let column = column(self.text, self.offset());
        match self.peek().clone() {
            Token::Int(v) => {
                self.next();
                Ok(Node::Int(v))
            }
            Token::Float(v) => {
                self.next();
                Ok(Node::Float(v))
            }
            Token::Sym("(") => {
                self.next();
                let node = self.compare()?;
                self.expect(")")?;
                Ok(node)
            }
            Token::Name(name) => {
                self.next();
                if !matches!(self.peek(), Token::Sym("(")) {
                    return Ok(Node::Var { name, column });
                }
                let Some(&(_, func, arity)) = FUNCS.iter().find(|(n, _, _)| *n == name) else {
                    return Err(ParseError {
                        column,
                        expected: "a variable or one of the functions abs, sqrt, exp, log, where, min, max".into(),
                        found: format!("a call of `{name}`"),
                    });
                };
                self.next();
                let mut args = vec![self.compare()?];
                while args.len() < arity {
                    if !self.eat(",") {
                        return Err(self.error(&format!("`,`: {name} takes {arity} arguments")));
                    }
                    args.push(self.compare()?);
                }
                match self.peek() {
                    Token::Sym(",") => {
                        Err(self.error(&format!("`)`: {name} takes {arity} argument(s)")))
                    }
                    _ => {
                        self.expect(")")?;
                        Ok(Node::Call(func, args))
                    }
                }
            }
            _ => Err(self.error("a number, a name, `-` or `(`")),
        }
    }
}

#[cfg(test)]
mod tests;
