//! Reading what is scanned: text line by line, CSV/TSV with their header as context, JSON and
//! JSON lines with each value's path as context, any of them gzip-compressed, and Parquet row by
//! row with each column's path as context. Occurrences are located as Macie reports them: line
//! ranges, cells, records.

use std::io::{BufReader, Read};

use serde::Serialize;
use serde_json::Value;

use crate::engine::{Detector, Hit};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Format {
    Text,
    Csv,
    Tsv,
    Json,
    JsonLines,
    Parquet,
}

impl Format {
    /// The format a file name says, and whether it is gzip-compressed.
    pub fn of_name(name: &str) -> (Format, bool) {
        let lower = name.to_ascii_lowercase();
        let (inner, gzip) = match lower.strip_suffix(".gz") {
            Some(inner) => (inner.to_string(), true),
            None => (lower, false),
        };
        let format = match inner.rsplit('.').next().unwrap_or("") {
            "csv" => Format::Csv,
            "tsv" | "tab" => Format::Tsv,
            "json" => Format::Json,
            "jsonl" | "ndjson" => Format::JsonLines,
            "parquet" | "parq" | "pqt" => Format::Parquet,
            _ => Format::Text,
        };
        (format, gzip)
    }

    pub fn parse(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "text" | "txt" => Some(Format::Text),
            "csv" => Some(Format::Csv),
            "tsv" => Some(Format::Tsv),
            "json" => Some(Format::Json),
            "jsonl" | "jsonlines" | "ndjson" => Some(Format::JsonLines),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain",
            Format::Csv => "text/csv",
            Format::Tsv => "text/tab-separated-values",
            Format::Json => "application/json",
            Format::JsonLines => "application/x-ndjson",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }
}

/// Where an occurrence is, in Macie's terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Location {
    /// `lineRanges`: 1-based line, 1-based start column.
    Line {
        start: u64,
        end: u64,
        #[serde(rename = "startColumn")]
        start_column: u64,
    },
    /// `cells`: 1-based row (the header is row 1) and column, the column's name.
    Cell {
        row: u64,
        column: u64,
        #[serde(rename = "columnName")]
        column_name: String,
        #[serde(rename = "cellReference")]
        cell_reference: Option<String>,
    },
    /// `records`: 0-based record (JSON lines: the line; Parquet: the row), the value's JSON
    /// path (Parquet: the column's path, `$.address.city`, `$.phones[1]`).
    Record {
        #[serde(rename = "recordIndex")]
        record_index: u64,
        #[serde(rename = "jsonPath")]
        json_path: String,
    },
}

/// One detection with its place and value (the value stays in memory, for redacted samples).
pub struct Occurrence<'a> {
    pub hit: &'a Hit,
    pub location: Location,
    pub value: &'a [u8],
}

const CHUNK: usize = 1 << 20;

/// Reads `reader` in `format` (gzip-decompressed first if `gzip`) and hands every occurrence
/// to `sink`; returns the bytes read (uncompressed) and the format read (a "text" file that
/// starts as Parquet files do is read as Parquet).
pub fn scan<'r>(
    detector: &Detector,
    reader: impl Read + 'r,
    format: Format,
    gzip: bool,
    sink: &mut dyn FnMut(Occurrence),
) -> anyhow::Result<(u64, Format)> {
    let reader: Box<dyn Read + '_> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let mut counting = CountingReader {
        inner: reader,
        count: 0,
    };
    // A Parquet file says so in its first bytes, whatever its name.
    let mut head = [0u8; 4];
    let mut head_length = 0;
    if format == Format::Text {
        while head_length < head.len() {
            let read = counting.read(&mut head[head_length..])?;
            if read == 0 {
                break;
            }
            head_length += read;
        }
    }
    let format = if head_length == 4 && &head == PARQUET_MAGIC {
        Format::Parquet
    } else {
        format
    };
    let mut counting = CountingReader {
        count: 0,
        inner: std::io::Cursor::new(head[..head_length].to_vec()).chain(counting),
    };
    match format {
        Format::Text => scan_text(detector, &mut counting, sink)?,
        Format::Csv => scan_delimited(detector, &mut counting, b',', sink)?,
        Format::Tsv => scan_delimited(detector, &mut counting, b'\t', sink)?,
        Format::Json => {
            let mut bytes = Vec::new();
            counting.read_to_end(&mut bytes)?;
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(value) => scan_json(detector, &value, 0, sink),
                // Not JSON after all: scanned as text so nothing goes unseen.
                Err(_) => scan_text(detector, &mut bytes.as_slice(), sink)?,
            }
        }
        Format::JsonLines => scan_json_lines(detector, &mut counting, sink)?,
        Format::Parquet => {
            let mut bytes = Vec::new();
            counting.read_to_end(&mut bytes)?;
            // The Parquet reader trusts a file's footer more than it should (a crafted file can
            // make it panic): a panic is turned into a problem with the object, not a crash.
            let bytes = bytes::Bytes::from(bytes);
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scan_parquet(detector, bytes, sink)))
                .map_err(|_| anyhow::anyhow!("not a readable Parquet file (its metadata is inconsistent)"))??
        }
    }
    Ok((counting.count, format))
}

const PARQUET_MAGIC: &[u8; 4] = b"PAR1";

/// Parquet, row by row: every string, binary and number value is scanned with its column's path
/// as context (`$.customer.email`), located as Macie locates Parquet occurrences (`records`:
/// row index and JSON path). The file is held in memory: its footer, at the end, says where
/// everything is.
fn scan_parquet(detector: &Detector, bytes: bytes::Bytes, sink: &mut dyn FnMut(Occurrence)) -> anyhow::Result<()> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader =
        SerializedFileReader::new(bytes).map_err(|error| anyhow::anyhow!("not a readable Parquet file: {error}"))?;
    let mut hits = Vec::new();
    let mut path = String::from("$");
    let mut contexts: std::collections::HashMap<String, Vec<bool>> = std::collections::HashMap::new();
    for (index, row) in reader.get_row_iter(None)?.enumerate() {
        let row = row.map_err(|error| anyhow::anyhow!("row {index}: {error}"))?;
        let mut walker = ParquetWalker {
            detector,
            record_index: index as u64,
            hits: &mut hits,
            contexts: &mut contexts,
            sink,
        };
        walker.row(&row, &mut path);
    }
    Ok(())
}

struct ParquetWalker<'w, 's> {
    detector: &'w Detector,
    record_index: u64,
    hits: &'w mut Vec<Hit>,
    /// Keyword flags per column path, computed once per file.
    contexts: &'w mut std::collections::HashMap<String, Vec<bool>>,
    sink: &'w mut (dyn FnMut(Occurrence) + 's),
}

impl ParquetWalker<'_, '_> {
    fn row(&mut self, row: &parquet::record::Row, path: &mut String) {
        for (name, field) in row.get_column_iter() {
            let length = path.len();
            path.push('.');
            path.push_str(name);
            self.field(field, path);
            path.truncate(length);
        }
    }

    fn field(&mut self, field: &parquet::record::Field, path: &mut String) {
        use parquet::record::Field;
        let text: std::borrow::Cow<[u8]> = match field {
            Field::Str(text) => text.as_bytes().into(),
            Field::Bytes(bytes) => bytes.data().into(),
            Field::Byte(_)
            | Field::Short(_)
            | Field::Int(_)
            | Field::Long(_)
            | Field::UByte(_)
            | Field::UShort(_)
            | Field::UInt(_)
            | Field::ULong(_)
            | Field::Decimal(_) => field.to_string().into_bytes().into(),
            Field::Group(row) => return self.row(row, path),
            Field::ListInternal(list) => {
                for (index, element) in list.elements().iter().enumerate() {
                    let length = path.len();
                    path.push_str(&format!("[{index}]"));
                    self.field(element, path);
                    path.truncate(length);
                }
                return;
            }
            Field::MapInternal(map) => {
                for (key, value) in map.entries() {
                    let length = path.len();
                    path.push('.');
                    match key {
                        Field::Str(key) => path.push_str(key),
                        other => path.push_str(&other.to_string()),
                    }
                    self.field(key, path);
                    self.field(value, path);
                    path.truncate(length);
                }
                return;
            }
            // Booleans, floating point, dates and times hold none of the identifiers.
            _ => return,
        };
        // Map keys vary per row; only the column's own path is cached.
        let context = match self.contexts.get(path.as_str()) {
            Some(context) => context.clone(),
            None => {
                let context = self.detector.context_matches(path);
                if self.contexts.len() < 4096 {
                    self.contexts.insert(path.clone(), context.clone());
                }
                context
            }
        };
        self.hits.clear();
        self.detector.scan_unit(&text, Some(&context), self.hits);
        for hit in self.hits.iter() {
            (self.sink)(Occurrence {
                hit,
                location: Location::Record {
                    record_index: self.record_index,
                    json_path: path.clone(),
                },
                value: &text[hit.start..hit.end],
            });
        }
    }
}

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.count += read as u64;
        Ok(read)
    }
}

/// Fills `buffer` up to `CHUNK` bytes; returns false at the end of the input.
fn fill(reader: &mut dyn Read, buffer: &mut Vec<u8>) -> std::io::Result<bool> {
    let start = buffer.len();
    buffer.resize(start.max(CHUNK), 0);
    let mut filled = start;
    while filled < buffer.len() {
        let read = reader.read(&mut buffer[filled..])?;
        if read == 0 {
            buffer.truncate(filled);
            return Ok(false);
        }
        filled += read;
    }
    buffer.truncate(filled);
    Ok(true)
}

fn scan_text(detector: &Detector, reader: &mut dyn Read, sink: &mut dyn FnMut(Occurrence)) -> anyhow::Result<()> {
    let mut buffer = Vec::with_capacity(CHUNK);
    let mut line_base: u64 = 1;
    let mut hits = Vec::new();
    loop {
        let more = fill(reader, &mut buffer)?;
        // Whole lines only, unless a line is longer than a chunk or the input ended.
        let usable = match (more, buffer.iter().rposition(|byte| *byte == b'\n')) {
            (true, Some(last)) => last + 1,
            _ => buffer.len(),
        };
        let chunk = &buffer[..usable];
        let mut counted_to = 0;
        let mut line_number = line_base;
        let mut last_line_start = usize::MAX;
        for candidate in detector.candidates(chunk) {
            let line_start = chunk[..candidate.start]
                .iter()
                .rposition(|byte| *byte == b'\n')
                .map_or(0, |position| position + 1);
            if line_start == last_line_start {
                continue;
            }
            last_line_start = line_start;
            line_number += chunk[counted_to..line_start]
                .iter()
                .filter(|byte| **byte == b'\n')
                .count() as u64;
            counted_to = line_start;
            let line_end = chunk[candidate.start..]
                .iter()
                .position(|byte| *byte == b'\n')
                .map_or(chunk.len(), |position| candidate.start + position);
            let line = &chunk[line_start..line_end];
            hits.clear();
            detector.scan_unit(line, None, &mut hits);
            for hit in &hits {
                sink(Occurrence {
                    hit,
                    location: Location::Line {
                        start: line_number,
                        end: line_number,
                        start_column: hit.start as u64 + 1,
                    },
                    value: &line[hit.start..hit.end],
                });
            }
        }
        line_base += chunk.iter().filter(|byte| **byte == b'\n').count() as u64;
        buffer.drain(..usable);
        if !more && buffer.is_empty() {
            return Ok(());
        }
    }
}

fn scan_delimited(
    detector: &Detector,
    reader: &mut dyn Read,
    delimiter: u8,
    sink: &mut dyn FnMut(Occurrence),
) -> anyhow::Result<()> {
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(BufReader::with_capacity(CHUNK, reader));
    let mut record = csv::ByteRecord::new();
    let mut names: Vec<String> = Vec::new();
    let mut contexts: Vec<Vec<bool>> = Vec::new();
    let mut joined = Vec::new();
    let mut hits = Vec::new();
    let mut first = true;
    while csv.read_byte_record(&mut record)? {
        let row = record.position().map_or(0, |position| position.line());
        if first {
            first = false;
            // The header names the columns (its keywords count for every cell below) and is
            // scanned like any row.
            names = record
                .iter()
                .map(|name| String::from_utf8_lossy(name).into_owned())
                .collect();
            contexts = names.iter().map(|name| detector.context_matches(name)).collect();
        }
        let forced = record
            .iter()
            .enumerate()
            .any(|(column, _)| contexts.get(column).is_some_and(|flags| flags.iter().any(|on| *on)));
        joined.clear();
        for field in record.iter() {
            joined.extend_from_slice(field);
            joined.push(b'\n');
        }
        if !forced && detector.candidates(&joined).next().is_none() {
            continue;
        }
        for (column, field) in record.iter().enumerate() {
            hits.clear();
            detector.scan_unit(field, contexts.get(column).map(Vec::as_slice), &mut hits);
            for hit in &hits {
                sink(Occurrence {
                    hit,
                    location: Location::Cell {
                        row,
                        column: column as u64 + 1,
                        column_name: names.get(column).cloned().unwrap_or_default(),
                        cell_reference: None,
                    },
                    value: &field[hit.start..hit.end],
                });
            }
        }
    }
    Ok(())
}

fn scan_json_lines(detector: &Detector, reader: &mut dyn Read, sink: &mut dyn FnMut(Occurrence)) -> anyhow::Result<()> {
    use std::io::BufRead;
    let mut lines = BufReader::with_capacity(CHUNK, reader);
    let mut line = Vec::new();
    let mut index: u64 = 0;
    let mut hits = Vec::new();
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        // A line with no candidate is skipped without parsing: a keyword-required identifier's
        // trigger is its keywords, so a key naming one (`"ssn": …`) makes the line a candidate.
        if detector.candidates(&line).next().is_some() {
            match serde_json::from_slice::<Value>(&line) {
                Ok(value) => scan_json(detector, &value, index, sink),
                Err(_) => {
                    hits.clear();
                    detector.scan_unit(&line, None, &mut hits);
                    for hit in &hits {
                        sink(Occurrence {
                            hit,
                            location: Location::Record {
                                record_index: index,
                                json_path: "$".into(),
                            },
                            value: &line[hit.start..hit.end],
                        });
                    }
                }
            }
        }
        index += 1;
    }
}

fn scan_json(detector: &Detector, value: &Value, record_index: u64, sink: &mut dyn FnMut(Occurrence)) {
    let mut path = String::from("$");
    let mut hits = Vec::new();
    walk(detector, value, record_index, &mut path, &mut hits, sink);
}

fn walk(
    detector: &Detector,
    value: &Value,
    record_index: u64,
    path: &mut String,
    hits: &mut Vec<Hit>,
    sink: &mut dyn FnMut(Occurrence),
) {
    match value {
        Value::Object(members) => {
            for (key, member) in members {
                let length = path.len();
                path.push('.');
                path.push_str(key);
                walk(detector, member, record_index, path, hits, sink);
                path.truncate(length);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let length = path.len();
                path.push_str(&format!("[{index}]"));
                walk(detector, item, record_index, path, hits, sink);
                path.truncate(length);
            }
        }
        Value::String(_) | Value::Number(_) => {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            let context = detector.context_matches(path);
            hits.clear();
            detector.scan_unit(text.as_bytes(), Some(&context), hits);
            for hit in hits.iter() {
                sink(Occurrence {
                    hit,
                    location: Location::Record {
                        record_index,
                        json_path: path.clone(),
                    },
                    value: &text.as_bytes()[hit.start..hit.end],
                });
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}
