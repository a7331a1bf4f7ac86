//! A large stream parsed on several threads: cut at document markers, each
//! piece parsed on its own, the results put back in stream order.
//!
//! Only a cut that provably reads the same as the whole is used. A line that
//! starts with `---` and a blank (or ends there) at column 0 starts a new
//! document wherever the scanner meets it, with two exceptions: inside a
//! quoted scalar or a flow collection it is an error (so the piece before it
//! fails to parse), and a block scalar that is a document's root may hold it
//! as content (the scanner only ends those at `...`). Directives (`%`) bind
//! to the next `---`, and a lone `\r` shifts line numbers. So the whole
//! stream goes to the sequential parser instead when any piece fails to
//! parse, has a root block scalar, or the input has a directive or a lone
//! `\r`, or the pieces' aliases together exceed the stream's budget. Errors
//! that end a stream therefore always come from the sequential parser, with
//! its document and line numbers and its first error; a document refused on
//! its own (a duplicate key, say: see [`super::parse_stream_each_recovering`])
//! is handed on with its error, as the sequential reader hands it on.

use super::parse::Document;
use super::parse::{parse_text, PieceStats, MAX_ALIAS_NODES};
use rayon::prelude::*;

/// Below this many bytes per piece, threads cost more than they save.
const MIN_PIECE: usize = 256 * 1024;

/// One piece of a stream: whole lines, the first at `line_offset + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Piece<'a> {
    pub text: &'a str,
    pub line_offset: usize,
}

/// What one piece gave: the 1-based index its documents are numbered from
/// (their `index` is local to the piece; add `first_document - 1`), and the
/// caller's results for them, in order.
pub(crate) struct PieceResult<T> {
    pub first_document: usize,
    pub items: Vec<T>,
}

/// How many pieces a stream of `len` bytes is worth cutting into.
pub(crate) fn pieces_for(len: usize) -> usize {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    threads.min(8).min(len / MIN_PIECE).max(1)
}

/// Cuts `text` into at most `parts` pieces of similar size, each after the
/// first starting with a `---` line; `None` when the stream has a directive
/// or a lone `\r`, or no marker to cut at.
pub(crate) fn cut(text: &str, parts: usize) -> Option<Vec<Piece<'_>>> {
    let bytes = text.as_bytes();
    if parts < 2 || has_directive_or_lone_cr(bytes) {
        return None;
    }
    let mut pieces = Vec::with_capacity(parts);
    let (mut start, mut line_offset) = (0, 0);
    for k in 1..parts {
        let target = text.len() * k / parts;
        if target <= start {
            continue;
        }
        let Some(at) = next_marker(bytes, target) else {
            break;
        };
        let piece = &text[start..at];
        pieces.push(Piece {
            text: piece,
            line_offset,
        });
        line_offset += piece.bytes().filter(|&b| b == b'\n').count();
        start = at;
    }
    if pieces.is_empty() {
        return None;
    }
    pieces.push(Piece {
        text: &text[start..],
        line_offset,
    });
    Some(pieces)
}

/// The start of the first line at or after byte `from` (and after byte 0)
/// that is a document start marker: `---` then a blank, a break or the end.
fn next_marker(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from.max(1);
    loop {
        // The start of the next line at or after `at`.
        if bytes[at - 1] != b'\n' {
            at += bytes[at..].iter().position(|&b| b == b'\n')? + 1;
        }
        let line = &bytes[at..];
        if line.starts_with(b"---")
            && matches!(line.get(3), None | Some(b' ' | b'\t' | b'\r' | b'\n'))
        {
            return Some(at);
        }
        at += 1;
        if at >= bytes.len() {
            return None;
        }
    }
}

fn has_directive_or_lone_cr(bytes: &[u8]) -> bool {
    bytes.first() == Some(&b'%')
        || bytes
            .windows(2)
            .any(|w| (w[0] == b'\n' && w[1] == b'%') || (w[0] == b'\r' && w[1] != b'\n'))
        || bytes.last() == Some(&b'\r')
}

/// Parses `text` (UTF-8, without a byte-order mark) in up to `parts`
/// pieces on as many threads, handing each document to `each` on the thread
/// that parsed it. `None` when the stream cannot be cut, or the pieces do
/// not provably read as the whole (see the module documentation): parse it
/// sequentially then.
pub(crate) fn parse_in_pieces<T: Send>(
    text: &str,
    parts: usize,
    each: &(impl Fn(Document) -> T + Sync),
) -> Option<Vec<PieceResult<T>>> {
    let pieces = cut(text, parts)?;
    let parsed: Vec<Option<(PieceStats, Vec<T>)>> = pieces
        .par_iter()
        .map(|piece| {
            let mut items = Vec::new();
            let stats = parse_text(piece.text, piece.line_offset, true, |doc| {
                items.push(each(doc))
            })
            .ok()?;
            Some((stats, items))
        })
        .collect();
    let mut results = Vec::with_capacity(parsed.len());
    let (mut documents, mut alias_nodes) = (0, 0);
    for piece in parsed {
        let (stats, items) = piece?;
        if stats.root_block_scalar {
            return None;
        }
        alias_nodes += stats.alias_nodes;
        results.push(PieceResult {
            first_document: documents + 1,
            items,
        });
        documents += stats.documents;
    }
    (alias_nodes <= MAX_ALIAS_NODES).then_some(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse::parse_stream;

    /// Documents as (global index, mark, root), from the pieces.
    fn pieced(text: &str, parts: usize) -> Option<Vec<Document>> {
        let results = parse_in_pieces(text, parts, &|d: Document| d)?;
        Some(
            results
                .into_iter()
                .flat_map(|r| {
                    r.items.into_iter().map(move |mut d| {
                        d.index += r.first_document - 1;
                        d
                    })
                })
                .collect(),
        )
    }

    fn same_as_sequential(text: &str, parts: usize) {
        let whole = parse_stream(text.as_bytes()).unwrap();
        let pieces = pieced(text, parts).expect("cut and parsed in pieces");
        assert_eq!(whole.len(), pieces.len());
        for (a, b) in whole.iter().zip(&pieces) {
            assert_eq!((a.index, a.mark), (b.index, b.mark));
            assert_eq!(a.root, b.root);
            assert_eq!(
                a.root.as_ref().map(|r| r.mark),
                b.root.as_ref().map(|r| r.mark)
            );
        }
    }

    #[test]
    fn cuts_only_at_document_start_lines() {
        let text = "a: 1\n---\nb: ---\n--- x\nc: |\n  ---\n---\n";
        for parts in 2..8 {
            for piece in cut(text, parts).unwrap().iter().skip(1) {
                assert!(piece.text.starts_with("---\n") || piece.text.starts_with("--- "));
            }
        }
        assert_eq!(cut("a: 1\nb: 2\n", 4), None, "no marker to cut at");
        assert_eq!(cut("---a\n----\n", 2), None, "not markers");
        let pieces = cut("a: 1\nb: 2\n---\nc: 3\n", 2).unwrap();
        assert_eq!(pieces[0].text, "a: 1\nb: 2\n");
        assert_eq!(pieces[1].text, "---\nc: 3\n");
        assert_eq!(pieces[1].line_offset, 2);
    }

    #[test]
    fn pieces_read_as_the_whole() {
        let doc = |i: usize| {
            format!("---\nkey: {i}\nlist:\n  - a\n  - &x b\n  - *x\ntext: |\n  line\n   ---\n\n  more\n")
        };
        let mut text: String = (0..40).map(doc).collect();
        same_as_sequential(&text, 2);
        same_as_sequential(&text, 7);
        // An implicit first document, empty documents, `...` and CRLF.
        text = format!("first: doc\n{text}---\n# only a comment\n---\n...\n---\r\nlast: 1\r\n");
        for parts in 2..12 {
            same_as_sequential(&text, parts);
        }
    }

    #[test]
    fn a_root_block_scalar_holding_a_marker_line_is_parsed_whole() {
        // The scanner keeps `---` inside a root block scalar at column 0,
        // so a cut there would make two documents out of one.
        let text = "a: 1\n--- |\nfirst\n---\nsecond\n";
        assert_eq!(parse_stream(text.as_bytes()).unwrap().len(), 2);
        assert!(pieced(text, 2).is_none());
        assert!(pieced(&text.repeat(3), 4).is_none());
    }

    #[test]
    fn directives_and_lone_carriage_returns_are_never_cut() {
        assert!(cut("a: 1\n%YAML 1.2\n---\nb: 2\n", 2).is_none());
        assert!(cut("a: 1\r---\nb: 2\n---\nc: 3\n", 2).is_none());
        assert!(cut("a: 1\n---\nb: 2\r", 2).is_none());
    }

    #[test]
    fn a_piece_that_fails_to_parse_gives_up_the_cut() {
        // The quoted scalar spans the marker: an error for the whole stream.
        let text = "a: \"x\n---\ny\"\n---\nb: 1\n";
        assert!(parse_stream(text.as_bytes()).is_err());
        assert!(pieced(text, 3).is_none());
    }

    #[test]
    fn the_alias_budget_is_for_the_whole_stream() {
        let anchor = format!("a: &a [{}]\n", vec!["x"; 1000].join(", "));
        let aliases = "b: [".to_owned() + &vec!["*a"; 60].join(", ") + "]\n";
        let doc = format!("---\n{anchor}{aliases}");
        // 60,000 nodes a document: one is fine, two exceed the budget.
        assert!(parse_stream(doc.as_bytes()).is_ok());
        assert!(parse_stream(doc.repeat(2).as_bytes()).is_err());
        assert!(pieced(&doc.repeat(2), 2).is_none());
    }
}
