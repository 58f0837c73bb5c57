//! EmrActivity, HadoopActivity and HiveActivity on Apache Spark, the engine EMR users already
//! run. The activity's `runsOn` EmrCluster names the Spark master (`sparkMaster`: `local[*]` when
//! unset) and its configuration (EmrConfiguration objects, applied as EMR applies them to Spark);
//! EmrActivity's steps and HadoopActivity's jar go to `spark-submit`, HiveActivity's HiveQL to
//! `spark-sql` with its staged inputs and outputs as the tables `${input1}`, `${output1}`, ...

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::execute::{ExecutionSettings, Staged, Step};
use crate::storage::Location;
use crate::task::{Object, Task};
use sluice_core::runtime::support::is_identifier;

/// Where the runner finds Spark and the Java that runs it.
#[derive(Debug, Clone)]
pub struct SparkSettings {
    /// SPARK_HOME: `bin/spark-submit` and `bin/spark-sql` below it.
    pub home: PathBuf,
    /// JAVA_HOME for Spark's scripts (tasks' environments are built, not inherited); when
    /// unset they look for `java` on the task's PATH.
    pub java_home: Option<PathBuf>,
}

/// What an attempt runs, in order, and what it runs with.
pub(crate) struct Plan {
    pub steps: Vec<Step>,
    /// Added to every step's environment (SPARK_HOME, PATH, `spark-env` exports).
    pub environment: Vec<(String, String)>,
    /// Lines for the attempt's stderr (configuration that does not apply here).
    pub notes: Vec<String>,
}

/// Where EMR installs Spark: definitions written for EMR name files below it.
const EMR_SPARK_HOME: &str = "/usr/lib/spark/";

pub(crate) async fn plan(
    task: &Task,
    spark: &SparkSettings,
    folder: &Path,
    inputs: &[Staged<'_>],
    outputs: &[Staged<'_>],
) -> anyhow::Result<Plan> {
    let home = spark.home.as_path();
    let attempt = task.attempt();
    let cluster = task
        .referenced("runsOn")
        .into_iter()
        .find(|resource| resource.string("type") == Some("EmrCluster"));
    let master = cluster
        .and_then(|cluster| cluster.string("sparkMaster"))
        .unwrap_or("local[*]");
    if !sluice_core::runtime::support::is_spark_master(master) {
        bail!(
            "sparkMaster '{master}' of {} is not a Spark master: use local, local[N], local[*], spark://HOST:PORT, yarn or k8s://URL",
            cluster.map_or("the cluster", Object::component_id)
        );
    }
    let configuration = Configuration::of(task, cluster);
    let mut notes = configuration.notes.clone();
    let mut environment = vec![
        ("SPARK_HOME".to_string(), home.display().to_string()),
        (
            "PATH".to_string(),
            format!("{}:/usr/local/bin:/usr/bin:/bin", home.join("bin").display()),
        ),
    ];
    if let Some(java) = &spark.java_home {
        environment.push(("JAVA_HOME".to_string(), java.display().to_string()));
    }
    environment.extend(configuration.environment.iter().cloned());

    // The Spark properties go in a file of the attempt's (mode 0600), not on the command line
    // where any local user could read them (`ps`): Spark's own spark-defaults.conf first (a
    // properties file replaces it), then no web UI unless asked for, then the cluster's
    // configuration, whose later entries win.
    let mut properties = Vec::new();
    if let Ok(defaults) = tokio::fs::read_to_string(home.join("conf").join("spark-defaults.conf")).await {
        properties.push(defaults);
    }
    properties.push(property_line("spark.ui.enabled", "false"));
    for (key, value) in &configuration.spark {
        properties.push(property_line(key, value));
    }
    if let Some(queue) = attempt.string("hadoopQueue") {
        properties.push(property_line("spark.yarn.queue", queue));
    }
    let properties_path = folder.join("spark.properties");
    write_private(&properties_path, properties.join("\n").as_bytes()).await?;
    let common = vec![
        "--master".to_string(),
        master.to_string(),
        "--name".to_string(),
        format!("{}/{}", task.pipeline_id, task.component()),
        "--properties-file".to_string(),
        properties_path.display().to_string(),
    ];
    let submit = home.join("bin").join("spark-submit");
    let sql = home.join("bin").join("spark-sql");

    let mut steps = Vec::new();
    if let Some(step) = task_config_step(task, "preActivityTaskConfig")? {
        steps.push(step);
    }
    match attempt.string("type").unwrap_or("") {
        "HadoopActivity" => {
            let jar = attempt.string("jarUri").context("HadoopActivity has no jarUri")?;
            let mut arguments = common.clone();
            if let Some(main_class) = attempt.string("mainClass") {
                arguments.extend(["--class".to_string(), main_class.to_string()]);
            }
            let fetch = vec![arguments.len()];
            arguments.push(jar.to_string());
            arguments.extend(attempt.strings("argument").map(str::to_string));
            steps.push(Step {
                label: "the jar".into(),
                program: submit,
                arguments,
                fetch,
            });
        }
        "EmrActivity" => {
            for (index, command) in attempt.strings("preStepCommand").enumerate() {
                steps.push(shell_command(format!("preStepCommand {}", index + 1), command));
            }
            let step_texts: Vec<&str> = attempt.strings("step").collect();
            if step_texts.is_empty() {
                bail!("EmrActivity has no step to run");
            }
            for (index, text) in step_texts.iter().enumerate() {
                let number = index + 1;
                steps.push(emr_step(number, text, &common, &submit, &sql).with_context(|| format!("step {number}"))?);
            }
            for (index, command) in attempt.strings("postStepCommand").enumerate() {
                steps.push(shell_command(format!("postStepCommand {}", index + 1), command));
            }
        }
        "HiveActivity" => {
            // The staged tables live in a database of the attempt's own, so that a metastore
            // the cluster's configuration shares with others is never touched beyond it.
            let database = staging_database(task);
            let mut arguments = common.clone();
            let mut staging = String::new();
            for (key, staged) in inputs
                .iter()
                .map(|input| ("input", input))
                .chain(outputs.iter().map(|output| ("output", output)))
            {
                let table = format!("{key}{}", staged.number);
                staging.push_str(&table_ddl(task, &database, &table, staged)?);
                arguments.extend(["--hivevar".to_string(), format!("{table}={database}.{table}")]);
            }
            for variable in attempt.strings("scriptVariable") {
                let Some((name, _)) = variable.split_once('=') else {
                    bail!("scriptVariable '{variable}' is not NAME=value");
                };
                if !is_identifier(name) {
                    bail!("scriptVariable '{variable}': '{name}' is not a variable name");
                }
                arguments.extend(["--hivevar".to_string(), variable.to_string()]);
            }
            if !staging.is_empty() {
                let path = folder.join("staging.q");
                let text =
                    format!("DROP DATABASE IF EXISTS {database} CASCADE;\nCREATE DATABASE {database};\n{staging}");
                tokio::fs::write(&path, text).await?;
                arguments.extend(["-i".to_string(), path.display().to_string()]);
            }
            let mut fetch = Vec::new();
            match (attempt.string("hiveScript"), attempt.string("scriptUri")) {
                (Some(script), _) => {
                    let path = folder.join("script.q");
                    let mut text = script.trim_end().to_string();
                    if !staging.is_empty() {
                        // The tables are external: dropping them leaves the data.
                        if !text.ends_with(';') {
                            text.push(';');
                        }
                        text.push_str(&format!("\nDROP DATABASE IF EXISTS {database} CASCADE;\n"));
                    }
                    tokio::fs::write(&path, text).await?;
                    arguments.extend(["-f".to_string(), path.display().to_string()]);
                }
                (None, Some(uri)) => {
                    arguments.push("-f".to_string());
                    fetch.push(arguments.len());
                    arguments.push(uri.to_string());
                }
                (None, None) => bail!("HiveActivity has neither hiveScript nor scriptUri"),
            }
            steps.push(Step {
                label: "the Hive script".into(),
                program: sql,
                arguments,
                fetch,
            });
        }
        other => bail!("{other} does not run on Spark"),
    }
    if let Some(step) = task_config_step(task, "postActivityTaskConfig")? {
        steps.push(step);
    }
    if cluster.is_none() {
        notes.push(format!(
            "no EmrCluster: {} runs on Spark master {master}",
            attempt.string("type").unwrap_or("the activity")
        ));
    }
    Ok(Plan {
        steps,
        environment,
        notes,
    })
}

/// `sluice_<hex>`: a Hive database name of the attempt's own.
fn staging_database(task: &Task) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{}\n{}", task.pipeline_id, task.attempt_id).as_bytes(),
    );
    let hex: String = digest.as_ref()[..10].iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sluice_{hex}")
}

/// One line of a Java properties file.
fn property_line(key: &str, value: &str) -> String {
    let escape = |text: &str, key: bool| {
        let mut escaped = String::new();
        for (index, character) in text.chars().enumerate() {
            match character {
                '\\' => escaped.push_str("\\\\"),
                '\n' => escaped.push_str("\\n"),
                '\r' => escaped.push_str("\\r"),
                '\t' => escaped.push_str("\\t"),
                '=' | ':' | '#' | '!' if key => {
                    escaped.push('\\');
                    escaped.push(character);
                }
                ' ' if key || index == 0 => escaped.push_str("\\ "),
                other => escaped.push(other),
            }
        }
        escaped
    };
    format!("{}={}", escape(key, true), escape(value, false))
}

/// A file only the runner's user may read.
async fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .await?;
    file.write_all(bytes).await?;
    file.flush().await
}

/// One of EmrActivity's steps, `JAR,ARG,ARG,...` (a comma inside an argument written `\\,`):
/// `command-runner.jar` with `spark-submit`, `spark-sql` or `hive-script`; `script-runner.jar`
/// with a script; or a jar or Python file for spark-submit. The files a step names are fetched
/// just before it runs (an earlier step may make them).
fn emr_step(number: usize, text: &str, common: &[String], submit: &Path, sql: &Path) -> anyhow::Result<Step> {
    let parts = split_step(text);
    let Some((first, rest)) = parts.split_first() else {
        bail!("the step is empty");
    };
    let label = |program: &str| format!("step {number} ({program})");
    let name = first.rsplit('/').next().unwrap_or(first);
    match name {
        "command-runner.jar" => {
            let Some((command, arguments)) = rest.split_first() else {
                bail!("command-runner.jar names no command");
            };
            match command.as_str() {
                "spark-submit" => {
                    let mut all = common.to_vec();
                    let fetch = primary_resource(arguments)
                        .map(|index| all.len() + index)
                        .into_iter()
                        .collect();
                    all.extend(arguments.iter().cloned());
                    Ok(Step {
                        label: label("spark-submit"),
                        program: submit.to_path_buf(),
                        arguments: all,
                        fetch,
                    })
                }
                "spark-sql" | "hive-script" => {
                    let mut all = common.to_vec();
                    let arguments: Vec<String> = arguments
                        .iter()
                        .filter(|argument| !matches!(argument.as_str(), "--run-hive-script" | "--args"))
                        .cloned()
                        .collect();
                    // The script file (-f) comes from wherever the definition keeps it.
                    let fetch = arguments
                        .iter()
                        .position(|argument| argument == "-f")
                        .filter(|index| index + 1 < arguments.len())
                        .map(|index| all.len() + index + 1)
                        .into_iter()
                        .collect();
                    all.extend(arguments);
                    Ok(Step {
                        label: label(command),
                        program: sql.to_path_buf(),
                        arguments: all,
                        fetch,
                    })
                }
                other => bail!(
                    "command-runner.jar runs '{other}' here only if it is spark-submit, spark-sql or hive-script (Sluice runs EMR steps on Spark)"
                ),
            }
        }
        "script-runner.jar" => {
            if rest.is_empty() {
                bail!("script-runner.jar names no script");
            }
            Ok(Step {
                label: label("script-runner.jar"),
                program: PathBuf::from("/bin/sh"),
                arguments: rest.to_vec(),
                fetch: vec![0],
            })
        }
        _ if name.ends_with(".jar") || name.ends_with(".py") => {
            let mut all = common.to_vec();
            let fetch = vec![all.len()];
            all.push(first.clone());
            all.extend(rest.iter().cloned());
            Ok(Step {
                label: label(name),
                program: submit.to_path_buf(),
                arguments: all,
                fetch,
            })
        }
        _ => bail!(
            "'{first}' is neither a jar, a Python file, command-runner.jar nor script-runner.jar (a step is JAR,ARG,ARG,...)"
        ),
    }
}

/// A step's comma-separated parts; `\,` is a comma inside a part.
fn split_step(text: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut characters = text.chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            '\\' if characters.peek() == Some(&',') => {
                characters.next();
                parts.last_mut().expect("never empty").push(',');
            }
            ',' => parts.push(String::new()),
            other => parts.last_mut().expect("never empty").push(other),
        }
    }
    if parts.len() == 1 && parts[0].trim().is_empty() {
        return Vec::new();
    }
    parts
}

/// spark-submit's options that take no value.
const SUBMIT_FLAGS: &[&str] = &[
    "--verbose",
    "-v",
    "--supervise",
    "--help",
    "-h",
    "--version",
    "--usage-error",
];

/// Where spark-submit's primary resource is among its arguments: the first that is neither an
/// option nor an option's value (the application's jar or Python file).
fn primary_resource(arguments: &[String]) -> Option<usize> {
    let mut index = 0;
    while index < arguments.len() {
        let argument = &arguments[index];
        if !argument.starts_with('-') {
            return Some(index);
        }
        index += if SUBMIT_FLAGS.contains(&argument.as_str()) || argument.contains('=') {
            1
        } else {
            2
        };
    }
    None
}

fn shell_command(label: String, command: &str) -> Step {
    Step {
        label,
        program: PathBuf::from("/bin/sh"),
        arguments: vec!["-c".into(), command.to_string()],
        fetch: Vec::new(),
    }
}

/// A ShellScriptConfig run before or after the activity (`preActivityTaskConfig`,
/// `postActivityTaskConfig`): its `scriptUri` with its `scriptArgument`s.
fn task_config_step(task: &Task, key: &str) -> anyhow::Result<Option<Step>> {
    let Some(config) = task.referenced(key).into_iter().next() else {
        return Ok(None);
    };
    let uri = config
        .string("scriptUri")
        .with_context(|| format!("{key} {} has no scriptUri", config.component_id()))?;
    let mut arguments = vec![uri.to_string()];
    arguments.extend(config.strings("scriptArgument").map(str::to_string));
    Ok(Some(Step {
        label: key.to_string(),
        program: PathBuf::from("/bin/sh"),
        arguments,
        fetch: vec![0],
    }))
}

/// A step's arguments with the files it names brought into the attempt folder: `s3://` (and
/// the other object stores) and `file://` are read; an absolute path is used where it is, EMR's
/// Spark folder (`/usr/lib/spark/`) standing for this runner's Spark; a relative path is the
/// attempt folder's (where earlier steps ran).
pub(crate) async fn fetch_arguments(
    step: &Step,
    settings: &ExecutionSettings,
    folder: &Path,
    counter: &mut usize,
) -> anyhow::Result<Vec<String>> {
    let mut arguments = step.arguments.clone();
    for &index in &step.fetch {
        let Some(uri) = arguments.get(index).cloned() else {
            continue;
        };
        *counter += 1;
        let path = fetch(&uri, settings, folder, *counter).await?;
        arguments[index] = path.display().to_string();
    }
    Ok(arguments)
}

async fn fetch(uri: &str, settings: &ExecutionSettings, folder: &Path, counter: usize) -> anyhow::Result<PathBuf> {
    let exists = |path: &Path| {
        let path = path.to_path_buf();
        async move { tokio::fs::try_exists(&path).await.unwrap_or(false) }
    };
    if uri.starts_with('/') {
        let path = PathBuf::from(uri);
        if exists(&path).await {
            return Ok(path);
        }
        if let Some(rest) = uri.strip_prefix(EMR_SPARK_HOME)
            && let Some(spark) = &settings.spark
        {
            let local = spark.home.join(rest);
            if exists(&local).await {
                return Ok(local);
            }
            bail!(
                "{uri} is not on this runner, nor {} in its Spark ({EMR_SPARK_HOME} is EMR's Spark folder)",
                local.display()
            );
        }
        bail!("{uri} is not on this runner (a path from an EMR image? put the file in S3 and name its s3:// URI)");
    }
    if !uri.contains("://") {
        if uri.split('/').any(|part| part == "..") {
            bail!("'{uri}' leaves the attempt's folder");
        }
        let path = folder.join(uri);
        if exists(&path).await {
            return Ok(path);
        }
        bail!("'{uri}' is not in the attempt's folder (name an absolute path or a URI)");
    }
    let name = uri.trim_end_matches('/').rsplit('/').next().unwrap_or("file");
    let name = crate::execute::safe(if name.is_empty() { "file" } else { name });
    let bytes = Location::parse(uri, &settings.storage)?
        .read()
        .await
        .with_context(|| format!("cannot fetch {uri}"))?;
    // Each fetched file in a folder of its own, so two steps' `main.py` never meet.
    let target_folder = folder.join("fetched").join(counter.to_string());
    tokio::fs::create_dir_all(&target_folder).await?;
    let target = target_folder.join(&name);
    tokio::fs::write(&target, &bytes).await?;
    Ok(target)
}

/// The cluster's EmrConfiguration, as EMR applies it to Spark.
#[derive(Default)]
struct Configuration {
    /// `--conf` pairs.
    spark: Vec<(String, String)>,
    /// `spark-env`'s exports.
    environment: Vec<(String, String)>,
    notes: Vec<String>,
}

/// The Hadoop-side classifications: their properties reach Spark as `spark.hadoop.<key>`.
const HADOOP_CLASSIFICATIONS: &[&str] = &[
    "core-site",
    "hdfs-site",
    "mapred-site",
    "yarn-site",
    "hive-site",
    "spark-hive-site",
];

impl Configuration {
    fn of(task: &Task, cluster: Option<&Object>) -> Configuration {
        let mut configuration = Configuration::default();
        let Some(cluster) = cluster else {
            return configuration;
        };
        for id in cluster.refs("configuration") {
            configuration.add(task, id, 0);
        }
        configuration
    }

    fn add(&mut self, task: &Task, id: &str, depth: usize) {
        let Some(object) = task.objects.get(id) else {
            self.notes
                .push(format!("configuration {id} did not reach this runner; not applied"));
            return;
        };
        let classification = object.string("classification").unwrap_or("");
        let properties: Vec<(String, String)> = object
            .refs("property")
            .filter_map(|property| task.objects.get(property))
            .filter_map(|property| {
                Some((
                    property.string("key")?.to_string(),
                    property.string("value")?.to_string(),
                ))
            })
            .collect();
        match classification {
            "spark-defaults" => self.spark.extend(properties),
            hadoop if HADOOP_CLASSIFICATIONS.contains(&hadoop) => self.spark.extend(
                properties
                    .into_iter()
                    .map(|(key, value)| (format!("spark.hadoop.{key}"), value)),
            ),
            "spark-env" | "hadoop-env" if depth == 0 => {
                for nested in object.refs("configuration") {
                    self.add(task, nested, depth + 1);
                }
            }
            "export" if depth == 1 => {
                for (name, value) in properties {
                    if is_identifier(&name) {
                        self.environment.push((name, value));
                    } else {
                        self.notes.push(format!("export '{name}' of {id} is not a variable name; not applied"));
                    }
                }
            }
            "spark" => self.notes.push(format!(
                "configuration {id}: EMR's `spark` classification (maximizeResourceAllocation) sizes executors to EMR's instances; not applied here"
            )),
            other => self.notes.push(format!(
                "configuration {id}: classification '{other}' is not applied (Sluice applies spark-defaults, spark-env exports, core-site, hdfs-site, mapred-site, yarn-site, hive-site and spark-hive-site)"
            )),
        }
    }
}

/// The HiveQL that makes a staged folder the table `database.table`: external, over the
/// folder, in the node's data format (CSV, TSV, Custom: delimited text; RegEx: Hive's
/// RegexSerDe). Activation refused what cannot be staged; what reaches here is checked again.
fn table_ddl(task: &Task, database: &str, table: &str, staged: &Staged<'_>) -> anyhow::Result<String> {
    use sluice_core::runtime::support::{hive_column, hive_format_problem, hive_separator};
    let node = staged.node.component_id();
    let format = staged
        .node
        .refs("dataFormat")
        .next()
        .and_then(|id| task.objects.get(id))
        .with_context(|| format!("{table} ({node}) has no dataFormat to make its table from"))?;
    let format_type = format.string("type").unwrap_or("");
    let columns: Vec<String> = format.strings("column").map(str::to_string).collect();
    let field = |key: &str| format.string(key).map(str::to_string);
    if let Some(problem) = hive_format_problem(format_type, &field, &columns, table.starts_with("output")) {
        bail!("{table} ({node}) with data format {}: {problem}", format.component_id());
    }
    let strings_only = format_type == "RegEx";
    let columns = columns
        .iter()
        .map(|column| {
            hive_column(column).map(|(name, kind)| format!("`{name}` {}", if strings_only { "STRING" } else { &kind }))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let separator = |text: &str| hive_separator(text).map_err(anyhow::Error::msg);
    let row_format = if strings_only {
        format!(
            "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.RegexSerDe' WITH SERDEPROPERTIES ('input.regex' = '{}')",
            hive_string(format.string("inputRegEx").unwrap_or_default())
        )
    } else {
        let columns_by = match (format_type, format.string("columnSeparator")) {
            (_, Some(text)) => separator(text)?,
            ("TSV", None) => "\\t".to_string(),
            _ => ",".to_string(),
        };
        let mut row_format = format!("ROW FORMAT DELIMITED FIELDS TERMINATED BY '{columns_by}'");
        if let Some(escape) = format.string("escapeChar") {
            row_format.push_str(&format!(" ESCAPED BY '{}'", separator(escape)?));
        }
        row_format
    };
    let location = format!("file://{}", staged.directory.display());
    Ok(format!(
        "CREATE EXTERNAL TABLE {database}.{table} ({}) {row_format} STORED AS TEXTFILE LOCATION '{}';\n",
        columns.join(", "),
        hive_string(&location)
    ))
}

/// Text inside a single-quoted Hive string.
fn hive_string(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\'', "\\'")
}

/// Hadoop's bookkeeping in an output folder (`_SUCCESS`, `.part-….crc`) is not data: removed
/// before the folder is scanned and published.
pub(crate) async fn tidy_output(directory: &Path) -> std::io::Result<()> {
    let mut entries = tokio::fs::read_dir(directory).await?;
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if (name.starts_with('.') && name.ends_with(".crc")) || name == "_SUCCESS" {
            tokio::fs::remove_file(entry.path()).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_split_on_commas_but_not_escaped_ones() {
        assert_eq!(
            split_step("command-runner.jar,spark-submit,--conf,a=b\\,c,x.py"),
            vec!["command-runner.jar", "spark-submit", "--conf", "a=b,c", "x.py"]
        );
        assert!(split_step("").is_empty());
    }

    #[test]
    fn hive_strings_and_properties_are_escaped() {
        assert_eq!(hive_string("a'b\\c"), "a\\'b\\\\c");
        assert_eq!(property_line("spark.x", "a=b c"), "spark.x=a=b c");
        assert_eq!(property_line("k:y", " v\\\n"), "k\\:y=\\ v\\\\\\n");
    }

    #[test]
    fn the_primary_resource_follows_the_options() {
        let arguments = |text: &str| text.split(' ').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            primary_resource(&arguments("--class A --verbose --conf=x app.jar 1")),
            Some(4)
        );
        assert_eq!(primary_resource(&arguments("job.py x")), Some(0));
        assert_eq!(primary_resource(&arguments("--version")), None);
    }
}
