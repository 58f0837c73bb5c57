//! Data formats: how the records of a data node sit in its files (reference: the CSV, TSV,
//! Custom and RegEx data format objects). Records are lists of text fields, `None` being SQL
//! NULL; files are read and written as streams, record by record.
//!
//! - CSV: RFC 4180 — quoted fields are read (`""` inside quotes, or `escapeChar` instead) and
//!   written where needed; an empty field is NULL.
//! - TSV and Custom: unquoted fields between `columnSeparator` (tab for TSV) and
//!   `recordSeparator` (newline); `escapeChar` before a separator makes it part of the field;
//!   `\N` is NULL (Hive's convention, also PostgreSQL's text format).
//! - RegEx: each line must match `inputRegEx` whole; its groups are the fields. Written with
//!   `outputFormat` (Java's `%1$s` / `%s` placeholders).

use std::io::{BufRead, Read, Write};

use anyhow::{Context, bail};

use crate::task::Object;

pub type Record = Vec<Option<String>>;

/// The NULL marker of the unquoted formats.
const NULL_MARKER: &str = "\\N";
/// Longest record the unquoted readers accept: a runaway file without record separators must
/// not fill memory.
const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

/// A column of a data format's `column` list: `name TYPE` (the type is optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: Option<String>,
}

#[derive(Debug, Clone)]
enum Layout {
    Csv {
        escape: Option<u8>,
    },
    Delimited {
        separator: u8,
        terminator: u8,
        escape: Option<u8>,
    },
    RegEx {
        pattern: regex::Regex,
        output: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct DataFormat {
    /// The format object's type (CSV, TSV, Custom, RegEx).
    pub kind: String,
    pub columns: Vec<Column>,
    layout: Layout,
}

fn single_byte(object: &Object, key: &str) -> anyhow::Result<Option<u8>> {
    let Some(text) = object.string(key) else {
        return Ok(None);
    };
    let text = match text {
        "\\t" => "\t",
        "\\n" => "\n",
        "\\r" => "\r",
        other => other,
    };
    match text.as_bytes() {
        [byte] => Ok(Some(*byte)),
        _ => bail!(
            "data format {}: {key} must be a single ASCII character, not '{}'",
            object.id,
            text.escape_default()
        ),
    }
}

impl DataFormat {
    /// CSV, the format of a data node without `dataFormat`.
    pub fn csv() -> DataFormat {
        DataFormat {
            kind: "CSV".into(),
            columns: Vec::new(),
            layout: Layout::Csv { escape: None },
        }
    }

    /// Unquoted fields between `separator` (RedshiftCopyActivity's DELIMITER option).
    pub fn delimited(separator: &str) -> anyhow::Result<DataFormat> {
        let [separator] = separator.as_bytes() else {
            bail!("the delimiter must be a single ASCII character");
        };
        if *separator == b'\n' {
            bail!("the delimiter cannot be a newline");
        }
        Ok(DataFormat {
            kind: "delimited".into(),
            columns: Vec::new(),
            layout: Layout::Delimited {
                separator: *separator,
                terminator: b'\n',
                escape: None,
            },
        })
    }

    /// The format a data format object describes.
    pub fn from_object(object: &Object) -> anyhow::Result<DataFormat> {
        let kind = object.string("type").unwrap_or("CSV").to_string();
        let columns = object
            .strings("column")
            .flat_map(|spec| spec.split(',').map(str::trim).filter(|part| !part.is_empty()))
            .map(|spec| {
                let mut words = spec.split_whitespace();
                Column {
                    name: words.next().unwrap_or_default().to_string(),
                    kind: words.next().map(str::to_string),
                }
            })
            .collect();
        let escape = single_byte(object, "escapeChar")?;
        let layout = match kind.as_str() {
            "CSV" => Layout::Csv { escape },
            "TSV" | "Custom" => {
                let separator = single_byte(object, "columnSeparator")?;
                let separator = match (kind.as_str(), separator) {
                    (_, Some(separator)) => separator,
                    ("TSV", None) => b'\t',
                    _ => bail!("data format {}: a Custom format needs columnSeparator", object.id),
                };
                let terminator = single_byte(object, "recordSeparator")?.unwrap_or(b'\n');
                if separator == terminator || Some(separator) == escape || Some(terminator) == escape {
                    bail!(
                        "data format {}: columnSeparator, recordSeparator and escapeChar must differ",
                        object.id
                    );
                }
                Layout::Delimited {
                    separator,
                    terminator,
                    escape,
                }
            }
            "RegEx" => {
                let pattern = object.string("inputRegEx").unwrap_or("(.*)");
                let pattern = regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
                    .size_limit(1 << 20)
                    .build()
                    .with_context(|| format!("data format {}: inputRegEx is not a valid expression", object.id))?;
                Layout::RegEx {
                    pattern,
                    output: object.string("outputFormat").map(str::to_string),
                }
            }
            other => bail!(
                "data format {}: Sluice reads and writes CSV, TSV, Custom and RegEx data formats, not {other}",
                object.id
            ),
        };
        Ok(DataFormat { kind, columns, layout })
    }

    /// Whether two formats lay records out the same way (files can be copied byte for byte).
    pub fn same_layout(&self, other: &DataFormat) -> bool {
        match (&self.layout, &other.layout) {
            (Layout::Csv { escape: left }, Layout::Csv { escape: right }) => left == right,
            (
                Layout::Delimited {
                    separator,
                    terminator,
                    escape,
                },
                Layout::Delimited {
                    separator: other_separator,
                    terminator: other_terminator,
                    escape: other_escape,
                },
            ) => separator == other_separator && terminator == other_terminator && escape == other_escape,
            _ => false,
        }
    }

    /// The extension of files written in this format.
    pub fn extension(&self) -> &'static str {
        match self.layout {
            Layout::Csv { .. } => "csv",
            Layout::Delimited { separator: b'\t', .. } => "tsv",
            _ => "txt",
        }
    }

    pub fn reader<'a>(&self, input: Box<dyn BufRead + Send + 'a>) -> RecordReader<'a> {
        let inner = match &self.layout {
            Layout::Csv { escape } => {
                let mut builder = csv::ReaderBuilder::new();
                builder.has_headers(false).flexible(true);
                if let Some(escape) = escape {
                    builder.escape(Some(*escape)).double_quote(false);
                }
                Reader::Csv(Box::new(builder.from_reader(input)), csv::ByteRecord::new())
            }
            Layout::Delimited {
                separator,
                terminator,
                escape,
            } => Reader::Delimited {
                input,
                separator: *separator,
                terminator: *terminator,
                escape: *escape,
                buffer: Vec::new(),
            },
            Layout::RegEx { pattern, .. } => Reader::RegEx {
                input,
                pattern: pattern.clone(),
                buffer: Vec::new(),
            },
        };
        RecordReader { inner, number: 0 }
    }

    pub fn writer<W: Write>(&self, output: W) -> anyhow::Result<RecordWriter<W>> {
        let inner = match &self.layout {
            Layout::Csv { escape } => {
                let mut builder = csv::WriterBuilder::new();
                builder.terminator(csv::Terminator::Any(b'\n')).flexible(true);
                if let Some(escape) = escape {
                    builder.escape(*escape).double_quote(false);
                }
                Writer::Csv(Box::new(builder.from_writer(output)))
            }
            Layout::Delimited {
                separator,
                terminator,
                escape,
            } => Writer::Delimited {
                output,
                separator: *separator,
                terminator: *terminator,
                escape: *escape,
            },
            Layout::RegEx { output: format, .. } => {
                let Some(format) = format else {
                    bail!("a RegEx data format needs outputFormat to be written");
                };
                Writer::Formatted {
                    output,
                    parts: parse_output_format(format)?,
                }
            }
        };
        Ok(RecordWriter { inner, number: 0 })
    }
}

enum Reader<'a> {
    Csv(Box<csv::Reader<Box<dyn BufRead + Send + 'a>>>, csv::ByteRecord),
    Delimited {
        input: Box<dyn BufRead + Send + 'a>,
        separator: u8,
        terminator: u8,
        escape: Option<u8>,
        buffer: Vec<u8>,
    },
    RegEx {
        input: Box<dyn BufRead + Send + 'a>,
        pattern: regex::Regex,
        buffer: Vec<u8>,
    },
}

pub struct RecordReader<'a> {
    inner: Reader<'a>,
    /// Records read so far (for messages).
    number: u64,
}

fn text(bytes: &[u8], number: u64) -> anyhow::Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| anyhow::anyhow!("record {number} is not UTF-8 text"))
}

/// Reads up to and without `terminator`, taking an escaped terminator as part of the record.
/// False at the end of the input.
fn read_record(
    input: &mut dyn BufRead,
    terminator: u8,
    escape: Option<u8>,
    buffer: &mut Vec<u8>,
) -> anyhow::Result<bool> {
    buffer.clear();
    loop {
        let limit = (MAX_RECORD_BYTES + 1 - buffer.len().min(MAX_RECORD_BYTES)) as u64;
        let read = Read::take(&mut *input, limit).read_until(terminator, buffer)?;
        if read == 0 {
            return Ok(!buffer.is_empty());
        }
        if buffer.len() > MAX_RECORD_BYTES {
            bail!("a record is longer than {} MiB", MAX_RECORD_BYTES >> 20);
        }
        if buffer.last() != Some(&terminator) {
            // The end of the input without a final separator.
            return Ok(true);
        }
        // An odd run of escape characters before the terminator escapes it.
        if !escaped_last(buffer, escape) {
            buffer.pop();
            // CRLF line ends, unless the CR is escaped (part of the value).
            if terminator == b'\n' && buffer.last() == Some(&b'\r') && !escaped_last(buffer, escape) {
                buffer.pop();
            }
            return Ok(true);
        }
    }
}

/// Whether the last byte of `buffer` is escaped: an odd run of escape characters before it.
fn escaped_last(buffer: &[u8], escape: Option<u8>) -> bool {
    let Some(escape) = escape else {
        return false;
    };
    buffer[..buffer.len().saturating_sub(1)]
        .iter()
        .rev()
        .take_while(|byte| **byte == escape)
        .count()
        % 2
        == 1
}

fn split_fields(record: &[u8], separator: u8, escape: Option<u8>, number: u64) -> anyhow::Result<Record> {
    let mut fields = Vec::new();
    let mut field = Vec::new();
    let mut raw_start = 0;
    let mut index = 0;
    let mut finish = |field: &mut Vec<u8>, raw: &[u8]| -> anyhow::Result<()> {
        if raw == NULL_MARKER.as_bytes() {
            fields.push(None);
        } else {
            fields.push(Some(text(field, number)?));
        }
        field.clear();
        Ok(())
    };
    while index < record.len() {
        let byte = record[index];
        if Some(byte) == escape && index + 1 < record.len() {
            field.push(record[index + 1]);
            index += 2;
            continue;
        }
        if byte == separator {
            finish(&mut field, &record[raw_start..index])?;
            raw_start = index + 1;
        } else {
            field.push(byte);
        }
        index += 1;
    }
    finish(&mut field, &record[raw_start..])?;
    Ok(fields)
}

impl RecordReader<'_> {
    /// The next record, or `None` at the end.
    pub fn next_record(&mut self) -> anyhow::Result<Option<Record>> {
        let number = self.number + 1;
        let record = match &mut self.inner {
            Reader::Csv(reader, record) => {
                if !reader
                    .read_byte_record(record)
                    .with_context(|| format!("record {number} is not valid CSV"))?
                {
                    return Ok(None);
                }
                record
                    .iter()
                    .map(|field| {
                        if field.is_empty() {
                            Ok(None)
                        } else {
                            text(field, number).map(Some)
                        }
                    })
                    .collect::<anyhow::Result<Record>>()?
            }
            Reader::Delimited {
                input,
                separator,
                terminator,
                escape,
                buffer,
            } => {
                if !read_record(input.as_mut(), *terminator, *escape, buffer)? {
                    return Ok(None);
                }
                split_fields(buffer, *separator, *escape, number)?
            }
            Reader::RegEx { input, pattern, buffer } => {
                if !read_record(input.as_mut(), b'\n', None, buffer)? {
                    return Ok(None);
                }
                let line = text(buffer, number)?;
                let captures = pattern
                    .captures(&line)
                    .with_context(|| format!("line {number} does not match inputRegEx"))?;
                captures
                    .iter()
                    .skip(1)
                    .map(|group| group.map(|group| group.as_str().to_string()))
                    .collect()
            }
        };
        self.number = number;
        Ok(Some(record))
    }

    pub fn records_read(&self) -> u64 {
        self.number
    }
}

/// A piece of a RegEx format's `outputFormat`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// A field by its zero-based position.
    Field(usize),
}

fn parse_output_format(format: &str) -> anyhow::Result<Vec<Part>> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut next_field = 0;
    let mut characters = format.chars().peekable();
    while let Some(character) = characters.next() {
        if character != '%' {
            text.push(character);
            continue;
        }
        if characters.peek() == Some(&'%') {
            characters.next();
            text.push('%');
            continue;
        }
        let mut digits = String::new();
        while let Some(digit) = characters.peek().filter(|digit| digit.is_ascii_digit()) {
            digits.push(*digit);
            characters.next();
        }
        let position = if digits.is_empty() {
            next_field += 1;
            next_field
        } else {
            if characters.next() != Some('$') {
                bail!("outputFormat '{format}': expected '$' after %{digits}");
            }
            digits
                .parse::<usize>()
                .ok()
                .filter(|position| *position >= 1)
                .with_context(|| format!("outputFormat '{format}': %{digits}$ is not a field position"))?
        };
        match characters.next() {
            Some('s' | 'S' | 'd') => {}
            other => bail!(
                "outputFormat '{format}': only %s, %d and %n$s placeholders are supported, not %{}",
                other.map(String::from).unwrap_or_default()
            ),
        }
        if !text.is_empty() {
            parts.push(Part::Text(std::mem::take(&mut text)));
        }
        parts.push(Part::Field(position - 1));
    }
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(parts)
}

enum Writer<W: Write> {
    Csv(Box<csv::Writer<W>>),
    Delimited {
        output: W,
        separator: u8,
        terminator: u8,
        escape: Option<u8>,
    },
    Formatted {
        output: W,
        parts: Vec<Part>,
    },
}

pub struct RecordWriter<W: Write> {
    inner: Writer<W>,
    number: u64,
}

impl<W: Write> RecordWriter<W> {
    pub fn write_record(&mut self, record: &Record) -> anyhow::Result<()> {
        self.number += 1;
        let number = self.number;
        match &mut self.inner {
            Writer::Csv(writer) => {
                writer.write_record(record.iter().map(|field| field.as_deref().unwrap_or("").as_bytes()))?;
            }
            Writer::Delimited {
                output,
                separator,
                terminator,
                escape,
            } => {
                let mut line = Vec::new();
                for (index, field) in record.iter().enumerate() {
                    if index > 0 {
                        line.push(*separator);
                    }
                    let Some(field) = field else {
                        line.extend_from_slice(NULL_MARKER.as_bytes());
                        continue;
                    };
                    let last = index + 1 == record.len();
                    for (position, byte) in field.bytes().enumerate() {
                        // A CR ending the record would read back as part of a CRLF line end.
                        let final_cr = *terminator == b'\n' && byte == b'\r' && last && position + 1 == field.len();
                        if byte == *separator || byte == *terminator || Some(byte) == *escape || final_cr {
                            let Some(escape) = escape else {
                                bail!(
                                    "record {number}: a value holds the column or record separator and the data format has no escapeChar"
                                );
                            };
                            line.push(*escape);
                        }
                        line.push(byte);
                    }
                    if field == NULL_MARKER && *escape != Some(b'\\') {
                        // A literal \N must not read back as NULL (with `\` as escapeChar it
                        // is already written `\\N`).
                        let Some(escape) = escape else {
                            bail!("record {number}: a value is \\N and the data format has no escapeChar");
                        };
                        line.insert(line.len() - 1, *escape);
                    }
                }
                line.push(*terminator);
                output.write_all(&line)?;
            }
            Writer::Formatted { output, parts } => {
                let mut line = String::new();
                for part in parts.iter() {
                    match part {
                        Part::Text(text) => line.push_str(text),
                        Part::Field(index) => {
                            line.push_str(record.get(*index).and_then(Option::as_deref).unwrap_or(""));
                        }
                    }
                }
                line.push('\n');
                output.write_all(line.as_bytes())?;
            }
        }
        Ok(())
    }

    pub fn finish(self) -> anyhow::Result<W> {
        Ok(match self.inner {
            Writer::Csv(writer) => writer
                .into_inner()
                .map_err(|error| anyhow::anyhow!("{}", error.error()))?,
            Writer::Delimited { mut output, .. } | Writer::Formatted { mut output, .. } => {
                output.flush()?;
                output
            }
        })
    }
}

/// Records as PostgreSQL's `COPY ... WITH (FORMAT csv, NULL '\N')` reads them: every value
/// quoted, so only an unquoted `\N` is NULL.
pub fn postgres_csv(records: &[Record], buffer: &mut Vec<u8>) {
    for record in records {
        for (index, field) in record.iter().enumerate() {
            if index > 0 {
                buffer.push(b',');
            }
            match field {
                None => buffer.extend_from_slice(NULL_MARKER.as_bytes()),
                Some(value) => {
                    buffer.push(b'"');
                    for byte in value.bytes() {
                        if byte == b'"' {
                            buffer.push(b'"');
                        }
                        buffer.push(byte);
                    }
                    buffer.push(b'"');
                }
            }
        }
        buffer.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::FieldValue;

    fn format(fields: &[(&str, &str)]) -> DataFormat {
        DataFormat::from_object(&Object {
            id: "Format".into(),
            fields: fields
                .iter()
                .map(|(key, value)| (key.to_string(), FieldValue::String(value.to_string())))
                .collect(),
        })
        .expect("format")
    }

    fn read_all(format: &DataFormat, input: &str) -> anyhow::Result<Vec<Record>> {
        let mut reader = format.reader(Box::new(input.as_bytes()));
        let mut records = Vec::new();
        while let Some(record) = reader.next_record()? {
            records.push(record);
        }
        Ok(records)
    }

    fn write_all(format: &DataFormat, records: &[Record]) -> anyhow::Result<String> {
        let mut writer = format.writer(Vec::new())?;
        for record in records {
            writer.write_record(record)?;
        }
        Ok(String::from_utf8(writer.finish()?).expect("utf-8"))
    }

    fn record(fields: &[Option<&str>]) -> Record {
        fields.iter().map(|field| field.map(str::to_string)).collect()
    }

    #[test]
    fn csv_reads_quotes_and_empty_fields_as_null() {
        let csv = format(&[("type", "CSV"), ("column", "id INT"), ("column", "name STRING")]);
        assert_eq!(
            csv.columns,
            vec![
                Column {
                    name: "id".into(),
                    kind: Some("INT".into())
                },
                Column {
                    name: "name".into(),
                    kind: Some("STRING".into())
                }
            ]
        );
        let records = read_all(&csv, "1,\"Smith, Jane\"\r\n2,\n3,\"say \"\"hi\"\"\"\n").expect("reads");
        assert_eq!(
            records,
            vec![
                record(&[Some("1"), Some("Smith, Jane")]),
                record(&[Some("2"), None]),
                record(&[Some("3"), Some("say \"hi\"")])
            ]
        );
        assert_eq!(
            write_all(&csv, &records).expect("writes"),
            "1,\"Smith, Jane\"\n2,\n3,\"say \"\"hi\"\"\"\n"
        );
    }

    #[test]
    fn tsv_and_custom_escape_separators_and_mark_null() {
        let tsv = format(&[("type", "TSV"), ("escapeChar", "\\")]);
        let records = vec![
            record(&[Some("a\tb"), None, Some("")]),
            record(&[Some("line\nbreak"), Some("\\N"), Some("back\\slash")]),
        ];
        let written = write_all(&tsv, &records).expect("writes");
        assert_eq!(written, "a\\\tb\t\\N\t\nline\\\nbreak\t\\\\N\tback\\\\slash\n");
        assert_eq!(read_all(&tsv, &written).expect("reads"), records);

        let custom = format(&[("type", "Custom"), ("columnSeparator", "|"), ("recordSeparator", ";")]);
        assert_eq!(
            read_all(&custom, "1|x;2|y;").expect("reads"),
            vec![record(&[Some("1"), Some("x")]), record(&[Some("2"), Some("y")])]
        );
        // Without escapeChar a value holding a separator cannot be written faithfully.
        assert!(write_all(&custom, &[record(&[Some("a|b")])]).is_err());
        assert!(
            DataFormat::from_object(&Object {
                id: "F".into(),
                fields: vec![("type".into(), FieldValue::String("Custom".into()))]
            })
            .is_err()
        );
    }

    #[test]
    fn regex_matches_whole_lines_and_formats_output() {
        let regex = format(&[
            ("type", "RegEx"),
            ("inputRegEx", "(\\S+) - (\\d+)"),
            ("outputFormat", "%2$s=%1$s (%%)"),
        ]);
        let records = read_all(&regex, "alpha - 1\nbeta - 22\n").expect("reads");
        assert_eq!(
            records,
            vec![record(&[Some("alpha"), Some("1")]), record(&[Some("beta"), Some("22")])]
        );
        assert_eq!(
            write_all(&regex, &records).expect("writes"),
            "1=alpha (%)\n22=beta (%)\n"
        );
        let error = read_all(&regex, "alpha - 1\nnot it\n").expect_err("no match");
        assert!(error.to_string().contains("line 2"), "{error}");
        assert!(parse_output_format("%x").is_err());
        assert!(parse_output_format("%0$s").is_err());
    }

    #[test]
    fn postgres_csv_keeps_null_apart_from_empty() {
        let mut buffer = Vec::new();
        postgres_csv(&[record(&[None, Some(""), Some("a\"b")])], &mut buffer);
        assert_eq!(String::from_utf8(buffer).expect("utf-8"), "\\N,\"\",\"a\"\"b\"\n");
    }
}
