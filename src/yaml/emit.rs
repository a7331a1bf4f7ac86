//! Writes [`Node`] trees as block-style YAML that YAML 1.1 and YAML 1.2
//! readers understand the same way.
//!
//! Kubernetes' own tooling (sigs.k8s.io/yaml, go-yaml v2) reads YAML 1.1,
//! where `on`, `y`, `0o17` or `12:30` mean something else than in YAML 1.2.
//! Neither serde_yaml nor yaml-rust2 quotes for both (serde_yaml writes the
//! string `on` bare, yaml-rust2 writes `1_000` bare), so the scalar style
//! decisions are made here: a string is plain only when no reader of either
//! version could take it for anything but that string.

use super::node::{Node, Scalar, Value};

/// Writes `node` as one block-style YAML document (no `---` marker),
/// ending in a newline. The same tree always gives the same bytes.
pub fn emit_document(node: &Node, out: &mut String) {
    match &node.value {
        Value::Map(entries) if !entries.is_empty() => emit_map(entries, 0, out),
        Value::Seq(items) if !items.is_empty() => emit_seq(items, 0, out),
        _ => {
            // A block scalar's body must be indented even at the top level:
            // at column 0 an indentation indicator cannot be met, and a
            // `---` or `...` line would end the document.
            emit_inline(node, 2, out);
            out.push('\n');
        }
    }
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn is_block(node: &Node) -> bool {
    match &node.value {
        Value::Map(e) => !e.is_empty(),
        Value::Seq(i) => !i.is_empty(),
        _ => false,
    }
}

/// YAML caps an implicit (`key: value`) key at 1024 characters, and
/// readers enforce it: libyaml, go-yaml, PyYAML and yaml-rust2 all refuse a
/// longer one. A key written longer (escapes in a quoted key count, so a
/// short key of control characters can get there) is made explicit: `? key`
/// on its own line, then `: value`.
const MAX_IMPLICIT_KEY: usize = 1024;

/// Mapping entries at `level` spaces; the caller has already written the
/// indentation of the first key (or nothing, when it follows `- `).
fn emit_map(entries: &[(Node, Node)], level: usize, out: &mut String) {
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 {
            indent(out, level);
        }
        let start = out.len();
        emit_key(key, out);
        let written = &out[start..];
        // Bytes first: counting characters is needed only past the limit.
        if written.len() > MAX_IMPLICIT_KEY && written.chars().count() > MAX_IMPLICIT_KEY {
            out.insert_str(start, "? ");
            out.push('\n');
            indent(out, level);
        }
        out.push(':');
        match &value.value {
            Value::Map(e) if !e.is_empty() => {
                out.push('\n');
                indent(out, level + 2);
                emit_map(e, level + 2, out);
            }
            Value::Seq(items) if !items.is_empty() => {
                out.push('\n');
                indent(out, level + 2);
                emit_seq(items, level + 2, out);
            }
            _ => {
                out.push(' ');
                emit_inline(value, level + 2, out);
                out.push('\n');
            }
        }
    }
}

fn emit_seq(items: &[Node], level: usize, out: &mut String) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            indent(out, level);
        }
        out.push_str("- ");
        match &item.value {
            Value::Map(e) if !e.is_empty() => emit_map(e, level + 2, out),
            Value::Seq(inner) if !inner.is_empty() => emit_seq(inner, level + 2, out),
            _ => {
                emit_inline(item, level + 2, out);
                out.push('\n');
            }
        }
    }
}

/// A mapping key: never a block scalar (a key must fit on its line), so a
/// multi-line key is double-quoted.
fn emit_key(key: &Node, out: &mut String) {
    match &key.value {
        Value::Scalar(Scalar::Str(s)) if !plain_ok(s) => emit_double_quoted(s, out),
        _ => emit_inline(key, 0, out),
    }
}

/// A scalar or an empty collection. `level` is the indentation of the
/// block-scalar body, should the node be a multi-line string.
fn emit_inline(node: &Node, level: usize, out: &mut String) {
    debug_assert!(!is_block(node));
    match &node.value {
        Value::Map(_) => out.push_str("{}"),
        Value::Seq(_) => out.push_str("[]"),
        Value::Scalar(s) => emit_scalar(s, level, out),
    }
}

fn emit_scalar(scalar: &Scalar, level: usize, out: &mut String) {
    match scalar {
        Scalar::Null => out.push_str("null"),
        Scalar::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Scalar::Int(i) => out.push_str(&i.to_string()),
        Scalar::Float(f) => out.push_str(&format_float(*f)),
        Scalar::Str(s) => {
            if s.contains('\n') && literal_ok(s) {
                emit_literal(s, level, out);
            } else if plain_ok(s) {
                out.push_str(s);
            } else {
                emit_double_quoted(s, out);
            }
        }
    }
}

/// A float both YAML versions read back as the same float: YAML 1.1 needs a
/// `.` in the mantissa and a sign on the exponent (`1e3` is a string to it).
pub(crate) fn format_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    // `{:e}` is the shortest representation that round-trips: `1e20`,
    // `1.5e-7`, `-0e0`.
    let e = format!("{f:e}");
    let (mantissa, exponent) = e.split_once('e').expect("{:e} always has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} writes an integer exponent");
    if (-5..=15).contains(&exponent) {
        // In the range where positional notation stays short, use it.
        let text = format!("{f}");
        return if text.contains('.') {
            text
        } else {
            text + ".0"
        };
    }
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    format!(
        "{mantissa}e{}{:02}",
        if exponent < 0 { '-' } else { '+' },
        exponent.abs()
    )
}

/// Characters that make a literal block unable to hold the string exactly:
/// YAML normalises `\r` and the Unicode line breaks, and cannot carry other
/// control characters unescaped.
fn is_unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
}

fn literal_ok(s: &str) -> bool {
    if s.chars().any(is_unsafe_char) {
        return false;
    }
    // Only line breaks: a block with no content line reads as "" under
    // clip chomping, and as whatever the reader makes of empty lines under
    // keep. Quoted, it is exact.
    if s.trim_end_matches('\n').is_empty() {
        return false;
    }
    // A tab opening a line is indentation-adjacent and read differently by
    // different readers: quote those. Trailing spaces and tabs, and lines of
    // only spaces, are content in a literal block, and libyaml, PyYAML,
    // go-yaml (kubectl kustomize) and yaml-rust2 all keep them, provided the
    // indentation is stated (see `emit_literal`).
    !s.split('\n').any(|line| line.starts_with('\t'))
}

/// Whether a line of `s` ends in a space or a tab (a line of only spaces
/// included).
fn has_trailing_blanks(s: &str) -> bool {
    s.split('\n').any(|line| line.ends_with([' ', '\t']))
}

fn emit_literal(s: &str, level: usize, out: &mut String) {
    let body = s.trim_end_matches('\n');
    let trailing = s.len() - body.len();
    out.push('|');
    // A body that opens with a space or an empty line would have its
    // indentation mis-detected: state it. State it too when a line ends in
    // blanks: a line of only spaces before the first content line is then
    // content, not an error, and an editor or a reviewer sees from the
    // header that the block's lines are exact.
    if body.starts_with(' ') || body.starts_with('\n') || has_trailing_blanks(body) {
        out.push('2');
    }
    match trailing {
        0 => out.push('-'),
        1 => {}
        _ => out.push('+'),
    }
    out.push('\n');
    for line in body.split('\n') {
        if !line.is_empty() {
            indent(out, level);
            out.push_str(line);
        }
        out.push('\n');
    }
    // `|+` keeps the final line breaks as empty lines; `|` the one that
    // ends the last line (written above).
    for _ in 1..trailing {
        out.push('\n');
    }
    // The caller writes the newline that ends a plain scalar's line; a
    // block scalar has already ended its own, so take that one back.
    if out.ends_with('\n') {
        out.pop();
    }
}

fn emit_double_quoted(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if is_unsafe_char(c) || c.is_control() => {
                let code = c as u32;
                if code <= 0xffff {
                    out.push_str(&format!("\\u{code:04X}"));
                } else {
                    out.push_str(&format!("\\U{code:08X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether `s` can be written without quotes and read back as this same
/// string by YAML 1.1 and YAML 1.2 readers alike.
pub(crate) fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) || first.is_whitespace() {
        return false;
    }
    if s.ends_with(|c: char| c.is_whitespace() || c == ':') || s.starts_with("...") {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.contains('\t') || s.contains('\n') {
        return false;
    }
    if s.chars().any(|c| is_unsafe_char(c) || c.is_control()) {
        return false;
    }
    !resolves_to_non_string(s)
}

/// Conservative union of what YAML 1.1 (with its timestamp, sexagesimal,
/// binary and `0`-octal forms) and the YAML 1.2 core schema read as
/// something other than a string.
fn resolves_to_non_string(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "y" | "yes" | "n" | "no" | "on" | "off" | "true" | "false" | "null" | "~" | "<<" | "="
    ) {
        return true;
    }
    let unsigned = lower.strip_prefix(['-', '+']).unwrap_or(&lower);
    if matches!(unsigned, ".inf" | ".nan") {
        return true;
    }
    // Every number, date and timestamp form of either version starts with a
    // digit or `.digit` (after an optional sign) and uses only these
    // characters. Anything that starts like a number and stays within them
    // is quoted; `1Gi`, `100m` or `v1` fall outside and stay plain.
    let starts_numeric = unsigned.starts_with(|c: char| c.is_ascii_digit())
        || (unsigned.starts_with('.') && unsigned[1..].starts_with(|c: char| c.is_ascii_digit()));
    if starts_numeric
        && unsigned
            .chars()
            .all(|c| c.is_ascii_hexdigit() || "xob_.:+-et zZ".contains(c))
    {
        return true;
    }
    // `2001-12-14t21:59:43.10-05:00` and friends: quote anything that opens
    // with a date.
    let b = unsigned.as_bytes();
    b.len() >= 8 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Node {
        Node::string(v)
    }

    fn map(entries: Vec<(&str, Node)>) -> Node {
        Node::new(Value::Map(
            entries.into_iter().map(|(k, v)| (s(k), v)).collect(),
        ))
    }

    fn seq(items: Vec<Node>) -> Node {
        Node::new(Value::Seq(items))
    }

    fn emit(node: &Node) -> String {
        let mut out = String::new();
        emit_document(node, &mut out);
        out
    }

    #[test]
    fn nested_layout() {
        let doc = map(vec![
            (
                "a",
                map(vec![("b", s("c")), ("d", seq(vec![s("e"), s("f")]))]),
            ),
            (
                "rules",
                seq(vec![
                    map(vec![
                        ("name", s("x")),
                        ("match", map(vec![("any", seq(vec![]))])),
                    ]),
                    seq(vec![s("g"), s("h")]),
                ]),
            ),
            ("empty", map(vec![])),
        ]);
        assert_eq!(
            emit(&doc),
            "a:\n  b: c\n  d:\n    - e\n    - f\nrules:\n  - name: x\n    match:\n      any: []\n  - - g\n    - h\nempty: {}\n"
        );
    }

    #[test]
    fn a_key_past_1024_characters_is_explicit() {
        let at_limit = "k".repeat(1024);
        let past = "k".repeat(1025);
        let doc = map(vec![
            (at_limit.as_str(), s("v")),
            (past.as_str(), map(vec![("a", s("b"))])),
        ]);
        assert_eq!(emit(&doc), format!("{at_limit}: v\n? {past}\n:\n  a: b\n"));
    }

    #[test]
    fn literal_blocks_and_their_chomping() {
        let doc = map(vec![
            ("strip", s("a\nb")),
            ("clip", s("a\nb\n")),
            ("keep", s("a\n\n")),
            ("lead", s("  indented\nnext")),
            ("inner", s("a\n\nb")),
        ]);
        assert_eq!(
            emit(&doc),
            "strip: |-\n  a\n  b\nclip: |\n  a\n  b\nkeep: |+\n  a\n\nlead: |2-\n    indented\n  next\ninner: |-\n  a\n\n  b\n"
        );
        let key = "-----BEGIN PUBLIC KEY-----\nMFkwEwYH\n-----END PUBLIC KEY-----";
        assert_eq!(
            emit(&seq(vec![map(vec![("publicKeys", s(key))])])),
            "- publicKeys: |-\n    -----BEGIN PUBLIC KEY-----\n    MFkwEwYH\n    -----END PUBLIC KEY-----\n"
        );
    }

    #[test]
    fn trailing_blanks_stay_in_a_literal_block_with_its_indentation_stated() {
        assert_eq!(emit(&map(vec![("a", s("x \ny"))])), "a: |2-\n  x \n  y\n");
        assert_eq!(
            emit(&map(vec![("a", s("x\t\n  \ny\n"))])),
            "a: |2\n  x\t\n    \n  y\n"
        );
        assert_eq!(emit(&seq(vec![s("a \nb")])), "- |2-\n  a \n  b\n");
    }

    #[test]
    fn strings_a_literal_cannot_hold_exactly_are_quoted() {
        assert_eq!(emit(&map(vec![("a", s("\tx\ny"))])), "a: \"\\tx\\ny\"\n");
        assert_eq!(emit(&map(vec![("a", s("x\r\ny"))])), "a: \"x\\r\\ny\"\n");
        assert_eq!(emit(&map(vec![("a", s("x\u{2028}"))])), "a: \"x\\u2028\"\n");
    }

    #[test]
    fn floats_carry_a_dot_and_a_signed_exponent() {
        assert_eq!(format_float(1000.0), "1000.0");
        assert_eq!(format_float(2.5), "2.5");
        assert_eq!(format_float(1e20), "1.0e+20");
        assert_eq!(format_float(1.5e-7), "1.5e-07");
        assert_eq!(format_float(-0.0), "-0.0");
        assert_eq!(format_float(f64::NEG_INFINITY), "-.inf");
    }

    #[test]
    fn ambiguous_strings_are_quoted_everyday_ones_are_not() {
        for q in [
            "on",
            "Off",
            "YES",
            "n",
            "~",
            "null",
            "NULL",
            "",
            "1_000",
            "0x1F",
            "0o17",
            "017",
            "0b101",
            "12:30",
            "1:20:30",
            ".inf",
            "-.Inf",
            ".NaN",
            "1e3",
            "1.",
            "+1",
            ".5",
            "2001-12-14",
            "2001-12-14t21:59:43.10-05:00",
            "2001-12-14 21:59:43.10 -5",
            "<<",
            "=",
            "- x",
            "a: b",
            "a #b",
            " x",
            "x ",
            "x:",
            "{{ a }}",
            "*",
            "&a",
            "!x",
            "%x",
            "@x",
            "`x",
            "'x",
            "\"x",
            "---",
            "...",
        ] {
            assert!(!plain_ok(q), "{q:?} must be quoted");
        }
        for p in [
            "1Gi",
            "100m",
            "v1",
            "kyverno.io/v1",
            "Pod",
            "Audit",
            "Deployment/*",
            "object.spec.containers.all(c, has(c.image))",
            "request.object.spec.containers[].image",
            "a:b",
            "a#b",
            "registry.acme.example/*",
            "Fairwinds Insights",
        ] {
            assert!(plain_ok(p), "{p:?} should stay plain");
        }
    }
}
