//! Reads a multi-document YAML stream into [`Node`] trees.
//!
//! We drive yaml-rust2's event parser ourselves rather than use its loader:
//! the loader recurses once per nesting level (a hostile 20,000-level document
//! would overflow the stack), silently keeps the last of two duplicate keys,
//! and expands aliases without any bound. Here the tree is built with an
//! explicit stack, duplicate keys are an error, nesting is capped, and alias
//! expansion has a node budget, so time and memory stay proportional to the
//! input.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::node::{Mark, Node, Scalar, Value};

/// Deeper than any real policy (the Kyverno library peaks around 20) and far
/// below what would strain the recursive passes over the tree.
pub const MAX_DEPTH: usize = 128;

/// How many nodes alias expansion may add to a stream. Anchors of normal size
/// expand freely; a "billion laughs" stream is refused after this many.
/// A scalar counts one more node per [`ALIAS_BYTES_PER_NODE`] bytes of text,
/// so that one long string aliased many times is bounded too.
pub const MAX_ALIAS_NODES: usize = 100_000;

/// Roughly what a node costs in memory: with text weighed at this rate, the
/// budget bounds the memory an expansion adds (a few megabytes), not just
/// the node count.
pub const ALIAS_BYTES_PER_NODE: usize = 64;

/// One document of a stream. `root` is `None` for an empty or comment-only
/// document (and for an explicit `null`), which callers skip.
#[derive(Debug, Clone)]
pub struct Document {
    /// 1-based position in the stream, counting skipped documents too, so the
    /// number matches what a person counts in the file.
    pub index: usize,
    pub mark: Mark,
    pub root: Option<Node>,
    /// Why the document could not be read, when it is well-formed YAML that
    /// we refuse (a duplicate key, a forbidden tag, ...) and the stream was
    /// read with [`parse_stream_each_recovering`]; `root` is `None` then.
    /// The other functions return such an error instead.
    pub error: Option<ParseError>,
}

/// A stream that is not YAML we accept. `document` is the 1-based document
/// the problem is in; `mark` points at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("document {document} (line {}, column {}): {kind}", mark.line, mark.col)]
pub struct ParseError {
    pub document: usize,
    pub mark: Mark,
    pub kind: ParseErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("the input is not valid UTF-8")]
    InvalidUtf8,
    #[error("invalid YAML: {0}")]
    Syntax(String),
    #[error("duplicate key {key:?} (first at line {first_line})")]
    DuplicateKey { key: String, first_line: usize },
    #[error("a mapping key must be a scalar, not a {0}")]
    ComplexKey(&'static str),
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("aliases expand to more than {MAX_ALIAS_NODES} nodes, counting each {ALIAS_BYTES_PER_NODE} bytes of text as one (an alias bomb?)")]
    AliasBomb,
    #[error("alias to an anchor that is not defined earlier in this document")]
    UnknownAlias,
    #[error("tag {0} is not allowed: only the standard YAML tags (!!str, !!int, !!float, !!bool, !!null, !!map, !!seq) are")]
    ForbiddenTag(String),
    #[error("{value:?} is not a valid {tag}")]
    BadTaggedValue { tag: &'static str, value: String },
    #[error("merge keys (<<) are read differently by YAML 1.1 and YAML 1.2 tools; expand the merge in the source")]
    MergeKey,
}

impl ParseErrorKind {
    /// Whether the error is about one document's content, which the
    /// scanner reads past: the documents after it can still be read.
    pub fn is_per_document(&self) -> bool {
        matches!(
            self,
            ParseErrorKind::DuplicateKey { .. }
                | ParseErrorKind::ComplexKey(_)
                | ParseErrorKind::UnknownAlias
                | ParseErrorKind::ForbiddenTag(_)
                | ParseErrorKind::BadTaggedValue { .. }
                | ParseErrorKind::MergeKey
        )
    }
}

/// Parses every document of `input`.
///
/// A leading byte-order mark is ignored; CRLF line endings and `...`
/// document end markers are accepted. Plain scalars are resolved with the
/// YAML 1.2 core schema (so `on` and `yes` are strings, `0o17` is 15).
pub fn parse_stream(input: &[u8]) -> Result<Vec<Document>, ParseError> {
    let mut documents = Vec::new();
    parse_stream_each(input, |doc| documents.push(doc))?;
    Ok(documents)
}

/// Like [`parse_stream`], but hands each document to `each` as soon as it is
/// complete, so a caller that keeps less than the whole tree (the renderer
/// keeps only the rendered bytes) holds one document's tree at a time.
pub fn parse_stream_each(input: &[u8], each: impl FnMut(Document)) -> Result<(), ParseError> {
    parse_bytes(input, false, each)
}

/// Like [`parse_stream_each`], but a document that is well-formed YAML with
/// something we refuse in it (see [`ParseErrorKind::is_per_document`]) is
/// handed to `each` with its [`Document::error`] set, and the documents
/// after it are read too: one bad document does not hide the problems of
/// the others. Syntax errors, invalid UTF-8 and alias bombs still end the
/// stream (the scanner cannot go on, or the budget is the stream's).
pub fn parse_stream_each_recovering(
    input: &[u8],
    each: impl FnMut(Document),
) -> Result<(), ParseError> {
    parse_bytes(input, true, each)
}

fn parse_bytes(input: &[u8], recover: bool, each: impl FnMut(Document)) -> Result<(), ParseError> {
    let text = std::str::from_utf8(input).map_err(|e| {
        let before = &input[..e.valid_up_to()];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let col = before.len()
            - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1)
            + 1;
        let document = count_document_markers(before).max(1);
        ParseError {
            document,
            mark: Mark { line, col },
            kind: ParseErrorKind::InvalidUtf8,
        }
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    parse_text(text, 0, recover, each).map(|_| ())
}

/// What parsing a piece of a stream saw besides its documents: what
/// [`crate::yaml::split`] needs to tell whether the pieces read as the whole.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PieceStats {
    /// Documents started (empty ones included).
    pub documents: usize,
    /// Nodes added by alias expansion, which the stream shares one budget for.
    pub alias_nodes: usize,
    /// A document whose root is a block scalar: its content may sit at
    /// column 0, where the scanner does not end it at a `---` line.
    pub root_block_scalar: bool,
}

/// Parses UTF-8 text whose first line is line `line_offset + 1` of the
/// stream. Document indices count from 1 within `text`.
pub(crate) fn parse_text(
    text: &str,
    line_offset: usize,
    recover: bool,
    mut each: impl FnMut(Document),
) -> Result<PieceStats, ParseError> {
    let mut builder = Builder {
        line_offset,
        eof_block_scalar: block_scalar_with_invented_break(text),
        ..Builder::default()
    };
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, marker) = parser.next_token().map_err(|e| ParseError {
            document: builder.document.max(1),
            mark: builder.mark(e.marker()),
            // The scanner has its own, higher, cap on flow nesting.
            kind: if e.info() == "recursion limit exceeded" {
                ParseErrorKind::TooDeep
            } else {
                ParseErrorKind::Syntax(e.info().to_string())
            },
        })?;
        if event == Event::StreamEnd {
            break;
        }
        let at = builder.mark(&marker);
        if let Err(e) = builder.on_event(event, at, marker.index()) {
            if !(recover && e.kind.is_per_document()) {
                return Err(e);
            }
            builder.poison(e);
        }
        if let Some(doc) = builder.finished.take() {
            each(doc);
        }
    }
    Ok(PieceStats {
        documents: builder.document,
        alias_nodes: builder.alias_nodes,
        root_block_scalar: builder.root_block_scalar,
    })
}

/// yaml-rust2 reads a block scalar whose last line ends the input without a
/// line break (`a: |` then `  x` at the very end) as if that line had one:
/// "x\n", where the YAML spec, libyaml, PyYAML and go-yaml all read "x" (the
/// clip and keep chomping keep only the line breaks that are there). Same
/// for a last line of spaces, which gains a second break.
///
/// Returns the character index (as yaml-rust2's markers count) of the block
/// scalar that needs its last line break taken back, if any. Only input that
/// ends without a line break can be affected, and only its last scalar; to
/// tell whether that scalar reaches the end of the input (rather than ending
/// before a trailing comment, say) without re-implementing the scanner's
/// indentation rules, the input is read again with one more character on its
/// last line: that character changes the scalar's value exactly when the
/// last line belongs to it.
fn block_scalar_with_invented_break(text: &str) -> Option<usize> {
    if text.is_empty() || text.ends_with(['\n', '\r']) || !text.contains(['|', '>']) {
        return None;
    }
    let (index, value) = last_scalar_if_block(text)??;
    if !value.ends_with('\n') {
        return None; // strip chomping, or the scalar ended before the last line
    }
    match last_scalar_if_block(&format!("{text}z")) {
        Some(Some((probe_index, probe_value))) if probe_index == index && probe_value != value => {
            Some(index)
        }
        _ => None,
    }
}

/// The last scalar of a stream when it is a block scalar: its marker's
/// character index and its value. `None` when the stream does not parse.
fn last_scalar_if_block(text: &str) -> Option<Option<(usize, String)>> {
    let mut parser = Parser::new_from_str(text);
    let mut last = None;
    loop {
        let (event, marker) = parser.next_token().ok()?;
        match event {
            Event::StreamEnd => return Some(last),
            Event::Scalar(value, TScalarStyle::Literal | TScalarStyle::Folded, ..) => {
                last = Some((marker.index(), value));
            }
            Event::SequenceEnd | Event::MappingEnd | Event::DocumentEnd | Event::Nothing => {}
            _ => last = None,
        }
    }
}

/// A rough document count for errors found before parsing starts: lines
/// that begin with `---`.
fn count_document_markers(bytes: &[u8]) -> usize {
    let starts = bytes
        .split(|&b| b == b'\n')
        .filter(|line| line.starts_with(b"---"))
        .count();
    if bytes.starts_with(b"---") {
        starts
    } else {
        starts + 1
    }
}

enum Frame {
    Seq {
        mark: Mark,
        anchor: usize,
        items: Vec<Node>,
        size: usize,
    },
    Map {
        mark: Mark,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        seen: HashMap<String, usize>,
        size: usize,
    },
}

#[derive(Default)]
struct Builder {
    /// The document that the last event completed, if any.
    finished: Option<Document>,
    /// 1-based index of the document being read.
    document: usize,
    doc_mark: Mark,
    stack: Vec<Frame>,
    root: Option<Node>,
    /// Anchored nodes of the current document and their sizes in nodes.
    anchors: HashMap<usize, (Node, usize)>,
    alias_nodes: usize,
    /// Lines of the stream before the text being parsed.
    line_offset: usize,
    root_block_scalar: bool,
    /// The character index of a block scalar whose value yaml-rust2 ended
    /// with a line break the input does not have (see
    /// [`block_scalar_with_invented_break`]).
    eof_block_scalar: Option<usize>,
    /// The error that ended the current document (when recovering): the
    /// rest of its events are skipped.
    poisoned: Option<ParseError>,
}

impl Builder {
    fn mark(&self, m: &Marker) -> Mark {
        Mark {
            line: m.line() + self.line_offset,
            col: m.col() + 1,
        }
    }

    fn error(&self, mark: Mark, kind: ParseErrorKind) -> ParseError {
        ParseError {
            document: self.document.max(1),
            mark,
            kind,
        }
    }

    fn poison(&mut self, error: ParseError) {
        self.stack.clear();
        self.root = None;
        self.poisoned = Some(error);
    }

    fn on_event(&mut self, event: Event, at: Mark, marker_index: usize) -> Result<(), ParseError> {
        if self.poisoned.is_some() && event != Event::DocumentEnd {
            return Ok(());
        }
        match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
            Event::DocumentStart => {
                self.document += 1;
                self.doc_mark = at;
                self.anchors.clear();
                self.root = None;
            }
            Event::DocumentEnd => {
                let root = self.root.take().filter(|n| !is_empty_document(n));
                self.finished = Some(Document {
                    index: self.document,
                    mark: self.doc_mark,
                    root,
                    error: self.poisoned.take(),
                });
            }
            Event::Scalar(text, style, anchor, tag) => {
                if self.stack.is_empty()
                    && matches!(style, TScalarStyle::Literal | TScalarStyle::Folded)
                {
                    self.root_block_scalar = true;
                }
                let mut text = text;
                if self.eof_block_scalar == Some(marker_index)
                    && matches!(style, TScalarStyle::Literal | TScalarStyle::Folded)
                {
                    text.pop();
                }
                let size = 1 + text.len() / ALIAS_BYTES_PER_NODE;
                let value = resolve_scalar(text, style, tag.as_ref())
                    .map_err(|kind| self.error(at, kind))?;
                self.push(Node { value, mark: at }, anchor, size)?;
            }
            Event::Alias(id) => {
                let (node, size) = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| self.error(at, ParseErrorKind::UnknownAlias))?;
                self.alias_nodes += size;
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return Err(self.error(at, ParseErrorKind::AliasBomb));
                }
                self.push(node, 0, size)?;
            }
            Event::SequenceStart(anchor, tag) => {
                check_collection_tag(tag.as_ref(), "seq").map_err(|k| self.error(at, k))?;
                self.open(Frame::Seq {
                    mark: at,
                    anchor,
                    items: Vec::new(),
                    size: 1,
                })?;
            }
            Event::MappingStart(anchor, tag) => {
                check_collection_tag(tag.as_ref(), "map").map_err(|k| self.error(at, k))?;
                self.open(Frame::Map {
                    mark: at,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                    seen: HashMap::new(),
                    size: 1,
                })?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor, size) = match self.stack.pop() {
                    Some(Frame::Seq {
                        mark,
                        anchor,
                        items,
                        size,
                    }) => (
                        Node {
                            value: Value::Seq(items),
                            mark,
                        },
                        anchor,
                        size,
                    ),
                    Some(Frame::Map {
                        mark,
                        anchor,
                        entries,
                        size,
                        ..
                    }) => (
                        Node {
                            value: Value::Map(entries),
                            mark,
                        },
                        anchor,
                        size,
                    ),
                    None => {
                        return Err(self.error(
                            at,
                            ParseErrorKind::Syntax("unbalanced collection end".into()),
                        ))
                    }
                };
                self.push(node, anchor, size)?;
            }
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame) -> Result<(), ParseError> {
        if self.stack.len() >= MAX_DEPTH {
            let at = match &frame {
                Frame::Seq { mark, .. } | Frame::Map { mark, .. } => *mark,
            };
            return Err(self.error(at, ParseErrorKind::TooDeep));
        }
        self.stack.push(frame);
        Ok(())
    }

    /// Places a finished node into its parent (or as the document root),
    /// remembering it if it carries an anchor.
    fn push(&mut self, node: Node, anchor: usize, size: usize) -> Result<(), ParseError> {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        let document = self.document.max(1);
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq {
                items, size: total, ..
            }) => {
                *total += size;
                items.push(node);
            }
            Some(Frame::Map {
                entries,
                key,
                seen,
                size: total,
                ..
            }) => {
                *total += size;
                match key.take() {
                    Some(k) => entries.push((k, node)),
                    None => {
                        let err = |kind| ParseError {
                            document,
                            mark: node.mark,
                            kind,
                        };
                        let Value::Scalar(scalar) = &node.value else {
                            return Err(err(ParseErrorKind::ComplexKey(node.type_name())));
                        };
                        if node.as_str() == Some("<<") {
                            return Err(err(ParseErrorKind::MergeKey));
                        }
                        let canonical = canonical_key(scalar);
                        if let Some(&first_line) = seen.get(&canonical) {
                            return Err(err(ParseErrorKind::DuplicateKey {
                                key: display_key(scalar),
                                first_line,
                            }));
                        }
                        seen.insert(canonical, node.mark.line);
                        *key = Some(node);
                    }
                }
            }
        }
        Ok(())
    }
}

fn is_empty_document(node: &Node) -> bool {
    matches!(node.value, Value::Scalar(Scalar::Null))
}

/// Keys compare by value and type: `1` and `"1"` are different keys, as
/// they are to a YAML parser.
fn canonical_key(scalar: &Scalar) -> String {
    match scalar {
        Scalar::Null => "n:".into(),
        Scalar::Bool(b) => format!("b:{b}"),
        Scalar::Int(i) => format!("i:{i}"),
        Scalar::Float(f) => format!("f:{}", f.to_bits()),
        Scalar::Str(s) => format!("s:{s}"),
    }
}

fn display_key(scalar: &Scalar) -> String {
    match scalar {
        Scalar::Null => "null".into(),
        Scalar::Bool(b) => b.to_string(),
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) => f.to_string(),
        Scalar::Str(s) => s.clone(),
    }
}

/// The suffix of a tag in the standard `tag:yaml.org,2002:` namespace
/// (written `!!x`), or `None` for any other tag.
fn standard_tag(tag: &Tag) -> Option<&str> {
    match tag.handle.as_str() {
        "!!" => Some(tag.suffix.as_str()),
        "tag:yaml.org,2002:" => Some(tag.suffix.as_str()),
        "!" if tag.suffix.starts_with("tag:yaml.org,2002:") => {
            Some(&tag.suffix["tag:yaml.org,2002:".len()..])
        }
        _ => None,
    }
}

/// A tag as it was written: `!!x` for the standard namespace.
fn tag_text(tag: &Tag) -> String {
    match tag.handle.as_str() {
        "tag:yaml.org,2002:" => format!("!!{}", tag.suffix),
        handle => format!("{handle}{}", tag.suffix),
    }
}

fn check_collection_tag(tag: Option<&Tag>, expected: &str) -> Result<(), ParseErrorKind> {
    match tag {
        None => Ok(()),
        Some(t) if standard_tag(t) == Some(expected) => Ok(()),
        Some(t) => Err(ParseErrorKind::ForbiddenTag(tag_text(t))),
    }
}

fn resolve_scalar(
    text: String,
    style: TScalarStyle,
    tag: Option<&Tag>,
) -> Result<Value, ParseErrorKind> {
    let scalar = match tag {
        // `! value` is the non-specific tag: a string.
        Some(t) if t.handle == "!" && t.suffix.is_empty() => Scalar::Str(text),
        Some(t) => match standard_tag(t) {
            Some("str") => Scalar::Str(text),
            Some("int") => resolve_plain(&text)
                .filter(|s| matches!(s, Scalar::Int(_)))
                .ok_or(ParseErrorKind::BadTaggedValue {
                    tag: "!!int",
                    value: text,
                })?,
            Some("float") => match resolve_plain(&text) {
                Some(Scalar::Float(f)) => Scalar::Float(f),
                Some(Scalar::Int(i)) => Scalar::Float(i as f64),
                _ => {
                    return Err(ParseErrorKind::BadTaggedValue {
                        tag: "!!float",
                        value: text,
                    })
                }
            },
            Some("bool") => resolve_plain(&text)
                .filter(|s| matches!(s, Scalar::Bool(_)))
                .ok_or(ParseErrorKind::BadTaggedValue {
                    tag: "!!bool",
                    value: text,
                })?,
            Some("null") => resolve_plain(&text)
                .filter(|s| matches!(s, Scalar::Null))
                .ok_or(ParseErrorKind::BadTaggedValue {
                    tag: "!!null",
                    value: text,
                })?,
            _ => return Err(ParseErrorKind::ForbiddenTag(tag_text(t))),
        },
        None if style == TScalarStyle::Plain => resolve_plain(&text).unwrap_or(Scalar::Str(text)),
        None => Scalar::Str(text),
    };
    Ok(Value::Scalar(scalar))
}

/// The YAML 1.2 core schema's reading of a plain scalar, or `None` for a string.
pub(crate) fn resolve_plain(text: &str) -> Option<Scalar> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Scalar::Null),
        "true" | "True" | "TRUE" => return Some(Scalar::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Scalar::Bool(false)),
        ".nan" | ".NaN" | ".NAN" => return Some(Scalar::Float(f64::NAN)),
        _ => {}
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return parse_radix(hex, 16);
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return parse_radix(oct, 8);
    }
    let (negative, unsigned) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") {
        return Some(Scalar::Float(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        }));
    }
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return Some(match text.parse::<i128>() {
            Ok(i) => Scalar::Int(i),
            // Beyond i128: still a number to every parser, so keep it one.
            Err(_) => Scalar::Float(text.parse().ok()?),
        });
    }
    if is_core_float(unsigned) {
        return text.parse::<f64>().ok().map(Scalar::Float);
    }
    None
}

fn parse_radix(digits: &str, radix: u32) -> Option<Scalar> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    i128::from_str_radix(digits, radix).ok().map(Scalar::Int)
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, the core schema's float.
fn is_core_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    let exponent_ok = match exponent {
        None => true,
        Some(e) => digits(e.strip_prefix(['-', '+']).unwrap_or(e)),
    };
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(input: &str) -> Vec<Option<Node>> {
        parse_stream(input.as_bytes())
            .unwrap()
            .into_iter()
            .map(|d| d.root)
            .collect()
    }

    fn err(input: &[u8]) -> ParseError {
        parse_stream(input).unwrap_err()
    }

    #[test]
    fn empty_stream_and_comment_only_documents_are_empty() {
        assert!(parse_stream(b"").unwrap().is_empty());
        assert!(roots("# just a comment\n").iter().all(Option::is_none));
        let docs = parse_stream(b"---\n# nothing\n---\na: 1\n---\n").unwrap();
        assert_eq!(docs.iter().filter(|d| d.root.is_some()).count(), 1);
        let real = docs.iter().find(|d| d.root.is_some()).unwrap();
        assert_eq!(real.index, 2);
        assert_eq!(real.mark.line, 3);
    }

    #[test]
    fn plain_scalars_follow_the_core_schema() {
        let doc = roots("a: on\nb: 0o17\nc: 0x1F\nd: 1e3\ne: ~\nf: TRUE\ng: 1_000\nh: '12'\ni: -.inf\nj: 12:30\n")
            .remove(0)
            .unwrap();
        let get = |k| doc.get(k).unwrap().value.clone();
        assert_eq!(get("a"), Value::Scalar(Scalar::Str("on".into())));
        assert_eq!(get("b"), Value::Scalar(Scalar::Int(15)));
        assert_eq!(get("c"), Value::Scalar(Scalar::Int(31)));
        assert_eq!(get("d"), Value::Scalar(Scalar::Float(1000.0)));
        assert_eq!(get("e"), Value::Scalar(Scalar::Null));
        assert_eq!(get("f"), Value::Scalar(Scalar::Bool(true)));
        assert_eq!(get("g"), Value::Scalar(Scalar::Str("1_000".into())));
        assert_eq!(get("h"), Value::Scalar(Scalar::Str("12".into())));
        assert_eq!(get("i"), Value::Scalar(Scalar::Float(f64::NEG_INFINITY)));
        assert_eq!(get("j"), Value::Scalar(Scalar::Str("12:30".into())));
    }

    #[test]
    fn duplicate_keys_name_both_lines() {
        let e = err(b"a: 1\nmetadata:\n  name: x\n  name: y\n");
        assert_eq!(e.mark.line, 4);
        assert_eq!(
            e.kind,
            ParseErrorKind::DuplicateKey {
                key: "name".into(),
                first_line: 3
            }
        );
    }

    #[test]
    fn bom_crlf_and_document_end_markers_are_accepted() {
        let docs =
            parse_stream(b"\xef\xbb\xbfa: 1\r\nb: |\r\n  x\r\n  y\r\n...\r\n---\r\nc: 2\r\n")
                .unwrap();
        assert_eq!(docs.len(), 2);
        let first = docs[0].root.as_ref().unwrap();
        assert_eq!(first.get("b").unwrap().as_str(), Some("x\ny\n"));
    }

    #[test]
    fn a_block_scalar_at_the_end_of_the_input_gains_no_line_break() {
        let value = |input: &str| {
            roots(input)
                .remove(0)
                .unwrap()
                .get("a")
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        };
        // What the YAML spec, libyaml (serde_yaml), PyYAML and go-yaml read.
        for (input, expected) in [
            ("a: |\n  x", "x"),
            ("a: >\n  x", "x"),
            ("a: |+\n  x", "x"),
            ("a: >+\n  x", "x"),
            ("a: |-\n  x", "x"),
            ("a: |\n  x\n  y", "x\ny"),
            ("a: >\n  x\n  y", "x y"),
            ("a: |\n  x\n  ", "x\n"),
            ("a: |+\n  x\n\n  ", "x\n\n"),
            ("a: |2\n    x", "  x"),
            ("a: |\n  x\n  # not a comment", "x\n# not a comment"),
            ("b: [1]\na: |\n  x", "x"),
            // The scalar ends before the last line: nothing to take back.
            ("a: |\n  x\n# c", "x\n"),
            ("a: |\n  x\n#c\n  # c", "x\n"),
            ("a: |\n  x\n ", "x\n"),
            ("a: |\n  x\n...", "x\n"),
            ("a: |\n  x\n", "x\n"),
            ("a: |\r\n  x\r\n", "x\n"),
        ] {
            assert_eq!(value(input), expected, "{input:?}");
        }
        let nested = roots("a:\n  - |\n    x\n  - >+\n    y").remove(0).unwrap();
        let items: Vec<_> = match &nested.get("a").unwrap().value {
            Value::Seq(items) => items.iter().map(|n| n.as_str().unwrap()).collect(),
            _ => unreachable!(),
        };
        assert_eq!(items, ["x\n", "y"]);
    }

    #[test]
    fn recovering_reads_past_a_refused_document() {
        let mut docs = Vec::new();
        parse_stream_each_recovering(
            b"a: 1\na: 2\n---\nb: 1\n---\nc: !custom x\nd: [1\n  , 2]\n---\ne: 1\ne: 2\n",
            |d| docs.push(d),
        )
        .unwrap();
        let summary: Vec<_> = docs
            .iter()
            .map(|d| {
                (
                    d.index,
                    d.root.is_some(),
                    d.error.as_ref().map(|e| e.mark.line),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (1, false, Some(2)),
                (2, true, None),
                (3, false, Some(6)),
                (4, false, Some(11))
            ]
        );
        assert!(matches!(
            docs[0].error.as_ref().unwrap().kind,
            ParseErrorKind::DuplicateKey { .. }
        ));
        // A syntax error still ends the stream; the strict reader still
        // stops at the first refused document.
        assert!(parse_stream_each_recovering(b"a: 1\na: 2\n---\nb: [\n", |_| {}).is_err());
        assert_eq!(err(b"a: 1\na: 2\n---\nb: 1\n").document, 1);
    }

    #[test]
    fn aliases_of_normal_size_expand() {
        let doc = roots("a: &x {k: v}\nb: *x\n").remove(0).unwrap();
        assert_eq!(doc.get("a"), doc.get("b"));
    }

    #[test]
    fn alias_bombs_are_refused_quickly() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            bomb.push_str(&format!(
                "b{i}: &b{i} [{}]\n",
                vec![
                    format!(
                        "*{}",
                        if i == 1 {
                            "a".to_string()
                        } else {
                            format!("b{}", i - 1)
                        }
                    );
                    10
                ]
                .join(", ")
            ));
        }
        assert_eq!(err(bomb.as_bytes()).kind, ParseErrorKind::AliasBomb);
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let deep = "[".repeat(20_000) + &"]".repeat(20_000);
        assert_eq!(err(deep.as_bytes()).kind, ParseErrorKind::TooDeep);
        let mut block = String::new();
        for i in 0..5_000 {
            block.push_str(&" ".repeat(i));
            block.push_str("a:\n");
        }
        assert_eq!(err(block.as_bytes()).kind, ParseErrorKind::TooDeep);
    }

    #[test]
    fn custom_tags_are_refused() {
        let e = err(b"a: !!python/object:os.system x\n");
        assert!(matches!(e.kind, ParseErrorKind::ForbiddenTag(ref t) if t.contains("python")));
        assert!(matches!(
            err(b"a: !foo x\n").kind,
            ParseErrorKind::ForbiddenTag(_)
        ));
        let ok = roots("a: !!str 12\n").remove(0).unwrap();
        assert_eq!(ok.get("a").unwrap().as_str(), Some("12"));
    }

    #[test]
    fn invalid_utf8_points_at_the_line() {
        let e = err(b"a: 1\n---\nb: \xff\n");
        assert_eq!(e.kind, ParseErrorKind::InvalidUtf8);
        assert_eq!((e.document, e.mark.line), (2, 3));
    }

    #[test]
    fn merge_keys_and_complex_keys_are_refused() {
        assert_eq!(
            err(b"a: &x {k: v}\nb:\n  <<: *x\n").kind,
            ParseErrorKind::MergeKey
        );
        assert!(matches!(
            err(b"? [a]\n: b\n").kind,
            ParseErrorKind::ComplexKey(_)
        ));
    }
}
