//! Every document the parser accepts, once emitted, parses back to the same
//! tree: the emitter never writes a string that reads as another type or
//! value, and never writes a layout that reads as another structure.

#![no_main]

use insights_policy_render::yaml::{emit_document, parse_stream, Node, Scalar, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(docs) = parse_stream(data) else {
        return;
    };
    for doc in docs {
        let Some(root) = doc.root else {
            continue;
        };
        let mut text = String::new();
        emit_document(&root, &mut text);
        let back = parse_stream(text.as_bytes())
            .unwrap_or_else(|e| panic!("emitted YAML does not parse: {e}\n{text}"));
        let roots: Vec<Node> = back.into_iter().filter_map(|d| d.root).collect();
        assert!(
            roots.len() == 1 && same(&root, &roots[0]),
            "emitted YAML reads back differently:\n{text}\n{root:?}\n---- became ----\n{roots:?}"
        );
    }
});

/// Tree equality in which NaN equals NaN and 0.0 differs from -0.0, the
/// distinctions a reader of the emitted text can observe. Recursion is safe:
/// the parser caps nesting.
fn same(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (Value::Scalar(Scalar::Float(x)), Value::Scalar(Scalar::Float(y))) => {
            (x.is_nan() && y.is_nan()) || (x == y && x.is_sign_negative() == y.is_sign_negative())
        }
        (Value::Scalar(x), Value::Scalar(y)) => x == y,
        (Value::Seq(x), Value::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x
                    .iter()
                    .zip(y)
                    .all(|((k, v), (l, w))| same(k, l) && same(v, w))
        }
        _ => false,
    }
}
