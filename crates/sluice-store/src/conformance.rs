//! The behaviour every backend must show, as a macro that expands to tests for one backend:
//! `store_conformance_suite!(async { SqliteStore::open(...).await })`.

/// Expands to a module of `#[tokio::test]`s run against the store the expression builds.
#[macro_export]
macro_rules! store_conformance_suite {
    ($name:ident, $make_store:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use sluice_core::{Field, PipelineDefinition, PipelineObject};
            use $crate::{
                AUDIT_GENESIS_HASH, AuditAttribute, AuditDigestRecord, AuditFileRecord, AuditQuery, AuditRecord,
                IdentityRecord, NewPipeline, Store, StoredDefinition, Tag,
            };

            fn new_pipeline(id: &str, name: &str, unique_id: &str) -> NewPipeline {
                NewPipeline {
                    pipeline_id: id.into(),
                    account_id: "000000000000".into(),
                    creator_identity_id: "root".into(),
                    name: name.into(),
                    unique_id: unique_id.into(),
                    description: None,
                    state: "PENDING".into(),
                    created_at: "2026-01-01T00:00:00".into(),
                }
            }

            async fn store_with_root() -> Box<dyn Store> {
                let store: Box<dyn Store> = Box::new($make_store.await);
                let mut tx = store.begin().await.expect("begin");
                let root = IdentityRecord {
                    identity_id: "root".into(),
                    account_id: "000000000000".into(),
                    kind: "Root".into(),
                    name: "root".into(),
                    arn: "arn:aws:iam::000000000000:root".into(),
                };
                tx.insert_identity(&root, "2026-01-01T00:00:00")
                    .await
                    .expect("identity");
                tx.insert_access_key("AKIAEXAMPLE", "root", b"sealed", "2026-01-01T00:00:00")
                    .await
                    .expect("key");
                tx.commit().await.expect("commit");
                store
            }

            #[tokio::test]
            async fn a_lease_has_one_holder_and_a_new_holder_gets_a_new_epoch() {
                let store = store_with_root().await;
                let mut tx = store.begin().await.expect("begin");
                let t = |seconds: u32| format!("2026-01-01T00:00:{seconds:02}");
                assert_eq!(tx.acquire_lease("scheduler", "a", &t(0), &t(10)).await.expect("lease"), Some(1));
                assert_eq!(tx.acquire_lease("scheduler", "b", &t(5), &t(15)).await.expect("lease"), None);
                assert_eq!(tx.acquire_lease("scheduler", "a", &t(5), &t(15)).await.expect("renew"), Some(1));
                assert!(tx.holds_lease("scheduler", "a", 1, &t(6)).await.expect("fence"));
                // Expired: another server takes over with the next epoch, and the old holder's
                // work is fenced off.
                assert_eq!(tx.acquire_lease("scheduler", "b", &t(16), &t(26)).await.expect("lease"), Some(2));
                assert!(!tx.holds_lease("scheduler", "a", 1, &t(17)).await.expect("fence"));
                assert!(tx.holds_lease("scheduler", "b", 2, &t(17)).await.expect("fence"));
                assert!(!tx.holds_lease("scheduler", "b", 2, &t(27)).await.expect("fence"), "expired");
                assert_eq!(tx.acquire_lease("scheduler", "a", &t(20), &t(30)).await.expect("lease"), None);
                assert_eq!(tx.acquire_lease("other", "a", &t(20), &t(30)).await.expect("lease"), Some(1));
                tx.commit().await.expect("commit");
            }

            #[tokio::test]
            async fn classification_jobs_are_due_once_and_held_by_one_server_at_a_time() {
                let store = store_with_root().await;
                let mut tx = store.begin().await.expect("begin");
                tx.insert_pipeline(&new_pipeline("df-C", "c", "u")).await.expect("insert");
                let job = |job_id: &str, status: &str, next_run_at: Option<&str>| $crate::ClassificationJobRecord {
                    job_id: job_id.into(),
                    account_id: "000000000000".into(),
                    pipeline_id: "df-C".into(),
                    name: job_id.into(),
                    job_type: "SCHEDULED".into(),
                    schedule: Some(r#"{"dailySchedule":{}}"#.into()),
                    status: status.into(),
                    created_at: format!("2026-01-01T00:00:0{}", job_id.len()),
                    next_run_at: next_run_at.map(str::to_string),
                    last_run_started_at: None,
                    last_run_finished_at: None,
                    runs: 0,
                    objects_scanned: 0,
                    bytes_scanned: 0,
                    findings: 0,
                    claimed_by: None,
                    claimed_until: None,
                    sealed_state: b"sealed".to_vec(),
                };
                tx.insert_classification_job(&job("due", "IDLE", Some("2026-01-02T00:00:00"))).await.expect("job");
                tx.insert_classification_job(&job("later", "IDLE", Some("2026-01-09T00:00:00"))).await.expect("job");
                tx.insert_classification_job(&job("paused", "USER_PAUSED", Some("2026-01-02T00:00:00"))).await.expect("job");
                tx.insert_classification_job(&job("running", "RUNNING", None)).await.expect("job");
                let now = "2026-01-02T00:00:05";
                let mut due = tx.due_classification_jobs(now, 10).await.expect("due");
                due.sort();
                assert_eq!(due, vec!["due".to_string(), "running".to_string()]);

                // One server takes the job; another cannot until the claim runs out.
                assert!(tx.claim_classification_job("due", "server-a", "2026-01-02T00:01:05", now).await.expect("claim"));
                assert!(!tx.claim_classification_job("due", "server-b", "2026-01-02T00:01:05", now).await.expect("claim"));
                assert!(tx.claim_classification_job("due", "server-a", "2026-01-02T00:02:05", now).await.expect("renew"));
                assert_eq!(tx.due_classification_jobs(now, 10).await.expect("due"), vec!["running".to_string()]);
                assert!(tx.claim_classification_job("due", "server-b", "2026-01-02T00:09:00", "2026-01-02T00:05:00").await.expect("expired"));

                let mut stored = tx.classification_job("due").await.expect("read").expect("there");
                assert_eq!(stored.claimed_by.as_deref(), Some("server-b"));
                stored.status = "RUNNING".into();
                stored.runs = 1;
                stored.objects_scanned = 3;
                stored.sealed_state = b"resealed".to_vec();
                tx.update_classification_job(&stored).await.expect("update");
                assert_eq!(tx.classification_job("due").await.expect("read"), Some(stored));
                assert_eq!(tx.classification_job("missing").await.expect("read"), None);

                // Newest first, by pipeline, in pages.
                let all = tx.classification_jobs("000000000000", Some("df-C"), None, 2).await.expect("list");
                let names: Vec<_> = all.iter().map(|job| job.job_id.as_str()).collect();
                assert_eq!(names, ["running", "paused"]);
                let last = all.last().expect("page");
                let rest = tx
                    .classification_jobs("000000000000", None, Some((&last.created_at, &last.job_id)), 10)
                    .await
                    .expect("list");
                let names: Vec<_> = rest.iter().map(|job| job.job_id.as_str()).collect();
                assert_eq!(names, ["later", "due"]);
                assert!(tx.classification_jobs("111111111111", None, None, 10).await.expect("list").is_empty());

                // A job paused or cancelled after it was found due is not taken.
                tx.insert_classification_job(&job("paused2", "USER_PAUSED", Some("2026-01-02T00:00:00"))).await.expect("job");
                assert!(!tx.claim_classification_job("paused2", "server-a", "2026-01-02T00:09:00", now).await.expect("claim"));
                assert!(!tx.claim_classification_job("later", "server-a", "2026-01-02T00:09:00", now).await.expect("claim"));

                // They go with their pipeline.
                tx.delete_pipeline("df-C", "2026-01-03T00:00:00").await.expect("delete");
                assert_eq!(tx.classification_job("due").await.expect("read"), None);
                tx.commit().await.expect("commit");
            }

            #[tokio::test]
            async fn runtime_state_round_trips_and_the_queue_hands_out_the_oldest_task() {
                use sluice_core::runtime::{self, Graph, PipelineState, PlannerConfig, Status, TaskOutcome};
                let store = store_with_root().await;
                let mut tx = store.begin().await.expect("begin");
                tx.insert_pipeline(&new_pipeline("df-R", "r", "u")).await.expect("insert");
                let definition = sluice_core::definition_file::parse(
                    r#"{"objects": [{"id": "Default", "workerGroup": "wg", "schedule": {"ref": "S"}, "maximumRetries": "1"},
                    {"id": "S", "type": "Schedule", "period": "1 hour", "startDateTime": "2026-01-01T00:00:00"},
                    {"id": "In", "type": "S3DataNode", "directoryPath": "s3://b/in"},
                    {"id": "A", "type": "ShellCommandActivity", "command": "x", "input": {"ref": "In"}}]}"#,
                )
                .expect("parses");
                let graph = Graph::build(&definition, "df-R", 5).expect("graph");
                let mut state = tx.runtime("df-R").await.expect("load").expect("exists");
                assert_eq!(state.pipeline.state, PipelineState::Pending);
                let now = sluice_core::values::parse_date_time("2026-01-01T02:30:00").expect("time");
                let config = PlannerConfig::default();
                runtime::activate(&graph, &mut state, now, None, None, config).expect("activate");
                runtime::advance(&graph, &mut state, now, config, &Default::default());
                let task = runtime::next_task(&state, "wg", now).expect("queued").id.clone();
                runtime::lease(&mut state, &task, "tok-1", Some("host"), now);
                runtime::finish_task(&mut state, "tok-1", TaskOutcome::Failed, now).expect("held");
                runtime::advance(&graph, &mut state, now, config, &Default::default());
                let changes = state.take_changes();
                assert!(!changes.is_empty());
                tx.save_runtime("df-R", &changes).await.expect("save");
                tx.commit().await.expect("commit");

                let mut tx = store.begin().await.expect("begin");
                let loaded = tx.runtime("df-R").await.expect("load").expect("exists");
                assert_eq!(loaded.pipeline, state.pipeline);
                let sorted = |state: &sluice_core::runtime::State| {
                    let mut instances = state.instances().to_vec();
                    instances.sort_by(|a, b| a.id.cmp(&b.id));
                    let mut attempts = state.attempts().to_vec();
                    attempts.sort_by(|a, b| a.id.cmp(&b.id));
                    (instances, attempts, state.components().to_vec())
                };
                assert_eq!(sorted(&loaded), sorted(&state), "what was saved is what loads");
                assert_eq!(loaded.instances().len(), 6, "3 intervals of In and A");
                assert_eq!(
                    tx.task_pipeline("tok-1").await.expect("task"),
                    Some("df-R".to_string())
                );
                // The retry waits 10 minutes; the two other intervals are available now.
                let (pipeline, attempt) = tx
                    .next_task("000000000000", "wg", "2026-01-01T02:30:00")
                    .await
                    .expect("query")
                    .expect("a task");
                assert_eq!(pipeline, "df-R");
                assert_eq!(attempt, "@A_2026-01-01T01:00:00_Attempt=1");
                assert_eq!(
                    tx.next_task("000000000000", "other", "2026-01-01T02:30:00")
                        .await
                        .expect("query"),
                    None
                );
                assert_eq!(
                    tx.next_task("999999999999", "wg", "2026-01-01T02:30:00")
                        .await
                        .expect("query"),
                    None,
                    "another account's runner gets nothing"
                );
                let retry = loaded.attempt("@A_2026-01-01T00:00:00_Attempt=2").expect("retry");
                assert_eq!((retry.status, retry.number), (Status::WaitingForRunner, 2));
                assert_eq!(
                    tx.due_pipelines("2026-01-01T02:59:59", 10).await.expect("due"),
                    Vec::<String>::new()
                );
                assert_eq!(
                    tx.due_pipelines("2026-01-01T03:00:00", 10).await.expect("due"),
                    vec!["df-R".to_string()]
                );
                tx.delete_pipeline("df-R", "2026-01-02T00:00:00").await.expect("delete");
                assert!(tx.runtime("df-R").await.expect("load").is_none());
                assert_eq!(
                    tx.next_task("000000000000", "wg", "2026-01-01T02:30:00")
                        .await
                        .expect("query"),
                    None
                );
            }

            #[tokio::test]
            async fn users_keys_policies_and_attachments() {
                use $crate::{PolicyRecord, UserRecord};
                let store = store_with_root().await;
                let mut tx = store.begin().await.expect("begin");
                let alice = UserRecord {
                    identity: IdentityRecord {
                        identity_id: "AIDAALICE".into(),
                        account_id: "000000000000".into(),
                        kind: "IAMUser".into(),
                        name: "alice".into(),
                        arn: "arn:aws:iam::000000000000:user/team/alice".into(),
                    },
                    path: "/team/".into(),
                    tags: vec![("workerGroup".into(), "etl".into())],
                    created_at: "2026-01-01T00:00:00".into(),
                };
                tx.insert_user(&alice).await.expect("user");
                tx.commit().await.expect("commit");
                // A second user of the same name in the account is refused by the store itself
                // (and a failed statement ends its transaction: PostgreSQL aborts it).
                let mut tx = store.begin().await.expect("begin");
                assert!(tx.insert_user(&UserRecord { identity: IdentityRecord { identity_id: "AIDAOTHER".into(), ..alice.identity.clone() }, ..alice.clone() }).await.is_err());
                drop(tx);
                let mut tx = store.begin().await.expect("begin");
                assert_eq!(tx.user("000000000000", "alice").await.expect("read"), Some(alice.clone()));
                assert_eq!(tx.users("000000000000").await.expect("list"), vec![alice.clone()]);
                assert!(tx.user("000000000000", "root").await.expect("read").is_none(), "root is no IAM user");
                tx.insert_access_key("AKIAALICE1", "AIDAALICE", b"sealed", "2026-01-02T00:00:00").await.expect("key");
                let keys = tx.access_keys_of("AIDAALICE").await.expect("keys");
                assert_eq!((keys.len(), keys[0].status.as_str()), (1, "Active"));
                assert!(tx.set_access_key_status("AKIAALICE1", "Inactive").await.expect("update"));
                assert_eq!(tx.access_key("AKIAALICE1").await.expect("read").expect("key").status, "Inactive");
                let policy = PolicyRecord {
                    policy_arn: "arn:aws:iam::000000000000:policy/readers".into(),
                    account_id: "000000000000".into(),
                    policy_name: "readers".into(),
                    policy_id: "ANPAREADERS".into(),
                    path: "/".into(),
                    document: "{}".into(),
                    description: None,
                    created_at: "2026-01-01T00:00:00".into(),
                };
                tx.insert_policy(&policy).await.expect("policy");
                tx.attach_policy("AIDAALICE", &policy.policy_arn).await.expect("attach");
                tx.attach_policy("AIDAALICE", &policy.policy_arn).await.expect("attach twice is one attachment");
                tx.attach_policy("AIDAALICE", "arn:aws:iam::aws:policy/AdministratorAccess").await.expect("attach");
                assert_eq!(tx.attachment_count(&policy.policy_arn).await.expect("count"), 1);
                assert_eq!(tx.attached_policies("AIDAALICE").await.expect("attached").len(), 2);
                assert_eq!(tx.policies("000000000000").await.expect("policies"), vec![policy.clone()]);
                assert!(tx.detach_policy("AIDAALICE", &policy.policy_arn).await.expect("detach"));
                assert!(!tx.detach_policy("AIDAALICE", &policy.policy_arn).await.expect("detach again"));
                tx.delete_policy(&policy.policy_arn).await.expect("delete");
                assert!(tx.policy(&policy.policy_arn).await.expect("read").is_none());
                let group = $crate::GroupRecord {
                    group_id: "AGPAOPS".into(),
                    account_id: "000000000000".into(),
                    group_name: "ops".into(),
                    path: "/".into(),
                    arn: "arn:aws:iam::000000000000:group/ops".into(),
                    created_at: "2026-01-01T00:00:00".into(),
                };
                tx.insert_group(&group).await.expect("group");
                tx.add_member("AGPAOPS", "AIDAALICE").await.expect("member");
                tx.add_member("AGPAOPS", "AIDAALICE").await.expect("member twice is once");
                tx.attach_group_policy("AGPAOPS", "arn:aws:iam::aws:policy/AdministratorAccess").await.expect("attach");
                assert_eq!(tx.groups_of("AIDAALICE").await.expect("groups"), vec![group.clone()]);
                assert_eq!(tx.members("AGPAOPS").await.expect("members").len(), 1);
                assert_eq!(tx.group("000000000000", "ops").await.expect("group"), Some(group.clone()));
                assert_eq!(tx.attachment_count("arn:aws:iam::aws:policy/AdministratorAccess").await.expect("count"), 2, "user and group attachments both count");
                assert!(tx.remove_member("AGPAOPS", "AIDAALICE").await.expect("remove"));
                assert!(tx.detach_group_policy("AGPAOPS", "arn:aws:iam::aws:policy/AdministratorAccess").await.expect("detach"));
                tx.delete_group("AGPAOPS").await.expect("delete group");
                assert!(tx.groups("000000000000").await.expect("groups").is_empty());
                assert!(tx.delete_access_key("AKIAALICE1").await.expect("delete key"));
                assert!(tx.detach_policy("AIDAALICE", "arn:aws:iam::aws:policy/AdministratorAccess").await.expect("detach"));
                tx.delete_identity("AIDAALICE").await.expect("delete user");
                tx.delete_identity("root").await.expect("a no-op for the root");
                assert!(tx.user("000000000000", "alice").await.expect("read").is_none());
                assert_eq!(tx.root_account_id().await.expect("root"), Some("000000000000".into()));
            }

            #[tokio::test]
            async fn sealed_mfa_seeds_are_listed_and_replaced_for_rewrap() {
                let store = store_with_root().await;
                let mut tx = store.begin().await.expect("begin");
                tx.insert_mfa_device(&$crate::MfaDeviceRecord {
                    serial_number: "arn:aws:iam::000000000000:mfa/a".into(),
                    account_id: "000000000000".into(),
                    identity_id: None,
                    sealed_seed: b"old".to_vec(),
                    last_step: 0,
                    enabled_at: None,
                    created_at: "2026-01-01T00:00:00".into(),
                })
                .await
                .expect("device");
                tx.commit().await.expect("commit");
                // A reader keeps the snapshot of its first read while a writer works beside it.
                let mut reader = store.begin_read().await.expect("begin_read");
                assert_eq!(reader.mfa_seeds().await.expect("seeds").len(), 1);
                let mut tx = store.begin().await.expect("a writer beside the reader");
                tx.replace_mfa_seed("arn:aws:iam::000000000000:mfa/a", b"new")
                    .await
                    .expect("replace");
                tx.commit().await.expect("commit");
                assert_eq!(
                    reader.mfa_seeds().await.expect("seeds"),
                    vec![("arn:aws:iam::000000000000:mfa/a".to_string(), b"old".to_vec())]
                );
                drop(reader);
                let mut tx = store.begin_read().await.expect("begin_read");
                assert_eq!(
                    tx.mfa_seeds().await.expect("seeds"),
                    vec![("arn:aws:iam::000000000000:mfa/a".to_string(), b"new".to_vec())]
                );
            }

            #[tokio::test]
            async fn a_transaction_dropped_without_commit_leaves_nothing() {
                let store = store_with_root().await;
                let mut tx = store.begin().await.expect("begin");
                tx.insert_pipeline(&new_pipeline("df-1", "a", "u"))
                    .await
                    .expect("insert");
                drop(tx);
                let mut tx = store.begin().await.expect("begin");
                assert!(tx.pipeline("df-1").await.expect("read").is_none());
            }

            #[tokio::test]
            async fn pipelines_are_found_listed_and_deleted_with_a_tombstone() {
                let store = store_with_root().await;
                let mut tx = store.begin().await.expect("begin");
                for index in 0..5 {
                    tx.insert_pipeline(&new_pipeline(&format!("df-{index}"), "n", &format!("u{index}")))
                        .await
                        .expect("insert");
                }
                assert_eq!(
                    tx.find_live_pipeline("root", "n", "u3")
                        .await
                        .expect("find")
                        .map(|p| p.pipeline_id),
                    Some("df-3".into())
                );
                let first = tx.list_pipelines("000000000000", 0, 2).await.expect("list");
                assert_eq!(
                    first.iter().map(|p| p.pipeline_id.as_str()).collect::<Vec<_>>(),
                    vec!["df-0", "df-1"]
                );
                let rest = tx
                    .list_pipelines("000000000000", first[1].seq, 10)
                    .await
                    .expect("list");
                assert_eq!(rest.len(), 3);
                tx.delete_pipeline("df-0", "2026-01-02T00:00:00")
                    .await
                    .expect("delete");
                assert_eq!(tx.count_live_pipelines("000000000000").await.expect("count"), 4);
                let tombstone = tx.pipeline("df-0").await.expect("read").expect("kept");
                assert_eq!(tombstone.deleted_at.as_deref(), Some("2026-01-02T00:00:00"));
                // The (name, uniqueId) pair is free again once its pipeline is deleted.
                tx.insert_pipeline(&new_pipeline("df-9", "n", "u0"))
                    .await
                    .expect("reuse");
                tx.commit().await.expect("commit");
            }

            #[tokio::test]
            async fn definitions_are_versioned_and_tags_keep_their_order() {
                let store = store_with_root().await;
                let mut tx = store.begin().await.expect("begin");
                tx.insert_pipeline(&new_pipeline("df-1", "n", "u"))
                    .await
                    .expect("insert");
                let definition = PipelineDefinition {
                    objects: vec![PipelineObject {
                        id: "A".into(),
                        name: "A".into(),
                        fields: vec![
                            Field::string("scriptArgument", "2"),
                            Field::string("scriptArgument", "1"),
                            Field::reference("schedule", "S"),
                        ],
                    }],
                    ..PipelineDefinition::default()
                };
                let record = StoredDefinition {
                    format_version: $crate::DEFINITION_FORMAT_PLAINTEXT,
                    body: $crate::encode_definition(&definition),
                    errored: false,
                };
                tx.put_definition("df-1", 1, &record, "t").await.expect("put");
                tx.put_definition("df-1", 2, &record, "t").await.expect("put");
                assert!(
                    tx.put_definition("df-1", 5, &record, "t").await.is_err(),
                    "only the next version may be written"
                );
                let stored = tx.definition("df-1", 2).await.expect("get").expect("present");
                assert_eq!(
                    $crate::decode_definition(&stored.body).expect("decodes"),
                    definition
                );
                assert_eq!(
                    tx.definition_versions().await.expect("versions"),
                    vec![("df-1".to_string(), 1, 1), ("df-1".to_string(), 2, 1)]
                );
                // A pipeline's data key goes with the pipeline (crypto-shredding).
                tx.insert_data_key("df-1", b"wrapped", "t")
                    .await
                    .expect("data key");
                assert_eq!(
                    tx.data_key("df-1").await.expect("read"),
                    Some(b"wrapped".to_vec())
                );
                tx.replace_data_key("df-1", b"rewrapped").await.expect("rewrap");
                assert_eq!(
                    tx.data_keys().await.expect("all"),
                    vec![("df-1".to_string(), b"rewrapped".to_vec())]
                );
                let tags = vec![
                    Tag {
                        key: "z".into(),
                        value: "1".into(),
                    },
                    Tag {
                        key: "a".into(),
                        value: "2".into(),
                    },
                ];
                tx.replace_tags("df-1", &tags).await.expect("tags");
                assert_eq!(tx.tags("df-1").await.expect("tags"), tags);
                assert!(tx.access_key("AKIAEXAMPLE").await.expect("key").is_some());
                tx.replace_access_key_secret("AKIAEXAMPLE", b"resealed")
                    .await
                    .expect("reseal");
                assert_eq!(
                    tx.access_key_secrets().await.expect("secrets"),
                    vec![("AKIAEXAMPLE".to_string(), b"resealed".to_vec())]
                );
                tx.delete_pipeline("df-1", "t").await.expect("delete");
                assert_eq!(tx.data_key("df-1").await.expect("read"), None);
                assert!(tx.definition("df-1", 1).await.expect("read").is_none());
                assert!(tx.access_key("AKIAOTHER").await.expect("key").is_none());
                tx.commit().await.expect("commit");
            }

            fn audit_record(seq: i64, previous_hash: &str, name: &str, time: &str) -> AuditRecord {
                AuditRecord {
                    seq,
                    event_id: format!("event-{seq}"),
                    event_time: time.into(),
                    event_name: name.into(),
                    event_source: "datapipeline.amazonaws.com".into(),
                    username: Some("root".into()),
                    access_key_id: Some("AKIAEXAMPLE".into()),
                    resource_name: Some(format!("df-{seq}")),
                    resource_type: Some("AWS::DataPipeline::Pipeline".into()),
                    read_only: name.starts_with("List"),
                    record: format!("{{\"n\":{seq}}}"),
                    previous_hash: previous_hash.into(),
                    hash: format!("hash-{seq}"),
                }
            }

            #[tokio::test]
            async fn the_audit_chain_is_appended_looked_up_and_pruned_to_an_anchor() {
                let store = store_with_root().await;
                let mut tx = store.begin().await.expect("begin");
                assert_eq!(
                    tx.last_audit_link().await.expect("link"),
                    (0, AUDIT_GENESIS_HASH.to_string())
                );
                let times = [
                    "2026-01-01T00:00:00Z",
                    "2026-01-02T00:00:00Z",
                    "2026-01-03T00:00:00Z",
                ];
                let mut previous = AUDIT_GENESIS_HASH.to_string();
                for (index, time) in times.iter().enumerate() {
                    let seq = index as i64 + 1;
                    let name = if seq == 2 {
                        "ListPipelines"
                    } else {
                        "CreatePipeline"
                    };
                    tx.append_audit(&audit_record(seq, &previous, name, time))
                        .await
                        .expect("append");
                    previous = format!("hash-{seq}");
                }
                assert_eq!(
                    tx.last_audit_link().await.expect("link"),
                    (3, "hash-3".to_string())
                );
                let query = |attribute: Option<(AuditAttribute, &str)>| AuditQuery {
                    attribute: attribute.map(|(key, value)| (key, value.to_string())),
                    limit: 10,
                    ..AuditQuery::default()
                };
                let names = tx
                    .lookup_audit(&query(Some((AuditAttribute::EventName, "CreatePipeline"))))
                    .await
                    .expect("lookup");
                assert_eq!(
                    names.iter().map(|record| record.seq).collect::<Vec<_>>(),
                    vec![3, 1]
                );
                let read_only = tx
                    .lookup_audit(&query(Some((AuditAttribute::ReadOnly, "true"))))
                    .await
                    .expect("lookup");
                assert_eq!(
                    read_only.iter().map(|record| record.seq).collect::<Vec<_>>(),
                    vec![2]
                );
                let ranged = AuditQuery {
                    start_time: Some(times[1].into()),
                    before_seq: Some(3),
                    limit: 10,
                    ..AuditQuery::default()
                };
                assert_eq!(
                    tx.lookup_audit(&ranged)
                        .await
                        .expect("lookup")
                        .iter()
                        .map(|record| record.seq)
                        .collect::<Vec<_>>(),
                    vec![2]
                );

                let file = AuditFileRecord {
                    file_id: 0,
                    object_key: "a.json.gz".into(),
                    first_seq: 1,
                    last_seq: 2,
                    sha256: "f".into(),
                    oldest_event_time: times[0].into(),
                    newest_event_time: times[1].into(),
                    digest_id: None,
                };
                tx.insert_audit_file(&file, "t").await.expect("file");
                assert_eq!(tx.last_delivered_seq().await.expect("delivered"), 2);
                // Nothing is pruned before a digest covers the file.
                assert!(
                    tx.prune_audit("2027-01-01T00:00:00Z")
                        .await
                        .expect("prune")
                        .is_empty()
                );
                let file_id = tx.audit_files().await.expect("files")[0].file_id;
                let digest = AuditDigestRecord {
                    digest_id: 0,
                    object_key: "d.json.gz".into(),
                    start_time: times[0].into(),
                    end_time: times[1].into(),
                    sha256: "d".into(),
                    signature: "s".into(),
                };
                tx.insert_audit_digest(&digest, &[file_id]).await.expect("digest");
                assert_eq!(
                    tx.prune_audit("2027-01-01T00:00:00Z").await.expect("prune"),
                    vec!["a.json.gz".to_string()]
                );
                assert_eq!(
                    tx.audit_anchor().await.expect("anchor"),
                    Some((2, "hash-2".to_string()))
                );
                assert_eq!(tx.audit_records_after(0, 10).await.expect("records").len(), 1);
                assert_eq!(
                    tx.last_audit_link().await.expect("link"),
                    (3, "hash-3".to_string())
                );
                assert_eq!(tx.last_delivered_seq().await.expect("delivered"), 2);
                tx.commit().await.expect("commit");
            }
        }
    };
}
