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
            use $crate::{DefinitionRecord, IdentityRecord, NewPipeline, Store, Tag};

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
                let record = DefinitionRecord {
                    definition: definition.clone(),
                    errored: false,
                };
                assert_eq!(tx.put_definition("df-1", &record, "t").await.expect("put"), 1);
                assert_eq!(tx.put_definition("df-1", &record, "t").await.expect("put"), 2);
                assert_eq!(
                    tx.definition("df-1", 2)
                        .await
                        .expect("get")
                        .expect("present")
                        .definition,
                    definition
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
                assert!(tx.access_key("AKIAOTHER").await.expect("key").is_none());
                tx.commit().await.expect("commit");
            }
        }
    };
}
