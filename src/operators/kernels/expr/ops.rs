//! The element-wise operations on [`Data`] of one type: numpy's ufuncs `add`, `subtract`,
//! `multiply`, `true_divide`, comparisons, `minimum` / `maximum` (NaN-propagating), `negative`,
//! `absolute`, `sqrt`, `exp`, `log`. Integers wrap on overflow as numpy's do.

use super::array::Data;
use super::dtype::IntType;
use super::parse::{BinOp, CmpOp};

/// A one-operand operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unary {
    Neg,
    Abs,
    Sqrt,
    Exp,
    Log,
}

fn zip<T: Copy, R>(x: &[T], y: &[T], f: impl Fn(T, T) -> R) -> Vec<R> {
    x.iter().zip(y).map(|(&a, &b)| f(a, b)).collect()
}

/// Floats for the generic element functions.
trait Real:
    Copy
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
{
    fn nan(self) -> bool;
}
impl Real for f32 {
    fn nan(self) -> bool {
        self.is_nan()
    }
}
impl Real for f64 {
    fn nan(self) -> bool {
        self.is_nan()
    }
}

fn real_arith<T: Real>(op: BinOp, a: T, b: T) -> T {
    match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
    }
}

/// NaN wins (`a + b` is then NaN).
fn real_min_max<T: Real>(is_max: bool, a: T, b: T) -> T {
    if a.nan() || b.nan() {
        a + b
    } else if (a > b) == is_max {
        a
    } else {
        b
    }
}

/// One element function per representation, applied to operands of one type (`y` is cast to
/// `x`'s type if it is not).
fn zip_same(
    x: Data,
    y: Data,
    on_f32: impl Fn(f32, f32) -> f32,
    on_f64: impl Fn(f64, f64) -> f64,
    on_int: impl Fn(IntType, i64, i64) -> i64,
) -> Data {
    let y = y.cast(x.dtype());
    match (x, y) {
        (Data::F32(a), Data::F32(b)) => Data::F32(zip(&a, &b, on_f32)),
        (Data::F64(a), Data::F64(b)) => Data::F64(zip(&a, &b, on_f64)),
        (Data::Int(t, a), Data::Int(_, b)) => Data::Int(t, zip(&a, &b, |a, b| on_int(t, a, b))),
        (x, _) => x,
    }
}

/// `x op y` for operands of one type.
pub(crate) fn arith(op: BinOp, x: Data, y: Data) -> Data {
    let int = |t: IntType, a: i64, b: i64| {
        t.wrap(match op {
            BinOp::Add => a.wrapping_add(b),
            BinOp::Sub => a.wrapping_sub(b),
            BinOp::Mul => a.wrapping_mul(b),
            // The evaluator divides integers as floats; kept total.
            BinOp::Div => a.checked_div(b).unwrap_or(0),
        })
    };
    let on_f32 = |a, b| real_arith::<f32>(op, a, b);
    zip_same(x, y, on_f32, |a, b| real_arith(op, a, b), int)
}

/// A comparison of two `f64` values (IEEE: every comparison with NaN is false but `!=`).
pub(crate) fn compare_f64(op: CmpOp, a: f64, b: f64) -> bool {
    cmp(op, a, b)
}

fn cmp<T: PartialOrd>(op: CmpOp, a: T, b: T) -> bool {
    match op {
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
    }
}

/// `x op y` element-wise for operands of one type.
pub(crate) fn compare(op: CmpOp, x: Data, y: Data) -> Vec<bool> {
    let y = y.cast(x.dtype());
    match (x, y) {
        (Data::F32(a), Data::F32(b)) => zip(&a, &b, |a, b| cmp(op, a, b)),
        (Data::F64(a), Data::F64(b)) => zip(&a, &b, |a, b| cmp(op, a, b)),
        (Data::Int(IntType::U64, a), Data::Int(_, b)) => {
            zip(&a, &b, |a, b| cmp(op, a as u64, b as u64))
        }
        (Data::Int(_, a), Data::Int(_, b)) => zip(&a, &b, |a, b| cmp(op, a, b)),
        (Data::Bool(a), Data::Bool(b)) => zip(&a, &b, |a, b| cmp(op, a, b)),
        _ => Vec::new(),
    }
}

/// `np.maximum` / `np.minimum`: NaN wins.
pub(crate) fn min_max(is_max: bool, x: Data, y: Data) -> Data {
    let int = |t: IntType, a: i64, b: i64| {
        let a_wins = match t {
            IntType::U64 => (a as u64 > b as u64) == is_max,
            _ => (a > b) == is_max,
        };
        if a_wins {
            a
        } else {
            b
        }
    };
    let on_f32 = |a, b| real_min_max::<f32>(is_max, a, b);
    zip_same(x, y, on_f32, |a, b| real_min_max(is_max, a, b), int)
}

/// A one-operand operation; `sqrt`, `exp` and `log` expect float data (cast by the caller).
pub(crate) fn unary(u: Unary, x: Data) -> Data {
    macro_rules! float {
        ($v:expr) => {
            $v.into_iter()
                .map(|a| match u {
                    Unary::Neg => -a,
                    Unary::Abs => a.abs(),
                    Unary::Sqrt => a.sqrt(),
                    Unary::Exp => a.exp(),
                    Unary::Log => a.ln(),
                })
                .collect()
        };
    }
    match x {
        Data::F32(v) => Data::F32(float!(v)),
        Data::F64(v) => Data::F64(float!(v)),
        Data::Int(t, v) => Data::Int(
            t,
            v.into_iter()
                .map(|a| match u {
                    Unary::Neg => t.wrap(a.wrapping_neg()),
                    Unary::Abs if t.signed() => t.wrap(a.wrapping_abs()),
                    _ => a,
                })
                .collect(),
        ),
        x => x,
    }
}
