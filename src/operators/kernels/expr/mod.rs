//! A small expression language for derived variables (`delta = "DIC - DIC_ALT_CO2"`):
//! numbers, variable names, `+ - * /`, unary minus, parentheses, comparisons and the functions
//! `abs sqrt exp log where min max`. [`Expression::parse`] builds the tree (errors name the
//! column and what was expected); [`Expression::evaluate`] computes it over one chunk of each
//! variable, as named n-d arrays, with xarray's broadcasting by dimension name and numpy's
//! element types (see `eval.rs` for the rules).

mod array;
mod dtype;
mod eval;
mod ops;
mod parse;

use std::collections::HashMap;

pub use array::{ArrayError, Data, NamedArray};
pub use dtype::{DType, IntType};
pub use eval::EvalError;
pub use parse::{BinOp, CmpOp, Func, Node, ParseError};

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    root: Node,
}

impl Expression {
    /// Parses `text`.
    ///
    /// # Errors
    /// [`ParseError`] naming the column, what was expected there and what was found.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        Ok(Expression {
            root: parse::parse(text)?,
        })
    }

    /// The syntax tree.
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// The variables the expression reads, each once, in order of first use.
    pub fn variables(&self) -> Vec<&str> {
        fn walk<'a>(node: &'a Node, out: &mut Vec<&'a str>) {
            match node {
                Node::Var { name, .. } if !out.contains(&name.as_str()) => out.push(name),
                Node::Neg(x) => walk(x, out),
                Node::Binary(_, a, b) | Node::Compare(_, a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Node::Call(_, args) => args.iter().for_each(|a| walk(a, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }

    /// Evaluates the expression over one chunk of each variable it reads.
    ///
    /// # Errors
    /// [`EvalError`] for a variable missing from `inputs`, dimensions whose sizes disagree, a
    /// comparison used as a number, or an integer literal out of range of the array it meets.
    pub fn evaluate(&self, inputs: &HashMap<String, NamedArray>) -> Result<NamedArray, EvalError> {
        eval::evaluate(&self.root, inputs)
    }
}
