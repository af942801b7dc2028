//! Element types of expression values and numpy's promotion rules between them (NEP 50: a
//! number written in the expression is "weak" and takes the type of the array it meets).

use std::fmt;

/// An integer element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntType {
    /// `int8`
    I8,
    /// `int16`
    I16,
    /// `int32`
    I32,
    /// `int64`
    I64,
    /// `uint8`
    U8,
    /// `uint16`
    U16,
    /// `uint32`
    U32,
    /// `uint64` (held as the two's-complement bits of an `i64`)
    U64,
}

impl IntType {
    /// Width in bits.
    pub fn bits(self) -> u32 {
        match self {
            IntType::I8 | IntType::U8 => 8,
            IntType::I16 | IntType::U16 => 16,
            IntType::I32 | IntType::U32 => 32,
            IntType::I64 | IntType::U64 => 64,
        }
    }

    /// Whether the type is signed.
    pub fn signed(self) -> bool {
        matches!(
            self,
            IntType::I8 | IntType::I16 | IntType::I32 | IntType::I64
        )
    }

    fn of(signed: bool, bits: u32) -> IntType {
        match (signed, bits) {
            (true, 8) => IntType::I8,
            (true, 16) => IntType::I16,
            (true, 32) => IntType::I32,
            (true, _) => IntType::I64,
            (false, 8) => IntType::U8,
            (false, 16) => IntType::U16,
            (false, 32) => IntType::U32,
            (false, _) => IntType::U64,
        }
    }

    /// `v` reduced modulo 2^bits into this type's range (numpy's wrap-around), as held in an
    /// `i64`.
    pub fn wrap(self, v: i64) -> i64 {
        match self {
            IntType::I8 => i64::from(v as i8),
            IntType::I16 => i64::from(v as i16),
            IntType::I32 => i64::from(v as i32),
            IntType::U8 => i64::from(v as u8),
            IntType::U16 => i64::from(v as u16),
            IntType::U32 => i64::from(v as u32),
            IntType::I64 | IntType::U64 => v,
        }
    }

    /// Whether the number `v` (a literal) is a value of this type.
    pub fn holds(self, v: i64) -> bool {
        match self {
            IntType::U64 => v >= 0,
            _ => self.wrap(v) == v,
        }
    }
}

/// The element type of an expression's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// A comparison's result.
    Bool,
    /// An integer type.
    Int(IntType),
    /// `float32`
    F32,
    /// `float64`
    F64,
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DType::Bool => f.write_str("bool"),
            DType::Int(t) => write!(f, "{}int{}", if t.signed() { "" } else { "u" }, t.bits()),
            DType::F32 => f.write_str("float32"),
            DType::F64 => f.write_str("float64"),
        }
    }
}

/// numpy's `result_type` of two array types (neither `Bool`).
pub(crate) fn promote(a: DType, b: DType) -> DType {
    match (a, b) {
        (DType::F64, _) | (_, DType::F64) => DType::F64,
        (DType::F32, DType::Int(t)) | (DType::Int(t), DType::F32) if t.bits() > 16 => DType::F64,
        (DType::Int(x), DType::Int(y)) => promote_int(x, y),
        _ => DType::F32,
    }
}

fn promote_int(x: IntType, y: IntType) -> DType {
    if x.signed() == y.signed() {
        return DType::Int(IntType::of(x.signed(), x.bits().max(y.bits())));
    }
    let (s, u) = if x.signed() { (x, y) } else { (y, x) };
    match (s.bits() > u.bits(), u.bits()) {
        (true, _) => DType::Int(s),
        (false, 64) => DType::F64,
        (false, bits) => DType::Int(IntType::of(true, bits * 2)),
    }
}

/// The type of `sqrt`, `exp` and `log` of an array type (numpy's, except that 8-bit integers
/// give `float32` where numpy gives `float16`, a type the views do not serve).
pub(crate) fn float_of(t: DType) -> DType {
    match t {
        DType::Int(i) if i.bits() <= 16 => DType::F32,
        DType::F32 => DType::F32,
        _ => DType::F64,
    }
}

/// The type of `/` between arrays of types `a` and `b`: integers divide in `float64`.
pub(crate) fn divide(a: DType, b: DType) -> DType {
    match promote(a, b) {
        DType::Int(_) => DType::F64,
        t => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DType::*;
    use IntType::*;

    #[test]
    fn promotion_follows_numpy() {
        // Each row: np.result_type(a, b).
        let cases = [
            (F32, F32, F32),
            (F32, F64, F64),
            (Int(I16), F32, F32),
            (Int(U16), F32, F32),
            (Int(I32), F32, F64),
            (Int(U8), F64, F64),
            (Int(I8), Int(I16), Int(I16)),
            (Int(U8), Int(I8), Int(I16)),
            (Int(U16), Int(I32), Int(I32)),
            (Int(U32), Int(I32), Int(I64)),
            (Int(U64), Int(I64), F64),
            (Int(U64), Int(U8), Int(U64)),
        ];
        for (a, b, want) in cases {
            assert_eq!(promote(a, b), want, "{a} {b}");
            assert_eq!(promote(b, a), want, "{b} {a}");
        }
        assert_eq!(divide(Int(I8), Int(I8)), F64);
        assert_eq!(divide(Int(I16), F32), F32);
        assert_eq!(float_of(Int(I16)), F32);
        assert_eq!(float_of(Int(U8)), F32);
        assert_eq!(float_of(Int(I32)), F64);
        assert_eq!(float_of(F32), F32);
    }

    #[test]
    fn integers_wrap_and_hold() {
        assert_eq!(I8.wrap(128), -128);
        assert_eq!(U8.wrap(-1), 255);
        assert_eq!(U16.wrap(65536 + 7), 7);
        assert!(U8.holds(255) && !U8.holds(256) && !U8.holds(-1));
        assert!(I16.holds(-32768) && !I16.holds(32768));
        assert!(U64.holds(i64::MAX) && !U64.holds(-1));
        assert_eq!(Int(U32).to_string(), "uint32");
    }
}
