//! SqlActivity against PostgreSQL and MySQL/MariaDB (JdbcDatabase / RdsDatabase with a JDBC
//! URL), through sqlx: the script as it stands (several statements allowed), or one statement
//! with `scriptArgument` values bound to its `?` placeholders.

use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::{Connection, Executor};

use crate::execute::{ExecutionSettings, Outcome, record_outcome_logs};
use crate::storage::Location;
use crate::task::{Object, Task};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Percent-encodes a URL user or password.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// The sqlx URL of a database object, and a description of it without credentials.
pub fn database_url(database: &Object) -> anyhow::Result<(String, String)> {
    let jdbc = database
        .string("connectionString")
        .with_context(|| format!("database {} has no connectionString", database.id))?;
    let rest = jdbc.strip_prefix("jdbc:").unwrap_or(jdbc);
    // Redshift speaks PostgreSQL's protocol.
    let (scheme, address) = if let Some(address) = rest
        .strip_prefix("postgresql://")
        .or_else(|| rest.strip_prefix("redshift://"))
    {
        ("postgres", address)
    } else if let Some(address) = rest
        .strip_prefix("mysql://")
        .or_else(|| rest.strip_prefix("mariadb://"))
    {
        ("mysql", address)
    } else {
        let kind = rest.split(':').next().unwrap_or(rest);
        bail!(
            "database {}: '{kind}' databases are not supported yet (PostgreSQL, Redshift, MySQL and MariaDB are)",
            database.id
        );
    };
    if address.contains('@') {
        bail!(
            "database {}: the connectionString must not carry credentials; use username and *password",
            database.id
        );
    }
    let (host_and_path, query) = address.split_once('?').unwrap_or((address, ""));
    let (host, path) = host_and_path.split_once('/').unwrap_or((host_and_path, ""));
    let name = database.string("databaseName").unwrap_or(path);
    let user = database.string("username").unwrap_or("");
    let password = database.string("*password").unwrap_or("");
    let credentials = match (user.is_empty(), password.is_empty()) {
        (true, _) => String::new(),
        (false, true) => format!("{}@", encode(user)),
        (false, false) => format!("{}:{}@", encode(user), encode(password)),
    };
    let query = connection_parameters(scheme, host, query, database.strings("jdbcProperties"))
        .with_context(|| format!("database {}", database.id))?;
    let url = format!("{scheme}://{credentials}{host}/{name}?{query}");
    Ok((url, format!("{scheme}://{host}/{name}")))
}

/// The connection parameters sqlx takes, from the JDBC URL's query and `jdbcProperties`:
/// TLS settings under either driver's names (PostgreSQL's `sslmode`/`ssl`, MySQL Connector/J's
/// `sslMode`/`useSSL`/`requireSSL`), CA and client certificates; other JDBC tuning is dropped.
/// Without a TLS setting, a database off this machine is reached over TLS (`require`), one on
/// loopback as it allows (`prefer`). Credentials in parameters are refused.
fn connection_parameters<'a>(
    scheme: &str,
    host: &str,
    query: &'a str,
    properties: impl Iterator<Item = &'a str>,
) -> anyhow::Result<String> {
    let postgres = scheme == "postgres";
    let mut tls: Option<String> = None;
    let mut kept: Vec<String> = Vec::new();
    let pairs = query
        .split('&')
        .chain(properties.flat_map(|property| property.split(['&', ';'])))
        .filter(|pair| !pair.trim().is_empty());
    for pair in pairs {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (key.trim(), value.trim());
        let truthy = matches!(value.to_ascii_lowercase().as_str(), "true" | "1" | "yes");
        match key {
            "user" | "password" | "username" => {
                bail!("the connectionString must not carry credentials; use username and *password")
            }
            "sslmode" | "ssl-mode" | "sslMode" => tls = Some(value.to_string()),
            "ssl" | "useSSL" | "requireSSL" if truthy => tls = Some("require".into()),
            "ssl" | "useSSL" if !truthy => tls = Some("disable".into()),
            "sslrootcert" | "sslcert" | "sslkey" if postgres => kept.push(format!("{key}={value}")),
            "ssl-ca" | "ssl-cert" | "ssl-key" if !postgres => kept.push(format!("{key}={value}")),
            "serverSslCert" | "trustCertificateKeyStoreUrl" if !postgres => {
                kept.push(format!("ssl-ca={}", value.trim_start_matches("file:")));
            }
            "application_name" if postgres => kept.push(format!("{key}={value}")),
            "charset" | "timezone" if !postgres => kept.push(format!("{key}={value}")),
            _ => {}
        }
    }
    let loopback = {
        let name = host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.chars().all(|character| character.is_ascii_digit()) {
                name
            } else {
                host
            }
        });
        matches!(name, "localhost" | "127.0.0.1" | "[::1]" | "::1")
    };
    let mode = tls.unwrap_or_else(|| if loopback { "prefer" } else { "require" }.into());
    let mode = match (postgres, mode.to_ascii_lowercase().replace('_', "-").as_str()) {
        (true, "disable" | "disabled") => "disable",
        (true, "allow") => "allow",
        (true, "prefer" | "preferred") => "prefer",
        (true, "require" | "required") => "require",
        (true, "verify-ca") => "verify-ca",
        (true, "verify-full" | "verify-identity") => "verify-full",
        (false, "disable" | "disabled") => "DISABLED",
        (false, "prefer" | "preferred" | "allow") => "PREFERRED",
        (false, "require" | "required") => "REQUIRED",
        (false, "verify-ca") => "VERIFY_CA",
        (false, "verify-full" | "verify-identity") => "VERIFY_IDENTITY",
        (_, other) => bail!("'{other}' is not a TLS mode (disable, prefer, require, verify-ca, verify-full)"),
    };
    kept.insert(0, format!("{}={mode}", if postgres { "sslmode" } else { "ssl-mode" }));
    Ok(kept.join("&"))
}

pub async fn run_sql(task: &Task, settings: &ExecutionSettings) -> anyhow::Result<Outcome> {
    let result = run_script(task, settings).await;
    record_outcome_logs(task, settings, &result).await;
    result.map(|_| Outcome::finished())
}

async fn run_script(task: &Task, settings: &ExecutionSettings) -> anyhow::Result<String> {
    sqlx::any::install_default_drivers();
    let attempt = task.attempt();
    let Some(database) = task.referenced("database").first().copied() else {
        bail!("the SqlActivity has no database");
    };
    let script = match (attempt.string("script"), attempt.string("scriptUri")) {
        (Some(script), _) => script.to_string(),
        (None, Some(uri)) => {
            let bytes = Location::parse(uri, &settings.storage)?
                .read()
                .await
                .with_context(|| format!("cannot fetch the script {uri}"))?;
            String::from_utf8(bytes.to_vec()).context("the script is not UTF-8 text")?
        }
        (None, None) => bail!("the SqlActivity has neither 'script' nor 'scriptUri'"),
    };
    let arguments: Vec<&str> = attempt.strings("scriptArgument").collect();
    let (url, description) = database_url(database)?;
    let mut connection = tokio::time::timeout(CONNECT_TIMEOUT, sqlx::AnyConnection::connect(&url))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "no connection to {description} within {} seconds",
                CONNECT_TIMEOUT.as_secs()
            )
        })?
        .map_err(|error| anyhow::anyhow!("cannot connect to {description}: {}", describe(&error)))?;
    let affected = if arguments.is_empty() {
        connection
            .execute(sqlx::raw_sql(sqlx::AssertSqlSafe(script.clone())))
            .await
            .map_err(|error| anyhow::anyhow!("the script failed on {description}: {}", describe(&error)))?
            .rows_affected()
    } else {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(script.clone()));
        for argument in &arguments {
            query = query.bind(argument.to_string());
        }
        query
            .execute(&mut connection)
            .await
            .map_err(|error| anyhow::anyhow!("the statement failed on {description}: {}", describe(&error)))?
            .rows_affected()
    };
    let _ = connection.close().await;
    Ok(format!("ran the script on {description}: {affected} row(s) affected"))
}

/// A database error as the database said it, never the connection URL.
pub fn describe(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(database) => database.message().to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::FieldValue;

    fn database(fields: &[(&str, &str)]) -> Object {
        Object {
            id: "Db".into(),
            fields: fields
                .iter()
                .map(|(key, value)| (key.to_string(), FieldValue::String(value.to_string())))
                .collect(),
        }
    }

    #[test]
    fn jdbc_urls_become_sqlx_urls_without_leaking_the_password() {
        let (url, description) = database_url(&database(&[
            (
                "connectionString",
                "jdbc:postgresql://db.example:5432/sales?sslmode=require",
            ),
            ("username", "etl"),
            ("*password", "p@ss:w/rd"),
        ]))
        .expect("url");
        assert_eq!(
            url,
            "postgres://etl:p%40ss%3Aw%2Frd@db.example:5432/sales?sslmode=require"
        );
        // Off this machine TLS is required unless the connection says otherwise; JDBC's own
        // spellings are understood; credentials in parameters are refused.
        let url_of =
            |connection: &str| database_url(&database(&[("connectionString", connection)])).map(|(url, _)| url);
        assert_eq!(
            url_of("jdbc:postgresql://db.example/x?tcpKeepAlive=true").expect("url"),
            "postgres://db.example/x?sslmode=require"
        );
        assert_eq!(
            url_of("jdbc:postgresql://localhost:5432/x").expect("url"),
            "postgres://localhost:5432/x?sslmode=prefer"
        );
        assert_eq!(
            url_of("jdbc:mysql://db.example:3306/x?useSSL=false").expect("url"),
            "mysql://db.example:3306/x?ssl-mode=DISABLED"
        );
        assert_eq!(
            url_of("jdbc:mysql://db.example/x?sslMode=VERIFY_IDENTITY&serverSslCert=file:/ca.pem").expect("url"),
            "mysql://db.example/x?ssl-mode=VERIFY_IDENTITY&ssl-ca=/ca.pem"
        );
        assert!(url_of("jdbc:postgresql://db.example/x?password=hunter2").is_err());
        assert!(url_of("jdbc:postgresql://db.example/x?sslmode=sometimes").is_err());
        assert_eq!(description, "postgres://db.example:5432/sales");
        let (url, _) = database_url(&database(&[
            ("connectionString", "jdbc:mysql://127.0.0.1:3306/x"),
            ("username", "root"),
            ("databaseName", "test"),
        ]))
        .expect("url");
        assert_eq!(url, "mysql://root@127.0.0.1:3306/test?ssl-mode=PREFERRED");
        assert!(database_url(&database(&[("connectionString", "jdbc:oracle:thin:@h:1521:x")])).is_err());
        assert!(database_url(&database(&[("connectionString", "jdbc:mysql://u:p@h/x")])).is_err());
    }
}
