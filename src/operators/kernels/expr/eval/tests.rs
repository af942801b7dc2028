//! Evaluation tests: values from formulas written here, types from numpy's rules.

use std::collections::HashMap;

use super::super::{DType, Data, EvalError, Expression, IntType, NamedArray};

fn arr(dims: &[&str], shape: &[usize], data: Data) -> NamedArray {
    NamedArray::new(
        dims.iter().map(|d| d.to_string()).collect(),
        shape.to_vec(),
        data,
    )
    .unwrap()
}

fn run(text: &str, inputs: &[(&str, &NamedArray)]) -> Result<NamedArray, EvalError> {
    let inputs: HashMap<String, NamedArray> = inputs
        .iter()
        .map(|(n, a)| (n.to_string(), (*a).clone()))
        .collect();
    Expression::parse(text).unwrap().evaluate(&inputs)
}

fn f64s(a: &NamedArray) -> Vec<f64> {
    match a.data() {
        Data::F64(v) => v.clone(),
        other => panic!("expected float64, got {:?}", other.dtype()),
    }
}

fn f32s(a: &NamedArray) -> Vec<f32> {
    match a.data() {
        Data::F32(v) => v.clone(),
        other => panic!("expected float32, got {:?}", other.dtype()),
    }
}

/// a(y=2, x=3) = 1 + y + x/4, b(x=3) = 10·(x+1).
fn a_and_b() -> (NamedArray, NamedArray, Vec<f64>, Vec<f64>) {
    let a: Vec<f64> = (0..2)
        .flat_map(|y| (0..3).map(move |x| 1.0 + y as f64 + x as f64 / 4.0))
        .collect();
    let b: Vec<f64> = (0..3).map(|x| 10.0 * (x as f64 + 1.0)).collect();
    let na = arr(&["y", "x"], &[2, 3], Data::F64(a.clone()));
    let nb = arr(&["x"], &[3], Data::F64(b.clone()));
    (na, nb, a, b)
}

#[test]
fn arithmetic_and_precedence() {
    let (na, _, a, _) = a_and_b();
    let r = run("-a * 2 + a / 4 - (a - 1) * 3", &[("a", &na)]).unwrap();
    let want: Vec<f64> = a
        .iter()
        .map(|&v| -v * 2.0 + v / 4.0 - (v - 1.0) * 3.0)
        .collect();
    assert_eq!(f64s(&r), want);
    assert_eq!(r.dims(), ["y", "x"]);
    let r = run("sqrt(a) + exp(a) - log(a) + abs(-a)", &[("a", &na)]).unwrap();
    let want: Vec<f64> = a.iter().map(|&v| v.sqrt() + v.exp() - v.ln() + v).collect();
    assert_eq!(f64s(&r), want);
}

#[test]
fn broadcasting_by_dim_name() {
    let (na, nb, a, b) = a_and_b();
    // b(x) - a(y, x): dims in order of first appearance, x then y.
    let r = run("b - a", &[("a", &na), ("b", &nb)]).unwrap();
    assert_eq!(
        (r.dims(), r.shape()),
        (&["x".to_string(), "y".to_string()][..], &[3, 2][..])
    );
    let want: Vec<f64> = (0..3)
        .flat_map(|x| (0..2).map(move |y| (x, y)))
        .map(|(x, y)| b[x] - a[y * 3 + x])
        .collect();
    assert_eq!(f64s(&r), want);
    // A transposed operand: c(x, y) = a(y, x) transposed; a + c = 2a.
    let c: Vec<f64> = (0..3)
        .flat_map(|x| (0..2).map(move |y| (x, y)))
        .map(|(x, y)| a[y * 3 + x])
        .collect();
    let nc = arr(&["x", "y"], &[3, 2], Data::F64(c));
    let r = run("a + c", &[("a", &na), ("c", &nc)]).unwrap();
    assert_eq!(r.dims(), ["y", "x"]);
    assert_eq!(f64s(&r), a.iter().map(|v| 2.0 * v).collect::<Vec<_>>());
    // A new dim: t(time=2) * a(y, x) → (time, y, x).
    let nt = arr(&["time"], &[2], Data::F64(vec![1.0, -1.0]));
    let r = run("t * a", &[("a", &na), ("t", &nt)]).unwrap();
    assert_eq!(r.shape(), [2, 2, 3]);
    let want: Vec<f64> = [1.0, -1.0]
        .iter()
        .flat_map(|t| a.iter().map(move |v| t * v))
        .collect();
    assert_eq!(f64s(&r), want);
}

#[test]
fn mismatched_sizes_name_the_dim() {
    let (na, _, _, _) = a_and_b();
    let nb = arr(&["x"], &[4], Data::F64(vec![0.0; 4]));
    let e = run("a + b", &[("a", &na), ("b", &nb)]).unwrap_err();
    assert_eq!(
        e,
        EvalError::DimSize {
            dim: "x".into(),
            left: 3,
            right: 4
        }
    );
    assert_eq!(
        e.to_string(),
        "dimension `x` has size 3 in one operand and 4 in another"
    );
}

#[test]
fn nan_propagates() {
    let n = arr(&["x"], &[3], Data::F64(vec![f64::NAN, 1.0, 5.0]));
    let m = arr(&["x"], &[3], Data::F64(vec![2.0, f64::NAN, 3.0]));
    let r = f64s(&run("n + 1", &[("n", &n)]).unwrap());
    assert!(r[0].is_nan() && r[1] == 2.0);
    for f in ["min", "max"] {
        let r = f64s(&run(&format!("{f}(n, m)"), &[("n", &n), ("m", &m)]).unwrap());
        assert!(r[0].is_nan() && r[1].is_nan(), "{f}");
        assert_eq!(r[2], if f == "min" { 3.0 } else { 5.0 });
    }
}

#[test]
fn float32_stays_float32() {
    let big = 16_777_216.0f32; // 2^24: adding 1 is lost in float32, kept in float64.
    let a = arr(&["x"], &[2], Data::F32(vec![big, 0.1]));
    let d = arr(&["x"], &[2], Data::F64(vec![1.0, 1.0]));
    assert_eq!(
        f32s(&run("a + 1", &[("a", &a)]).unwrap()),
        [big, 0.1 + 1.0f32]
    );
    assert_eq!(
        f32s(&run("a * 2.5", &[("a", &a)]).unwrap()),
        [big * 2.5, 0.1 * 2.5f32]
    );
    assert_eq!(
        f32s(&run("a + a", &[("a", &a)]).unwrap()),
        [2.0 * big, 0.2f32]
    );
    assert_eq!(
        f32s(&run("a * sqrt(2)", &[("a", &a)]).unwrap())[1],
        0.1f32 * 2f32.sqrt()
    );
    assert_eq!(
        f32s(&run("sqrt(a)", &[("a", &a)]).unwrap())[1],
        0.1f32.sqrt()
    );
    assert_eq!(
        f64s(&run("a + d", &[("a", &a), ("d", &d)]).unwrap()),
        [f64::from(big) + 1.0, f64::from(0.1f32) + 1.0]
    );
}

#[test]
fn integer_types_follow_numpy() {
    let i16s = arr(&["x"], &[2], Data::Int(IntType::I16, vec![7, -3]));
    let i32s = arr(&["x"], &[2], Data::Int(IntType::I32, vec![7, -3]));
    let u8s = arr(&["x"], &[2], Data::Int(IntType::U8, vec![200, 1]));
    let f32s_ = arr(&["x"], &[2], Data::F32(vec![0.5, 0.5]));
    let dtype = |text: &str| {
        run(
            text,
            &[("i", &i16s), ("j", &i32s), ("u", &u8s), ("f", &f32s_)],
        )
        .unwrap()
        .data()
        .dtype()
    };
    assert_eq!(dtype("i + 1"), DType::Int(IntType::I16));
    assert_eq!(dtype("i * u"), DType::Int(IntType::I16));
    assert_eq!(dtype("i + j"), DType::Int(IntType::I32));
    assert_eq!(dtype("i / i"), DType::F64);
    assert_eq!(dtype("i * 1.5"), DType::F64);
    assert_eq!(dtype("i + f"), DType::F32);
    assert_eq!(dtype("j + f"), DType::F64);
    assert_eq!(dtype("sqrt(i)"), DType::F32);
    assert_eq!(dtype("log(j)"), DType::F64);
    assert_eq!(dtype("abs(u)"), DType::Int(IntType::U8));
    assert_eq!(dtype("u > 300"), DType::Bool);
    let r = run("i / 2", &[("i", &i16s)]).unwrap();
    assert_eq!(f64s(&r), [3.5, -1.5]);
    // uint8 wraps: 200 + 100 = 300 − 256, −1 = 255.
    let r = run("u + 100", &[("u", &u8s)]).unwrap();
    assert_eq!(r.data(), &Data::Int(IntType::U8, vec![44, 101]));
    let r = run("-u", &[("u", &u8s)]).unwrap();
    assert_eq!(r.data(), &Data::Int(IntType::U8, vec![56, 255]));
    let r = run("max(i, 0) * 2", &[("i", &i16s)]).unwrap();
    assert_eq!(r.data(), &Data::Int(IntType::I16, vec![14, 0]));
    let e = run("u + 300", &[("u", &u8s)]).unwrap_err();
    assert_eq!(
        e,
        EvalError::LiteralRange {
            value: 300,
            dtype: DType::Int(IntType::U8)
        }
    );
    assert_eq!(
        run("u < 300", &[("u", &u8s)]).unwrap().data(),
        &Data::Bool(vec![true, true])
    );
    let r = run(
        "abs(k)",
        &[(
            "k",
            &arr(&["x"], &[2], Data::Int(IntType::I8, vec![-128, -5])),
        )],
    );
    assert_eq!(r.unwrap().data(), &Data::Int(IntType::I8, vec![-128, 5]));
}

#[test]
fn where_selects_and_broadcasts() {
    let (na, _, a, _) = a_and_b();
    let r = run("where(a > 1.5, a, 0)", &[("a", &na)]).unwrap();
    let want: Vec<f64> = a.iter().map(|&v| if v > 1.5 { v } else { 0.0 }).collect();
    assert_eq!(f64s(&r), want);
    let f = arr(&["x"], &[3], Data::F32(vec![-1.0, 2.0, f32::NAN]));
    let r = run("where(f >= 0, f, -f * 2)", &[("f", &f)]).unwrap();
    let got = f32s(&r);
    assert_eq!(&got[..2], [2.0, 2.0]);
    assert!(got[2].is_nan());
    // A numeric condition is true where non-zero; dims follow cond, a, b.
    let m = arr(&["t"], &[2], Data::Int(IntType::U8, vec![0, 3]));
    let r = run("where(m, a, -1)", &[("a", &na), ("m", &m)]).unwrap();
    assert_eq!(r.dims(), ["t", "y", "x"]);
    let want: Vec<f64> = [false, true]
        .iter()
        .flat_map(|&k| a.iter().map(move |&v| if k { v } else { -1.0 }))
        .collect();
    assert_eq!(f64s(&r), want);
    let r = run("where(1 < 2, a, 0)", &[("a", &na)]).unwrap();
    assert_eq!(f64s(&r), a);
}

#[test]
fn numbers_alone_follow_python() {
    assert_eq!(
        run("1 + 2 * 3", &[]).unwrap().data(),
        &Data::Int(IntType::I64, vec![7])
    );
    assert_eq!(run("1 / 4", &[]).unwrap().data(), &Data::F64(vec![0.25]));
    assert_eq!(
        run("min(2, -3)", &[]).unwrap().data(),
        &Data::Int(IntType::I64, vec![-3])
    );
    assert_eq!(run("3 > 2", &[]).unwrap().data(), &Data::Bool(vec![true]));
    assert_eq!(
        run("where(0, 1, 2.5)", &[]).unwrap().data(),
        &Data::F64(vec![2.5])
    );
    assert!(run("1 + 2", &[]).unwrap().dims().is_empty());
    let e = run("4611686018427387904 * 2", &[]).unwrap_err();
    assert_eq!(e, EvalError::Overflow { op: "`*`" });
}

#[test]
fn errors_name_the_problem() {
    let (na, _, _, _) = a_and_b();
    let e = run("a + zz", &[("a", &na)]).unwrap_err();
    assert_eq!(
        e,
        EvalError::UnknownVariable {
            name: "zz".into(),
            column: 5
        }
    );
    let e = run("(a > 0) + 1", &[("a", &na)]).unwrap_err();
    assert_eq!(e, EvalError::Bool { op: "`+`" });
    assert!(matches!(
        run("abs(a > 0)", &[("a", &na)]),
        Err(EvalError::Bool { op: "abs" })
    ));
    assert!(matches!(
        run("where(a > 0, a > 1, a)", &[("a", &na)]),
        Err(EvalError::Bool { .. })
    ));
}

#[test]
fn variables_are_listed_once_in_order() {
    let e = Expression::parse("a + where(b > a, c.d, -a) * sqrt(b)").unwrap();
    assert_eq!(e.variables(), ["a", "b", "c.d"]);
    assert!(Expression::parse("1 + 2").unwrap().variables().is_empty());
}
