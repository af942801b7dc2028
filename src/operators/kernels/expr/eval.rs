//! Evaluation of a parsed expression over named arrays, with xarray's semantics: operands
//! broadcast by dimension name (result dims in order of first appearance), NaN propagates,
//! and element types follow numpy's promotion with numbers in the expression "weak" (NEP 50):
//! `float32 op float32` and `float32 op 2.5` stay `float32`, anything with `float64` is
//! `float64`, integers keep their type under `+ − *` (wrapping on overflow, as numpy) and
//! become floats under `/`, `sqrt`, `exp`, `log`. A sub-expression that reads no variable
//! (`sqrt(2)`) is a weak number too, so `sst * sqrt(2)` stays `float32` where numpy would give
//! `float64` for the `np.float64` scalar `np.sqrt(2)`.

use std::collections::HashMap;

use super::array::{broadcast, Data, Layout, NamedArray};
use super::dtype::{divide, float_of, promote, DType, IntType};
use super::ops::{arith, compare, compare_f64, min_max, unary, Unary};
use super::parse::{BinOp, Func, Node};

/// An expression that cannot be evaluated over the given arrays.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// A name that is not among the inputs.
    #[error("unknown variable `{name}` (column {column})")]
    UnknownVariable {
        /// The name.
        name: String,
        /// Where it is used.
        column: usize,
    },
    /// Two operands disagree on the size of a dimension.
    #[error("dimension `{dim}` has size {left} in one operand and {right} in another")]
    DimSize {
        /// The dimension.
        dim: String,
        /// Its size in the first operand that has it.
        left: usize,
        /// Its size in the operand that disagrees.
        right: usize,
    },
    /// A comparison result used as a number.
    #[error("a comparison cannot be an operand of {op}: use it as the condition of where")]
    Bool {
        /// The operation.
        op: &'static str,
    },
    /// An integer literal the integer array it meets cannot hold (numpy raises too).
    #[error("the number {value} is out of range for {dtype}")]
    LiteralRange {
        /// The literal.
        value: i64,
        /// The array's type.
        dtype: DType,
    },
    /// A call with the wrong number of arguments (only for trees not made by the parser).
    #[error("{func:?} cannot take {given} argument(s)")]
    Arity {
        /// The function.
        func: Func,
        /// Number of arguments given.
        given: usize,
    },
    /// Integer arithmetic between numbers of the expression overflowed 64 bits.
    #[error("integer overflow in `{op}` between numbers of the expression")]
    Overflow {
        /// The operation.
        op: &'static str,
    },
}

/// A number of the expression (weak), or an array.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Const(Const),
    Array(NamedArray),
}

/// A number of the expression: Python's `int`, `float` or `bool`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Const {
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Const {
    fn f64(self) -> f64 {
        match self {
            Const::Int(v) => v as f64,
            Const::Float(v) => v,
            Const::Bool(b) => f64::from(u8::from(b)),
        }
    }

    /// One element of type `t` (the caller checked that an integer fits).
    fn data(self, t: DType) -> Data {
        match (self, t) {
            (Const::Int(v), DType::Int(i)) => Data::Int(i, vec![v]),
            (Const::Bool(b), DType::Bool) => Data::Bool(vec![b]),
            (c, DType::F32) => Data::F32(vec![c.f64() as f32]),
            (c, _) => Data::F64(vec![c.f64()]),
        }
    }

    /// The type of a result made of numbers only, as an array.
    fn dtype(self) -> DType {
        match self {
            Const::Int(_) => DType::Int(IntType::I64),
            Const::Float(_) => DType::F64,
            Const::Bool(_) => DType::Bool,
        }
    }
}

/// Evaluates `node` over `inputs` (one chunk of each variable it reads).
pub(crate) fn evaluate(
    node: &Node,
    inputs: &HashMap<String, NamedArray>,
) -> Result<NamedArray, EvalError> {
    Ok(match eval(node, inputs)? {
        Value::Array(a) => a,
        Value::Const(c) => NamedArray::scalar(c.data(c.dtype())),
    })
}

fn eval(node: &Node, inputs: &HashMap<String, NamedArray>) -> Result<Value, EvalError> {
    match node {
        Node::Int(v) => Ok(Value::Const(Const::Int(*v))),
        Node::Float(v) => Ok(Value::Const(Const::Float(*v))),
        Node::Var { name, column } => match inputs.get(name) {
            Some(a) => Ok(Value::Array(a.clone())),
            None => Err(EvalError::UnknownVariable {
                name: name.clone(),
                column: *column,
            }),
        },
        Node::Neg(x) => unary_value(Unary::Neg, eval(x, inputs)?),
        Node::Binary(op, a, b) => {
            let (a, b) = (eval(a, inputs)?, eval(b, inputs)?);
            if let (Value::Const(x), Value::Const(y)) = (&a, &b) {
                return fold_binary(*op, *x, *y).map(Value::Const);
            }
            let mut t = operand_type(&[&a, &b], op_name(*op), false)?;
            if *op == BinOp::Div {
                t = divide(t, t);
            }
            let layout = layout_of(&[&a, &b])?;
            let [x, y] = [a, b].map(|v| spread(v, &layout, t));
            Ok(array(layout, arith(*op, x, y)))
        }
        Node::Compare(op, a, b) => {
            let (a, b) = (eval(a, inputs)?, eval(b, inputs)?);
            if let (Value::Const(x), Value::Const(y)) = (&a, &b) {
                let (x, y) = (number(*x, "a comparison")?, number(*y, "a comparison")?);
                return Ok(Value::Const(Const::Bool(compare_f64(*op, x, y))));
            }
            let t = operand_type(&[&a, &b], "a comparison", true)?;
            let layout = layout_of(&[&a, &b])?;
            let [x, y] = [a, b].map(|v| spread(v, &layout, t));
            Ok(array(layout, Data::Bool(compare(*op, x, y))))
        }
        Node::Call(func, args) => {
            let mut values = Vec::with_capacity(args.len());
            for arg in args {
                values.push(eval(arg, inputs)?);
            }
            call(*func, values)
        }
    }
}

fn call(func: Func, mut args: Vec<Value>) -> Result<Value, EvalError> {
    let given = args.len();
    let last = args.pop();
    let middle = args.pop();
    let first = args.pop();
    match (func, first, middle, last) {
        (Func::Abs, None, None, Some(x)) => unary_value(Unary::Abs, x),
        (Func::Sqrt, None, None, Some(x)) => unary_value(Unary::Sqrt, x),
        (Func::Exp, None, None, Some(x)) => unary_value(Unary::Exp, x),
        (Func::Log, None, None, Some(x)) => unary_value(Unary::Log, x),
        (Func::Min | Func::Max, None, Some(a), Some(b)) => {
            let is_max = func == Func::Max;
            let name = if is_max { "max" } else { "min" };
            if let (Value::Const(x), Value::Const(y)) = (&a, &b) {
                return fold_min_max(is_max, *x, *y, name).map(Value::Const);
            }
            let t = operand_type(&[&a, &b], name, false)?;
            let layout = layout_of(&[&a, &b])?;
            let [x, y] = [a, b].map(|v| spread(v, &layout, t));
            Ok(array(layout, min_max(is_max, x, y)))
        }
        (Func::Where, Some(cond), Some(a), Some(b)) => select(cond, a, b),
        _ => Err(EvalError::Arity { func, given }),
    }
}

/// `where(cond, a, b)`: `a` where `cond` is true (non-zero for numbers), else `b`.
fn select(cond: Value, a: Value, b: Value) -> Result<Value, EvalError> {
    let layout = layout_of(&[&cond, &a, &b])?;
    let t = match (&a, &b) {
        (Value::Const(x), Value::Const(y)) => match (x, y) {
            (Const::Bool(_), Const::Bool(_)) => DType::Bool,
            (Const::Bool(_), _) | (_, Const::Bool(_)) => {
                return Err(EvalError::Bool { op: "where" })
            }
            (Const::Int(_), Const::Int(_)) => DType::Int(IntType::I64),
            _ => DType::F64,
        },
        _ if is_bool(&a) && is_bool(&b) => DType::Bool,
        _ => operand_type(&[&a, &b], "where", false)?,
    };
    if let (Value::Const(c), Value::Const(x), Value::Const(y)) = (&cond, &a, &b) {
        let picked = if c.f64() != 0.0 { *x } else { *y };
        return Ok(Value::Const(match t {
            DType::F64 => Const::Float(picked.f64()),
            _ => picked,
        }));
    }
    let cond = spread(cond, &layout, DType::Bool);
    let [x, y] = [a, b].map(|v| spread(v, &layout, t));
    let Data::Bool(mask) = cond else {
        return Err(EvalError::Bool { op: "where" });
    };
    Ok(array(layout, pick(&mask, x, y)))
}

fn pick(mask: &[bool], x: Data, y: Data) -> Data {
    fn choose<T: Copy>(mask: &[bool], x: Vec<T>, y: &[T]) -> Vec<T> {
        x.into_iter()
            .zip(y)
            .zip(mask)
            .map(|((a, &b), &m)| if m { a } else { b })
            .collect()
    }
    match (x, y) {
        (Data::Bool(x), Data::Bool(y)) => Data::Bool(choose(mask, x, &y)),
        (Data::Int(t, x), Data::Int(_, y)) => Data::Int(t, choose(mask, x, &y)),
        (Data::F32(x), Data::F32(y)) => Data::F32(choose(mask, x, &y)),
        (Data::F64(x), Data::F64(y)) => Data::F64(choose(mask, x, &y)),
        (x, _) => x,
    }
}

fn is_bool(v: &Value) -> bool {
    match v {
        Value::Const(c) => matches!(c, Const::Bool(_)),
        Value::Array(a) => a.data().dtype() == DType::Bool,
    }
}

fn unary_value(u: Unary, v: Value) -> Result<Value, EvalError> {
    let name = match u {
        Unary::Neg => "unary `-`",
        Unary::Abs => "abs",
        Unary::Sqrt => "sqrt",
        Unary::Exp => "exp",
        Unary::Log => "log",
    };
    match v {
        Value::Const(Const::Int(x)) if matches!(u, Unary::Neg | Unary::Abs) => {
            let r = if u == Unary::Neg {
                x.checked_neg()
            } else {
                x.checked_abs()
            };
            r.map(|r| Value::Const(Const::Int(r)))
                .ok_or(EvalError::Overflow { op: name })
        }
        Value::Const(c) => {
            let Data::F64(r) = unary(u, Data::F64(vec![number(c, name)?])) else {
                return Err(EvalError::Bool { op: name });
            };
            Ok(Value::Const(Const::Float(
                r.first().copied().unwrap_or(f64::NAN),
            )))
        }
        Value::Array(a) => {
            let t = a.data().dtype();
            if t == DType::Bool {
                return Err(EvalError::Bool { op: name });
            }
            let t = match u {
                Unary::Neg | Unary::Abs => t,
                _ => float_of(t),
            };
            let layout = a.layout().clone();
            Ok(array(layout, unary(u, a.into_data().cast(t))))
        }
    }
}

/// The type the operands are computed in: numpy's promotion of the arrays' types, then of
/// that with each weak number. An integer literal an integer array cannot hold is an error
/// in arithmetic; in a comparison, both are compared as `float64`.
fn operand_type(values: &[&Value], op: &'static str, comparison: bool) -> Result<DType, EvalError> {
    let mut strong: Option<DType> = None;
    for v in values {
        if let Value::Array(a) = v {
            let t = a.data().dtype();
            if t == DType::Bool {
                return Err(EvalError::Bool { op });
            }
            strong = Some(strong.map_or(t, |s| promote(s, t)));
        }
    }
    let mut t = strong.unwrap_or(DType::F64);
    for v in values {
        let Value::Const(c) = v else { continue };
        t = match (*c, t) {
            (Const::Bool(_), _) => return Err(EvalError::Bool { op }),
            (Const::Int(v), DType::Int(i)) if !i.holds(v) => match comparison {
                true => DType::F64,
                false => return Err(EvalError::LiteralRange { value: v, dtype: t }),
            },
            (Const::Float(_), DType::Int(_)) => DType::F64,
            _ => t,
        };
    }
    Ok(t)
}

fn layout_of(values: &[&Value]) -> Result<Layout, EvalError> {
    let layouts = values.iter().filter_map(|v| match v {
        Value::Array(a) => Some(a.layout()),
        Value::Const(_) => None,
    });
    broadcast(layouts).map_err(|(dim, left, right)| EvalError::DimSize { dim, left, right })
}

/// The value's elements as type `t`, laid out as `layout`.
fn spread(v: Value, layout: &Layout, t: DType) -> Data {
    let a = match v {
        Value::Array(a) => a,
        Value::Const(c) if t == DType::Bool => NamedArray::scalar(c.data(c.dtype())),
        Value::Const(c) => NamedArray::scalar(c.data(t)),
    };
    a.expand(layout, t)
}

fn array(layout: Layout, data: Data) -> Value {
    Value::Array(NamedArray::from_parts(layout, data))
}

fn number(c: Const, op: &'static str) -> Result<f64, EvalError> {
    match c {
        Const::Bool(_) => Err(EvalError::Bool { op }),
        c => Ok(c.f64()),
    }
}

fn op_name(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "`+`",
        BinOp::Sub => "`-`",
        BinOp::Mul => "`*`",
        BinOp::Div => "`/`",
    }
}

/// Python's arithmetic between two numbers of the expression.
fn fold_binary(op: BinOp, x: Const, y: Const) -> Result<Const, EvalError> {
    let name = op_name(op);
    if let (Const::Int(a), Const::Int(b), false) = (x, y, op == BinOp::Div) {
        let r = match op {
            BinOp::Add => a.checked_add(b),
            BinOp::Sub => a.checked_sub(b),
            _ => a.checked_mul(b),
        };
        return r.map(Const::Int).ok_or(EvalError::Overflow { op: name });
    }
    let (a, b) = (number(x, name)?, number(y, name)?);
    let Data::F64(r) = arith(op, Data::F64(vec![a]), Data::F64(vec![b])) else {
        return Err(EvalError::Bool { op: name });
    };
    Ok(Const::Float(r.first().copied().unwrap_or(f64::NAN)))
}

fn fold_min_max(is_max: bool, x: Const, y: Const, name: &'static str) -> Result<Const, EvalError> {
    if let (Const::Int(a), Const::Int(b)) = (x, y) {
        return Ok(Const::Int(if is_max { a.max(b) } else { a.min(b) }));
    }
    let (a, b) = (number(x, name)?, number(y, name)?);
    let Data::F64(r) = min_max(is_max, Data::F64(vec![a]), Data::F64(vec![b])) else {
        return Err(EvalError::Bool { op: name });
    };
    Ok(Const::Float(r.first().copied().unwrap_or(f64::NAN)))
}

#[cfg(test)]
mod tests;
