//! Audit append throughput into the embedded store with durable commits (a benchmark, not a
//! test): records built and hash-chained exactly as the server does, committed in groups of
//! 1,000 (group commit), then one per transaction (the cost each API call pays).
//! `cargo bench -p sluice-server --bench audit_append`

use std::time::Instant;

use sluice_server::audit::{self, CallRecord, RequestContext};
use sluice_store::{SqliteStore, Store};
use sluice_wire::Operation;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let directory = tempfile::tempdir().expect("temporary directory");
        let store = SqliteStore::open(&directory.path().join("sluice.db"))
            .await
            .expect("store");
        let context = RequestContext {
            request_id: "5b5c2d4e-0000-4000-8000-000000000000".into(),
            source_ip: Some("127.0.0.1".into()),
            user_agent: Some("Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux lang/python#3.11.7".into()),
            host: Some("localhost:8443".into()),
            tls_version: Some("TLSv1.3".into()),
            cipher_suite: Some("TLS13_AES_256_GCM_SHA384".into()),
        };
        let request = br#"{"name":"nightly-orders","uniqueId":"9f1c","tags":[{"key":"team","value":"data"}]}"#;
        let response = r#"{"pipelineId":"df-0123456789ABCDEFGHIJ"}"#;
        let call = || CallRecord {
            context: &context,
            event_time: chrono::DateTime::from_timestamp(1_795_000_000, 0).expect("time"),
            account_id: "123456789012",
            region: "us-east-1",
            operation: Some(Operation::CreatePipeline),
            unknown_event_name: None,
            principal: None,
            claimed_access_key_id: Some("AKIAEXAMPLE000000000"),
            request_body: Some(request),
            response_body: Some(response),
            error: None,
        };

        let started = Instant::now();
        let n_built = 20_000;
        for _ in 0..n_built {
            std::hint::black_box(audit::build(&call()));
        }
        let elapsed = started.elapsed().as_secs_f64();
        println!("building records only: {:.0} records/s", n_built as f64 / elapsed);

        let (n_batches, batch) = (100, 1_000);
        let started = Instant::now();
        for _ in 0..n_batches {
            let mut tx = store.begin().await.expect("begin");
            let records = (0..batch).map(|_| audit::build(&call())).collect();
            audit::append_batch(tx.as_mut(), records).await.expect("append");
            tx.commit().await.expect("commit");
        }
        let elapsed = started.elapsed().as_secs_f64();
        let n_records = n_batches * batch;
        println!(
            "group commit ({batch} per transaction): {n_records} records in {elapsed:.2} s = {:.0} records/s",
            n_records as f64 / elapsed
        );

        let single = 2_000;
        {
            use sluice_store::IdentityRecord;
            let mut tx = store.begin().await.expect("begin");
            let root = IdentityRecord {
                identity_id: "1".into(),
                account_id: "1".into(),
                kind: "Root".into(),
                name: "root".into(),
                arn: "arn".into(),
            };
            tx.insert_identity(&root, "t").await.expect("identity");
            tx.insert_access_key("AKIA", "1", b"x", "t").await.expect("key");
            tx.commit().await.expect("commit");
        }
        let started = Instant::now();
        for _ in 0..single {
            let mut tx = store.begin().await.expect("begin");
            tx.touch_access_key("AKIA", "2026-01-01T00:00:00").await.expect("touch");
            tx.commit().await.expect("commit");
        }
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "baseline, a request's other write alone: {single} transactions in {elapsed:.2} s = {:.0}/s",
            single as f64 / elapsed
        );

        let started = Instant::now();
        for _ in 0..single {
            let mut tx = store.begin().await.expect("begin");
            let (record, row) = audit::build(&call());
            audit::append(tx.as_mut(), &record, row).await.expect("append");
            tx.commit().await.expect("commit");
        }
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "one record per transaction: {single} records in {elapsed:.2} s = {:.0} records/s",
            single as f64 / elapsed
        );
    });
}
