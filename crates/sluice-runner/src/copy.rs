//! CopyActivity and RedshiftCopyActivity (reference §h.7): data between object-store data nodes
//! (S3DataNode with `directoryPath` / `filePath`) and SQL tables (SqlDataNode, MySqlDataNode,
//! RedshiftDataNode), in the data formats of the nodes, gzip-compressed where a node says so.
//!
//! Object store to object store with the same layout copies the files byte for byte (the "fast
//! copy" AWS makes in that case); anything else goes record by record: the reading end streams
//! batches of records through a bounded channel to the writing end, and ends with an empty
//! batch, so a writer that sees the channel close without it knows the reader failed and
//! commits nothing.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tokio::sync::mpsc;

use crate::execute::{ExecutionSettings, Outcome, attempt_folder, record_outcome_logs};
use crate::format::{Column, DataFormat, Record};
use crate::storage::{Encryption, Location};
use crate::tables::{self, BATCH_RECORDS, InsertMode, TableNode};
use crate::task::{Object, Task};

/// Batches in flight between the two ends of a copy.
const CHANNEL_BATCHES: usize = 4;

/// An object-store data node.
#[derive(Debug, Clone)]
struct ObjectNode {
    url: String,
    /// `filePath` (one object) rather than `directoryPath`.
    single_file: bool,
    format: Option<DataFormat>,
    gzip: bool,
    /// What S3 is asked for on writes (`s3EncryptionType`).
    encryption: Encryption,
    /// What happens if the output holds sensitive data (`sensitiveDataPolicy`).
    policy: crate::sensitive::Policy,
    /// The attempt writing it (for the quarantine location).
    attempt_id: String,
}

impl ObjectNode {
    /// Scans what is about to be published at `url` (the staged `local` file or folder) and
    /// returns where to publish it and the note for the log, or the refusal.
    async fn reviewed_target(
        &self,
        url: &str,
        local: &Path,
        settings: &ExecutionSettings,
    ) -> anyhow::Result<(String, Option<String>)> {
        use crate::sensitive::{Policy, note, quarantine_location, review};
        let found = review(local, self.policy, url, &settings.findings).await?;
        if !found.found {
            return Ok((url.to_string(), None));
        }
        let note = note(self.policy, url, &found);
        match self.policy {
            Policy::Fail => Err(anyhow::anyhow!(note)),
            Policy::Quarantine => Ok((quarantine_location(url, &self.attempt_id), Some(note))),
            _ => Ok((url.to_string(), Some(note))),
        }
    }
}

impl ObjectNode {
    fn format(&self) -> DataFormat {
        self.format.clone().unwrap_or_else(DataFormat::csv)
    }
}

enum End {
    Objects(ObjectNode),
    Table(TableNode),
}

impl End {
    fn describe(&self) -> String {
        match self {
            End::Objects(node) => node.url.clone(),
            End::Table(node) => node.describe(),
        }
    }
}

fn data_format(task: &Task, node: &Object) -> anyhow::Result<Option<DataFormat>> {
    let Some(id) = node.refs("dataFormat").next() else {
        return Ok(None);
    };
    let object = task.objects.get(id).with_context(|| {
        format!(
            "data node {}: the task does not carry its data format {id}",
            node.component_id()
        )
    })?;
    DataFormat::from_object(object).map(Some)
}

fn end(task: &Task, node: &Object) -> anyhow::Result<End> {
    if tables::is_table_node(node) {
        return Ok(End::Table(TableNode::from_task(task, node)?));
    }
    let (url, single_file) = match (node.string("directoryPath"), node.string("filePath")) {
        (Some(path), _) => (path, false),
        (None, Some(path)) => (path, true),
        (None, None) => bail!(
            "data node {} ({}) is neither an object-store node with directoryPath or filePath nor a SQL table",
            node.component_id(),
            node.string("type").unwrap_or("untyped")
        ),
    };
    Ok(End::Objects(ObjectNode {
        url: url.to_string(),
        single_file,
        format: data_format(task, node)?,
        gzip: node
            .string("compression")
            .is_some_and(|value| value.eq_ignore_ascii_case("gzip")),
        encryption: Encryption::of_node(node)?,
        policy: crate::sensitive::Policy::for_output(task, node),
        attempt_id: task.attempt_id.clone(),
    }))
}

fn ends(task: &Task) -> anyhow::Result<(End, End)> {
    let (Some(input), Some(output)) = (
        task.referenced("input").first().copied(),
        task.referenced("output").first().copied(),
    ) else {
        bail!("a copy needs an input and an output data node");
    };
    Ok((end(task, input)?, end(task, output)?))
}

pub async fn run_copy(task: &Task, settings: &ExecutionSettings) -> anyhow::Result<Outcome> {
    let (input, output) = ends(task)?;
    let folder = attempt_folder(task, settings);
    let result = match (&input, &output) {
        (End::Objects(from), End::Objects(to)) if from.format().same_layout(&to.format()) => {
            copy_files(from, to, &folder, settings).await
        }
        _ => copy_records(&input, &output, &folder, settings, &ReadOptions::default(), None).await,
    };
    finish(task, settings, &folder, result).await
}

/// RedshiftCopyActivity: an object-store node (or a table) into a RedshiftDataNode by
/// `insertMode`, through the temporary table `staging` and `transformSql`; or a
/// RedshiftDataNode out to an object-store node.
pub async fn run_redshift_copy(task: &Task, settings: &ExecutionSettings) -> anyhow::Result<Outcome> {
    let attempt = task.attempt();
    let (input, output) = ends(task)?;
    let folder = attempt_folder(task, settings);
    let mut options = ReadOptions::default();
    let input = match input {
        End::Objects(mut node) => {
            options = command_options(attempt, &mut node)?;
            End::Objects(node)
        }
        table => table,
    };
    let result = match &output {
        End::Table(target) if target.kind == "RedshiftDataNode" => {
            let mode = InsertMode::parse(
                attempt
                    .string("insertMode")
                    .context("the RedshiftCopyActivity has no insertMode")?,
            )?;
            let load = Load {
                mode,
                transform_sql: attempt.string("transformSql").map(str::to_string),
            };
            copy_records(&input, &output, &folder, settings, &options, Some(&load)).await
        }
        End::Objects(_) if matches!(&input, End::Table(node) if node.kind == "RedshiftDataNode") => {
            copy_records(&input, &output, &folder, settings, &options, None).await
        }
        _ => Err(anyhow::anyhow!(
            "a RedshiftCopyActivity copies into a RedshiftDataNode, or from one to an object-store node"
        )),
    };
    finish(task, settings, &folder, result).await
}

async fn finish(
    task: &Task,
    settings: &ExecutionSettings,
    folder: &Path,
    result: anyhow::Result<String>,
) -> anyhow::Result<Outcome> {
    if !settings.keep_work_dirs {
        let _ = tokio::fs::remove_dir_all(folder).await;
    }
    record_outcome_logs(task, settings, &result).await;
    result.map(|_| Outcome::finished())
}

/// How the reading end treats object-store input (RedshiftCopyActivity's `commandOptions`).
#[derive(Debug, Clone, Default)]
struct ReadOptions {
    /// Records skipped at the start of every file (IGNOREHEADER).
    skip_header: u64,
}

/// RedshiftCopyActivity's `commandOptions`, as far as they describe the input (the rest of
/// Redshift's COPY options have no meaning on PostgreSQL and are refused, not ignored).
fn command_options(attempt: &Object, node: &mut ObjectNode) -> anyhow::Result<ReadOptions> {
    let mut options = ReadOptions::default();
    let text: Vec<&str> = attempt.strings("commandOptions").collect();
    let joined = text.join(" ");
    let mut words = joined.split_whitespace().peekable();
    while let Some(word) = words.next() {
        match word.to_ascii_uppercase().as_str() {
            "CSV" => node.format = Some(DataFormat::csv()),
            "GZIP" => node.gzip = true,
            "IGNOREHEADER" => {
                if words.peek().is_some_and(|next| next.eq_ignore_ascii_case("AS")) {
                    words.next();
                }
                options.skip_header = words
                    .next()
                    .and_then(|count| count.parse().ok())
                    .context("commandOptions: IGNOREHEADER needs a number of lines")?;
            }
            "DELIMITER" => {
                if words.peek().is_some_and(|next| next.eq_ignore_ascii_case("AS")) {
                    words.next();
                }
                let quoted = words.next().unwrap_or_default();
                let delimiter = quoted.trim_matches('\'');
                node.format = Some(DataFormat::delimited(delimiter).context("commandOptions: DELIMITER")?);
            }
            other => bail!(
                "commandOptions: '{other}' is a Redshift COPY option Sluice's PostgreSQL loader does not apply (it applies CSV, GZIP, IGNOREHEADER and DELIMITER)"
            ),
        }
    }
    Ok(options)
}

/// The fast path: files copied as they are, re-compressed when only one side is gzip.
async fn copy_files(
    from: &ObjectNode,
    to: &ObjectNode,
    folder: &Path,
    settings: &ExecutionSettings,
) -> anyhow::Result<String> {
    let staged = folder.join("copy");
    let read = Location::parse(&from.url, &settings.storage)?
        .download_to(&staged)
        .await
        .with_context(|| format!("reading {}", from.url))?;
    let files = files_below(&staged).await?;
    if from.gzip != to.gzip {
        for file in &files {
            let file = file.clone();
            let unzip = from.gzip;
            tokio::task::spawn_blocking(move || recompress(&file, unzip)).await??;
        }
    }
    let (written, note, target) = if to.single_file {
        // Concatenated on disk, file by file, then uploaded (in parts when large).
        let name = to.url.rsplit('/').next().unwrap_or("joined");
        let joined = folder.join(crate::execute::safe(name));
        let mut output = tokio::fs::File::create(&joined).await?;
        for file in &files {
            let mut input = tokio::fs::File::open(file).await?;
            tokio::io::copy(&mut input, &mut output).await?;
        }
        output.sync_all().await?;
        drop(output);
        let (target, note) = to.reviewed_target(&to.url, &joined, settings).await?;
        (upload_single(to, &target, &joined, settings).await?, note, target)
    } else {
        let (target, note) = to.reviewed_target(&to.url, &staged, settings).await?;
        let written = Location::parse_with(&target, &settings.storage, &to.encryption)?
            .upload_from(&staged)
            .await
            .with_context(|| format!("writing {target}"))?;
        (written, note, target)
    };
    let summary = format!(
        "copied {} object(s) from {} to {target}: {read} bytes read, {written} bytes written",
        files.len(),
        from.url,
    );
    finish_reviewed(to, summary, note)
}

/// A copy's summary with the sensitive-data note; a quarantined output fails the attempt.
fn finish_reviewed(node: &ObjectNode, summary: String, note: Option<String>) -> anyhow::Result<String> {
    match note {
        Some(note) if node.policy == crate::sensitive::Policy::Quarantine => Err(anyhow::anyhow!(note)),
        Some(note) => Ok(format!("{summary}\n{note}")),
        None => Ok(summary),
    }
}

async fn upload_single(node: &ObjectNode, url: &str, file: &Path, settings: &ExecutionSettings) -> anyhow::Result<u64> {
    let (folder_url, name) = url
        .rsplit_once('/')
        .filter(|(_, name)| !name.is_empty())
        .with_context(|| format!("the output filePath {url} names no file"))?;
    Location::parse_with(folder_url, &settings.storage, &node.encryption)?
        .put_file(name, file)
        .await
        .with_context(|| format!("writing {url}"))
}

/// Every file below a folder, sorted.
async fn files_below(folder: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let folder = folder.to_path_buf();
    Ok(tokio::task::spawn_blocking(move || crate::sensitive::files_below(&folder)).await??)
}

/// RedshiftCopyActivity's way into its target.
struct Load {
    mode: InsertMode,
    transform_sql: Option<String>,
}

/// Record by record: the reading end and the writing end run at once.
async fn copy_records(
    input: &End,
    output: &End,
    folder: &Path,
    settings: &ExecutionSettings,
    options: &ReadOptions,
    load: Option<&Load>,
) -> anyhow::Result<String> {
    let (sender, mut receiver) = mpsc::channel::<Vec<Record>>(CHANNEL_BATCHES);
    let reading = async move {
        let count = match input {
            End::Objects(node) => read_objects(node, &folder.join("input"), settings, options, &sender).await?,
            End::Table(node) => {
                let mut database = node.connect().await?;
                let count = database.read(node, &sender).await;
                database.close().await;
                count?
            }
        };
        // The end of the data: an empty batch.
        sender
            .send(Vec::new())
            .await
            .map_err(|_| anyhow::anyhow!("the copy's writing end stopped"))?;
        anyhow::Ok(count)
    };
    // The input format's `column` list names the columns a table is written with.
    let columns: &[Column] = match input {
        End::Objects(input) => input
            .format
            .as_ref()
            .map(|format| format.columns.as_slice())
            .unwrap_or(&[]),
        End::Table(_) => &[],
    };
    let writing = async {
        match (output, load) {
            (End::Objects(node), _) => write_objects(node, &folder.join("output"), settings, &mut receiver).await,
            (End::Table(node), Some(load)) => {
                let mut database = node.connect().await?;
                let summary = tables::load(
                    &mut database,
                    node,
                    columns,
                    load.transform_sql.as_deref(),
                    load.mode,
                    &mut receiver,
                )
                .await;
                database.close().await;
                let summary = summary?;
                Ok(format!(
                    "{} staged, {} replaced or removed, {} inserted ({})",
                    summary.staged,
                    summary.removed,
                    summary.inserted,
                    load.mode.name()
                ))
            }
            (End::Table(node), None) => {
                let mut database = node.connect().await?;
                let written = database.write(node, columns, &mut receiver).await;
                database.close().await;
                Ok(format!("{} row(s) written", written?))
            }
        }
    };
    let (read, written) = tokio::try_join!(reading, writing)?;
    Ok(format!(
        "copied {read} record(s) from {} to {}: {written}",
        input.describe(),
        output.describe()
    ))
}

/// Downloads the node's objects, then parses them file by file on a blocking thread.
async fn read_objects(
    node: &ObjectNode,
    staged: &Path,
    settings: &ExecutionSettings,
    options: &ReadOptions,
    sink: &mpsc::Sender<Vec<Record>>,
) -> anyhow::Result<u64> {
    Location::parse(&node.url, &settings.storage)?
        .download_to(staged)
        .await
        .with_context(|| format!("reading {}", node.url))?;
    let files = files_below(staged).await?;
    let format = node.format();
    let gzip = node.gzip;
    let skip = options.skip_header;
    let sink = sink.clone();
    let staged = staged.to_path_buf();
    let url = node.url.clone();
    tokio::task::spawn_blocking(move || {
        let mut total = 0;
        for file in files {
            let name = file.strip_prefix(&staged).unwrap_or(&file).display().to_string();
            let raw = std::fs::File::open(&file)?;
            let input: Box<dyn BufRead + Send> = if gzip {
                Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(raw)))
            } else {
                Box::new(BufReader::new(raw))
            };
            let mut reader = format.reader(input);
            let mut batch = Vec::with_capacity(BATCH_RECORDS);
            while let Some(record) = reader
                .next_record()
                .with_context(|| format!("reading {name} of {url} as {}", format.kind))?
            {
                if reader.records_read() <= skip {
                    continue;
                }
                batch.push(record);
                total += 1;
                if batch.len() == BATCH_RECORDS {
                    sink.blocking_send(std::mem::take(&mut batch))
                        .map_err(|_| anyhow::anyhow!("the copy's writing end stopped"))?;
                }
            }
            if !batch.is_empty() {
                sink.blocking_send(batch)
                    .map_err(|_| anyhow::anyhow!("the copy's writing end stopped"))?;
            }
        }
        anyhow::Ok(total)
    })
    .await?
}

/// Writes the records into one file in the node's format (gzip-compressed when it says so) and
/// uploads it: as the node's `filePath`, or as `part-00000.<ext>` below its `directoryPath`.
async fn write_objects(
    node: &ObjectNode,
    staged: &Path,
    settings: &ExecutionSettings,
    source: &mut mpsc::Receiver<Vec<Record>>,
) -> anyhow::Result<String> {
    let format = node.format();
    tokio::fs::create_dir_all(staged).await?;
    let name = if node.single_file {
        node.url.rsplit('/').next().unwrap_or("data").to_string()
    } else {
        format!(
            "part-00000.{}{}",
            format.extension(),
            if node.gzip { ".gz" } else { "" }
        )
    };
    let path = staged.join(crate::execute::safe(&name));
    let file = std::fs::File::create(&path)?;
    let gzip = node.gzip;
    // The writer runs on a blocking thread, fed batch by batch.
    let (feed, mut fed) = mpsc::channel::<Vec<Record>>(CHANNEL_BATCHES);
    let writer = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let output = std::io::BufWriter::new(file);
        let count = if gzip {
            let (encoder, count) = write_records(
                &format,
                flate2::write::GzEncoder::new(output, flate2::Compression::default()),
                &mut fed,
            )?;
            encoder.finish()?.flush()?;
            count
        } else {
            let (mut output, count) = write_records(&format, output, &mut fed)?;
            output.flush()?;
            count
        };
        Ok(count)
    });
    let forwarding = async {
        while let Some(batch) = tables::next_batch(source).await? {
            if feed.send(batch).await.is_err() {
                break;
            }
        }
        drop(feed);
        anyhow::Ok(())
    }
    .await;
    let count = writer.await??;
    forwarding?;
    let (target, note) = node.reviewed_target(&node.url, &path, settings).await?;
    let written = if node.single_file {
        upload_single(node, &target, &path, settings).await?
    } else {
        Location::parse_with(&target, &settings.storage, &node.encryption)?
            .put_file(&name, &path)
            .await
            .with_context(|| format!("writing {target}"))?
    };
    finish_reviewed(
        node,
        format!("{count} record(s), {written} bytes written to {target}"),
        note,
    )
}

fn write_records<W: Write>(
    format: &DataFormat,
    output: W,
    source: &mut mpsc::Receiver<Vec<Record>>,
) -> anyhow::Result<(W, u64)> {
    let mut writer = format.writer(output)?;
    let mut count = 0;
    while let Some(batch) = source.blocking_recv() {
        for record in &batch {
            writer.write_record(record)?;
            count += 1;
        }
    }
    Ok((writer.finish()?, count))
}

/// Gunzips (`unzip`) or gzips a file in place, streaming through a temporary file.
fn recompress(path: &Path, unzip: bool) -> anyhow::Result<()> {
    let temporary = path.with_extension("recompressed");
    let mut input = BufReader::new(std::fs::File::open(path)?);
    let mut output = std::io::BufWriter::new(std::fs::File::create(&temporary)?);
    if unzip {
        std::io::copy(&mut flate2::read::MultiGzDecoder::new(input), &mut output)
            .context("the input is not gzip data")?;
    } else {
        let mut encoder = flate2::write::GzEncoder::new(output, flate2::Compression::default());
        std::io::copy(&mut input, &mut encoder)?;
        output = encoder.finish()?;
    }
    output.flush()?;
    drop(output);
    std::fs::rename(&temporary, path)?;
    Ok(())
}
