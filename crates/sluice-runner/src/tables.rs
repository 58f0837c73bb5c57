//! SQL data nodes (SqlDataNode, MySqlDataNode, RedshiftDataNode) as the ends of a copy, and
//! RedshiftCopyActivity's load, on PostgreSQL (which also stands in for Redshift: same
//! protocol) and MySQL/MariaDB.
//!
//! Reads run the node's `selectQuery` (or select every row of `table`) and stream the rows as
//! text. Writes run in one transaction, so a failed copy leaves the table as it was:
//! PostgreSQL takes the records through `COPY ... FROM STDIN`, MySQL through multi-row
//! INSERTs; a node's `insertQuery` runs once per record with the fields bound to its `?`s.

use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::TryStreamExt;
use sqlx::{Column as _, Connection, Executor, Row, SqlSafeStr, TypeInfo};
use tokio::sync::mpsc;

use crate::format::{Column, Record, postgres_csv};
use crate::sql::{database_url, describe};
use crate::task::{Object, Task};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Records per batch passed between the reading and the writing end of a copy.
pub const BATCH_RECORDS: usize = 1000;

/// The next batch from the reading end of a copy; `None` at the end it announced (an empty
/// batch). A reading end that stops without announcing the end failed: nothing is committed.
pub async fn next_batch(source: &mut mpsc::Receiver<Vec<Record>>) -> anyhow::Result<Option<Vec<Record>>> {
    match source.recv().await {
        Some(batch) if batch.is_empty() => Ok(None),
        Some(batch) => Ok(Some(batch)),
        None => bail!("the copy's reading end stopped before the end of its data"),
    }
}

pub fn is_table_node(object: &Object) -> bool {
    matches!(
        object.string("type"),
        Some("SqlDataNode" | "MySqlDataNode" | "RedshiftDataNode")
    )
}

/// A table, qualified by its schema, as written in SQL: plain identifiers (or quoted ones)
/// joined by dots. Anything else is refused rather than pasted into a statement.
fn table_name(node: &Object, schema: Option<&str>, table: &str) -> anyhow::Result<String> {
    let plain = |part: &str| {
        let quoted =
            (part.len() >= 2 && part.starts_with('"') && part.ends_with('"') && !part[1..part.len() - 1].contains('"'))
                || (part.len() >= 2
                    && part.starts_with('`')
                    && part.ends_with('`')
                    && !part[1..part.len() - 1].contains('`'));
        quoted
            || (part
                .chars()
                .next()
                .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
                && part
                    .chars()
                    .all(|character| character.is_ascii_alphanumeric() || character == '_' || character == '$'))
    };
    let name = match schema {
        Some(schema) if !table.contains('.') => format!("{schema}.{table}"),
        _ => table.to_string(),
    };
    if name.split('.').count() > 2 || !name.split('.').all(plain) {
        bail!(
            "data node {}: '{name}' is not a plain table name; use selectQuery / insertQuery for anything else",
            node.id
        );
    }
    Ok(name)
}

/// A column name for SQL: as given when plain, else refused.
fn column_name(name: &str) -> anyhow::Result<&str> {
    if name
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || character == '_')
    {
        Ok(name)
    } else {
        bail!("'{name}' is not a plain column name")
    }
}

/// A name PostgreSQL reported, quoted.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[derive(Debug, Clone)]
pub struct TableNode {
    pub id: String,
    pub kind: String,
    pub table: Option<String>,
    select_query: Option<String>,
    insert_query: Option<String>,
    create_table_sql: Option<String>,
    pub primary_keys: Vec<String>,
    url: String,
    /// The database without credentials, for messages.
    pub description: String,
}

impl TableNode {
    pub fn from_task(task: &Task, node: &Object) -> anyhow::Result<TableNode> {
        let kind = node.string("type").unwrap_or_default().to_string();
        // SqlDataNode and RedshiftDataNode name a database object; MySqlDataNode may carry its
        // connection itself.
        let database = match node.refs("database").next() {
            Some(id) => task.objects.get(id).with_context(|| {
                format!(
                    "data node {}: the task does not carry its database {id}",
                    node.component_id()
                )
            })?,
            None => node,
        };
        let (url, description) = database_url(database)?;
        if kind == "RedshiftDataNode" && !url.starts_with("postgres://") {
            bail!(
                "data node {}: a RedshiftDataNode needs a Redshift or PostgreSQL database",
                node.component_id()
            );
        }
        let table_field = if kind == "RedshiftDataNode" {
            "tableName"
        } else {
            "table"
        };
        let table = node
            .string(table_field)
            .map(|table| table_name(node, node.string("schemaName"), table))
            .transpose()?;
        let primary_keys = node
            .strings("primaryKeys")
            .flat_map(|keys| keys.split(','))
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .map(|key| column_name(key).map(str::to_string))
            .collect::<anyhow::Result<_>>()
            .with_context(|| format!("data node {}: primaryKeys", node.component_id()))?;
        Ok(TableNode {
            id: node.component_id().to_string(),
            kind,
            table,
            select_query: node.string("selectQuery").map(str::to_string),
            insert_query: node.string("insertQuery").map(str::to_string),
            create_table_sql: node.string("createTableSql").map(str::to_string),
            primary_keys,
            url,
            description,
        })
    }

    /// Where the node's data is, for messages: the table (or query) and the database.
    pub fn describe(&self) -> String {
        match &self.table {
            Some(table) => format!("table {table} on {}", self.description),
            None => format!("{} on {}", self.id, self.description),
        }
    }

    fn required_table(&self) -> anyhow::Result<&str> {
        self.table
            .as_deref()
            .with_context(|| format!("data node {} names no table", self.id))
    }

    pub async fn connect(&self) -> anyhow::Result<Database> {
        let failed =
            |error: sqlx::Error| anyhow::anyhow!("cannot connect to {}: {}", self.description, describe(&error));
        let connection = async {
            if self.url.starts_with("postgres://") {
                sqlx::PgConnection::connect(&self.url).await.map(Database::Postgres)
            } else {
                sqlx::MySqlConnection::connect(&self.url).await.map(Database::MySql)
            }
        };
        tokio::time::timeout(CONNECT_TIMEOUT, connection)
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "no connection to {} within {} seconds",
                    self.description,
                    CONNECT_TIMEOUT.as_secs()
                )
            })?
            .map_err(failed)
    }
}

pub enum Database {
    Postgres(sqlx::PgConnection),
    MySql(sqlx::MySqlConnection),
}

/// `?` placeholders outside quotes become PostgreSQL's `$n`. Returns the statement and the
/// number of placeholders.
fn numbered_placeholders(statement: &str) -> (String, usize) {
    let mut output = String::with_capacity(statement.len() + 8);
    let mut count = 0;
    let mut quote: Option<char> = None;
    for character in statement.chars() {
        match (quote, character) {
            (Some(open), _) if character == open => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(character),
            (None, '?') => {
                count += 1;
                output.push_str(&format!("${count}"));
                continue;
            }
            _ => {}
        }
        output.push(character);
    }
    (output, count)
}

/// What a Hive-style column type (`column` of a data format) is in PostgreSQL.
fn postgres_type(kind: Option<&str>) -> anyhow::Result<String> {
    let Some(kind) = kind else {
        return Ok("text".into());
    };
    let upper = kind.to_ascii_uppercase();
    Ok(match upper.as_str() {
        "STRING" => "text".into(),
        "INT" | "INTEGER" => "integer".into(),
        "TINYINT" | "SMALLINT" => "smallint".into(),
        "BIGINT" => "bigint".into(),
        "DOUBLE" => "double precision".into(),
        "FLOAT" => "real".into(),
        _ if kind
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || " _(),".contains(character)) =>
        {
            kind.to_string()
        }
        _ => bail!("'{kind}' is not a column type Sluice can use"),
    })
}

fn database_error(error: sqlx::Error, during: &str, on: &str) -> anyhow::Error {
    anyhow::anyhow!("{during} failed on {on}: {}", describe(&error))
}

impl Database {
    async fn execute(&mut self, statement: &str, on: &str) -> anyhow::Result<u64> {
        let statement = sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_string()));
        let result = match self {
            Database::Postgres(connection) => statement.execute(connection).await.map(|done| done.rows_affected()),
            Database::MySql(connection) => statement.execute(connection).await.map(|done| done.rows_affected()),
        };
        result.map_err(|error| anyhow::anyhow!("a statement failed on {on}: {}", describe(&error)))
    }

    pub async fn close(self) {
        let _ = match self {
            Database::Postgres(connection) => connection.close().await,
            Database::MySql(connection) => connection.close().await,
        };
    }

    /// The primary key columns of a PostgreSQL table, in key order.
    async fn primary_key(&mut self, table: &str, on: &str) -> anyhow::Result<Vec<String>> {
        let Database::Postgres(connection) = self else {
            return Ok(Vec::new());
        };
        sqlx::query_scalar(
            "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = CAST($1 AS regclass) AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)",
        )
        .bind(table.replace('"', ""))
        .fetch_all(connection)
        .await
        .map_err(|error| database_error(error, "reading the primary key", on))
    }

    async fn table_exists(&mut self, table: &str) -> anyhow::Result<bool> {
        let bare = table.replace(['"', '`'], "");
        let exists = match self {
            Database::Postgres(connection) => {
                sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
                    .bind(bare)
                    .fetch_one(connection)
                    .await
            }
            Database::MySql(connection) => {
                let (schema, name) = match bare.split_once('.') {
                    Some((schema, name)) => (Some(schema.to_string()), name.to_string()),
                    None => (None, bare),
                };
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ?",
                )
                .bind(schema)
                .bind(name)
                .fetch_one(connection)
                .await
                .map(|count| count > 0)
            }
        };
        exists.map_err(|error| anyhow::anyhow!("cannot look up table {table}: {}", describe(&error)))
    }

    /// Runs the node's `createTableSql` when its table does not exist yet.
    pub async fn ensure_table(&mut self, node: &TableNode) -> anyhow::Result<()> {
        let table = node.required_table()?;
        if self.table_exists(table).await? {
            return Ok(());
        }
        match &node.create_table_sql {
            Some(create) => {
                self.execute(create, &node.describe()).await?;
                Ok(())
            }
            None => bail!(
                "table {table} does not exist on {} and data node {} has no createTableSql",
                node.description,
                node.id
            ),
        }
    }

    /// Streams the node's rows, as text, to `sink` in batches. Returns the rows read.
    pub async fn read(&mut self, node: &TableNode, sink: &mpsc::Sender<Vec<Record>>) -> anyhow::Result<u64> {
        let query = match (&node.select_query, &node.table) {
            (Some(query), _) => query.clone(),
            (None, Some(table)) => format!("SELECT * FROM {table}"),
            (None, None) => bail!("data node {} has neither selectQuery nor table", node.id),
        };
        let on = node.describe();
        let statement = sqlx::raw_sql(sqlx::AssertSqlSafe(query));
        let mut count = 0;
        let mut batch = Vec::with_capacity(BATCH_RECORDS);
        // The simple-query (text) protocol: every value arrives as text, whatever its type.
        macro_rules! drain {
            ($rows:expr) => {{
                let mut rows = $rows;
                while let Some(row) = rows
                    .try_next()
                    .await
                    .map_err(|error| database_error(error, "the select", &on))?
                {
                    let record = (0..row.len())
                        .map(|index| {
                            row.try_get_unchecked::<Option<String>, _>(index)
                                .map_err(|error| {
                                    anyhow::anyhow!(
                                        "column {} of {on} is not text-convertible: {error}",
                                        row.columns()[index].name()
                                    )
                                })
                        })
                        .collect::<anyhow::Result<Record>>()?;
                    batch.push(record);
                    count += 1;
                    if batch.len() == BATCH_RECORDS && sink.send(std::mem::take(&mut batch)).await.is_err() {
                        bail!("the copy's writing end stopped");
                    }
                }
            }};
        }
        match self {
            Database::Postgres(connection) => drain!(statement.fetch(connection)),
            Database::MySql(connection) => drain!(statement.fetch(connection)),
        }
        if !batch.is_empty() && sink.send(batch).await.is_err() {
            bail!("the copy's writing end stopped");
        }
        Ok(count)
    }

    /// Writes every record from `source` into the node's table (created with createTableSql
    /// if missing) in one transaction. `columns` name the fields when the data format lists
    /// them. Returns the rows written.
    pub async fn write(
        &mut self,
        node: &TableNode,
        columns: &[Column],
        source: &mut mpsc::Receiver<Vec<Record>>,
    ) -> anyhow::Result<u64> {
        let on = node.describe();
        if node.table.is_some() {
            self.ensure_table(node).await?;
        }
        self.execute("BEGIN", &on).await?;
        let written = match &node.insert_query {
            Some(insert) => self.insert_each(insert, source, &on).await?,
            None => {
                let table = node.required_table()?;
                let names = columns
                    .iter()
                    .map(|column| column_name(&column.name))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                self.insert_all(table, &names, source, &on).await?
            }
        };
        self.execute("COMMIT", &on).await?;
        Ok(written)
    }

    /// The fastest way in: COPY on PostgreSQL, multi-row INSERTs on MySQL.
    async fn insert_all(
        &mut self,
        table: &str,
        names: &[&str],
        source: &mut mpsc::Receiver<Vec<Record>>,
        on: &str,
    ) -> anyhow::Result<u64> {
        let column_list = if names.is_empty() {
            String::new()
        } else {
            format!(" ({})", names.join(", "))
        };
        match self {
            Database::Postgres(connection) => {
                let mut copy = connection
                    .copy_in_raw(&format!(
                        "COPY {table}{column_list} FROM STDIN WITH (FORMAT csv, NULL '\\N')"
                    ))
                    .await
                    .map_err(|error| database_error(error, "COPY", on))?;
                let mut buffer = Vec::new();
                loop {
                    let batch = match next_batch(source).await {
                        Ok(Some(batch)) => batch,
                        Ok(None) => break,
                        Err(error) => {
                            let _ = copy.abort("sluice: the copy's input failed").await;
                            return Err(error);
                        }
                    };
                    buffer.clear();
                    postgres_csv(&batch, &mut buffer);
                    if let Err(error) = copy.send(buffer.as_slice()).await {
                        let _ = copy.abort("sluice: the copy failed").await;
                        return Err(database_error(error, "COPY", on));
                    }
                }
                copy.finish().await.map_err(|error| database_error(error, "COPY", on))
            }
            Database::MySql(connection) => {
                let mut written = 0;
                while let Some(batch) = next_batch(source).await? {
                    // At most 60,000 bound values per statement (the protocol allows 65,535).
                    let width = batch.iter().map(Vec::len).max().unwrap_or(1).max(1);
                    for chunk in batch.chunks((60_000 / width).max(1)) {
                        let mut builder =
                            sqlx::QueryBuilder::<sqlx::MySql>::new(format!("INSERT INTO {table}{column_list} "));
                        builder.push_values(chunk, |mut row, record| {
                            for field in record {
                                row.push_bind(field.clone());
                            }
                        });
                        written += builder
                            .build()
                            .execute(&mut *connection)
                            .await
                            .map_err(|error| database_error(error, "INSERT", on))?
                            .rows_affected();
                    }
                }
                Ok(written)
            }
        }
    }

    /// The node's `insertQuery` once per record, the record's fields bound to its `?`s.
    async fn insert_each(
        &mut self,
        insert: &str,
        source: &mut mpsc::Receiver<Vec<Record>>,
        on: &str,
    ) -> anyhow::Result<u64> {
        let mut written = 0;
        let mut number = 0;
        // Each record through the statement, its fields bound in order.
        macro_rules! each_record {
            ($connection:expr, $statement:expr, $count:expr) => {{
                while let Some(batch) = next_batch(source).await? {
                    for record in batch {
                        number += 1;
                        if record.len() != $count {
                            bail!(
                                "record {number} has {} field(s); the insertQuery takes {}",
                                record.len(),
                                $count
                            );
                        }
                        let mut query = sqlx::query(sqlx::AssertSqlSafe($statement.clone()));
                        for field in record {
                            query = query.bind(field);
                        }
                        written += query
                            .execute(&mut *$connection)
                            .await
                            .map_err(|error| database_error(error, &format!("the insertQuery (record {number})"), on))?
                            .rows_affected();
                    }
                }
            }};
        }
        match self {
            Database::Postgres(connection) => {
                // Fields travel as text; PostgreSQL says what each placeholder must be, and
                // each is cast to that (text converts to any type explicitly).
                let (numbered, count) = numbered_placeholders(insert);
                let described = (&mut *connection)
                    .describe(sqlx::AssertSqlSafe(numbered.clone()).into_sql_str())
                    .await
                    .map_err(|error| database_error(error, "the insertQuery", on))?;
                let types: Vec<String> = match described.parameters() {
                    Some(sqlx::Either::Left(types)) => types.iter().map(|kind| kind.name().to_string()).collect(),
                    _ => vec!["text".to_string(); count],
                };
                let mut statement = numbered;
                for (index, kind) in types.iter().enumerate().rev() {
                    let placeholder = format!("${}", index + 1);
                    statement =
                        replace_placeholder(&statement, &placeholder, &format!("CAST({placeholder} AS {kind})"));
                }
                each_record!(connection, statement, count);
            }
            Database::MySql(connection) => {
                let count = numbered_placeholders(insert).1;
                each_record!(connection, insert.to_string(), count);
            }
        }
        Ok(written)
    }
}

/// Replaces `$n` (not `$n0`...) outside quotes.
fn replace_placeholder(statement: &str, placeholder: &str, replacement: &str) -> String {
    let mut output = String::with_capacity(statement.len() + replacement.len());
    let mut rest = statement;
    while let Some(position) = rest.find(placeholder) {
        let after = &rest[position + placeholder.len()..];
        output.push_str(&rest[..position]);
        if after.starts_with(|character: char| character.is_ascii_digit()) {
            output.push_str(placeholder);
        } else {
            output.push_str(replacement);
        }
        rest = after;
    }
    output.push_str(rest);
    output
}

/// RedshiftCopyActivity's `insertMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertMode {
    KeepExisting,
    OverwriteExisting,
    Truncate,
    Append,
}

impl InsertMode {
    pub fn name(self) -> &'static str {
        match self {
            InsertMode::KeepExisting => "KEEP_EXISTING",
            InsertMode::OverwriteExisting => "OVERWRITE_EXISTING",
            InsertMode::Truncate => "TRUNCATE",
            InsertMode::Append => "APPEND",
        }
    }

    pub fn parse(text: &str) -> anyhow::Result<InsertMode> {
        Ok(match text.to_ascii_uppercase().as_str() {
            "KEEP_EXISTING" => InsertMode::KeepExisting,
            "OVERWRITE_EXISTING" => InsertMode::OverwriteExisting,
            "TRUNCATE" => InsertMode::Truncate,
            "APPEND" => InsertMode::Append,
            other => bail!("insertMode '{other}' is not KEEP_EXISTING, OVERWRITE_EXISTING, TRUNCATE or APPEND"),
        })
    }
}

/// What a load did.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadSummary {
    pub staged: u64,
    pub removed: u64,
    pub inserted: u64,
}

/// RedshiftCopyActivity on PostgreSQL: the records go into a temporary table `staging` (the
/// input's declared columns, else the target's), `transformSql` runs against it, and the
/// result reaches the target by `mode` — all in one transaction.
pub async fn load(
    database: &mut Database,
    target: &TableNode,
    staging_columns: &[Column],
    transform_sql: Option<&str>,
    mode: InsertMode,
    source: &mut mpsc::Receiver<Vec<Record>>,
) -> anyhow::Result<LoadSummary> {
    let on = target.describe();
    let table = target.required_table()?.to_string();
    database.ensure_table(target).await?;
    if !matches!(database, Database::Postgres(_)) {
        bail!("RedshiftCopyActivity loads into Redshift or PostgreSQL only");
    }
    let keys = match (mode, target.primary_keys.is_empty()) {
        (InsertMode::KeepExisting | InsertMode::OverwriteExisting, true) => {
            let found = database.primary_key(&table, &on).await?;
            if found.is_empty() {
                bail!(
                    "insertMode {} needs a primary key: table {table} has none and data node {} lists no primaryKeys",
                    mode.name(),
                    target.id
                );
            }
            found.iter().map(|key| quote(key)).collect()
        }
        _ => target.primary_keys.clone(),
    };
    load_in_transaction(
        database,
        &table,
        staging_columns,
        transform_sql,
        mode,
        &keys,
        source,
        &on,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn load_in_transaction(
    database: &mut Database,
    table: &str,
    staging_columns: &[Column],
    transform_sql: Option<&str>,
    mode: InsertMode,
    keys: &[String],
    source: &mut mpsc::Receiver<Vec<Record>>,
    on: &str,
) -> anyhow::Result<LoadSummary> {
    let mut summary = LoadSummary::default();
    database.execute("BEGIN", on).await?;
    let create = if staging_columns.is_empty() {
        format!("CREATE TEMPORARY TABLE staging (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
    } else {
        let columns = staging_columns
            .iter()
            .map(|column| {
                Ok(format!(
                    "{} {}",
                    column_name(&column.name)?,
                    postgres_type(column.kind.as_deref())?
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        format!("CREATE TEMPORARY TABLE staging ({}) ON COMMIT DROP", columns.join(", "))
    };
    database.execute(&create, on).await?;
    summary.staged = database.insert_all("staging", &[], source, on).await?;
    let from = match transform_sql {
        Some(transform) => {
            database
                .execute(
                    &format!("CREATE TEMPORARY TABLE sluice_transformed ON COMMIT DROP AS {transform}"),
                    on,
                )
                .await
                .context("transformSql")?;
            "sluice_transformed"
        }
        None => "staging",
    };
    let matches = keys
        .iter()
        .map(|key| format!("t.{key} = s.{key}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    match mode {
        InsertMode::Truncate => {
            summary.removed = database.execute(&format!("DELETE FROM {table}"), on).await?;
        }
        InsertMode::OverwriteExisting => {
            summary.removed = database
                .execute(&format!("DELETE FROM {table} t USING {from} s WHERE {matches}"), on)
                .await?;
        }
        InsertMode::KeepExisting | InsertMode::Append => {}
    }
    let insert = if mode == InsertMode::KeepExisting {
        format!(
            "INSERT INTO {table} SELECT s.* FROM {from} s WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {matches})"
        )
    } else {
        format!("INSERT INTO {table} SELECT * FROM {from}")
    };
    summary.inserted = database.execute(&insert, on).await?;
    database.execute("COMMIT", on).await?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(
            numbered_placeholders("INSERT INTO t VALUES (?, '?', \"a?\", ?)"),
            ("INSERT INTO t VALUES ($1, '?', \"a?\", $2)".to_string(), 2)
        );
        assert_eq!(
            replace_placeholder("VALUES ($1, $10)", "$1", "CAST($1 AS int4)"),
            "VALUES (CAST($1 AS int4), $10)"
        );
    }

    #[test]
    fn table_names_must_be_plain() {
        let node = Object {
            id: "Node".into(),
            fields: Vec::new(),
        };
        assert_eq!(
            table_name(&node, Some("sales"), "orders").expect("plain"),
            "sales.orders"
        );
        assert_eq!(table_name(&node, None, "\"Odd Name\"").expect("quoted"), "\"Odd Name\"");
        assert!(table_name(&node, None, "orders; DROP TABLE x").is_err());
        assert!(table_name(&node, None, "a.b.c").is_err());
        assert_eq!(postgres_type(Some("STRING")).expect("type"), "text");
        assert_eq!(postgres_type(Some("numeric(10,2)")).expect("type"), "numeric(10,2)");
        assert!(postgres_type(Some("int; drop")).is_err());
    }
}
