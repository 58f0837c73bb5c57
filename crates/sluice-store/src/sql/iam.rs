// IAM users, access keys, customer-managed policies and attachments (shared by the backends).

use sqlx::Row;

use super::{Conn, DbRow, dynamic, q};

use crate::{
    AccessKeyMetadata, GroupRecord, IdentityRecord, MfaDeviceRecord, PolicyRecord, Result, SessionFacts, UserRecord,
};

const USER_COLUMNS: &str = "identity_id, account_id, kind, name, arn, path, tags, created_at";
const POLICY_COLUMNS: &str = "policy_arn, account_id, policy_name, policy_id, path, document, description, created_at";

fn user_row(row: &DbRow) -> Result<UserRecord> {
    let tags: String = row.try_get("tags")?;
    let tags: Vec<serde_json::Value> = serde_json::from_str(&tags).unwrap_or_default();
    Ok(UserRecord {
        identity: IdentityRecord {
            identity_id: row.try_get("identity_id")?,
            account_id: row.try_get("account_id")?,
            kind: row.try_get("kind")?,
            name: row.try_get("name")?,
            arn: row.try_get("arn")?,
        },
        path: row.try_get("path")?,
        tags: tags
            .iter()
            .filter_map(|tag| {
                Some((
                    tag.get("Key")?.as_str()?.to_string(),
                    tag.get("Value")?.as_str()?.to_string(),
                ))
            })
            .collect(),
        created_at: row.try_get("created_at")?,
    })
}

fn policy_row(row: &DbRow) -> Result<PolicyRecord> {
    Ok(PolicyRecord {
        policy_arn: row.try_get("policy_arn")?,
        account_id: row.try_get("account_id")?,
        policy_name: row.try_get("policy_name")?,
        policy_id: row.try_get("policy_id")?,
        path: row.try_get("path")?,
        document: row.try_get("document")?,
        description: row.try_get("description")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(crate) async fn insert_user(connection: &mut Conn, record: &UserRecord) -> Result<()> {
    let tags: Vec<serde_json::Value> = record
        .tags
        .iter()
        .map(|(key, value)| serde_json::json!({"Key": key, "Value": value}))
        .collect();
    sqlx::query(
        q("INSERT INTO identities (identity_id, account_id, kind, name, arn, path, tags, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
    )
    .bind(&record.identity.identity_id)
    .bind(&record.identity.account_id)
    .bind(&record.identity.kind)
    .bind(&record.identity.name)
    .bind(&record.identity.arn)
    .bind(&record.path)
    .bind(serde_json::Value::Array(tags).to_string())
    .bind(&record.created_at)
    .execute(connection)
    .await?;
    Ok(())
}

pub(crate) async fn user(
    connection: &mut Conn,
    account_id: &str,
    name: &str,
) -> Result<Option<UserRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(dynamic(format!(
        "SELECT {USER_COLUMNS} FROM identities WHERE account_id = ? AND kind = 'IAMUser' AND name = ?"
    ))))
    .bind(account_id)
    .bind(name)
    .fetch_optional(connection)
    .await?;
    row.as_ref().map(user_row).transpose()
}

pub(crate) async fn users(connection: &mut Conn, account_id: &str) -> Result<Vec<UserRecord>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(dynamic(format!(
        "SELECT {USER_COLUMNS} FROM identities WHERE account_id = ? AND kind = 'IAMUser' ORDER BY name"
    ))))
    .bind(account_id)
    .fetch_all(connection)
    .await?;
    rows.iter().map(user_row).collect()
}

pub(crate) async fn delete_identity(connection: &mut Conn, identity_id: &str) -> Result<()> {
    sqlx::query(q("DELETE FROM identities WHERE identity_id = ? AND kind <> 'Root'"))
        .bind(identity_id)
        .execute(connection)
        .await?;
    Ok(())
}

pub(crate) async fn access_keys_of(
    connection: &mut Conn,
    identity_id: &str,
) -> Result<Vec<AccessKeyMetadata>> {
    let rows = sqlx::query(
        q("SELECT access_key_id, status, created_at, last_used_at FROM access_keys WHERE identity_id = ? AND session_token_hash IS NULL ORDER BY created_at, access_key_id"),
    )
    .bind(identity_id)
    .fetch_all(connection)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(AccessKeyMetadata {
                access_key_id: row.try_get("access_key_id")?,
                status: row.try_get("status")?,
                created_at: row.try_get("created_at")?,
                last_used_at: row.try_get("last_used_at")?,
            })
        })
        .collect()
}

pub(crate) async fn set_access_key_status(
    connection: &mut Conn,
    access_key_id: &str,
    status: &str,
) -> Result<bool> {
    Ok(sqlx::query(q("UPDATE access_keys SET status = ? WHERE access_key_id = ?"))
        .bind(status)
        .bind(access_key_id)
        .execute(connection)
        .await?
        .rows_affected()
        > 0)
}

pub(crate) async fn delete_access_key(connection: &mut Conn, access_key_id: &str) -> Result<bool> {
    Ok(sqlx::query(q("DELETE FROM access_keys WHERE access_key_id = ?"))
        .bind(access_key_id)
        .execute(connection)
        .await?
        .rows_affected()
        > 0)
}

pub(crate) async fn insert_policy(connection: &mut Conn, record: &PolicyRecord) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(dynamic(format!(
        "INSERT INTO policies ({POLICY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    ))))
    .bind(&record.policy_arn)
    .bind(&record.account_id)
    .bind(&record.policy_name)
    .bind(&record.policy_id)
    .bind(&record.path)
    .bind(&record.document)
    .bind(&record.description)
    .bind(&record.created_at)
    .execute(connection)
    .await?;
    Ok(())
}

pub(crate) async fn policy_by_arn(connection: &mut Conn, policy_arn: &str) -> Result<Option<PolicyRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(dynamic(format!(
        "SELECT {POLICY_COLUMNS} FROM policies WHERE policy_arn = ?"
    ))))
    .bind(policy_arn)
    .fetch_optional(connection)
    .await?;
    row.as_ref().map(policy_row).transpose()
}

pub(crate) async fn policies(connection: &mut Conn, account_id: &str) -> Result<Vec<PolicyRecord>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(dynamic(format!(
        "SELECT {POLICY_COLUMNS} FROM policies WHERE account_id = ? ORDER BY policy_name"
    ))))
    .bind(account_id)
    .fetch_all(connection)
    .await?;
    rows.iter().map(policy_row).collect()
}

pub(crate) async fn delete_policy(connection: &mut Conn, policy_arn: &str) -> Result<()> {
    sqlx::query(q("DELETE FROM policies WHERE policy_arn = ?"))
        .bind(policy_arn)
        .execute(connection)
        .await?;
    Ok(())
}

pub(crate) async fn attach_policy(
    connection: &mut Conn,
    identity_id: &str,
    policy_arn: &str,
) -> Result<()> {
    sqlx::query(q("INSERT INTO policy_attachments (identity_id, policy_arn) VALUES (?, ?) ON CONFLICT DO NOTHING"))
        .bind(identity_id)
        .bind(policy_arn)
        .execute(connection)
        .await?;
    Ok(())
}

pub(crate) async fn detach_policy(
    connection: &mut Conn,
    identity_id: &str,
    policy_arn: &str,
) -> Result<bool> {
    Ok(
        sqlx::query(q("DELETE FROM policy_attachments WHERE identity_id = ? AND policy_arn = ?"))
            .bind(identity_id)
            .bind(policy_arn)
            .execute(connection)
            .await?
            .rows_affected()
            > 0,
    )
}

pub(crate) async fn attached_policies(connection: &mut Conn, identity_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(q("SELECT policy_arn FROM policy_attachments WHERE identity_id = ? ORDER BY policy_arn"))
        .bind(identity_id)
        .fetch_all(connection)
        .await?;
    rows.iter().map(|row| Ok(row.try_get("policy_arn")?)).collect()
}

pub(crate) async fn attachment_count(connection: &mut Conn, policy_arn: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar(
            q("SELECT (SELECT COUNT(*) FROM policy_attachments WHERE policy_arn = ?1) + (SELECT COUNT(*) FROM group_policy_attachments WHERE policy_arn = ?1)"),
        )
        .bind(policy_arn)
            .fetch_one(connection)
            .await?,
    )
}

pub(crate) async fn insert_session_key(
    connection: &mut Conn,
    access_key_id: &str,
    identity_id: &str,
    sealed_secret: &[u8],
    created_at: &str,
    session: &SessionFacts,
) -> Result<()> {
    sqlx::query(
        q("INSERT INTO access_keys (access_key_id, identity_id, sealed_secret, status, created_at, session_token_hash, expires_at, mfa_at, parent_key_id, task_pipeline_id, task_attempt_id) VALUES (?, ?, ?, 'Active', ?, ?, ?, ?, ?, ?, ?)"),
    )
    .bind(access_key_id)
    .bind(identity_id)
    .bind(sealed_secret)
    .bind(created_at)
    .bind(&session.token_hash)
    .bind(&session.expires_at)
    .bind(&session.mfa_at)
    .bind(&session.parent_key_id)
    .bind(session.task.as_ref().map(|task| &task.pipeline_id))
    .bind(session.task.as_ref().map(|task| &task.attempt_id))
    .execute(connection)
    .await?;
    Ok(())
}

pub(crate) async fn delete_task_sessions(
    connection: &mut Conn,
    pipeline_id: &str,
    attempt_id: &str,
) -> Result<u64> {
    Ok(
        sqlx::query(q("DELETE FROM access_keys WHERE task_pipeline_id = ? AND task_attempt_id = ?"))
            .bind(pipeline_id)
            .bind(attempt_id)
            .execute(connection)
            .await?
            .rows_affected(),
    )
}

const ROLE_COLUMNS: &str = "i.identity_id, i.account_id, i.kind, i.name, i.arn, i.path, i.tags, i.created_at, r.trust_policy, r.description, r.max_session_seconds";

fn role_row(row: &DbRow) -> Result<crate::RoleRecord> {
    let user = user_row(row)?;
    Ok(crate::RoleRecord {
        identity: user.identity,
        path: user.path,
        tags: user.tags,
        trust_policy: row.try_get("trust_policy")?,
        description: row.try_get("description")?,
        max_session_seconds: row.try_get("max_session_seconds")?,
        created_at: user.created_at,
    })
}

pub(crate) async fn insert_role(connection: &mut Conn, role: &crate::RoleRecord) -> Result<()> {
    insert_user(
        &mut *connection,
        &UserRecord {
            identity: role.identity.clone(),
            path: role.path.clone(),
            tags: role.tags.clone(),
            created_at: role.created_at.clone(),
        },
    )
    .await?;
    sqlx::query(q("INSERT INTO roles (identity_id, trust_policy, description, max_session_seconds) VALUES (?, ?, ?, ?)"))
        .bind(&role.identity.identity_id)
        .bind(&role.trust_policy)
        .bind(&role.description)
        .bind(role.max_session_seconds)
        .execute(connection)
        .await?;
    Ok(())
}

pub(crate) async fn role(
    connection: &mut Conn,
    account_id: &str,
    name: &str,
) -> Result<Option<crate::RoleRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(dynamic(format!(
        "SELECT {ROLE_COLUMNS} FROM identities i JOIN roles r ON r.identity_id = i.identity_id WHERE i.account_id = ? AND i.kind = 'Role' AND i.name = ?"
    ))))
    .bind(account_id)
    .bind(name)
    .fetch_optional(connection)
    .await?;
    row.as_ref().map(role_row).transpose()
}

pub(crate) async fn roles(connection: &mut Conn, account_id: &str) -> Result<Vec<crate::RoleRecord>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(dynamic(format!(
        "SELECT {ROLE_COLUMNS} FROM identities i JOIN roles r ON r.identity_id = i.identity_id WHERE i.account_id = ? AND i.kind = 'Role' ORDER BY i.name"
    ))))
    .bind(account_id)
    .fetch_all(connection)
    .await?;
    rows.iter().map(role_row).collect()
}

pub(crate) async fn update_trust_policy(
    connection: &mut Conn,
    identity_id: &str,
    trust_policy: &str,
) -> Result<()> {
    sqlx::query(q("UPDATE roles SET trust_policy = ? WHERE identity_id = ?"))
        .bind(trust_policy)
        .bind(identity_id)
        .execute(connection)
        .await?;
    Ok(())
}

pub(crate) async fn delete_role(connection: &mut Conn, identity_id: &str) -> Result<()> {
    sqlx::query(q("DELETE FROM access_keys WHERE identity_id = ?"))
        .bind(identity_id)
        .execute(&mut *connection)
        .await?;
    sqlx::query(q("DELETE FROM role_secrets WHERE identity_id = ?"))
        .bind(identity_id)
        .execute(&mut *connection)
        .await?;
    sqlx::query(q("DELETE FROM roles WHERE identity_id = ?"))
        .bind(identity_id)
        .execute(&mut *connection)
        .await?;
    delete_identity(connection, identity_id).await
}

pub(crate) async fn delete_expired_sessions(connection: &mut Conn, now: &str) -> Result<u64> {
    Ok(
        sqlx::query(q("DELETE FROM access_keys WHERE session_token_hash IS NOT NULL AND expires_at <= ?"))
            .bind(now)
            .execute(connection)
            .await?
            .rows_affected(),
    )
}

const DEVICE_COLUMNS: &str = "serial_number, account_id, identity_id, sealed_seed, last_step, enabled_at, created_at";

fn device_row(row: &DbRow) -> Result<MfaDeviceRecord> {
    Ok(MfaDeviceRecord {
        serial_number: row.try_get("serial_number")?,
        account_id: row.try_get("account_id")?,
        identity_id: row.try_get("identity_id")?,
        sealed_seed: row.try_get("sealed_seed")?,
        last_step: row.try_get("last_step")?,
        enabled_at: row.try_get("enabled_at")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(crate) async fn insert_mfa_device(connection: &mut Conn, device: &MfaDeviceRecord) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(dynamic(format!(
        "INSERT INTO mfa_devices ({DEVICE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
    ))))
    .bind(&device.serial_number)
    .bind(&device.account_id)
    .bind(&device.identity_id)
    .bind(&device.sealed_seed)
    .bind(device.last_step)
    .bind(&device.enabled_at)
    .bind(&device.created_at)
    .execute(connection)
    .await?;
    Ok(())
}

pub(crate) async fn mfa_device(
    connection: &mut Conn,
    serial_number: &str,
) -> Result<Option<MfaDeviceRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(dynamic(format!(
        "SELECT {DEVICE_COLUMNS} FROM mfa_devices WHERE serial_number = ?"
    ))))
    .bind(serial_number)
    .fetch_optional(connection)
    .await?;
    row.as_ref().map(device_row).transpose()
}

pub(crate) async fn mfa_devices_of(
    connection: &mut Conn,
    identity_id: &str,
) -> Result<Vec<MfaDeviceRecord>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(dynamic(format!(
        "SELECT {DEVICE_COLUMNS} FROM mfa_devices WHERE identity_id = ? ORDER BY serial_number"
    ))))
    .bind(identity_id)
    .fetch_all(connection)
    .await?;
    rows.iter().map(device_row).collect()
}

pub(crate) async fn update_mfa_device(connection: &mut Conn, device: &MfaDeviceRecord) -> Result<()> {
    sqlx::query(q("UPDATE mfa_devices SET identity_id = ?, last_step = ?, enabled_at = ? WHERE serial_number = ?"))
        .bind(&device.identity_id)
        .bind(device.last_step)
        .bind(&device.enabled_at)
        .bind(&device.serial_number)
        .execute(connection)
        .await?;
    Ok(())
}

pub(crate) async fn delete_mfa_device(connection: &mut Conn, serial_number: &str) -> Result<()> {
    sqlx::query(q("DELETE FROM mfa_devices WHERE serial_number = ?"))
        .bind(serial_number)
        .execute(connection)
        .await?;
    Ok(())
}

pub(crate) async fn delete_sessions_of(connection: &mut Conn, identity_id: &str) -> Result<u64> {
    Ok(
        sqlx::query(q("DELETE FROM access_keys WHERE session_token_hash IS NOT NULL AND identity_id = ?"))
            .bind(identity_id)
            .execute(connection)
            .await?
            .rows_affected(),
    )
}

const GROUP_COLUMNS: &str = "g.group_id, g.account_id, g.group_name, g.path, g.arn, g.created_at";

fn group_row(row: &DbRow) -> Result<GroupRecord> {
    Ok(GroupRecord {
        group_id: row.try_get("group_id")?,
        account_id: row.try_get("account_id")?,
        group_name: row.try_get("group_name")?,
        path: row.try_get("path")?,
        arn: row.try_get("arn")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(crate) async fn insert_group(connection: &mut Conn, group: &GroupRecord) -> Result<()> {
    sqlx::query(
        q("INSERT INTO iam_groups (group_id, account_id, group_name, path, arn, created_at) VALUES (?, ?, ?, ?, ?, ?)"),
    )
    .bind(&group.group_id)
    .bind(&group.account_id)
    .bind(&group.group_name)
    .bind(&group.path)
    .bind(&group.arn)
    .bind(&group.created_at)
    .execute(connection)
    .await?;
    Ok(())
}

pub(crate) async fn group(
    connection: &mut Conn,
    account_id: &str,
    name: &str,
) -> Result<Option<GroupRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(dynamic(format!(
        "SELECT {GROUP_COLUMNS} FROM iam_groups g WHERE g.account_id = ? AND g.group_name = ?"
    ))))
    .bind(account_id)
    .bind(name)
    .fetch_optional(connection)
    .await?;
    row.as_ref().map(group_row).transpose()
}

pub(crate) async fn groups(connection: &mut Conn, account_id: &str) -> Result<Vec<GroupRecord>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(dynamic(format!(
        "SELECT {GROUP_COLUMNS} FROM iam_groups g WHERE g.account_id = ? ORDER BY g.group_name"
    ))))
    .bind(account_id)
    .fetch_all(connection)
    .await?;
    rows.iter().map(group_row).collect()
}

pub(crate) async fn groups_of(connection: &mut Conn, identity_id: &str) -> Result<Vec<GroupRecord>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(dynamic(format!(
        "SELECT {GROUP_COLUMNS} FROM iam_groups g JOIN group_members m ON m.group_id = g.group_id WHERE m.identity_id = ? ORDER BY g.group_name"
    ))))
    .bind(identity_id)
    .fetch_all(connection)
    .await?;
    rows.iter().map(group_row).collect()
}

pub(crate) async fn delete_group(connection: &mut Conn, group_id: &str) -> Result<()> {
    sqlx::query(q("DELETE FROM iam_groups WHERE group_id = ?"))
        .bind(group_id)
        .execute(connection)
        .await?;
    Ok(())
}

pub(crate) async fn add_member(connection: &mut Conn, group_id: &str, identity_id: &str) -> Result<()> {
    sqlx::query(q("INSERT INTO group_members (group_id, identity_id) VALUES (?, ?) ON CONFLICT DO NOTHING"))
        .bind(group_id)
        .bind(identity_id)
        .execute(connection)
        .await?;
    Ok(())
}

pub(crate) async fn remove_member(
    connection: &mut Conn,
    group_id: &str,
    identity_id: &str,
) -> Result<bool> {
    Ok(
        sqlx::query(q("DELETE FROM group_members WHERE group_id = ? AND identity_id = ?"))
            .bind(group_id)
            .bind(identity_id)
            .execute(connection)
            .await?
            .rows_affected()
            > 0,
    )
}

pub(crate) async fn members(connection: &mut Conn, group_id: &str) -> Result<Vec<UserRecord>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(dynamic(format!(
        "SELECT {} FROM identities i JOIN group_members m ON m.identity_id = i.identity_id WHERE m.group_id = ? ORDER BY i.name",
        USER_COLUMNS
            .split(", ")
            .map(|column| format!("i.{column}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))))
    .bind(group_id)
    .fetch_all(connection)
    .await?;
    rows.iter().map(user_row).collect()
}

pub(crate) async fn attach_group_policy(
    connection: &mut Conn,
    group_id: &str,
    policy_arn: &str,
) -> Result<()> {
    sqlx::query(q("INSERT INTO group_policy_attachments (group_id, policy_arn) VALUES (?, ?) ON CONFLICT DO NOTHING"))
        .bind(group_id)
        .bind(policy_arn)
        .execute(connection)
        .await?;
    Ok(())
}

pub(crate) async fn detach_group_policy(
    connection: &mut Conn,
    group_id: &str,
    policy_arn: &str,
) -> Result<bool> {
    Ok(
        sqlx::query(q("DELETE FROM group_policy_attachments WHERE group_id = ? AND policy_arn = ?"))
            .bind(group_id)
            .bind(policy_arn)
            .execute(connection)
            .await?
            .rows_affected()
            > 0,
    )
}

pub(crate) async fn group_policies(connection: &mut Conn, group_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(q("SELECT policy_arn FROM group_policy_attachments WHERE group_id = ? ORDER BY policy_arn"))
        .bind(group_id)
        .fetch_all(connection)
        .await?;
    rows.iter().map(|row| Ok(row.try_get("policy_arn")?)).collect()
}

pub(crate) async fn require_mfa(connection: &mut Conn, account_id: &str) -> Result<bool> {
    let required: Option<bool> = sqlx::query_scalar(q("SELECT require_mfa FROM account_settings WHERE account_id = ?"))
        .bind(account_id)
        .fetch_optional(connection)
        .await?;
    Ok(required.unwrap_or(false))
}

pub(crate) async fn set_require_mfa(
    connection: &mut Conn,
    account_id: &str,
    required: bool,
    updated_at: &str,
) -> Result<()> {
    sqlx::query(
        q("INSERT INTO account_settings (account_id, require_mfa, updated_at) VALUES (?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET require_mfa = excluded.require_mfa, updated_at = excluded.updated_at"),
    )
    .bind(account_id)
    .bind(required)
    .bind(updated_at)
    .execute(connection)
    .await?;
    Ok(())
}

pub(crate) async fn delete_sessions_from(connection: &mut Conn, parent_key_id: &str) -> Result<u64> {
    Ok(
        sqlx::query(q("DELETE FROM access_keys WHERE session_token_hash IS NOT NULL AND parent_key_id = ?"))
            .bind(parent_key_id)
            .execute(connection)
            .await?
            .rows_affected(),
    )
}
