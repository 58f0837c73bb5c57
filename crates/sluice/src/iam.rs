//! `sluice iam ...`: users, access keys and policies on a running server, through Sluice's
//! identity API (`SluiceIAM.<Op>`), with the caller's credentials as AWS tools take them.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::{Value, json};
use sluice_runner::{Client, Credentials};

#[derive(clap::Args)]
pub struct Connection {
    #[arg(long, env = "SLUICE_ENDPOINT")]
    endpoint: String,
    /// PEM file of the server's certificate (or set AWS_CA_BUNDLE).
    #[arg(long, env = "AWS_CA_BUNDLE")]
    ca_bundle: Option<PathBuf>,
    #[arg(long, default_value = "us-east-1", env = "AWS_DEFAULT_REGION")]
    region: String,
}

#[derive(clap::Subcommand)]
pub enum IamCommand {
    /// Create a user (tags as KEY=VALUE; a task runner's user gets `workerGroup=NAME`).
    CreateUser {
        #[command(flatten)]
        connection: Connection,
        name: String,
        #[arg(long)]
        path: Option<String>,
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    /// List the account's users.
    ListUsers {
        #[command(flatten)]
        connection: Connection,
    },
    /// Delete a user (its keys deleted, policies detached, groups left and MFA devices
    /// deactivated first).
    DeleteUser {
        #[command(flatten)]
        connection: Connection,
        name: String,
    },
    /// Create an access key (for USER, or for the caller): printed once, as JSON, or written
    /// as a profile of a shared credentials file (mode 0600).
    CreateAccessKey {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        user: Option<String>,
        /// Write the key as [PROFILE] in this credentials file instead of printing the secret.
        #[arg(long, requires = "profile")]
        credentials_file: Option<PathBuf>,
        #[arg(long)]
        profile: Option<String>,
    },
    /// List access keys (of USER, or of the caller), never their secrets.
    ListAccessKeys {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        user: Option<String>,
    },
    /// Activate or deactivate an access key.
    UpdateAccessKey {
        #[command(flatten)]
        connection: Connection,
        access_key_id: String,
        #[arg(long, value_parser = ["Active", "Inactive"])]
        status: String,
        #[arg(long)]
        user: Option<String>,
    },
    DeleteAccessKey {
        #[command(flatten)]
        connection: Connection,
        access_key_id: String,
        #[arg(long)]
        user: Option<String>,
    },
    /// Create a customer-managed policy from a JSON document (a file, or `-` for stdin).
    PutPolicy {
        #[command(flatten)]
        connection: Connection,
        name: String,
        document: PathBuf,
        #[arg(long)]
        description: Option<String>,
    },
    /// List policies: Sluice's own (AdministratorAccess, SluiceReadOnlyAccess,
    /// SluicePipelineOperator, SluiceTaskRunner) and the account's.
    ListPolicies {
        #[command(flatten)]
        connection: Connection,
    },
    DeletePolicy {
        #[command(flatten)]
        connection: Connection,
        /// A policy ARN, or the name of one of the account's policies.
        policy: String,
    },
    /// Attach a policy (an ARN, a shipped policy's name or one of the account's) to a user.
    Attach {
        #[command(flatten)]
        connection: Connection,
        user: String,
        policy: String,
    },
    Detach {
        #[command(flatten)]
        connection: Connection,
        user: String,
        policy: String,
    },
    /// The policies attached to a user.
    ListAttached {
        #[command(flatten)]
        connection: Connection,
        user: String,
    },
    /// Create a role for pipelines to name as `resourceRole` (what their tasks get) or `role`.
    /// Without trust options every pipeline of the account may use it.
    CreateRole {
        #[command(flatten)]
        connection: Connection,
        name: String,
        #[command(flatten)]
        trust: TrustOptions,
        #[arg(long)]
        description: Option<String>,
        /// Attach this policy at once (an ARN, a shipped policy's name or one of the account's).
        #[arg(long = "policy")]
        policies: Vec<String>,
    },
    /// Replace a role's trust policy.
    UpdateTrust {
        #[command(flatten)]
        connection: Connection,
        name: String,
        #[command(flatten)]
        trust: TrustOptions,
    },
    ListRoles {
        #[command(flatten)]
        connection: Connection,
    },
    /// A role, its trust policy and its attached policies.
    GetRole {
        #[command(flatten)]
        connection: Connection,
        name: String,
    },
    /// Delete a role (its policies detached first).
    DeleteRole {
        #[command(flatten)]
        connection: Connection,
        name: String,
    },
    /// Keep a credential for an external system with a role (read from stdin or --value-file,
    /// never from the command line). Tasks of pipelines the role trusts get it: at
    /// `$SLUICE_SECRETS_URI<name>`; `s3.accessKeyId` and `s3.secretAccessKey` are used for their
    /// object stores, and a `*` field reading `role-secret:<name>` (a database's `*password`)
    /// takes the secret's value.
    PutRoleSecret {
        #[command(flatten)]
        connection: Connection,
        role: String,
        name: String,
        #[arg(long)]
        value_file: Option<PathBuf>,
    },
    /// Set (or replace) a user's console password, read from stdin (never from the command
    /// line): 12 to 128 characters, three of lower, upper, digits, symbols, not the user's name.
    SetPassword {
        #[command(flatten)]
        connection: Connection,
        user: String,
    },
    /// Remove a user's console password: the user can no longer sign in to the console.
    DeletePassword {
        #[command(flatten)]
        connection: Connection,
        user: String,
    },
    /// The names of a role's secrets (never their values).
    ListRoleSecrets {
        #[command(flatten)]
        connection: Connection,
        role: String,
    },
    DeleteRoleSecret {
        #[command(flatten)]
        connection: Connection,
        role: String,
        name: String,
    },
    /// Attach a policy to a role.
    AttachRole {
        #[command(flatten)]
        connection: Connection,
        role: String,
        policy: String,
    },
    DetachRole {
        #[command(flatten)]
        connection: Connection,
        role: String,
        policy: String,
    },
    /// Create a group; its members get the policies attached to it.
    CreateGroup {
        #[command(flatten)]
        connection: Connection,
        name: String,
    },
    ListGroups {
        #[command(flatten)]
        connection: Connection,
    },
    /// A group's members and attached policies.
    GetGroup {
        #[command(flatten)]
        connection: Connection,
        name: String,
    },
    /// Delete a group (members removed and policies detached first).
    DeleteGroup {
        #[command(flatten)]
        connection: Connection,
        name: String,
    },
    AddToGroup {
        #[command(flatten)]
        connection: Connection,
        user: String,
        group: String,
    },
    RemoveFromGroup {
        #[command(flatten)]
        connection: Connection,
        user: String,
        group: String,
    },
    /// Attach a policy (an ARN, a shipped policy's name or one of the account's) to a group.
    AttachGroup {
        #[command(flatten)]
        connection: Connection,
        group: String,
        policy: String,
    },
    DetachGroup {
        #[command(flatten)]
        connection: Connection,
        group: String,
        policy: String,
    },
    /// Explain how a user's policies (its own and its groups') decide actions: the decision,
    /// the deciding statement, and why each other statement did not apply.
    Simulate {
        #[command(flatten)]
        connection: Connection,
        user: String,
        /// Actions, e.g. datapipeline:DeletePipeline.
        #[arg(required = true)]
        actions: Vec<String>,
        /// A resource ARN (repeat for several; `*` when none).
        #[arg(long = "resource")]
        resources: Vec<String>,
        /// Request context, KEY=VALUE (repeat a key for several values), e.g.
        /// datapipeline:Tag/team=blue or aws:MultiFactorAuthPresent=true.
        #[arg(long = "context")]
        context: Vec<String>,
    },
    /// Require MFA of every human user of the account (`on`), or not (`off`); users tagged
    /// `sluice:service=true` (runners, automation) are exempt. Without an argument, show it.
    RequireMfa {
        #[command(flatten)]
        connection: Connection,
        #[arg(value_parser = ["on", "off"])]
        setting: Option<String>,
    },
    /// Show, or set, how personal data in pipeline names, descriptions, tags and object
    /// ids/names is treated: `warnings` (the default) or `errors` (refused).
    GuardRails {
        #[command(flatten)]
        connection: Connection,
        #[arg(value_parser = ["errors", "warnings"])]
        setting: Option<String>,
    },
    /// Create a virtual MFA device: shows a QR code and the otpauth:// URI for an authenticator
    /// app (once), then enable it with two consecutive codes.
    CreateMfaDevice {
        #[command(flatten)]
        connection: Connection,
        name: String,
    },
    /// Enable a virtual MFA device for a user (or the caller) with two consecutive codes.
    EnableMfa {
        #[command(flatten)]
        connection: Connection,
        serial_number: String,
        code1: String,
        code2: String,
        #[arg(long)]
        user: Option<String>,
    },
    /// Resynchronise a drifted device with two consecutive codes.
    ResyncMfa {
        #[command(flatten)]
        connection: Connection,
        serial_number: String,
        code1: String,
        code2: String,
        #[arg(long)]
        user: Option<String>,
    },
    DeactivateMfa {
        #[command(flatten)]
        connection: Connection,
        serial_number: String,
        #[arg(long)]
        user: Option<String>,
    },
    DeleteMfaDevice {
        #[command(flatten)]
        connection: Connection,
        serial_number: String,
    },
    ListMfaDevices {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        user: Option<String>,
    },
    /// Temporary credentials for the caller (15 minutes to 36 hours), carrying MFA when a
    /// device's serial number and current code are given: printed as `export` lines, or written
    /// as a profile of a shared credentials file.
    SessionToken {
        #[command(flatten)]
        connection: Connection,
        #[arg(long, requires = "code")]
        serial_number: Option<String>,
        #[arg(long, requires = "serial_number")]
        code: Option<String>,
        #[arg(long)]
        duration_seconds: Option<i64>,
        #[arg(long, requires = "profile")]
        credentials_file: Option<PathBuf>,
        #[arg(long)]
        profile: Option<String>,
    },
}

fn client(connection: &Connection) -> anyhow::Result<Client> {
    Client::new(
        &connection.endpoint,
        Credentials::from_environment()?,
        connection.ca_bundle.as_deref(),
        connection.region.clone(),
    )
}

async fn call(connection: &Connection, operation: &str, body: Value) -> anyhow::Result<Value> {
    client(connection)?
        .call(&format!("SluiceIAM.{operation}"), "iam", &body)
        .await
}

/// Lists what `owner` (e.g. `("UserName", name)`) holds with `list`, whose answer keeps it under
/// `items`, and calls `each` for every item with the owner and the item's `field`: how deleting
/// a user, group or role first undoes what it holds.
async fn undo_each(
    connection: &Connection,
    owner: (&str, &str),
    list: &str,
    items: &str,
    each: &str,
    field: &str,
) -> anyhow::Result<()> {
    let listed = call(connection, list, json!({ owner.0: owner.1 })).await?;
    for item in listed[items].as_array().into_iter().flatten() {
        call(connection, each, json!({ owner.0: owner.1, field: item[field] })).await?;
    }
    Ok(())
}

/// A policy named by ARN, by a shipped policy's name, or by one of the account's names.
async fn policy_arn(connection: &Connection, policy: &str) -> anyhow::Result<String> {
    if policy.starts_with("arn:") {
        return Ok(policy.to_string());
    }
    let listed = call(connection, "ListPolicies", json!({})).await?;
    listed["Policies"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|candidate| candidate["PolicyName"] == policy)
        .and_then(|candidate| candidate["Arn"].as_str())
        .map(str::to_string)
        .with_context(|| format!("no policy named {policy}"))
}

/// EnableMFADevice and ResyncMFADevice.
async fn two_codes(
    connection: &Connection,
    operation: &str,
    serial_number: &str,
    code1: &str,
    code2: &str,
    user: Option<String>,
) -> anyhow::Result<()> {
    let mut body = json!({
        "SerialNumber": serial_number,
        "AuthenticationCode1": code1,
        "AuthenticationCode2": code2,
    });
    if let Some(user) = user {
        body["UserName"] = json!(user);
    }
    call(connection, operation, body).await.map(|_| ())
}

/// Which pipelines may use a role.
#[derive(clap::Args)]
pub struct TrustOptions {
    /// A trust policy document (IAM's grammar, principal datapipeline.amazonaws.com; `-` for stdin).
    #[arg(long, conflicts_with_all = ["trust_tag", "trust_pipeline", "trust_creator"])]
    trust_file: Option<PathBuf>,
    /// Only pipelines with this tag (KEY=VALUE).
    #[arg(long)]
    trust_tag: Vec<String>,
    /// Only these pipelines (ids; `*` wildcards allowed).
    #[arg(long)]
    trust_pipeline: Vec<String>,
    /// Only pipelines created by this user id (AIDA...).
    #[arg(long)]
    trust_creator: Vec<String>,
}

impl TrustOptions {
    fn document(&self) -> anyhow::Result<String> {
        if let Some(path) = &self.trust_file {
            return if path.as_os_str() == "-" {
                Ok(std::io::read_to_string(std::io::stdin())?)
            } else {
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
            };
        }
        let mut conditions = serde_json::Map::new();
        let mut equals = serde_json::Map::new();
        for tag in &self.trust_tag {
            let (key, value) = tag
                .split_once('=')
                .with_context(|| format!("--trust-tag takes KEY=VALUE, got '{tag}'"))?;
            equals.insert(format!("datapipeline:Tag/{key}"), json!(value));
        }
        if !self.trust_creator.is_empty() {
            equals.insert("datapipeline:PipelineCreator".into(), json!(self.trust_creator));
        }
        if !equals.is_empty() {
            conditions.insert("StringEquals".into(), Value::Object(equals));
        }
        if !self.trust_pipeline.is_empty() {
            let arns: Vec<String> = self
                .trust_pipeline
                .iter()
                .map(|id| format!("arn:aws:datapipeline:*:*:pipeline/{id}"))
                .collect();
            conditions.insert("ArnLike".into(), json!({ "aws:SourceArn": arns }));
        }
        let mut statement = json!({
            "Effect": "Allow",
            "Principal": { "Service": "datapipeline.amazonaws.com" },
            "Action": "sts:AssumeRole",
        });
        if !conditions.is_empty() {
            statement["Condition"] = Value::Object(conditions);
        }
        Ok(json!({ "Version": "2012-10-17", "Statement": [statement] }).to_string())
    }
}

fn print(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

/// Adds or replaces `[profile]` in a shared credentials file, keeping the rest, mode 0600.
fn write_profile(path: &PathBuf, profile: &str, key_id: &str, secret: &str) -> anyhow::Result<()> {
    write_profile_with(path, profile, key_id, secret, None)
}

fn write_profile_with(
    path: &PathBuf,
    profile: &str,
    key_id: &str,
    secret: &str,
    token: Option<&str>,
) -> anyhow::Result<()> {
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let mut output = String::new();
    let mut skipping = false;
    for line in existing.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            skipping = trimmed[1..trimmed.len() - 1].trim() == profile;
        }
        if !skipping {
            output.push_str(line);
            output.push('\n');
        }
    }
    output.push_str(&format!(
        "[{profile}]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
    ));
    if let Some(token) = token {
        output.push_str(&format!("aws_session_token = {token}\n"));
    }
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(output.as_bytes())?;
    Ok(())
}

pub async fn run(command: IamCommand) -> anyhow::Result<()> {
    match command {
        IamCommand::CreateUser {
            connection,
            name,
            path,
            tags,
        } => {
            let tags: Vec<Value> = tags
                .iter()
                .map(|tag| {
                    let (key, value) = tag.split_once('=').unwrap_or((tag, ""));
                    json!({ "Key": key, "Value": value })
                })
                .collect();
            let mut body = json!({ "UserName": name, "Tags": tags });
            if let Some(path) = path {
                body["Path"] = json!(path);
            }
            print(&call(&connection, "CreateUser", body).await?["User"]);
        }
        IamCommand::ListUsers { connection } => {
            let listed = call(&connection, "ListUsers", json!({})).await?;
            println!("{:<32} {:<24} {:<20} arn", "user", "id", "created");
            for user in listed["Users"].as_array().into_iter().flatten() {
                println!(
                    "{:<32} {:<24} {:<20} {}",
                    user["UserName"].as_str().unwrap_or(""),
                    user["UserId"].as_str().unwrap_or(""),
                    user["CreateDate"].as_str().unwrap_or(""),
                    user["Arn"].as_str().unwrap_or("")
                );
            }
        }
        IamCommand::DeleteUser { connection, name } => {
            undo_each(
                &connection,
                ("UserName", &name),
                "ListAccessKeys",
                "AccessKeyMetadata",
                "DeleteAccessKey",
                "AccessKeyId",
            )
            .await?;
            undo_each(
                &connection,
                ("UserName", &name),
                "ListAttachedUserPolicies",
                "AttachedPolicies",
                "DetachUserPolicy",
                "PolicyArn",
            )
            .await?;
            undo_each(
                &connection,
                ("UserName", &name),
                "ListGroupsForUser",
                "Groups",
                "RemoveUserFromGroup",
                "GroupName",
            )
            .await?;
            undo_each(
                &connection,
                ("UserName", &name),
                "ListMFADevices",
                "MFADevices",
                "DeactivateMFADevice",
                "SerialNumber",
            )
            .await?;
            call(&connection, "DeleteUser", json!({ "UserName": name })).await?;
            println!("deleted user {name}");
        }
        IamCommand::CreateAccessKey {
            connection,
            user,
            credentials_file,
            profile,
        } => {
            let body = match &user {
                Some(user) => json!({ "UserName": user }),
                None => json!({}),
            };
            let created = call(&connection, "CreateAccessKey", body).await?;
            let key = &created["AccessKey"];
            match (credentials_file, profile) {
                (Some(path), Some(profile)) => {
                    write_profile(
                        &path,
                        &profile,
                        key["AccessKeyId"].as_str().unwrap_or_default(),
                        key["SecretAccessKey"].as_str().unwrap_or_default(),
                    )?;
                    println!(
                        "access key {} written to {} as [{profile}] (mode 0600)",
                        key["AccessKeyId"].as_str().unwrap_or_default(),
                        path.display()
                    );
                }
                _ => {
                    eprintln!("sluice iam: this is the only time the secret is shown; store it now");
                    print(key);
                }
            }
        }
        IamCommand::ListAccessKeys { connection, user } => {
            let body = match &user {
                Some(user) => json!({ "UserName": user }),
                None => json!({}),
            };
            let listed = call(&connection, "ListAccessKeys", body).await?;
            println!("{:<22} {:<9} {:<20} last used", "access key", "status", "created");
            for key in listed["AccessKeyMetadata"].as_array().into_iter().flatten() {
                println!(
                    "{:<22} {:<9} {:<20} {}",
                    key["AccessKeyId"].as_str().unwrap_or(""),
                    key["Status"].as_str().unwrap_or(""),
                    key["CreateDate"].as_str().unwrap_or(""),
                    key["LastUsedDate"].as_str().unwrap_or("never")
                );
            }
        }
        IamCommand::UpdateAccessKey {
            connection,
            access_key_id,
            status,
            user,
        } => {
            let mut body = json!({ "AccessKeyId": access_key_id, "Status": status });
            if let Some(user) = user {
                body["UserName"] = json!(user);
            }
            call(&connection, "UpdateAccessKey", body).await?;
            println!("access key {access_key_id} is {status}");
        }
        IamCommand::DeleteAccessKey {
            connection,
            access_key_id,
            user,
        } => {
            let mut body = json!({ "AccessKeyId": access_key_id });
            if let Some(user) = user {
                body["UserName"] = json!(user);
            }
            call(&connection, "DeleteAccessKey", body).await?;
            println!("deleted access key {access_key_id}");
        }
        IamCommand::PutPolicy {
            connection,
            name,
            document,
            description,
        } => {
            let text = if document.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&document).with_context(|| format!("cannot read {}", document.display()))?
            };
            let mut body = json!({ "PolicyName": name, "PolicyDocument": text });
            if let Some(description) = description {
                body["Description"] = json!(description);
            }
            let created = call(&connection, "CreatePolicy", body).await?;
            println!("{}", created["Policy"]["Arn"].as_str().unwrap_or_default());
        }
        IamCommand::ListPolicies { connection } => {
            let listed = call(&connection, "ListPolicies", json!({})).await?;
            println!("{:<28} {:>8} arn", "policy", "attached");
            for policy in listed["Policies"].as_array().into_iter().flatten() {
                println!(
                    "{:<28} {:>8} {}",
                    policy["PolicyName"].as_str().unwrap_or(""),
                    policy["AttachmentCount"].as_i64().unwrap_or(0),
                    policy["Arn"].as_str().unwrap_or("")
                );
            }
        }
        IamCommand::DeletePolicy { connection, policy } => {
            let arn = policy_arn(&connection, &policy).await?;
            call(&connection, "DeletePolicy", json!({ "PolicyArn": arn })).await?;
            println!("deleted policy {arn}");
        }
        IamCommand::CreateRole {
            connection,
            name,
            trust,
            description,
            policies,
        } => {
            let mut body = json!({ "RoleName": name, "AssumeRolePolicyDocument": trust.document()? });
            if let Some(description) = description {
                body["Description"] = json!(description);
            }
            let created = call(&connection, "CreateRole", body).await?;
            for policy in policies {
                let arn = policy_arn(&connection, &policy).await?;
                call(
                    &connection,
                    "AttachRolePolicy",
                    json!({ "RoleName": name, "PolicyArn": arn }),
                )
                .await?;
            }
            println!("{}", created["Role"]["Arn"].as_str().unwrap_or_default());
        }
        IamCommand::UpdateTrust {
            connection,
            name,
            trust,
        } => {
            call(
                &connection,
                "UpdateAssumeRolePolicy",
                json!({ "RoleName": name, "PolicyDocument": trust.document()? }),
            )
            .await?;
            println!("updated the trust policy of {name}");
        }
        IamCommand::ListRoles { connection } => {
            let listed = call(&connection, "ListRoles", json!({})).await?;
            println!("{:<40} {:<24} arn", "role", "id");
            for role in listed["Roles"].as_array().into_iter().flatten() {
                println!(
                    "{:<40} {:<24} {}",
                    role["RoleName"].as_str().unwrap_or(""),
                    role["RoleId"].as_str().unwrap_or(""),
                    role["Arn"].as_str().unwrap_or("")
                );
            }
        }
        IamCommand::GetRole { connection, name } => {
            let mut role = call(&connection, "GetRole", json!({ "RoleName": name })).await?["Role"].take();
            if let Some(document) = role["AssumeRolePolicyDocument"].as_str()
                && let Ok(parsed) = serde_json::from_str::<Value>(document)
            {
                role["AssumeRolePolicyDocument"] = parsed;
            }
            let attached = call(&connection, "ListAttachedRolePolicies", json!({ "RoleName": name })).await?;
            role["AttachedPolicies"] = attached["AttachedPolicies"].clone();
            print(&role);
        }
        IamCommand::DeleteRole { connection, name } => {
            undo_each(
                &connection,
                ("RoleName", &name),
                "ListAttachedRolePolicies",
                "AttachedPolicies",
                "DetachRolePolicy",
                "PolicyArn",
            )
            .await?;
            call(&connection, "DeleteRole", json!({ "RoleName": name })).await?;
            println!("deleted role {name}");
        }
        IamCommand::PutRoleSecret {
            connection,
            role,
            name,
            value_file,
        } => {
            let value = match value_file {
                Some(path) => {
                    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?
                }
                None => std::io::read_to_string(std::io::stdin())?,
            };
            let value = value.strip_suffix('\n').unwrap_or(&value).to_string();
            call(
                &connection,
                "PutRoleSecret",
                json!({ "RoleName": role, "SecretName": name, "SecretValue": value }),
            )
            .await?;
            println!("stored secret {name} with role {role}");
        }
        IamCommand::SetPassword { connection, user } => {
            let password = std::io::read_to_string(std::io::stdin())?;
            let password = password.strip_suffix('\n').unwrap_or(&password).to_string();
            let exists = call(&connection, "GetLoginProfile", json!({ "UserName": user }))
                .await
                .is_ok();
            let operation = if exists {
                "UpdateLoginProfile"
            } else {
                "CreateLoginProfile"
            };
            call(
                &connection,
                operation,
                json!({ "UserName": user, "Password": password }),
            )
            .await?;
            println!("console password {} for {user}", if exists { "changed" } else { "set" });
        }
        IamCommand::DeletePassword { connection, user } => {
            call(&connection, "DeleteLoginProfile", json!({ "UserName": user })).await?;
            println!("console password of {user} removed");
        }
        IamCommand::ListRoleSecrets { connection, role } => {
            let listed = call(&connection, "ListRoleSecrets", json!({ "RoleName": role })).await?;
            for secret in listed["Secrets"].as_array().into_iter().flatten() {
                println!(
                    "{:<40} {}",
                    secret["SecretName"].as_str().unwrap_or(""),
                    secret["CreateDate"].as_str().unwrap_or("")
                );
            }
        }
        IamCommand::DeleteRoleSecret { connection, role, name } => {
            call(
                &connection,
                "DeleteRoleSecret",
                json!({ "RoleName": role, "SecretName": name }),
            )
            .await?;
            println!("deleted secret {name} of role {role}");
        }
        IamCommand::AttachRole {
            connection,
            role,
            policy,
        } => {
            let arn = policy_arn(&connection, &policy).await?;
            call(
                &connection,
                "AttachRolePolicy",
                json!({ "RoleName": role, "PolicyArn": arn }),
            )
            .await?;
            println!("attached {arn} to role {role}");
        }
        IamCommand::DetachRole {
            connection,
            role,
            policy,
        } => {
            let arn = policy_arn(&connection, &policy).await?;
            call(
                &connection,
                "DetachRolePolicy",
                json!({ "RoleName": role, "PolicyArn": arn }),
            )
            .await?;
            println!("detached {arn} from role {role}");
        }
        IamCommand::Attach {
            connection,
            user,
            policy,
        } => {
            let arn = policy_arn(&connection, &policy).await?;
            call(
                &connection,
                "AttachUserPolicy",
                json!({ "UserName": user, "PolicyArn": arn }),
            )
            .await?;
            println!("attached {arn} to {user}");
        }
        IamCommand::Detach {
            connection,
            user,
            policy,
        } => {
            let arn = policy_arn(&connection, &policy).await?;
            call(
                &connection,
                "DetachUserPolicy",
                json!({ "UserName": user, "PolicyArn": arn }),
            )
            .await?;
            println!("detached {arn} from {user}");
        }
        IamCommand::Simulate {
            connection,
            user,
            actions,
            resources,
            context,
        } => {
            let found = call(&connection, "GetUser", json!({ "UserName": user })).await?;
            let mut entries: Vec<(String, Vec<String>)> = Vec::new();
            for pair in &context {
                let (key, value) = pair
                    .split_once('=')
                    .with_context(|| format!("--context {pair}: expected KEY=VALUE"))?;
                match entries.iter_mut().find(|(existing, _)| existing == key) {
                    Some((_, values)) => values.push(value.to_string()),
                    None => entries.push((key.to_string(), vec![value.to_string()])),
                }
            }
            let body = json!({
                "PolicySourceArn": found["User"]["Arn"],
                "ActionNames": actions,
                "ResourceArns": resources,
                "ContextEntries": entries
                    .iter()
                    .map(|(key, values)| json!({ "ContextKeyName": key, "ContextKeyValues": values, "ContextKeyType": "string" }))
                    .collect::<Vec<_>>(),
            });
            let simulated = call(&connection, "SimulatePrincipalPolicy", body).await?;
            for result in simulated["EvaluationResults"].as_array().into_iter().flatten() {
                let decided = result["MatchedStatements"][0]["SourcePolicyId"]
                    .as_str()
                    .unwrap_or("no statement");
                println!(
                    "{} on {}: {} ({decided})",
                    result["EvalActionName"].as_str().unwrap_or(""),
                    result["EvalResourceName"].as_str().unwrap_or(""),
                    result["EvalDecision"].as_str().unwrap_or("")
                );
                for detail in result["StatementDetails"].as_array().into_iter().flatten() {
                    let sid = detail["Sid"].as_str().map(|sid| format!(" {sid}")).unwrap_or_default();
                    let verdict = if detail["Applies"].as_bool() == Some(true) {
                        "applies".to_string()
                    } else {
                        format!("does not apply: {}", detail["Reason"].as_str().unwrap_or(""))
                    };
                    println!(
                        "  {}{sid} ({}) {verdict}",
                        detail["SourcePolicyId"].as_str().unwrap_or(""),
                        detail["Effect"].as_str().unwrap_or("")
                    );
                }
            }
        }
        IamCommand::RequireMfa { connection, setting } => {
            let settings = match setting.as_deref() {
                Some(setting) => {
                    call(
                        &connection,
                        "UpdateAccountSecuritySettings",
                        json!({ "RequireMfa": setting == "on" }),
                    )
                    .await?
                }
                None => call(&connection, "GetAccountSecuritySettings", json!({})).await?,
            };
            println!(
                "MFA is {} for the account's human users",
                if settings["RequireMfa"].as_bool() == Some(true) {
                    "required"
                } else {
                    "not required"
                }
            );
        }
        IamCommand::GuardRails { connection, setting } => {
            let settings = match setting.as_deref() {
                Some(setting) => {
                    call(
                        &connection,
                        "UpdateAccountSecuritySettings",
                        json!({ "GuardRailsAsErrors": setting == "errors" }),
                    )
                    .await?
                }
                None => call(&connection, "GetAccountSecuritySettings", json!({})).await?,
            };
            println!(
                "personal data in names, descriptions and tags is {}",
                if settings["GuardRailsAsErrors"].as_bool() == Some(true) {
                    "an error (refused)"
                } else {
                    "a warning"
                }
            );
        }
        IamCommand::CreateGroup { connection, name } => {
            print(&call(&connection, "CreateGroup", json!({ "GroupName": name })).await?["Group"]);
        }
        IamCommand::ListGroups { connection } => {
            let listed = call(&connection, "ListGroups", json!({})).await?;
            for group in listed["Groups"].as_array().into_iter().flatten() {
                println!(
                    "{:<32} {}",
                    group["GroupName"].as_str().unwrap_or(""),
                    group["Arn"].as_str().unwrap_or("")
                );
            }
        }
        IamCommand::GetGroup { connection, name } => {
            let group = call(&connection, "GetGroup", json!({ "GroupName": name })).await?;
            let attached = call(&connection, "ListAttachedGroupPolicies", json!({ "GroupName": name })).await?;
            println!("{}", group["Group"]["Arn"].as_str().unwrap_or_default());
            for user in group["Users"].as_array().into_iter().flatten() {
                println!("  member  {}", user["UserName"].as_str().unwrap_or(""));
            }
            for policy in attached["AttachedPolicies"].as_array().into_iter().flatten() {
                println!("  policy  {}", policy["PolicyArn"].as_str().unwrap_or(""));
            }
        }
        IamCommand::DeleteGroup { connection, name } => {
            undo_each(
                &connection,
                ("GroupName", &name),
                "GetGroup",
                "Users",
                "RemoveUserFromGroup",
                "UserName",
            )
            .await?;
            undo_each(
                &connection,
                ("GroupName", &name),
                "ListAttachedGroupPolicies",
                "AttachedPolicies",
                "DetachGroupPolicy",
                "PolicyArn",
            )
            .await?;
            call(&connection, "DeleteGroup", json!({ "GroupName": name })).await?;
            println!("deleted group {name}");
        }
        IamCommand::AddToGroup {
            connection,
            user,
            group,
        } => {
            call(
                &connection,
                "AddUserToGroup",
                json!({ "GroupName": group, "UserName": user }),
            )
            .await?;
            println!("{user} is in {group}");
        }
        IamCommand::RemoveFromGroup {
            connection,
            user,
            group,
        } => {
            call(
                &connection,
                "RemoveUserFromGroup",
                json!({ "GroupName": group, "UserName": user }),
            )
            .await?;
            println!("{user} is no longer in {group}");
        }
        IamCommand::AttachGroup {
            connection,
            group,
            policy,
        } => {
            let arn = policy_arn(&connection, &policy).await?;
            call(
                &connection,
                "AttachGroupPolicy",
                json!({ "GroupName": group, "PolicyArn": arn }),
            )
            .await?;
            println!("attached {arn} to group {group}");
        }
        IamCommand::DetachGroup {
            connection,
            group,
            policy,
        } => {
            let arn = policy_arn(&connection, &policy).await?;
            call(
                &connection,
                "DetachGroupPolicy",
                json!({ "GroupName": group, "PolicyArn": arn }),
            )
            .await?;
            println!("detached {arn} from group {group}");
        }
        IamCommand::CreateMfaDevice { connection, name } => {
            let created = call(
                &connection,
                "CreateVirtualMFADevice",
                json!({ "VirtualMFADeviceName": name }),
            )
            .await?;
            let device = &created["VirtualMFADevice"];
            let uri = device["OtpauthUri"].as_str().unwrap_or_default();
            let code = qrcode::QrCode::new(uri.as_bytes()).context("the URI does not fit a QR code")?;
            println!(
                "{}",
                code.render::<qrcode::render::unicode::Dense1x2>()
                    .quiet_zone(true)
                    .build()
            );
            println!("{uri}");
            println!("serial number: {}", device["SerialNumber"].as_str().unwrap_or_default());
            eprintln!(
                "sluice iam: scan the code (or enter the seed {}) in an authenticator app; it is shown only now. Then: sluice iam enable-mfa SERIAL CODE1 CODE2 --user NAME",
                device["Base32StringSeed"].as_str().unwrap_or_default()
            );
        }
        IamCommand::EnableMfa {
            connection,
            serial_number,
            code1,
            code2,
            user,
        } => {
            two_codes(&connection, "EnableMFADevice", &serial_number, &code1, &code2, user).await?;
            println!("{serial_number}: enabled");
        }
        IamCommand::ResyncMfa {
            connection,
            serial_number,
            code1,
            code2,
            user,
        } => {
            two_codes(&connection, "ResyncMFADevice", &serial_number, &code1, &code2, user).await?;
            println!("{serial_number}: resynchronised");
        }
        IamCommand::DeactivateMfa {
            connection,
            serial_number,
            user,
        } => {
            let mut body = json!({ "SerialNumber": serial_number });
            if let Some(user) = user {
                body["UserName"] = json!(user);
            }
            call(&connection, "DeactivateMFADevice", body).await?;
            println!("{serial_number}: deactivated");
        }
        IamCommand::DeleteMfaDevice {
            connection,
            serial_number,
        } => {
            call(
                &connection,
                "DeleteVirtualMFADevice",
                json!({ "SerialNumber": serial_number }),
            )
            .await?;
            println!("{serial_number}: deleted");
        }
        IamCommand::ListMfaDevices { connection, user } => {
            let body = match &user {
                Some(user) => json!({ "UserName": user }),
                None => json!({}),
            };
            let listed = call(&connection, "ListMFADevices", body).await?;
            for device in listed["MFADevices"].as_array().into_iter().flatten() {
                println!(
                    "{:<60} enabled {}",
                    device["SerialNumber"].as_str().unwrap_or(""),
                    device["EnableDate"].as_str().unwrap_or("")
                );
            }
        }
        IamCommand::SessionToken {
            connection,
            serial_number,
            code,
            duration_seconds,
            credentials_file,
            profile,
        } => {
            let mut body = json!({});
            if let (Some(serial), Some(code)) = (serial_number, code) {
                body["SerialNumber"] = json!(serial);
                body["TokenCode"] = json!(code);
            }
            if let Some(seconds) = duration_seconds {
                body["DurationSeconds"] = json!(seconds);
            }
            let issued = client(&connection)?
                .call("SluiceIAM.GetSessionToken", "sts", &body)
                .await?;
            let credentials = &issued["Credentials"];
            let field = |name: &str| credentials[name].as_str().unwrap_or_default().to_string();
            match (credentials_file, profile) {
                (Some(path), Some(profile)) => {
                    write_profile_with(
                        &path,
                        &profile,
                        &field("AccessKeyId"),
                        &field("SecretAccessKey"),
                        Some(&field("SessionToken")),
                    )?;
                    println!(
                        "session credentials written to {} as [{profile}] (mode 0600), valid until {}",
                        path.display(),
                        field("Expiration")
                    );
                }
                _ => {
                    println!("export AWS_ACCESS_KEY_ID={}", field("AccessKeyId"));
                    println!("export AWS_SECRET_ACCESS_KEY={}", field("SecretAccessKey"));
                    println!("export AWS_SESSION_TOKEN={}", field("SessionToken"));
                    eprintln!("sluice iam: valid until {}", field("Expiration"));
                }
            }
        }
        IamCommand::ListAttached { connection, user } => {
            let listed = call(&connection, "ListAttachedUserPolicies", json!({ "UserName": user })).await?;
            for policy in listed["AttachedPolicies"].as_array().into_iter().flatten() {
                println!(
                    "{:<28} {}",
                    policy["PolicyName"].as_str().unwrap_or(""),
                    policy["PolicyArn"].as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}
