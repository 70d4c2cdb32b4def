//! Where each field of a TOML document is written: field paths such as `peer[0].link[1].weight`
//! mapped to byte spans, and byte offsets to lines.

use std::ops::Range;
use toml_edit::{ImDocument, Item, Key, Table, Value};

/// The field paths of one parsed document and the spans they occupy.
pub(crate) struct SpanIndex {
    /// A key/value pair spans from its key to the end of its value; a table, its header.
    /// Parents come before their children.
    fields: Vec<(String, Range<usize>)>,
}

impl SpanIndex {
    /// Indexes `text`; fails on TOML syntax errors.
    pub(crate) fn new(text: &str) -> Result<SpanIndex, toml_edit::TomlError> {
        let doc = ImDocument::parse(text)?;
        let mut fields = Vec::new();
        index_table(doc.as_table(), "", &mut fields);
        Ok(SpanIndex { fields })
    }

    /// Every field path written in the document, parents before their children.
    pub(crate) fn fields(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(field, _)| field.as_str())
    }

    /// The innermost field whose span contains byte `offset`.
    pub(crate) fn field_at(&self, offset: usize) -> Option<&str> {
        self.fields
            .iter()
            // Children follow their parents: on a tie the later, deeper entry wins.
            .rev()
            .filter(|(_, span)| span.start <= offset && offset < span.end.max(span.start + 1))
            .min_by_key(|(_, span)| span.len())
            .map(|(field, _)| field.as_str())
    }

    /// The innermost field whose written text ends where `span` ends and contains it: the
    /// table or inline table a "missing field" error points at.
    pub(crate) fn field_ending_with(&self, span: &Range<usize>) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .filter(|(_, s)| s.end == span.end && s.start <= span.start)
            .min_by_key(|(_, s)| s.len())
            .map(|(field, _)| field.as_str())
    }

    /// Byte offset where `field` is written, or where its nearest written ancestor is
    /// (a defaulted `peer[0].link[2].weight` falls back to the `[[peer.link]]` header).
    pub(crate) fn offset_of(&self, field: &str) -> Option<usize> {
        let mut path = field;
        loop {
            if let Some((_, span)) = self.fields.iter().find(|(f, _)| f == path) {
                return Some(span.start);
            }
            path = parent(path)?;
        }
    }
}

/// 1-based line of byte `offset` in `text`.
pub(crate) fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// `peer[0].link[1]` → `peer[0].link` → `peer[0]` → `peer` → None.
fn parent(path: &str) -> Option<&str> {
    path.rfind(['.', '[']).map(|i| &path[..i])
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn index_table(table: &Table, prefix: &str, out: &mut Vec<(String, Range<usize>)>) {
    for (key, item) in table.iter() {
        let key_span = table.key(key).and_then(Key::span);
        index_item(item, join(prefix, key), key_span, out);
    }
}

fn index_item(
    item: &Item,
    path: String,
    key_span: Option<Range<usize>>,
    out: &mut Vec<(String, Range<usize>)>,
) {
    match item {
        Item::None => {}
        Item::Value(value) => index_value(value, path, key_span, out),
        Item::Table(table) => {
            if let Some(span) = table.span().or(key_span) {
                out.push((path.clone(), span));
            }
            index_table(table, &path, out);
        }
        Item::ArrayOfTables(array) => {
            let first = array.iter().next().and_then(Table::span);
            if let Some(span) = array.span().or(first) {
                out.push((path.clone(), span));
            }
            for (i, table) in array.iter().enumerate() {
                let element = format!("{path}[{i}]");
                if let Some(span) = table.span() {
                    out.push((element.clone(), span));
                }
                index_table(table, &element, out);
            }
        }
    }
}

fn index_value(
    value: &Value,
    path: String,
    key_span: Option<Range<usize>>,
    out: &mut Vec<(String, Range<usize>)>,
) {
    let span = match (key_span, value.span()) {
        (Some(key), Some(value)) => Some(key.start..value.end),
        (key, value) => key.or(value),
    };
    if let Some(span) = span {
        out.push((path.clone(), span));
    }
    match value {
        Value::Array(array) => {
            for (i, element) in array.iter().enumerate() {
                index_value(element, format!("{path}[{i}]"), None, out);
            }
        }
        Value::InlineTable(table) => {
            for (key, element) in table.iter() {
                let key_span = table.key(key).and_then(Key::span);
                index_value(element, join(&path, key), key_span, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "role = \"edge\"\n\
        bond.mode = \"flow\"\n\
        [[peer]]\n\
        name = \"hub\"\n\
        allowed = [\"0.0.0.0/0\",\n  \"198.18.0.0/15\"]\n\
        [[peer.link]]\n\
        name = \"isp1\"\n\
        [[peer.link]]\n\
        name = \"isp2\"\n\
        extra = { a = 1, b = [2, 3] }\n";

    fn line_of(index: &SpanIndex, field: &str) -> Option<usize> {
        index.offset_of(field).map(|o| line_at(DOC, o))
    }

    #[test]
    fn fields_map_to_the_lines_they_are_written_on() {
        let index = SpanIndex::new(DOC).unwrap();
        assert_eq!(line_of(&index, "role"), Some(1));
        assert_eq!(line_of(&index, "bond.mode"), Some(2));
        assert_eq!(line_of(&index, "peer[0]"), Some(3));
        assert_eq!(line_of(&index, "peer[0].name"), Some(4));
        assert_eq!(line_of(&index, "peer[0].allowed[1]"), Some(6));
        assert_eq!(line_of(&index, "peer[0].link[0]"), Some(7));
        assert_eq!(line_of(&index, "peer[0].link[1].name"), Some(10));
        assert_eq!(line_of(&index, "peer[0].link[1].extra.b[1]"), Some(11));
    }

    #[test]
    fn absent_fields_fall_back_to_their_nearest_written_ancestor() {
        let index = SpanIndex::new(DOC).unwrap();
        assert_eq!(line_of(&index, "peer[0].link[1].weight"), Some(9));
        assert_eq!(line_of(&index, "peer[0].id"), Some(3));
        assert_eq!(line_of(&index, "workers"), None);
    }

    #[test]
    fn table_spans_map_to_their_fields() {
        let index = SpanIndex::new(DOC).unwrap();
        let header = DOC.find("[[peer.link]]\nname = \"isp2\"").unwrap();
        let body_end = DOC.len() - 1;
        assert_eq!(
            index.field_ending_with(&(header..body_end)),
            Some("peer[0].link[1]")
        );
        let inline = DOC.find("{ a").unwrap();
        assert_eq!(
            index.field_ending_with(&(inline..body_end)),
            Some("peer[0].link[1].extra")
        );
        assert_eq!(index.field_ending_with(&(0..5)), None);
    }

    #[test]
    fn offsets_map_to_the_innermost_field() {
        let index = SpanIndex::new(DOC).unwrap();
        let at = |needle: &str| index.field_at(DOC.find(needle).unwrap());
        assert_eq!(at("\"edge\""), Some("role"));
        assert_eq!(at("\"198.18"), Some("peer[0].allowed[1]"));
        assert_eq!(at("\"isp2\""), Some("peer[0].link[1].name"));
        assert_eq!(at("[2, 3]"), Some("peer[0].link[1].extra.b"));
        assert_eq!(at("3]"), Some("peer[0].link[1].extra.b[1]"));
        assert_eq!(at("\n[[peer]]"), None);
    }

    #[test]
    fn line_at_counts_newlines_before_the_offset() {
        assert_eq!(line_at("a\nb\nc", 0), 1);
        assert_eq!(line_at("a\nb\nc", 2), 2);
        assert_eq!(line_at("a\nb\nc", 4), 3);
        assert_eq!(line_at("a\nb\nc", 99), 3);
    }
}
