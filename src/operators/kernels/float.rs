//! The floating-point element types the kernels accept (`f32`, `f64`), behind one sealed trait
//! so each kernel is written once.

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// An IEEE binary floating-point element type: `f32` or `f64`.
pub trait Float:
    Copy + PartialOrd + Send + Sync + std::fmt::Debug + sealed::Sealed + 'static
{
    /// Explicitly stored mantissa (significand) bits: 23 for `f32`, 52 for `f64`.
    const MANTISSA_BITS: u32;
    /// The numpy name of the type.
    const NAME: &'static str;
    /// The value widened to `f64` (exact).
    fn to_f64(self) -> f64;
    /// The nearest value of this type (round to nearest even; exact for `f64`).
    fn from_f64(value: f64) -> Self;
    /// Whether the value is NaN.
    fn is_nan(self) -> bool;
    /// The IEEE bit pattern, zero-extended to 64 bits.
    fn to_bits_u64(self) -> u64;
    /// The value with this bit pattern (the low bits of `bits` for `f32`).
    fn from_bits_u64(bits: u64) -> Self;
}

impl Float for f32 {
    const MANTISSA_BITS: u32 = 23;
    const NAME: &'static str = "float32";
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn from_f64(value: f64) -> Self {
        value as f32
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn to_bits_u64(self) -> u64 {
        u64::from(self.to_bits())
    }
    fn from_bits_u64(bits: u64) -> Self {
        f32::from_bits(bits as u32)
    }
}

impl Float for f64 {
    const MANTISSA_BITS: u32 = 52;
    const NAME: &'static str = "float64";
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(value: f64) -> Self {
        value
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn to_bits_u64(self) -> u64 {
        self.to_bits()
    }
    fn from_bits_u64(bits: u64) -> Self {
        f64::from_bits(bits)
    }
}
