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
    settings: &ExecutionSettings,
    home: &Path,
    folder: &Path,
    inputs: &[Staged<'_>],
    outputs: &[Staged<'_>],
) -> anyhow::Result<Plan> {
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
    environment.extend(configuration.environment.iter().cloned());

    let fetcher = Fetcher {
        settings,
        home,
        folder: folder.join("fetched"),
    };
    // What every spark-submit / spark-sql of this attempt starts with: the master, the
    // application's name, no web UI unless the configuration asks for one, then the cluster's
    // configuration (later `--conf`s win, so the user's settings override these defaults).
    let mut common = vec![
        "--master".to_string(),
        master.to_string(),
        "--name".to_string(),
        format!("{}/{}", task.pipeline_id, task.component()),
        "--conf".to_string(),
        "spark.ui.enabled=false".to_string(),
    ];
    for (key, value) in &configuration.spark {
        common.push("--conf".into());
        common.push(format!("{key}={value}"));
    }
    if let Some(queue) = attempt.string("hadoopQueue") {
        common.push("--conf".into());
        common.push(format!("spark.yarn.queue={queue}"));
    }
    let submit = home.join("bin").join("spark-submit");
    let sql = home.join("bin").join("spark-sql");

    let mut steps = Vec::new();
    if let Some(step) = task_config_step(task, "preActivityTaskConfig", &fetcher).await? {
        steps.push(step);
    }
    match attempt.string("type").unwrap_or("") {
        "HadoopActivity" => {
            let jar_uri = attempt.string("jarUri").context("HadoopActivity has no jarUri")?;
            let jar = fetcher.fetch(jar_uri).await?;
            let mut arguments = common.clone();
            if let Some(main_class) = attempt.string("mainClass") {
                arguments.extend(["--class".to_string(), main_class.to_string()]);
            }
            arguments.push(jar.display().to_string());
            arguments.extend(attempt.strings("argument").map(str::to_string));
            steps.push(Step {
                label: "the jar".into(),
                program: submit,
                arguments,
                environment: Vec::new(),
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
                steps.push(
                    emr_step(number, text, &common, &submit, &sql, &fetcher)
                        .await
                        .with_context(|| format!("step {number}"))?,
                );
            }
            for (index, command) in attempt.strings("postStepCommand").enumerate() {
                steps.push(shell_command(format!("postStepCommand {}", index + 1), command));
            }
        }
        "HiveActivity" => {
            let script = match (attempt.string("hiveScript"), attempt.string("scriptUri")) {
                (Some(script), _) => {
                    let path = folder.join("script.q");
                    tokio::fs::write(&path, script).await?;
                    path
                }
                (None, Some(uri)) => fetcher.fetch(uri).await?,
                (None, None) => bail!("HiveActivity has neither hiveScript nor scriptUri"),
            };
            let mut arguments = common.clone();
            let mut staging = String::new();
            for (key, staged) in inputs
                .iter()
                .map(|input| ("input", input))
                .chain(outputs.iter().map(|output| ("output", output)))
            {
                let table = format!("{key}{}", staged.number);
                staging.push_str(&table_ddl(task, &table, staged)?);
                arguments.extend(["--hivevar".to_string(), format!("{table}={table}")]);
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
                tokio::fs::write(&path, &staging).await?;
                arguments.extend(["-i".to_string(), path.display().to_string()]);
            }
            arguments.extend(["-f".to_string(), script.display().to_string()]);
            steps.push(Step {
                label: "the Hive script".into(),
                program: sql,
                arguments,
                environment: Vec::new(),
            });
        }
        other => bail!("{other} does not run on Spark"),
    }
    if let Some(step) = task_config_step(task, "postActivityTaskConfig", &fetcher).await? {
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

/// One of EmrActivity's steps, `JAR,ARG,ARG,...` (a comma inside an argument written `\,`):
/// `command-runner.jar` with `spark-submit`, `spark-sql` or `hive-script`; `script-runner.jar`
/// with a script; or a jar or Python file for spark-submit.
async fn emr_step(
    number: usize,
    text: &str,
    common: &[String],
    submit: &Path,
    sql: &Path,
    fetcher: &Fetcher<'_>,
) -> anyhow::Result<Step> {
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
                    all.extend(fetch_primary_resource(arguments, fetcher).await?);
                    Ok(Step {
                        label: label("spark-submit"),
                        program: submit.to_path_buf(),
                        arguments: all,
                        environment: Vec::new(),
                    })
                }
                "spark-sql" | "hive-script" => {
                    let mut all = common.to_vec();
                    let mut arguments = arguments
                        .iter()
                        .filter(|argument| !matches!(argument.as_str(), "--run-hive-script" | "--args"))
                        .cloned()
                        .collect::<Vec<_>>();
                    // The script file (-f) comes from wherever the definition keeps it.
                    if let Some(index) = arguments.iter().position(|argument| argument == "-f")
                        && let Some(uri) = arguments.get(index + 1).cloned()
                    {
                        arguments[index + 1] = fetcher.fetch(&uri).await?.display().to_string();
                    }
                    all.extend(arguments);
                    Ok(Step {
                        label: label(command),
                        program: sql.to_path_buf(),
                        arguments: all,
                        environment: Vec::new(),
                    })
                }
                other => bail!(
                    "command-runner.jar runs '{other}' here only if it is spark-submit, spark-sql or hive-script (Sluice runs EMR steps on Spark)"
                ),
            }
        }
        "script-runner.jar" => {
            let Some((script, arguments)) = rest.split_first() else {
                bail!("script-runner.jar names no script");
            };
            let mut all = vec![fetcher.fetch(script).await?.display().to_string()];
            all.extend(arguments.iter().cloned());
            Ok(Step {
                label: label("script-runner.jar"),
                program: PathBuf::from("/bin/sh"),
                arguments: all,
                environment: Vec::new(),
            })
        }
        _ if name.ends_with(".jar") || name.ends_with(".py") => {
            let mut all = common.to_vec();
            all.push(fetcher.fetch(first).await?.display().to_string());
            all.extend(rest.iter().cloned());
            Ok(Step {
                label: label(name),
                program: submit.to_path_buf(),
                arguments: all,
                environment: Vec::new(),
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

/// spark-submit's arguments with its primary resource (the first argument that is neither an
/// option nor an option's value: the application's jar or Python file) fetched when remote.
async fn fetch_primary_resource(arguments: &[String], fetcher: &Fetcher<'_>) -> anyhow::Result<Vec<String>> {
    let mut result = arguments.to_vec();
    let mut index = 0;
    while index < result.len() {
        let argument = &result[index];
        if argument.starts_with('-') {
            index += if SUBMIT_FLAGS.contains(&argument.as_str()) || argument.contains('=') {
                1
            } else {
                2
            };
            continue;
        }
        let fetched = fetcher.fetch(argument).await?;
        result[index] = fetched.display().to_string();
        break;
    }
    Ok(result)
}

fn shell_command(label: String, command: &str) -> Step {
    Step {
        label,
        program: PathBuf::from("/bin/sh"),
        arguments: vec!["-c".into(), command.to_string()],
        environment: Vec::new(),
    }
}

/// A ShellScriptConfig run before or after the activity (`preActivityTaskConfig`,
/// `postActivityTaskConfig`): its `scriptUri` with its `scriptArgument`s.
async fn task_config_step(task: &Task, key: &str, fetcher: &Fetcher<'_>) -> anyhow::Result<Option<Step>> {
    let Some(config) = task.referenced(key).into_iter().next() else {
        return Ok(None);
    };
    let uri = config
        .string("scriptUri")
        .with_context(|| format!("{key} {} has no scriptUri", config.component_id()))?;
    let mut arguments = vec![fetcher.fetch(uri).await?.display().to_string()];
    arguments.extend(config.strings("scriptArgument").map(str::to_string));
    Ok(Some(Step {
        label: key.to_string(),
        program: PathBuf::from("/bin/sh"),
        arguments,
        environment: Vec::new(),
    }))
}

/// Brings a file a step names into the attempt folder: `s3://` (and the other object stores)
/// and `file://` are read; a local path is used where it is, EMR's Spark folder
/// (`/usr/lib/spark/`) standing for this runner's Spark.
struct Fetcher<'a> {
    settings: &'a ExecutionSettings,
    home: &'a Path,
    folder: PathBuf,
}

impl Fetcher<'_> {
    async fn fetch(&self, uri: &str) -> anyhow::Result<PathBuf> {
        if uri.starts_with('/') {
            let path = PathBuf::from(uri);
            if tokio::fs::try_exists(&path).await.unwrap_or(false) {
                return Ok(path);
            }
            if let Some(rest) = uri.strip_prefix(EMR_SPARK_HOME) {
                let local = self.home.join(rest);
                if tokio::fs::try_exists(&local).await.unwrap_or(false) {
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
            bail!("'{uri}' is neither an absolute path nor a URI");
        }
        let name = uri.trim_end_matches('/').rsplit('/').next().unwrap_or("file");
        let name = crate::execute::safe(if name.is_empty() { "file" } else { name });
        let bytes = Location::parse(uri, &self.settings.storage)?
            .read()
            .await
            .with_context(|| format!("cannot fetch {uri}"))?;
        tokio::fs::create_dir_all(&self.folder).await?;
        // Several files of one name (two steps' `main.py`) each get their own folder.
        let mut target = self.folder.join(&name);
        let mut counter = 1;
        while tokio::fs::try_exists(&target).await.unwrap_or(false) {
            counter += 1;
            target = self.folder.join(counter.to_string()).join(&name);
            tokio::fs::create_dir_all(target.parent().expect("has a parent")).await?;
        }
        tokio::fs::write(&target, &bytes).await?;
        Ok(target)
    }
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

fn is_identifier(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && characters.all(|character| character.is_ascii_alphanumeric() || character == '_')
}

/// The HiveQL that makes a staged folder the table `table`: external, over the folder, in the
/// node's data format (CSV, TSV, Custom: delimited text; RegEx: Hive's RegexSerDe).
fn table_ddl(task: &Task, table: &str, staged: &Staged<'_>) -> anyhow::Result<String> {
    let node = staged.node.component_id();
    let format = staged
        .node
        .refs("dataFormat")
        .next()
        .and_then(|id| task.objects.get(id))
        .with_context(|| format!("{table} ({node}) has no dataFormat to make its table from"))?;
    let format_type = format.string("type").unwrap_or("");
    let columns = format
        .strings("column")
        .map(|column| column_ddl(column, format_type == "RegEx"))
        .collect::<anyhow::Result<Vec<_>>>()
        .with_context(|| format!("data format {} of {table} ({node})", format.component_id()))?;
    if columns.is_empty() {
        bail!(
            "{table} ({node}): its data format {} has no `column` fields ('name TYPE') to make the table from",
            format.component_id()
        );
    }
    let row_format = match format_type {
        "CSV" | "TSV" | "Custom" => {
            let separator = match (format_type, format.string("columnSeparator")) {
                (_, Some(separator)) => separator,
                ("CSV", None) => ",",
                ("TSV", None) => "\t",
                _ => bail!("data format {} has no columnSeparator", format.component_id()),
            };
            let mut row_format = format!(
                "ROW FORMAT DELIMITED FIELDS TERMINATED BY '{}'",
                hive_character(separator)?
            );
            if let Some(escape) = format.string("escapeChar") {
                row_format.push_str(&format!(" ESCAPED BY '{}'", hive_character(escape)?));
            }
            if let Some(records) = format.string("recordSeparator")
                && !matches!(records, "\n" | "\\n")
            {
                bail!(
                    "data format {}: Hive's text tables end records with a newline only; recordSeparator {records:?} cannot be staged",
                    format.component_id()
                );
            }
            row_format
        }
        "RegEx" => {
            let regex = format
                .string("inputRegEx")
                .with_context(|| format!("data format {} has no inputRegEx", format.component_id()))?;
            format!(
                "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.RegexSerDe' WITH SERDEPROPERTIES ('input.regex' = '{}')",
                hive_string(regex)
            )
        }
        other => bail!(
            "{table} ({node}): data format {} is a {other}, which Sluice does not stage",
            format.component_id()
        ),
    };
    let location = format!("file://{}", staged.directory.display());
    Ok(format!(
        "DROP TABLE IF EXISTS {table};\nCREATE EXTERNAL TABLE {table} ({}) {row_format} STORED AS TEXTFILE LOCATION '{}';\n",
        columns.join(", "),
        hive_string(&location)
    ))
}

/// `name TYPE` (TYPE defaults to STRING; RegexSerDe reads only strings).
fn column_ddl(column: &str, strings_only: bool) -> anyhow::Result<String> {
    let column = column.trim();
    let (name, kind) = column.split_once(char::is_whitespace).unwrap_or((column, "STRING"));
    let kind = kind.trim();
    if !is_identifier(name) {
        bail!("column '{column}': '{name}' is not a column name");
    }
    if kind.is_empty()
        || !kind
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "_(),<>: ".contains(character))
    {
        bail!("column '{column}': '{kind}' is not a Hive type");
    }
    let kind = if strings_only { "STRING" } else { kind };
    Ok(format!("`{name}` {kind}"))
}

/// One separator character as a Hive string literal's content: `\t`, printable ASCII as itself,
/// other ASCII in octal (`\001`).
fn hive_character(text: &str) -> anyhow::Result<String> {
    let character = match text {
        "\\t" => '\t',
        "\\n" => '\n',
        _ => {
            let mut characters = text.chars();
            match (characters.next(), characters.next()) {
                (Some(character), None) => character,
                _ => bail!("separator {text:?} is not one character"),
            }
        }
    };
    Ok(match character {
        '\t' => "\\t".to_string(),
        '\'' | '\\' => format!("\\{:03o}", character as u32),
        ' '..='~' => character.to_string(),
        _ if character.is_ascii() => format!("\\{:03o}", character as u32),
        _ => bail!("separator {text:?} is not an ASCII character"),
    })
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
    fn columns_and_separators_become_safe_hiveql() {
        assert_eq!(column_ddl("name STRING", false).unwrap(), "`name` STRING");
        assert_eq!(column_ddl("age", false).unwrap(), "`age` STRING");
        assert_eq!(
            column_ddl("price DECIMAL(10,2)", false).unwrap(),
            "`price` DECIMAL(10,2)"
        );
        assert_eq!(column_ddl("n INT", true).unwrap(), "`n` STRING");
        assert!(column_ddl("x`; DROP TABLE y INT", false).is_err());
        assert!(column_ddl("x INT'; --", false).is_err());
        assert_eq!(hive_character(",").unwrap(), ",");
        assert_eq!(hive_character("\t").unwrap(), "\\t");
        assert_eq!(hive_character("\\t").unwrap(), "\\t");
        assert_eq!(hive_character("'").unwrap(), "\\047");
        assert_eq!(hive_character("\u{1}").unwrap(), "\\001");
        assert!(hive_character("ab").is_err());
        assert!(hive_character("é").is_err());
        assert_eq!(hive_string("a'b\\c"), "a\\'b\\\\c");
    }
}
