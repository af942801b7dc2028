//! Parser tests: the tree of each construct, and the position and wording of errors.

use super::*;

fn var(name: &str, column: usize) -> Box<Node> {
    Box::new(Node::Var {
        name: name.into(),
        column,
    })
}

fn err(text: &str) -> ParseError {
    parse(text).unwrap_err()
}

#[test]
fn precedence_and_associativity() {
    use BinOp::*;
    assert_eq!(
        parse("a + b * c").unwrap(),
        Node::Binary(
            Add,
            var("a", 1),
            Box::new(Node::Binary(Mul, var("b", 5), var("c", 9)))
        )
    );
    assert_eq!(
        parse("a - b - c").unwrap(),
        Node::Binary(
            Sub,
            Box::new(Node::Binary(Sub, var("a", 1), var("b", 5))),
            var("c", 9)
        )
    );
    assert_eq!(
        parse("-a*b").unwrap(),
        Node::Binary(Mul, Box::new(Node::Neg(var("a", 2))), var("b", 4))
    );
    assert_eq!(
        parse("(a+b)/c").unwrap(),
        Node::Binary(
            Div,
            Box::new(Node::Binary(Add, var("a", 2), var("b", 4))),
            var("c", 7)
        )
    );
    assert_eq!(
        parse("--a").unwrap(),
        Node::Neg(Box::new(Node::Neg(var("a", 3))))
    );
    assert_eq!(parse("+a").unwrap(), *var("a", 2));
    assert_eq!(
        parse("a + 1 <= b").unwrap(),
        Node::Compare(
            CmpOp::Le,
            Box::new(Node::Binary(Add, var("a", 1), Box::new(Node::Int(1)))),
            var("b", 10)
        )
    );
}

#[test]
fn numbers() {
    assert_eq!(parse("42").unwrap(), Node::Int(42));
    for (text, value) in [
        ("0.5", 0.5),
        (".5", 0.5),
        ("2.", 2.0),
        ("1e-3", 0.001),
        ("1E+3", 1000.0),
        ("3e2", 300.0),
        ("6.02e23", 6.02e23),
    ] {
        assert_eq!(parse(text).unwrap(), Node::Float(value), "{text}");
    }
}

#[test]
fn names_and_calls() {
    assert_eq!(
        parse("sea.surface_temp").unwrap(),
        *var("sea.surface_temp", 1)
    );
    assert_eq!(parse("_x1").unwrap(), *var("_x1", 1));
    // A function name not followed by `(` is a variable.
    assert_eq!(parse("log").unwrap(), *var("log", 1));
    assert_eq!(
        parse("where(a > 0, sqrt(a), 0)").unwrap(),
        Node::Call(
            Func::Where,
            vec![
                Node::Compare(CmpOp::Gt, var("a", 7), Box::new(Node::Int(0))),
                Node::Call(Func::Sqrt, vec![*var("a", 19)]),
                Node::Int(0),
            ]
        )
    );
    assert_eq!(
        parse("max(a, -1.5)").unwrap(),
        Node::Call(
            Func::Max,
            vec![*var("a", 5), Node::Neg(Box::new(Node::Float(1.5)))]
        )
    );
}

#[test]
fn errors_say_where_and_what() {
    let e = err("a +");
    assert_eq!(
        (e.column, e.expected.as_str()),
        (4, "a number, a name, `-` or `(`")
    );
    assert_eq!(e.found, "the end of the expression");
    assert_eq!(
        e.to_string(),
        "column 4: expected a number, a name, `-` or `(`, found the end of the expression"
    );
    let e = err("a $ b");
    assert_eq!((e.column, e.found.as_str()), (3, "`$`"));
    let e = err("a b");
    assert_eq!(
        (e.column, e.expected.as_str(), e.found.as_str()),
        (3, "an operator or the end of the expression", "`b`")
    );
    let e = err("(a + b");
    assert_eq!((e.column, e.expected.as_str()), (7, "`)`"));
    let e = err("foo(1)");
    assert_eq!((e.column, e.found.as_str()), (1, "a call of `foo`"));
    let e = err("min(a)");
    assert_eq!(
        (e.column, e.expected.as_str()),
        (6, "`,`: min takes 2 arguments")
    );
    let e = err("abs(a, b)");
    assert_eq!(
        (e.column, e.expected.as_str()),
        (6, "`)`: abs takes 1 argument(s)")
    );
    let e = err("a = b");
    assert_eq!((e.column, e.expected.as_str()), (3, "`==`"));
    let e = err("a ! b");
    assert_eq!((e.column, e.expected.as_str()), (3, "`!=`"));
    let e = err("1e+x");
    assert_eq!(
        (e.column, e.expected.as_str(), e.found.as_str()),
        (4, "the digits of an exponent", "`x`")
    );
    let e = err("99999999999999999999");
    assert_eq!(e.column, 1);
    // Columns count characters, not bytes.
    let e = err("é");
    assert_eq!((e.column, e.found.as_str()), (1, "`é`"));
    let e = err("a < b < c");
    assert_eq!((e.column, e.found.as_str()), (7, "`<`"));
    assert_eq!(err("").found, "the end of the expression");
}
