// The `Transaction` implementation shared by the backends (included by each: `Db`, `DbRow`,
// `Conn`, `q` and `dynamic` are the backend's).

pub(crate) struct SqlTransaction {
    pub(crate) tx: sqlx::Transaction<'static, Db>,
}

fn pipeline_from_row(row: &DbRow) -> Result<PipelineRecord> {
    Ok(PipelineRecord {
        seq: row.try_get("seq")?,
        pipeline_id: row.try_get("pipeline_id")?,
        account_id: row.try_get("account_id")?,
        creator_identity_id: row.try_get("creator_identity_id")?,
        name: row.try_get("name")?,
        unique_id: row.try_get("unique_id")?,
        description: row.try_get("description")?,
        state: row.try_get("state")?,
        created_at: row.try_get("created_at")?,
        deleted_at: row.try_get("deleted_at")?,
        latest_version: row.try_get("latest_version")?,
        active_version: row.try_get("active_version")?,
    })
}

/// sqlx 0.9 takes only static SQL, so the shared column list is spliced in at compile time.
macro_rules! select_pipelines {
    ($condition:literal) => {
        concat!(
            "SELECT seq, pipeline_id, account_id, creator_identity_id, name, unique_id, description, state, created_at, deleted_at, latest_version, active_version FROM pipelines WHERE ",
            $condition
        )
    };
}

macro_rules! select_audit {
    ($condition:literal) => {
        concat!(
            "SELECT seq, event_id, event_time, event_name, event_source, username, access_key_id, resource_name, resource_type, read_only, record, previous_hash, hash FROM audit_records WHERE ",
            $condition
        )
    };
}

fn audit_from_row(row: &DbRow) -> Result<AuditRecord> {
    Ok(AuditRecord {
        seq: row.try_get("seq")?,
        event_id: row.try_get("event_id")?,
        event_time: row.try_get("event_time")?,
        event_name: row.try_get("event_name")?,
        event_source: row.try_get("event_source")?,
        username: row.try_get("username")?,
        access_key_id: row.try_get("access_key_id")?,
        resource_name: row.try_get("resource_name")?,
        resource_type: row.try_get("resource_type")?,
        read_only: row.try_get("read_only")?,
        record: row.try_get("record")?,
        previous_hash: row.try_get("previous_hash")?,
        hash: row.try_get("hash")?,
    })
}

#[async_trait]
impl Transaction for SqlTransaction {
    async fn count_identities(&mut self) -> Result<i64> {
        Ok(sqlx::query_scalar(q("SELECT COUNT(*) FROM identities"))
            .fetch_one(&mut *self.tx)
            .await?)
    }

    async fn root_account_id(&mut self) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar(q("SELECT account_id FROM identities WHERE kind = 'Root' ORDER BY created_at LIMIT 1"))
                .fetch_optional(&mut *self.tx)
                .await?,
        )
    }

    async fn insert_identity(&mut self, identity: &IdentityRecord, created_at: &str) -> Result<()> {
        sqlx::query(
            q("INSERT INTO identities (identity_id, account_id, kind, name, arn, created_at) VALUES (?, ?, ?, ?, ?, ?)"),
        )
        .bind(&identity.identity_id)
        .bind(&identity.account_id)
        .bind(&identity.kind)
        .bind(&identity.name)
        .bind(&identity.arn)
        .bind(created_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn insert_access_key(
        &mut self,
        access_key_id: &str,
        identity_id: &str,
        sealed_secret: &[u8],
        created_at: &str,
    ) -> Result<()> {
        sqlx::query(q("INSERT INTO access_keys (access_key_id, identity_id, sealed_secret, status, created_at) VALUES (?, ?, ?, 'Active', ?)"))
            .bind(access_key_id)
            .bind(identity_id)
            .bind(sealed_secret)
            .bind(created_at)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn access_key(&mut self, access_key_id: &str) -> Result<Option<AccessKeyRecord>> {
        let row = sqlx::query(
            q("SELECT k.access_key_id, k.sealed_secret, k.status, k.session_token_hash, k.expires_at, k.mfa_at, k.parent_key_id, k.last_used_at,
                    k.task_pipeline_id, k.task_attempt_id, a.status AS attempt_status,
                    i.identity_id, i.account_id, i.kind, i.name, i.arn
             FROM access_keys k JOIN identities i ON i.identity_id = k.identity_id
             LEFT JOIN attempts a ON a.pipeline_id = k.task_pipeline_id AND a.attempt_id = k.task_attempt_id
             WHERE k.access_key_id = ?"),
        )
        .bind(access_key_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(AccessKeyRecord {
            access_key_id: row.try_get("access_key_id")?,
            last_used_at: row.try_get("last_used_at")?,
            sealed_secret: row.try_get("sealed_secret")?,
            status: row.try_get("status")?,
            session: match row.try_get::<Option<String>, _>("session_token_hash")? {
                Some(token_hash) => Some(crate::SessionFacts {
                    token_hash,
                    expires_at: row.try_get::<Option<String>, _>("expires_at")?.unwrap_or_default(),
                    mfa_at: row.try_get("mfa_at")?,
                    parent_key_id: row.try_get("parent_key_id")?,
                    task: match (
                        row.try_get::<Option<String>, _>("task_pipeline_id")?,
                        row.try_get::<Option<String>, _>("task_attempt_id")?,
                    ) {
                        (Some(pipeline_id), Some(attempt_id)) => Some(crate::TaskBinding {
                            pipeline_id,
                            attempt_id,
                            attempt_status: row.try_get("attempt_status")?,
                        }),
                        _ => None,
                    },
                }),
                None => None,
            },
            identity: IdentityRecord {
                identity_id: row.try_get("identity_id")?,
                account_id: row.try_get("account_id")?,
                kind: row.try_get("kind")?,
                name: row.try_get("name")?,
                arn: row.try_get("arn")?,
            },
        }))
    }

    async fn delete_access_keys_with_prefix(&mut self, prefix: &str) -> Result<u64> {
        let pattern = format!("{}%", prefix.replace(['%', '_'], ""));
        Ok(sqlx::query(q("DELETE FROM access_keys WHERE access_key_id LIKE ?"))
            .bind(pattern)
            .execute(&mut *self.tx)
            .await?
            .rows_affected())
    }

    async fn insert_user(&mut self, user: &UserRecord) -> Result<()> {
        iam::insert_user(&mut self.tx, user).await
    }

    async fn user(&mut self, account_id: &str, name: &str) -> Result<Option<UserRecord>> {
        iam::user(&mut self.tx, account_id, name).await
    }

    async fn users(&mut self, account_id: &str) -> Result<Vec<UserRecord>> {
        iam::users(&mut self.tx, account_id).await
    }

    async fn delete_identity(&mut self, identity_id: &str) -> Result<()> {
        iam::delete_identity(&mut self.tx, identity_id).await
    }

    async fn access_keys_of(&mut self, identity_id: &str) -> Result<Vec<AccessKeyMetadata>> {
        iam::access_keys_of(&mut self.tx, identity_id).await
    }

    async fn set_access_key_status(&mut self, access_key_id: &str, status: &str) -> Result<bool> {
        iam::set_access_key_status(&mut self.tx, access_key_id, status).await
    }

    async fn delete_access_key(&mut self, access_key_id: &str) -> Result<bool> {
        iam::delete_access_key(&mut self.tx, access_key_id).await
    }

    async fn insert_policy(&mut self, policy: &PolicyRecord) -> Result<()> {
        iam::insert_policy(&mut self.tx, policy).await
    }

    async fn policy(&mut self, policy_arn: &str) -> Result<Option<PolicyRecord>> {
        iam::policy_by_arn(&mut self.tx, policy_arn).await
    }

    async fn policies(&mut self, account_id: &str) -> Result<Vec<PolicyRecord>> {
        iam::policies(&mut self.tx, account_id).await
    }

    async fn delete_policy(&mut self, policy_arn: &str) -> Result<()> {
        iam::delete_policy(&mut self.tx, policy_arn).await
    }

    async fn attach_policy(&mut self, identity_id: &str, policy_arn: &str) -> Result<()> {
        iam::attach_policy(&mut self.tx, identity_id, policy_arn).await
    }

    async fn detach_policy(&mut self, identity_id: &str, policy_arn: &str) -> Result<bool> {
        iam::detach_policy(&mut self.tx, identity_id, policy_arn).await
    }

    async fn attached_policies(&mut self, identity_id: &str) -> Result<Vec<String>> {
        iam::attached_policies(&mut self.tx, identity_id).await
    }

    async fn attachment_count(&mut self, policy_arn: &str) -> Result<i64> {
        iam::attachment_count(&mut self.tx, policy_arn).await
    }

    async fn insert_session_key(
        &mut self,
        access_key_id: &str,
        identity_id: &str,
        sealed_secret: &[u8],
        created_at: &str,
        session: &crate::SessionFacts,
    ) -> Result<()> {
        iam::insert_session_key(
            &mut self.tx,
            access_key_id,
            identity_id,
            sealed_secret,
            created_at,
            session,
        )
        .await
    }

    async fn delete_expired_sessions(&mut self, now: &str) -> Result<u64> {
        iam::delete_expired_sessions(&mut self.tx, now).await
    }

    async fn delete_sessions_from(&mut self, parent_key_id: &str) -> Result<u64> {
        iam::delete_sessions_from(&mut self.tx, parent_key_id).await
    }

    async fn delete_task_sessions(&mut self, pipeline_id: &str, attempt_id: &str) -> Result<u64> {
        iam::delete_task_sessions(&mut self.tx, pipeline_id, attempt_id).await
    }

    async fn insert_role(&mut self, role: &crate::RoleRecord) -> Result<()> {
        iam::insert_role(&mut self.tx, role).await
    }

    async fn role(&mut self, account_id: &str, name: &str) -> Result<Option<crate::RoleRecord>> {
        iam::role(&mut self.tx, account_id, name).await
    }

    async fn roles(&mut self, account_id: &str) -> Result<Vec<crate::RoleRecord>> {
        iam::roles(&mut self.tx, account_id).await
    }

    async fn update_trust_policy(&mut self, identity_id: &str, trust_policy: &str) -> Result<()> {
        iam::update_trust_policy(&mut self.tx, identity_id, trust_policy).await
    }

    async fn delete_role(&mut self, identity_id: &str) -> Result<()> {
        iam::delete_role(&mut self.tx, identity_id).await
    }

    async fn put_role_secret(
        &mut self,
        identity_id: &str,
        name: &str,
        sealed_value: &[u8],
        created_at: &str,
    ) -> Result<()> {
        sqlx::query(
            q("INSERT INTO role_secrets (identity_id, name, sealed_value, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (identity_id, name) DO UPDATE SET sealed_value = excluded.sealed_value, created_at = excluded.created_at"),
        )
        .bind(identity_id)
        .bind(name)
        .bind(sealed_value)
        .bind(created_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn role_secrets(&mut self, identity_id: &str) -> Result<Vec<(String, Vec<u8>, String)>> {
        let rows =
            sqlx::query(q("SELECT name, sealed_value, created_at FROM role_secrets WHERE identity_id = ? ORDER BY name"))
                .bind(identity_id)
                .fetch_all(&mut *self.tx)
                .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("name")?,
                    row.try_get("sealed_value")?,
                    row.try_get("created_at")?,
                ))
            })
            .collect()
    }

    async fn delete_role_secret(&mut self, identity_id: &str, name: &str) -> Result<bool> {
        Ok(
            sqlx::query(q("DELETE FROM role_secrets WHERE identity_id = ? AND name = ?"))
                .bind(identity_id)
                .bind(name)
                .execute(&mut *self.tx)
                .await?
                .rows_affected()
                > 0,
        )
    }

    async fn task_attempt(&mut self, account_id: &str, task_id: &str) -> Result<Option<(String, String)>> {
        let row = sqlx::query(
            q("SELECT a.pipeline_id, a.attempt_id FROM attempts a JOIN pipelines p ON p.pipeline_id = a.pipeline_id
             WHERE a.task_id = ? AND a.status = 'RUNNING' AND p.account_id = ? AND p.deleted_at IS NULL"),
        )
        .bind(task_id)
        .bind(account_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|row| Ok((row.try_get("pipeline_id")?, row.try_get("attempt_id")?)))
            .transpose()
    }

    async fn insert_finding(&mut self, finding: &crate::FindingRecord) -> Result<()> {
        sqlx::query(
            q("INSERT INTO findings (finding_id, account_id, pipeline_id, attempt_id, created_at, severity, finding_type, sealed_body)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
        )
        .bind(&finding.finding_id)
        .bind(&finding.account_id)
        .bind(&finding.pipeline_id)
        .bind(&finding.attempt_id)
        .bind(&finding.created_at)
        .bind(finding.severity)
        .bind(&finding.finding_type)
        .bind(&finding.sealed_body)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn findings(
        &mut self,
        account_id: &str,
        pipeline_id: Option<&str>,
        min_severity: i64,
        before: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<crate::FindingRecord>> {
        let (before_time, before_id) = before.unwrap_or(("9999", ""));
        let rows = sqlx::query(
            q("SELECT finding_id, account_id, pipeline_id, attempt_id, created_at, severity, finding_type, sealed_body
             FROM findings
             WHERE account_id = ? AND (? IS NULL OR pipeline_id = ?) AND severity >= ?
               AND (created_at < ? OR (created_at = ? AND finding_id < ?) OR ? = '')
             ORDER BY created_at DESC, finding_id DESC LIMIT ?"),
        )
        .bind(account_id)
        .bind(pipeline_id)
        .bind(pipeline_id)
        .bind(min_severity)
        .bind(before_time)
        .bind(before_time)
        .bind(before_id)
        .bind(before_id)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(finding_row).collect()
    }

    async fn finding(&mut self, finding_id: &str) -> Result<Option<crate::FindingRecord>> {
        let row = sqlx::query(
            q("SELECT finding_id, account_id, pipeline_id, attempt_id, created_at, severity, finding_type, sealed_body
             FROM findings WHERE finding_id = ?"),
        )
        .bind(finding_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(finding_row).transpose()
    }

    async fn acquire_lease(&mut self, name: &str, holder: &str, now: &str, until: &str) -> Result<Option<i64>> {
        let row = sqlx::query(q("SELECT holder, epoch, expires_at FROM leases WHERE name = ?"))
            .bind(name)
            .fetch_optional(&mut *self.tx)
            .await?;
        let Some(row) = row else {
            sqlx::query(q("INSERT INTO leases (name, holder, epoch, expires_at) VALUES (?, ?, 1, ?)"))
                .bind(name)
                .bind(holder)
                .bind(until)
                .execute(&mut *self.tx)
                .await?;
            return Ok(Some(1));
        };
        let (current, epoch, expires_at): (String, i64, String) =
            (row.try_get("holder")?, row.try_get("epoch")?, row.try_get("expires_at")?);
        let epoch = if current == holder {
            epoch
        } else if expires_at.as_str() < now {
            epoch + 1
        } else {
            return Ok(None);
        };
        sqlx::query(q("UPDATE leases SET holder = ?, epoch = ?, expires_at = ? WHERE name = ?"))
            .bind(holder)
            .bind(epoch)
            .bind(until)
            .bind(name)
            .execute(&mut *self.tx)
            .await?;
        Ok(Some(epoch))
    }

    async fn holds_lease(&mut self, name: &str, holder: &str, epoch: i64, now: &str) -> Result<bool> {
        let held: Option<i64> = sqlx::query_scalar(q(
            "SELECT epoch FROM leases WHERE name = ? AND holder = ? AND epoch = ? AND expires_at >= ?",
        ))
        .bind(name)
        .bind(holder)
        .bind(epoch)
        .bind(now)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(held.is_some())
    }

    async fn delete_console_sessions_of(&mut self, identity_id: &str) -> Result<u64> {
        Ok(sqlx::query(
            q("DELETE FROM access_keys WHERE identity_id = ? AND session_token_hash IS NOT NULL
                 AND parent_key_id IS NULL AND task_attempt_id IS NULL"),
        )
        .bind(identity_id)
        .execute(&mut *self.tx)
        .await?
        .rows_affected())
    }

    async fn put_login_profile(&mut self, profile: &crate::LoginProfileRecord) -> Result<()> {
        sqlx::query(
            q("INSERT INTO login_profiles (identity_id, password_hash, created_at, password_reset_required, failed_attempts, locked_until)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (identity_id) DO UPDATE SET password_hash = excluded.password_hash,
                 password_reset_required = excluded.password_reset_required,
                 failed_attempts = excluded.failed_attempts, locked_until = excluded.locked_until"),
        )
        .bind(&profile.identity_id)
        .bind(&profile.password_hash)
        .bind(&profile.created_at)
        .bind(profile.password_reset_required)
        .bind(profile.failed_attempts)
        .bind(&profile.locked_until)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn login_profile(&mut self, identity_id: &str) -> Result<Option<crate::LoginProfileRecord>> {
        let row = sqlx::query(q("SELECT * FROM login_profiles WHERE identity_id = ?"))
            .bind(identity_id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|row| {
            Ok(crate::LoginProfileRecord {
                identity_id: row.try_get("identity_id")?,
                password_hash: row.try_get("password_hash")?,
                created_at: row.try_get("created_at")?,
                password_reset_required: row.try_get("password_reset_required")?,
                failed_attempts: row.try_get("failed_attempts")?,
                locked_until: row.try_get("locked_until")?,
            })
        })
        .transpose()
    }

    async fn delete_login_profile(&mut self, identity_id: &str) -> Result<bool> {
        Ok(sqlx::query(q("DELETE FROM login_profiles WHERE identity_id = ?"))
            .bind(identity_id)
            .execute(&mut *self.tx)
            .await?
            .rows_affected()
            > 0)
    }

    async fn insert_classification_job(&mut self, job: &crate::ClassificationJobRecord) -> Result<()> {
        sqlx::query(
            q("INSERT INTO classification_jobs (job_id, account_id, pipeline_id, name, job_type, schedule, status,
                 created_at, next_run_at, last_run_started_at, last_run_finished_at, runs, objects_scanned,
                 bytes_scanned, findings, claimed_by, claimed_until, sealed_state)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        )
        .bind(&job.job_id)
        .bind(&job.account_id)
        .bind(&job.pipeline_id)
        .bind(&job.name)
        .bind(&job.job_type)
        .bind(&job.schedule)
        .bind(&job.status)
        .bind(&job.created_at)
        .bind(&job.next_run_at)
        .bind(&job.last_run_started_at)
        .bind(&job.last_run_finished_at)
        .bind(job.runs)
        .bind(job.objects_scanned)
        .bind(job.bytes_scanned)
        .bind(job.findings)
        .bind(&job.claimed_by)
        .bind(&job.claimed_until)
        .bind(&job.sealed_state)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn update_classification_job(&mut self, job: &crate::ClassificationJobRecord) -> Result<()> {
        sqlx::query(
            q("UPDATE classification_jobs SET job_type = ?, schedule = ?, status = ?, next_run_at = ?,
                 last_run_started_at = ?, last_run_finished_at = ?, runs = ?, objects_scanned = ?,
                 bytes_scanned = ?, findings = ?, claimed_by = ?, claimed_until = ?, sealed_state = ?
             WHERE job_id = ?"),
        )
        .bind(&job.job_type)
        .bind(&job.schedule)
        .bind(&job.status)
        .bind(&job.next_run_at)
        .bind(&job.last_run_started_at)
        .bind(&job.last_run_finished_at)
        .bind(job.runs)
        .bind(job.objects_scanned)
        .bind(job.bytes_scanned)
        .bind(job.findings)
        .bind(&job.claimed_by)
        .bind(&job.claimed_until)
        .bind(&job.sealed_state)
        .bind(&job.job_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn classification_job(&mut self, job_id: &str) -> Result<Option<crate::ClassificationJobRecord>> {
        let row = sqlx::query(q("SELECT * FROM classification_jobs WHERE job_id = ?"))
            .bind(job_id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(classification_job_row).transpose()
    }

    async fn classification_jobs(
        &mut self,
        account_id: &str,
        pipeline_id: Option<&str>,
        before: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<crate::ClassificationJobRecord>> {
        let (before_time, before_id) = before.unwrap_or(("9999", ""));
        let rows = sqlx::query(
            q("SELECT * FROM classification_jobs
             WHERE account_id = ? AND (? IS NULL OR pipeline_id = ?)
               AND (created_at < ? OR (created_at = ? AND job_id < ?) OR ? = '')
             ORDER BY created_at DESC, job_id DESC LIMIT ?"),
        )
        .bind(account_id)
        .bind(pipeline_id)
        .bind(pipeline_id)
        .bind(before_time)
        .bind(before_time)
        .bind(before_id)
        .bind(before_id)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(classification_job_row).collect()
    }

    async fn due_classification_jobs(&mut self, now: &str, limit: i64) -> Result<Vec<String>> {
        let rows = sqlx::query(
            q("SELECT job_id FROM classification_jobs
             WHERE (status = 'IDLE' AND next_run_at <= ? AND (claimed_until IS NULL OR claimed_until < ?))
                OR (status = 'RUNNING' AND (claimed_until IS NULL OR claimed_until < ?))
             ORDER BY next_run_at, job_id LIMIT ?"),
        )
        .bind(now)
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(|row| Ok(row.try_get("job_id")?)).collect()
    }

    async fn claim_classification_job(&mut self, job_id: &str, owner: &str, until: &str, now: &str) -> Result<bool> {
        Ok(sqlx::query(
            q("UPDATE classification_jobs SET claimed_by = ?, claimed_until = ?
             WHERE job_id = ? AND (claimed_by IS NULL OR claimed_by = ? OR claimed_until IS NULL OR claimed_until < ?)
               AND (status = 'RUNNING' OR (status = 'IDLE' AND next_run_at <= ?))"),
        )
        .bind(owner)
        .bind(until)
        .bind(job_id)
        .bind(owner)
        .bind(now)
        .bind(now)
        .execute(&mut *self.tx)
        .await?
        .rows_affected()
            > 0)
    }

    async fn reseal_role_secret(
        &mut self,
        identity_id: &str,
        name: &str,
        expected: &[u8],
        resealed: &[u8],
    ) -> Result<bool> {
        Ok(sqlx::query(
            q("UPDATE role_secrets SET sealed_value = ? WHERE identity_id = ? AND name = ? AND sealed_value = ?"),
        )
        .bind(resealed)
        .bind(identity_id)
        .bind(name)
        .bind(expected)
        .execute(&mut *self.tx)
        .await?
        .rows_affected()
            > 0)
    }

    async fn all_role_secrets(&mut self) -> Result<Vec<(String, String, Vec<u8>)>> {
        let rows = sqlx::query(q("SELECT identity_id, name, sealed_value FROM role_secrets ORDER BY identity_id, name"))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("identity_id")?,
                    row.try_get("name")?,
                    row.try_get("sealed_value")?,
                ))
            })
            .collect()
    }

    async fn delete_sessions_of(&mut self, identity_id: &str) -> Result<u64> {
        iam::delete_sessions_of(&mut self.tx, identity_id).await
    }

    async fn insert_mfa_device(&mut self, device: &MfaDeviceRecord) -> Result<()> {
        iam::insert_mfa_device(&mut self.tx, device).await
    }

    async fn mfa_device(&mut self, serial_number: &str) -> Result<Option<MfaDeviceRecord>> {
        iam::mfa_device(&mut self.tx, serial_number).await
    }

    async fn mfa_devices_of(&mut self, identity_id: &str) -> Result<Vec<MfaDeviceRecord>> {
        iam::mfa_devices_of(&mut self.tx, identity_id).await
    }

    async fn update_mfa_device(&mut self, device: &MfaDeviceRecord) -> Result<()> {
        iam::update_mfa_device(&mut self.tx, device).await
    }

    async fn delete_mfa_device(&mut self, serial_number: &str) -> Result<()> {
        iam::delete_mfa_device(&mut self.tx, serial_number).await
    }

    async fn insert_group(&mut self, group: &GroupRecord) -> Result<()> {
        iam::insert_group(&mut self.tx, group).await
    }

    async fn group(&mut self, account_id: &str, name: &str) -> Result<Option<GroupRecord>> {
        iam::group(&mut self.tx, account_id, name).await
    }

    async fn groups(&mut self, account_id: &str) -> Result<Vec<GroupRecord>> {
        iam::groups(&mut self.tx, account_id).await
    }

    async fn groups_of(&mut self, identity_id: &str) -> Result<Vec<GroupRecord>> {
        iam::groups_of(&mut self.tx, identity_id).await
    }

    async fn delete_group(&mut self, group_id: &str) -> Result<()> {
        iam::delete_group(&mut self.tx, group_id).await
    }

    async fn add_member(&mut self, group_id: &str, identity_id: &str) -> Result<()> {
        iam::add_member(&mut self.tx, group_id, identity_id).await
    }

    async fn remove_member(&mut self, group_id: &str, identity_id: &str) -> Result<bool> {
        iam::remove_member(&mut self.tx, group_id, identity_id).await
    }

    async fn members(&mut self, group_id: &str) -> Result<Vec<UserRecord>> {
        iam::members(&mut self.tx, group_id).await
    }

    async fn attach_group_policy(&mut self, group_id: &str, policy_arn: &str) -> Result<()> {
        iam::attach_group_policy(&mut self.tx, group_id, policy_arn).await
    }

    async fn detach_group_policy(&mut self, group_id: &str, policy_arn: &str) -> Result<bool> {
        iam::detach_group_policy(&mut self.tx, group_id, policy_arn).await
    }

    async fn group_policies(&mut self, group_id: &str) -> Result<Vec<String>> {
        iam::group_policies(&mut self.tx, group_id).await
    }

    async fn require_mfa(&mut self, account_id: &str) -> Result<bool> {
        iam::require_mfa(&mut self.tx, account_id).await
    }

    async fn guard_rails_as_errors(&mut self, account_id: &str) -> Result<bool> {
        let on: Option<bool> =
            sqlx::query_scalar(q("SELECT guard_rails_as_errors FROM account_settings WHERE account_id = ?"))
                .bind(account_id)
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(on.unwrap_or(false))
    }

    async fn set_guard_rails_as_errors(&mut self, account_id: &str, on: bool, updated_at: &str) -> Result<()> {
        sqlx::query(
            q("INSERT INTO account_settings (account_id, guard_rails_as_errors, updated_at) VALUES (?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET guard_rails_as_errors = excluded.guard_rails_as_errors, updated_at = excluded.updated_at"),
        )
        .bind(account_id)
        .bind(on)
        .bind(updated_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn set_require_mfa(&mut self, account_id: &str, required: bool, updated_at: &str) -> Result<()> {
        iam::set_require_mfa(&mut self.tx, account_id, required, updated_at).await
    }

    async fn touch_access_key(&mut self, access_key_id: &str, used_at: &str) -> Result<()> {
        sqlx::query(q("UPDATE access_keys SET last_used_at = ? WHERE access_key_id = ?"))
            .bind(used_at)
            .bind(access_key_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn find_live_pipeline(
        &mut self,
        creator_identity_id: &str,
        name: &str,
        unique_id: &str,
    ) -> Result<Option<PipelineRecord>> {
        let query = q(select_pipelines!("creator_identity_id = ? AND name = ? AND unique_id = ? AND deleted_at IS NULL"));
        let row = sqlx::query(query)
            .bind(creator_identity_id)
            .bind(name)
            .bind(unique_id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(pipeline_from_row).transpose()
    }

    async fn insert_pipeline(&mut self, pipeline: &NewPipeline) -> Result<()> {
        sqlx::query(
            q("INSERT INTO pipelines (pipeline_id, account_id, creator_identity_id, name, unique_id, description, state, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
        )
        .bind(&pipeline.pipeline_id)
        .bind(&pipeline.account_id)
        .bind(&pipeline.creator_identity_id)
        .bind(&pipeline.name)
        .bind(&pipeline.unique_id)
        .bind(&pipeline.description)
        .bind(&pipeline.state)
        .bind(&pipeline.created_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn pipeline(&mut self, pipeline_id: &str) -> Result<Option<PipelineRecord>> {
        let query = q(select_pipelines!("pipeline_id = ?"));
        let row = sqlx::query(query)
            .bind(pipeline_id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(pipeline_from_row).transpose()
    }

    async fn count_live_pipelines(&mut self, account_id: &str) -> Result<i64> {
        Ok(
            sqlx::query_scalar(q("SELECT COUNT(*) FROM pipelines WHERE account_id = ? AND deleted_at IS NULL"))
                .bind(account_id)
                .fetch_one(&mut *self.tx)
                .await?,
        )
    }

    async fn list_pipelines(&mut self, account_id: &str, after_seq: i64, limit: i64) -> Result<Vec<PipelineSummary>> {
        let rows = sqlx::query(
            q("SELECT seq, pipeline_id, name FROM pipelines WHERE account_id = ? AND deleted_at IS NULL AND seq > ? ORDER BY seq LIMIT ?"),
        )
        .bind(account_id)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PipelineSummary {
                    seq: row.try_get("seq")?,
                    pipeline_id: row.try_get("pipeline_id")?,
                    name: row.try_get("name")?,
                })
            })
            .collect()
    }

    async fn delete_pipeline(&mut self, pipeline_id: &str, deleted_at: &str) -> Result<()> {
        runtime::delete(&mut self.tx, pipeline_id).await?;
        sqlx::query(q("DELETE FROM definition_versions WHERE pipeline_id = ?"))
            .bind(pipeline_id)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(q("DELETE FROM data_keys WHERE pipeline_id = ?"))
            .bind(pipeline_id)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(q("DELETE FROM findings WHERE pipeline_id = ?"))
            .bind(pipeline_id)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(q("DELETE FROM classification_jobs WHERE pipeline_id = ?"))
            .bind(pipeline_id)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(q("DELETE FROM pipeline_tags WHERE pipeline_id = ?"))
            .bind(pipeline_id)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(q("UPDATE pipelines SET deleted_at = ?, state = 'DELETED', description = NULL WHERE pipeline_id = ?"))
            .bind(deleted_at)
            .bind(pipeline_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn tags(&mut self, pipeline_id: &str) -> Result<Vec<Tag>> {
        let rows = sqlx::query(q("SELECT key, value FROM pipeline_tags WHERE pipeline_id = ? ORDER BY position"))
            .bind(pipeline_id)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Tag {
                    key: row.try_get("key")?,
                    value: row.try_get("value")?,
                })
            })
            .collect()
    }

    async fn replace_tags(&mut self, pipeline_id: &str, tags: &[Tag]) -> Result<()> {
        sqlx::query(q("DELETE FROM pipeline_tags WHERE pipeline_id = ?"))
            .bind(pipeline_id)
            .execute(&mut *self.tx)
            .await?;
        for (position, tag) in tags.iter().enumerate() {
            sqlx::query(q("INSERT INTO pipeline_tags (pipeline_id, position, key, value) VALUES (?, ?, ?, ?)"))
                .bind(pipeline_id)
                .bind(position as i64)
                .bind(&tag.key)
                .bind(&tag.value)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    async fn put_definition(
        &mut self,
        pipeline_id: &str,
        version: i64,
        definition: &StoredDefinition,
        created_at: &str,
    ) -> Result<()> {
        let latest: i64 = sqlx::query_scalar(q("UPDATE pipelines SET latest_version = ? WHERE pipeline_id = ? AND latest_version = ? - 1 RETURNING latest_version"))
            .bind(version)
            .bind(pipeline_id)
            .bind(version)
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("version {version} of {pipeline_id} is not the next version")))?;
        sqlx::query(
            q("INSERT INTO definition_versions (pipeline_id, version, format_version, body, errored, created_at) VALUES (?, ?, ?, ?, ?, ?)"),
        )
        .bind(pipeline_id)
        .bind(latest)
        .bind(definition.format_version)
        .bind(&definition.body)
        .bind(definition.errored)
        .bind(created_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn definition(&mut self, pipeline_id: &str, version: i64) -> Result<Option<StoredDefinition>> {
        let row = sqlx::query(
            q("SELECT format_version, body, errored FROM definition_versions WHERE pipeline_id = ? AND version = ?"),
        )
        .bind(pipeline_id)
        .bind(version)
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(StoredDefinition {
            format_version: row.try_get("format_version")?,
            body: row.try_get("body")?,
            errored: row.try_get("errored")?,
        }))
    }

    async fn definition_versions(&mut self) -> Result<Vec<(String, i64, i64)>> {
        let rows = sqlx::query(
            q("SELECT pipeline_id, version, format_version FROM definition_versions ORDER BY pipeline_id, version"),
        )
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("pipeline_id")?,
                    row.try_get("version")?,
                    row.try_get("format_version")?,
                ))
            })
            .collect()
    }

    async fn replace_definition_body(
        &mut self,
        pipeline_id: &str,
        version: i64,
        definition: &StoredDefinition,
    ) -> Result<()> {
        sqlx::query(
            q("UPDATE definition_versions SET format_version = ?, body = ? WHERE pipeline_id = ? AND version = ?"),
        )
        .bind(definition.format_version)
        .bind(&definition.body)
        .bind(pipeline_id)
        .bind(version)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn insert_data_key(&mut self, pipeline_id: &str, wrapped: &[u8], created_at: &str) -> Result<()> {
        sqlx::query(q("INSERT INTO data_keys (pipeline_id, wrapped, created_at) VALUES (?, ?, ?)"))
            .bind(pipeline_id)
            .bind(wrapped)
            .bind(created_at)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn data_key(&mut self, pipeline_id: &str) -> Result<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar(q("SELECT wrapped FROM data_keys WHERE pipeline_id = ?"))
                .bind(pipeline_id)
                .fetch_optional(&mut *self.tx)
                .await?,
        )
    }

    async fn data_keys(&mut self) -> Result<Vec<(String, Vec<u8>)>> {
        let rows = sqlx::query(q("SELECT pipeline_id, wrapped FROM data_keys ORDER BY pipeline_id"))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("pipeline_id")?, row.try_get("wrapped")?)))
            .collect()
    }

    async fn replace_data_key(&mut self, pipeline_id: &str, wrapped: &[u8]) -> Result<()> {
        sqlx::query(q("UPDATE data_keys SET wrapped = ? WHERE pipeline_id = ?"))
            .bind(wrapped)
            .bind(pipeline_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn access_key_secrets(&mut self) -> Result<Vec<(String, Vec<u8>)>> {
        let rows = sqlx::query(q("SELECT access_key_id, sealed_secret FROM access_keys ORDER BY access_key_id"))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("access_key_id")?, row.try_get("sealed_secret")?)))
            .collect()
    }

    async fn replace_access_key_secret(&mut self, access_key_id: &str, sealed_secret: &[u8]) -> Result<()> {
        sqlx::query(q("UPDATE access_keys SET sealed_secret = ? WHERE access_key_id = ?"))
            .bind(sealed_secret)
            .bind(access_key_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn mfa_seeds(&mut self) -> Result<Vec<(String, Vec<u8>)>> {
        let rows = sqlx::query(q("SELECT serial_number, sealed_seed FROM mfa_devices ORDER BY serial_number"))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("serial_number")?, row.try_get("sealed_seed")?)))
            .collect()
    }

    async fn replace_mfa_seed(&mut self, serial_number: &str, sealed_seed: &[u8]) -> Result<()> {
        sqlx::query(q("UPDATE mfa_devices SET sealed_seed = ? WHERE serial_number = ?"))
            .bind(sealed_seed)
            .bind(serial_number)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn last_audit_link(&mut self) -> Result<(i64, String)> {
        let row = sqlx::query(q("SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1"))
            .fetch_optional(&mut *self.tx)
            .await?;
        if let Some(row) = row {
            return Ok((row.try_get("seq")?, row.try_get("hash")?));
        }
        Ok(self
            .audit_anchor()
            .await?
            .unwrap_or((0, AUDIT_GENESIS_HASH.to_string())))
    }

    async fn append_audit(&mut self, record: &AuditRecord) -> Result<()> {
        sqlx::query(
            q("INSERT INTO audit_records (seq, event_id, event_time, event_name, event_source, username, access_key_id, resource_name,
             resource_type, read_only, record, previous_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        )
        .bind(record.seq)
        .bind(&record.event_id)
        .bind(&record.event_time)
        .bind(&record.event_name)
        .bind(&record.event_source)
        .bind(&record.username)
        .bind(&record.access_key_id)
        .bind(&record.resource_name)
        .bind(&record.resource_type)
        .bind(record.read_only)
        .bind(&record.record)
        .bind(&record.previous_hash)
        .bind(&record.hash)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn append_audit_batch(&mut self, records: &[AuditRecord]) -> Result<()> {
        // 13 parameters a row; SQLite allows 32,766 a statement.
        for chunk in records.chunks(1_000) {
            let mut builder = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO audit_records (seq, event_id, event_time, event_name, event_source, username, access_key_id, resource_name, resource_type, read_only, record, previous_hash, hash) ",
            );
            builder.push_values(chunk, |mut row, record| {
                row.push_bind(record.seq)
                    .push_bind(record.event_id.clone())
                    .push_bind(record.event_time.clone())
                    .push_bind(record.event_name.clone())
                    .push_bind(record.event_source.clone())
                    .push_bind(record.username.clone())
                    .push_bind(record.access_key_id.clone())
                    .push_bind(record.resource_name.clone())
                    .push_bind(record.resource_type.clone())
                    .push_bind(record.read_only)
                    .push_bind(record.record.clone())
                    .push_bind(record.previous_hash.clone())
                    .push_bind(record.hash.clone());
            });
            builder.build().execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn audit_records_after(&mut self, after_seq: i64, limit: i64) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query(q(select_audit!("seq > ? ORDER BY seq LIMIT ?")))
            .bind(after_seq)
            .bind(limit)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn lookup_audit(&mut self, query: &AuditQuery) -> Result<Vec<AuditRecord>> {
        // One statement covers every attribute: an unused filter compares NULL and passes.
        let (column, value) = match &query.attribute {
            None => (None, None),
            Some((attribute, value)) => (Some(*attribute), Some(value.clone())),
        };
        let pick = |wanted: AuditAttribute| if column == Some(wanted) { value.clone() } else { None };
        let read_only = pick(AuditAttribute::ReadOnly).map(|text| text.eq_ignore_ascii_case("true"));
        let rows = sqlx::query(q(select_audit!(
            "(?1 IS NULL OR event_id = ?1) AND (?2 IS NULL OR event_name = ?2) AND (?3 IS NULL OR read_only = ?3)
             AND (?4 IS NULL OR username = ?4) AND (?5 IS NULL OR resource_type = ?5) AND (?6 IS NULL OR resource_name = ?6)
             AND (?7 IS NULL OR event_source = ?7) AND (?8 IS NULL OR access_key_id = ?8)
             AND (?9 IS NULL OR event_time >= ?9) AND (?10 IS NULL OR event_time <= ?10) AND (?11 IS NULL OR seq < ?11)
             ORDER BY seq DESC LIMIT ?12"
        )))
        .bind(pick(AuditAttribute::EventId))
        .bind(pick(AuditAttribute::EventName))
        .bind(read_only)
        .bind(pick(AuditAttribute::Username))
        .bind(pick(AuditAttribute::ResourceType))
        .bind(pick(AuditAttribute::ResourceName))
        .bind(pick(AuditAttribute::EventSource))
        .bind(pick(AuditAttribute::AccessKeyId))
        .bind(&query.start_time)
        .bind(&query.end_time)
        .bind(query.before_seq)
        .bind(query.limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn audit_anchor(&mut self) -> Result<Option<(i64, String)>> {
        let row = sqlx::query(q("SELECT seq, hash FROM audit_anchor WHERE singleton = 1"))
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|row| Ok((row.try_get("seq")?, row.try_get("hash")?)))
            .transpose()
    }

    async fn last_delivered_seq(&mut self) -> Result<i64> {
        let delivered: Option<i64> = sqlx::query_scalar(q("SELECT MAX(last_seq) FROM audit_files"))
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(match delivered {
            Some(seq) => seq,
            None => self.audit_anchor().await?.map_or(0, |(seq, _)| seq),
        })
    }

    async fn insert_audit_file(&mut self, file: &AuditFileRecord, delivered_at: &str) -> Result<()> {
        sqlx::query(
            q("INSERT INTO audit_files (object_key, first_seq, last_seq, sha256, oldest_event_time, newest_event_time, delivered_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)"),
        )
        .bind(&file.object_key)
        .bind(file.first_seq)
        .bind(file.last_seq)
        .bind(&file.sha256)
        .bind(&file.oldest_event_time)
        .bind(&file.newest_event_time)
        .bind(delivered_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn audit_files(&mut self) -> Result<Vec<AuditFileRecord>> {
        let rows = sqlx::query(
            q("SELECT file_id, object_key, first_seq, last_seq, sha256, oldest_event_time, newest_event_time, digest_id FROM audit_files ORDER BY file_id"),
        )
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditFileRecord {
                    file_id: row.try_get("file_id")?,
                    object_key: row.try_get("object_key")?,
                    first_seq: row.try_get("first_seq")?,
                    last_seq: row.try_get("last_seq")?,
                    sha256: row.try_get("sha256")?,
                    oldest_event_time: row.try_get("oldest_event_time")?,
                    newest_event_time: row.try_get("newest_event_time")?,
                    digest_id: row.try_get("digest_id")?,
                })
            })
            .collect()
    }

    async fn insert_audit_digest(&mut self, digest: &AuditDigestRecord, file_ids: &[i64]) -> Result<i64> {
        let digest_id: i64 = sqlx::query_scalar(
            q("INSERT INTO audit_digests (object_key, start_time, end_time, sha256, signature) VALUES (?, ?, ?, ?, ?) RETURNING digest_id"),
        )
        .bind(&digest.object_key)
        .bind(&digest.start_time)
        .bind(&digest.end_time)
        .bind(&digest.sha256)
        .bind(&digest.signature)
        .fetch_one(&mut *self.tx)
        .await?;
        for file_id in file_ids {
            sqlx::query(q("UPDATE audit_files SET digest_id = ? WHERE file_id = ?"))
                .bind(digest_id)
                .bind(file_id)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(digest_id)
    }

    async fn audit_digests(&mut self) -> Result<Vec<AuditDigestRecord>> {
        let rows = sqlx::query(q("SELECT digest_id, object_key, start_time, end_time, sha256, signature FROM audit_digests ORDER BY digest_id"))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditDigestRecord {
                    digest_id: row.try_get("digest_id")?,
                    object_key: row.try_get("object_key")?,
                    start_time: row.try_get("start_time")?,
                    end_time: row.try_get("end_time")?,
                    sha256: row.try_get("sha256")?,
                    signature: row.try_get("signature")?,
                })
            })
            .collect()
    }

    async fn prune_audit(&mut self, before_time: &str) -> Result<Vec<String>> {
        // Whole files only, and only those a digest covers, so what remains still verifies.
        let rows = sqlx::query(
            q("SELECT file_id, object_key, last_seq FROM audit_files WHERE digest_id IS NOT NULL AND newest_event_time < ? ORDER BY file_id"),
        )
        .bind(before_time)
        .fetch_all(&mut *self.tx)
        .await?;
        let Some(last) = rows.last() else { return Ok(Vec::new()) };
        let last_seq: i64 = last.try_get("last_seq")?;
        let hash: String = sqlx::query_scalar(q("SELECT hash FROM audit_records WHERE seq = ?"))
            .bind(last_seq)
            .fetch_one(&mut *self.tx)
            .await?;
        sqlx::query(q("INSERT INTO audit_anchor (singleton, seq, hash) VALUES (1, ?, ?) ON CONFLICT (singleton) DO UPDATE SET seq = excluded.seq, hash = excluded.hash"))
            .bind(last_seq)
            .bind(&hash)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(q("DELETE FROM audit_records WHERE seq <= ?"))
            .bind(last_seq)
            .execute(&mut *self.tx)
            .await?;
        let mut keys = Vec::with_capacity(rows.len());
        for row in &rows {
            let file_id: i64 = row.try_get("file_id")?;
            sqlx::query(q("DELETE FROM audit_files WHERE file_id = ?"))
                .bind(file_id)
                .execute(&mut *self.tx)
                .await?;
            keys.push(row.try_get("object_key")?);
        }
        Ok(keys)
    }

    async fn runtime(&mut self, pipeline_id: &str) -> Result<Option<State>> {
        runtime::load(&mut self.tx, pipeline_id).await
    }

    async fn runtime_part(
        &mut self,
        pipeline_id: &str,
        instance_ids: &[String],
        attempt_ids: &[String],
    ) -> Result<Option<State>> {
        runtime::load_part(&mut self.tx, pipeline_id, instance_ids, attempt_ids).await
    }

    async fn component_runs(&mut self, pipeline_id: &str) -> Result<Vec<ComponentRun>> {
        runtime::component_runs(&mut self.tx, pipeline_id).await
    }

    async fn save_runtime(&mut self, pipeline_id: &str, changes: &Changes) -> Result<()> {
        runtime::save(&mut self.tx, pipeline_id, changes).await
    }

    async fn due_pipelines(&mut self, now: &str, limit: i64) -> Result<Vec<String>> {
        runtime::due_pipelines(&mut self.tx, now, limit).await
    }

    async fn next_task(&mut self, account_id: &str, queue: &str, now: &str) -> Result<Option<(String, String)>> {
        runtime::next_task(&mut self.tx, account_id, queue, now).await
    }

    async fn report_task_progress(
        &mut self,
        account_id: &str,
        task_id: &str,
        now: &str,
    ) -> Result<Option<(String, String)>> {
        runtime::report_task_progress(&mut self.tx, account_id, task_id, now).await
    }

    async fn task_pipeline(&mut self, task_id: &str) -> Result<Option<String>> {
        runtime::task_pipeline(&mut self.tx, task_id).await
    }

    async fn put_attempt_report(&mut self, pipeline_id: &str, attempt_id: &str, sealed: &[u8]) -> Result<()> {
        sqlx::query(q("INSERT INTO attempt_reports (pipeline_id, attempt_id, sealed) VALUES (?, ?, ?) ON CONFLICT (pipeline_id, attempt_id) DO UPDATE SET sealed = excluded.sealed"))
            .bind(pipeline_id)
            .bind(attempt_id)
            .bind(sealed)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn attempt_reports(&mut self, pipeline_id: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let rows = sqlx::query(q("SELECT attempt_id, sealed FROM attempt_reports WHERE pipeline_id = ?"))
            .bind(pipeline_id)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("attempt_id")?, row.try_get("sealed")?)))
            .collect()
    }

    async fn insert_notification(&mut self, notification: &NotificationRecord) -> Result<()> {
        sqlx::query(
            q("INSERT INTO notifications (notification_id, pipeline_id, topic_arn, sealed, created_at, attempts, next_attempt_at) VALUES (?, ?, ?, ?, ?, 0, ?)"),
        )
        .bind(&notification.notification_id)
        .bind(&notification.pipeline_id)
        .bind(&notification.topic_arn)
        .bind(&notification.sealed)
        .bind(&notification.created_at)
        .bind(&notification.next_attempt_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn due_notifications(&mut self, now: &str, max_attempts: i64, limit: i64) -> Result<Vec<NotificationRecord>> {
        let rows = sqlx::query(
            q("SELECT notification_id, pipeline_id, topic_arn, sealed, created_at, attempts, next_attempt_at FROM notifications WHERE delivered_at IS NULL AND next_attempt_at <= ? AND attempts < ? ORDER BY next_attempt_at, created_at LIMIT ?"),
        )
        .bind(now)
        .bind(max_attempts)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(NotificationRecord {
                    notification_id: row.try_get("notification_id")?,
                    pipeline_id: row.try_get("pipeline_id")?,
                    topic_arn: row.try_get("topic_arn")?,
                    sealed: row.try_get("sealed")?,
                    created_at: row.try_get("created_at")?,
                    attempts: row.try_get("attempts")?,
                    next_attempt_at: row.try_get("next_attempt_at")?,
                })
            })
            .collect()
    }

    async fn update_notification(
        &mut self,
        notification_id: &str,
        delivered_at: Option<&str>,
        error: Option<&str>,
        next_attempt_at: &str,
    ) -> Result<()> {
        sqlx::query(
            q("UPDATE notifications SET delivered_at = ?, last_error = ?, next_attempt_at = ?, attempts = attempts + 1 WHERE notification_id = ?"),
        )
        .bind(delivered_at)
        .bind(error)
        .bind(next_attempt_at)
        .bind(notification_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn set_active_version(&mut self, pipeline_id: &str, version: i64) -> Result<()> {
        sqlx::query(q("UPDATE pipelines SET active_version = ? WHERE pipeline_id = ?"))
            .bind(version)
            .bind(pipeline_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

fn classification_job_row(row: &DbRow) -> Result<crate::ClassificationJobRecord> {
    Ok(crate::ClassificationJobRecord {
        job_id: row.try_get("job_id")?,
        account_id: row.try_get("account_id")?,
        pipeline_id: row.try_get("pipeline_id")?,
        name: row.try_get("name")?,
        job_type: row.try_get("job_type")?,
        schedule: row.try_get("schedule")?,
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
        next_run_at: row.try_get("next_run_at")?,
        last_run_started_at: row.try_get("last_run_started_at")?,
        last_run_finished_at: row.try_get("last_run_finished_at")?,
        runs: row.try_get("runs")?,
        objects_scanned: row.try_get("objects_scanned")?,
        bytes_scanned: row.try_get("bytes_scanned")?,
        findings: row.try_get("findings")?,
        claimed_by: row.try_get("claimed_by")?,
        claimed_until: row.try_get("claimed_until")?,
        sealed_state: row.try_get("sealed_state")?,
    })
}

fn finding_row(row: &DbRow) -> Result<crate::FindingRecord> {
    Ok(crate::FindingRecord {
        finding_id: row.try_get("finding_id")?,
        account_id: row.try_get("account_id")?,
        pipeline_id: row.try_get("pipeline_id")?,
        attempt_id: row.try_get("attempt_id")?,
        created_at: row.try_get("created_at")?,
        severity: row.try_get("severity")?,
        finding_type: row.try_get("finding_type")?,
        sealed_body: row.try_get("sealed_body")?,
    })
}
