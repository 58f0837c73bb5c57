//! SnsAlarm: the notification an action sends, written to an outbox in the transaction that
//! fired it (subject and message evaluated for the instance as `node`, then sealed with the
//! pipeline's data key), and delivered afterwards to the webhook configured for its topic, with
//! retries. A webhook gets an SNS-shaped JSON body.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::NaiveDateTime;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::json;
use sluice_core::PipelineDefinition;
use sluice_core::expression::{ComponentScope, Scope, Value};
use sluice_core::runtime::State;
use sluice_store::{NotificationRecord, Transaction};
use sluice_wire::ApiError;

use crate::api::AppState;
use crate::handlers::{crypto_error, pipeline_data_key, store_error};
use crate::scheduler::render_naive;

/// Tries before a notification is given up (about 17 hours of back-off in all).
const MAX_ATTEMPTS: i64 = 16;
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// The pseudo-object an action's `#{node.…}` refers to.
const NODE: &str = "@node";

fn context(pipeline_id: &str, notification_id: &str) -> String {
    format!("pipeline/{pipeline_id}/notification/{notification_id}")
}

/// Evaluates an SnsAlarm for an instance and puts it in the outbox.
pub async fn enqueue(
    app: &AppState,
    tx: &mut dyn Transaction,
    pipeline_id: &str,
    definition: &PipelineDefinition,
    state: &State,
    action: &str,
    instance_id: &str,
) -> Result<(), ApiError> {
    let Some(scope) = ComponentScope::new(definition, pipeline_id, action) else {
        return Ok(());
    };
    let mut runtime = HashMap::new();
    runtime.insert("node".to_string(), Value::Ref(NODE.to_string()));
    if let Some(instance) = state.instance(instance_id) {
        let mut node = |name: &str, value: Value| {
            runtime.insert(format!("{NODE}.{name}"), value);
        };
        node("name", Value::String(instance.component.clone()));
        node("id", Value::String(instance.id.clone()));
        node("@id", Value::String(instance.id.clone()));
        node("@pipelineId", Value::String(pipeline_id.to_string()));
        node("@status", Value::String(instance.status.as_str().to_string()));
        node("@scheduledStartTime", Value::DateTime(instance.scheduled_start));
        node("@scheduledEndTime", Value::DateTime(instance.scheduled_end));
        if let Some(time) = instance.actual_start {
            node("@actualStartTime", Value::DateTime(time));
        }
        if let Some(time) = instance.actual_end {
            node("@actualEndTime", Value::DateTime(time));
        }
        if let Some(reason) = &instance.reason {
            node("errorMessage", Value::String(reason.clone()));
        }
    }
    let scope = scope.with_runtime(runtime);
    let text = |name: &str| -> String {
        match scope.resolve(name) {
            Some(Value::List(values)) => values.first().map(Value::render).unwrap_or_default(),
            Some(value) => value.render(),
            None => String::new(),
        }
    };
    let topic_arn = text("topicArn");
    let body = json!({ "subject": text("subject"), "message": text("message") });
    let notification_id = uuid::Uuid::now_v7().to_string();
    let data_key = pipeline_data_key(app, tx, pipeline_id).await?;
    let sealed = app
        .cipher
        .seal_with_data_key(
            &data_key,
            pipeline_id,
            &context(pipeline_id, &notification_id),
            body.to_string().as_bytes(),
        )
        .map_err(crypto_error)?;
    let now = render_naive(crate::scheduler::now(app));
    tx.insert_notification(&NotificationRecord {
        notification_id,
        pipeline_id: pipeline_id.to_string(),
        topic_arn,
        sealed,
        created_at: now.clone(),
        attempts: 0,
        next_attempt_at: now,
    })
    .await
    .map_err(store_error)
}

/// Delivers what is due; each notification's outcome is written in its own transaction.
pub async fn deliver_due(app: &AppState, now: NaiveDateTime) {
    let due = async {
        let mut tx = app.store.begin().await?;
        tx.due_notifications(&render_naive(now), MAX_ATTEMPTS, 20).await
    }
    .await;
    let due = match due {
        Ok(due) => due,
        Err(error) => {
            tracing::error!(%error, "cannot read the notification outbox");
            return;
        }
    };
    for notification in due {
        // Another server may have taken the lease while this batch ran: it delivers the rest.
        if !app.scheduler.is_leader() {
            return;
        }
        let result = deliver(app, &notification).await;
        let now_text = render_naive(now);
        let (delivered, error, next) = match &result {
            Ok(()) => (Some(now_text.as_str()), None, now_text.clone()),
            Err(error) => {
                let delay = chrono::Duration::seconds(1_i64 << notification.attempts.clamp(0, 12));
                (None, Some(format!("{error:#}")), render_naive(now + delay))
            }
        };
        match &result {
            Ok(()) => {
                tracing::info!(notification = %notification.notification_id, topic = %notification.topic_arn, "notification delivered")
            }
            Err(error) => {
                tracing::warn!(notification = %notification.notification_id, topic = %notification.topic_arn, attempt = notification.attempts + 1, error = %format!("{error:#}"), "notification not delivered")
            }
        }
        let written = async {
            let mut tx = app.store.begin().await?;
            tx.update_notification(&notification.notification_id, delivered, error.as_deref(), &next)
                .await?;
            tx.commit().await
        }
        .await;
        if let Err(error) = written {
            tracing::error!(%error, "cannot record a notification's delivery");
        }
    }
}

async fn deliver(app: &AppState, notification: &NotificationRecord) -> anyhow::Result<()> {
    let Some(url) = app.scheduler.settings.webhooks.get(&notification.topic_arn) else {
        bail!("no webhook is configured for topic {}", notification.topic_arn);
    };
    let plain = {
        let mut tx = app.store.begin().await?;
        let wrapped = tx
            .data_key(&notification.pipeline_id)
            .await?
            .context("the pipeline and its data key are gone")?;
        let data_key = app.cipher.unwrap_data_key(&notification.pipeline_id, &wrapped)?;
        app.cipher.open_with_data_key(
            &data_key,
            &notification.pipeline_id,
            &context(&notification.pipeline_id, &notification.notification_id),
            &notification.sealed,
        )?
    };
    let content: serde_json::Value = serde_json::from_slice(&plain)?;
    let body = json!({
        "Type": "Notification",
        "MessageId": notification.notification_id,
        "TopicArn": notification.topic_arn,
        "Subject": content["subject"],
        "Message": content["message"],
        "Timestamp": format!("{}Z", notification.created_at),
    });
    tokio::time::timeout(POST_TIMEOUT, post_json(url, &body))
        .await
        .map_err(|_| anyhow::anyhow!("the webhook did not answer within {} seconds", POST_TIMEOUT.as_secs()))?
}

/// POSTs JSON over HTTPS (system roots), or plain HTTP to a loopback address.
async fn post_json(url: &str, body: &serde_json::Value) -> anyhow::Result<()> {
    let uri: http::Uri = url.parse().with_context(|| format!("'{url}' is not a URL"))?;
    let host = uri.host().context("the webhook URL has no host")?.to_string();
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") if matches!(host.as_str(), "127.0.0.1" | "localhost" | "[::1]") => false,
        _ => bail!("webhooks must be https:// (or http:// on loopback)"),
    };
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let path = uri.path_and_query().map_or("/", |path| path.as_str()).to_string();
    let request = hyper::Request::post(path)
        .header(
            "host",
            uri.authority().map_or(host.clone(), |authority| authority.to_string()),
        )
        .header("content-type", "application/json")
        .header("x-amz-sns-message-type", "Notification")
        .body(Full::new(bytes::Bytes::from(body.to_string())))?;
    let stream = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .with_context(|| format!("cannot connect to {host}:{port}"))?;
    let response = if https {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(certificate);
        }
        let config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
                .with_root_certificates(roots)
                .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(host.clone())?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, stream)
            .await
            .context("TLS handshake with the webhook failed")?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(connection);
        sender.send_request(request).await?
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        sender.send_request(request).await?
    };
    let status = response.status();
    let _ = response.into_body().collect().await;
    if !status.is_success() {
        bail!("the webhook answered HTTP {}", status.as_u16());
    }
    Ok(())
}
