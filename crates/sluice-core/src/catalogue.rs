//! The object-type catalogue of AWS Data Pipeline (reference §d): every type, its fields, their
//! value kinds, which are required, which form groups, and what a reference may point at.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Schedule,
    Activity,
    DataNode,
    Database,
    Resource,
    DataFormat,
    Precondition,
    Action,
    Utility,
}

impl Category {
    pub fn describe(self) -> &'static str {
        match self {
            Category::Schedule => "schedule",
            Category::Activity => "activity",
            Category::DataNode => "data node",
            Category::Database => "database",
            Category::Resource => "resource",
            Category::DataFormat => "data format",
            Category::Precondition => "precondition",
            Category::Action => "action",
            Category::Utility => "utility object",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum RefTarget {
    Any,
    Categories(&'static [Category]),
    Types(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy)]
pub enum ValueKind {
    String,
    Integer {
        min: i64,
        max: i64,
    },
    Double {
        min: f64,
        max: f64,
    },
    Boolean,
    DateTime,
    Period,
    /// `terminateAfter` on EmrCluster: the docs say hours as an integer, the samples write periods.
    PeriodOrHours,
    Enum(&'static [&'static str]),
    Ref(RefTarget),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Required,
    Optional,
    /// `schedule`: required unless inherited or the pipeline is on demand.
    Schedule,
    /// Listed by the docs as "must not be set" on this type.
    NotAllowed,
}

#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    pub name: &'static str,
    pub kind: ValueKind,
    pub presence: Presence,
    pub repeatable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupRule {
    /// Exactly one member must be set.
    ExactlyOne,
    /// `runsOn` / `workerGroup`: one is required; with both, `runsOn` wins (a warning).
    RunsOnOrWorkerGroup,
    /// Optional, but not several.
    AtMostOne,
}

#[derive(Debug, Clone, Copy)]
pub struct Group {
    pub members: &'static [&'static str],
    pub rule: GroupRule,
}

#[derive(Debug)]
pub struct TypeSpec {
    pub name: &'static str,
    pub category: Category,
    pub fields: &'static [FieldSpec],
    pub sets: &'static [&'static [FieldSpec]],
    pub groups: &'static [Group],
}

impl TypeSpec {
    pub fn field(&self, name: &str) -> Option<&'static FieldSpec> {
        self.fields
            .iter()
            .chain(self.sets.iter().flat_map(|set| set.iter()))
            .find(|spec| spec.name == name)
    }

    pub fn all_fields(&self) -> impl Iterator<Item = &'static FieldSpec> + '_ {
        self.fields.iter().chain(self.sets.iter().flat_map(|set| set.iter()))
    }

    /// Activities, data nodes, resources and preconditions are scheduled and run.
    pub fn is_runnable(&self) -> bool {
        matches!(
            self.category,
            Category::Activity | Category::DataNode | Category::Resource | Category::Precondition
        )
    }
}

const fn opt(name: &'static str, kind: ValueKind) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        presence: Presence::Optional,
        repeatable: false,
    }
}
const fn req(name: &'static str, kind: ValueKind) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        presence: Presence::Required,
        repeatable: false,
    }
}
const fn rep(name: &'static str, kind: ValueKind) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        presence: Presence::Optional,
        repeatable: true,
    }
}
const fn not_allowed(name: &'static str, kind: ValueKind) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        presence: Presence::NotAllowed,
        repeatable: false,
    }
}

const S: ValueKind = ValueKind::String;
const INT: ValueKind = ValueKind::Integer {
    min: i64::MIN,
    max: i64::MAX,
};
const POSITIVE: ValueKind = ValueKind::Integer { min: 1, max: i64::MAX };
const BOOL: ValueKind = ValueKind::Boolean;
const PERIOD: ValueKind = ValueKind::Period;
const DATETIME: ValueKind = ValueKind::DateTime;
const fn refs(categories: &'static [Category]) -> ValueKind {
    ValueKind::Ref(RefTarget::Categories(categories))
}
const fn ref_types(types: &'static [&'static str]) -> ValueKind {
    ValueKind::Ref(RefTarget::Types(types))
}
const ANY_REF: ValueKind = ValueKind::Ref(RefTarget::Any);
const SCHEDULE_REF: ValueKind = ref_types(&["Schedule"]);
const RESOURCE_REF: ValueKind = refs(&[Category::Resource]);
const DATA_NODE_REF: ValueKind = refs(&[Category::DataNode]);
const DATABASE_REF: ValueKind = refs(&[Category::Database]);
const ACTION_REF: ValueKind = refs(&[Category::Action]);
const SHELL_SCRIPT_CONFIG_REF: ValueKind = ref_types(&["ShellScriptConfig"]);
const EMR_CONFIGURATION_REF: ValueKind = ref_types(&["EmrConfiguration"]);

pub const SCHEDULE_TYPES: &[&str] = &["cron", "timeseries", "ondemand"];

/// RUN: retries, timeouts and notifications of anything that runs.
const RUN: &[FieldSpec] = &[
    opt("attemptStatus", S),
    opt("attemptTimeout", PERIOD),
    opt("failureAndRerunMode", ValueKind::Enum(&["cascade", "none"])),
    opt("lateAfterTimeout", PERIOD),
    // Reference §j: at most 5 retries per task.
    opt("maximumRetries", ValueKind::Integer { min: 0, max: 5 }),
    rep("onFail", ACTION_REF),
    rep("onLateAction", ACTION_REF),
    rep("onSuccess", ACTION_REF),
    opt("parent", ANY_REF),
    opt("reportProgressTimeout", PERIOD),
    opt("retryDelay", PERIOD),
];

/// SCHED: scheduling of activities, data nodes and resources.
const SCHED: &[FieldSpec] = &[
    FieldSpec {
        name: "schedule",
        kind: SCHEDULE_REF,
        presence: Presence::Schedule,
        repeatable: false,
    },
    opt("scheduleType", ValueKind::Enum(SCHEDULE_TYPES)),
    opt("maxActiveInstances", POSITIVE),
    opt("pipelineLogUri", S),
];

/// DEP: dependencies of activities and data nodes.
const DEP: &[FieldSpec] = &[
    rep("dependsOn", refs(&[Category::Activity, Category::DataNode])),
    rep("precondition", refs(&[Category::Precondition])),
];

/// What every activity carries besides its own fields.
const ACTIVITY_COMMON: &[FieldSpec] = &[
    opt("runsOn", RESOURCE_REF),
    opt("workerGroup", S),
    rep("input", DATA_NODE_REF),
    rep("output", DATA_NODE_REF),
    opt("sensitiveDataPolicy", ValueKind::Enum(SENSITIVE_DATA_POLICIES)),
];

/// Sluice's extension: what happens when an output about to be published holds sensitive data.
pub const SENSITIVE_DATA_POLICIES: &[&str] = &["ALLOW", "WARN", "MASK", "QUARANTINE", "FAIL"];

const DATA_NODE_COMMON: &[FieldSpec] = &[
    opt("runsOn", RESOURCE_REF),
    opt("workerGroup", S),
    opt("sensitiveDataPolicy", ValueKind::Enum(SENSITIVE_DATA_POLICIES)),
];

const PRE_TASK_CONFIG: &[FieldSpec] = &[
    opt("postActivityTaskConfig", SHELL_SCRIPT_CONFIG_REF),
    opt("preActivityTaskConfig", SHELL_SCRIPT_CONFIG_REF),
];

const RESIZE: &[FieldSpec] = &[
    opt("resizeClusterBeforeRunning", BOOL),
    opt("resizeClusterMaxInstances", POSITIVE),
];

/// User-managed preconditions run on a task runner; they may route themselves like activities.
const USER_PRECONDITION: &[FieldSpec] = &[
    opt("preconditionTimeout", PERIOD),
    opt("runsOn", RESOURCE_REF),
    opt("workerGroup", S),
];

const SERVICE_PRECONDITION: &[FieldSpec] = &[req("role", S), opt("preconditionTimeout", PERIOD)];

const PARENT: &[FieldSpec] = &[opt("parent", ANY_REF)];

const RUNS_ON_OR_WORKER_GROUP: Group = Group {
    members: &["runsOn", "workerGroup"],
    rule: GroupRule::RunsOnOrWorkerGroup,
};

const fn exactly_one(members: &'static [&'static str]) -> Group {
    Group {
        members,
        rule: GroupRule::ExactlyOne,
    }
}

const ACTIVITY_SETS: &[&[FieldSpec]] = &[ACTIVITY_COMMON, RUN, SCHED, DEP];
const DATA_NODE_SETS: &[&[FieldSpec]] = &[DATA_NODE_COMMON, RUN, SCHED, DEP];

pub static TYPES: &[TypeSpec] = &[
    TypeSpec {
        name: "Schedule",
        category: Category::Schedule,
        fields: &[
            req("period", PERIOD),
            opt("startAt", ValueKind::Enum(&["FIRST_ACTIVATION_DATE_TIME"])),
            opt("startDateTime", DATETIME),
            opt("endDateTime", DATETIME),
            opt("occurrences", POSITIVE),
        ],
        sets: &[PARENT],
        groups: &[
            exactly_one(&["startAt", "startDateTime"]),
            Group {
                members: &["endDateTime", "occurrences"],
                rule: GroupRule::AtMostOne,
            },
        ],
    },
    TypeSpec {
        name: "ShellCommandActivity",
        category: Category::Activity,
        fields: &[
            opt("command", S),
            opt("scriptUri", S),
            rep("scriptArgument", S),
            opt("stage", BOOL),
            opt("stderr", S),
            opt("stdout", S),
        ],
        sets: ACTIVITY_SETS,
        groups: &[exactly_one(&["command", "scriptUri"]), RUNS_ON_OR_WORKER_GROUP],
    },
    TypeSpec {
        name: "CopyActivity",
        category: Category::Activity,
        fields: &[],
        sets: ACTIVITY_SETS,
        groups: &[RUNS_ON_OR_WORKER_GROUP],
    },
    TypeSpec {
        name: "SqlActivity",
        category: Category::Activity,
        fields: &[
            req("database", DATABASE_REF),
            opt("script", S),
            opt("scriptUri", S),
            opt("queue", S),
            rep("scriptArgument", S),
        ],
        sets: ACTIVITY_SETS,
        groups: &[exactly_one(&["script", "scriptUri"]), RUNS_ON_OR_WORKER_GROUP],
    },
    TypeSpec {
        name: "EmrActivity",
        category: Category::Activity,
        fields: &[rep("postStepCommand", S), rep("preStepCommand", S), rep("step", S)],
        sets: &[ACTIVITY_COMMON, RESIZE, RUN, SCHED, DEP],
        groups: &[RUNS_ON_OR_WORKER_GROUP],
    },
    TypeSpec {
        name: "HadoopActivity",
        category: Category::Activity,
        fields: &[
            req("jarUri", S),
            rep("argument", S),
            opt("hadoopQueue", S),
            opt("mainClass", S),
        ],
        sets: &[ACTIVITY_COMMON, PRE_TASK_CONFIG, RUN, SCHED, DEP],
        groups: &[RUNS_ON_OR_WORKER_GROUP],
    },
    TypeSpec {
        name: "HiveActivity",
        category: Category::Activity,
        fields: &[
            opt("hiveScript", S),
            opt("scriptUri", S),
            opt("hadoopQueue", S),
            rep("scriptVariable", S),
            opt("stage", BOOL),
            // The docs put input and output in an untitled required group with runsOn /
            // workerGroup, yet a Hive script may name its tables itself (sample
            // json-to-dynamodb); they stay optional.
            opt("generatedScriptsPath", S),
        ],
        sets: &[ACTIVITY_COMMON, PRE_TASK_CONFIG, RESIZE, RUN, SCHED, DEP],
        groups: &[exactly_one(&["hiveScript", "scriptUri"]), RUNS_ON_OR_WORKER_GROUP],
    },
    TypeSpec {
        name: "HiveCopyActivity",
        category: Category::Activity,
        fields: &[opt("filterSql", S)],
        sets: &[ACTIVITY_COMMON, PRE_TASK_CONFIG, RESIZE, RUN, SCHED, DEP],
        groups: &[RUNS_ON_OR_WORKER_GROUP],
    },
    TypeSpec {
        name: "PigActivity",
        category: Category::Activity,
        fields: &[
            opt("script", S),
            opt("scriptUri", S),
            rep("scriptVariable", S),
            opt("stage", BOOL),
            opt("generatedScriptsPath", S),
        ],
        sets: &[ACTIVITY_COMMON, PRE_TASK_CONFIG, RESIZE, RUN, SCHED, DEP],
        groups: &[exactly_one(&["script", "scriptUri"]), RUNS_ON_OR_WORKER_GROUP],
    },
    TypeSpec {
        name: "RedshiftCopyActivity",
        category: Category::Activity,
        fields: &[
            req(
                "insertMode",
                ValueKind::Enum(&["KEEP_EXISTING", "OVERWRITE_EXISTING", "TRUNCATE", "APPEND"]),
            ),
            rep("commandOptions", S),
            opt("queue", S),
            opt("transformSql", S),
        ],
        sets: ACTIVITY_SETS,
        groups: &[RUNS_ON_OR_WORKER_GROUP],
    },
    TypeSpec {
        name: "S3DataNode",
        category: Category::DataNode,
        fields: &[
            opt("compression", ValueKind::Enum(&["none", "gzip"])),
            opt("dataFormat", refs(&[Category::DataFormat])),
            opt("directoryPath", S),
            opt("filePath", S),
            opt("manifestFilePath", S),
            // SERVER_SIDE_ENCRYPTION_KMS and s3EncryptionKmsKeyId are Sluice's: SSE-KMS.
            opt(
                "s3EncryptionType",
                ValueKind::Enum(&["SERVER_SIDE_ENCRYPTION", "SERVER_SIDE_ENCRYPTION_KMS", "NONE"]),
            ),
            opt("s3EncryptionKmsKeyId", S),
        ],
        sets: DATA_NODE_SETS,
        groups: &[Group {
            members: &["filePath", "directoryPath"],
            rule: GroupRule::AtMostOne,
        }],
    },
    TypeSpec {
        name: "SqlDataNode",
        category: Category::DataNode,
        fields: &[
            req("table", S),
            opt("createTableSql", S),
            opt("database", DATABASE_REF),
            opt("insertQuery", S),
            opt("schemaName", S),
            opt("selectQuery", S),
        ],
        sets: DATA_NODE_SETS,
        groups: &[],
    },
    TypeSpec {
        name: "DynamoDBDataNode",
        category: Category::DataNode,
        fields: &[
            req("tableName", S),
            opt("dataFormat", refs(&[Category::DataFormat])),
            opt("readThroughputPercent", ValueKind::Double { min: 0.1, max: 1.0 }),
            opt("region", S),
            opt("writeThroughputPercent", ValueKind::Double { min: 0.1, max: 1.0 }),
        ],
        sets: DATA_NODE_SETS,
        groups: &[],
    },
    TypeSpec {
        name: "MySqlDataNode",
        category: Category::DataNode,
        fields: &[
            req("table", S),
            // The older form of this type carried its own connection (sample RDStoS3).
            opt("connectionString", S),
            opt("username", S),
            opt("*password", S),
            opt("createTableSql", S),
            opt("database", DATABASE_REF),
            opt("insertQuery", S),
            opt("schemaName", S),
            opt("selectQuery", S),
        ],
        sets: DATA_NODE_SETS,
        groups: &[],
    },
    TypeSpec {
        name: "RedshiftDataNode",
        category: Category::DataNode,
        fields: &[
            req("database", ref_types(&["RedshiftDatabase"])),
            req("tableName", S),
            opt("createTableSql", S),
            rep("primaryKeys", S),
            opt("schemaName", S),
        ],
        sets: DATA_NODE_SETS,
        groups: &[],
    },
    TypeSpec {
        name: "JdbcDatabase",
        category: Category::Database,
        fields: &[
            req("connectionString", S),
            req("jdbcDriverClass", S),
            req("*password", S),
            req("username", S),
            opt("databaseName", S),
            opt("jdbcDriverJarUri", S),
            rep("jdbcProperties", S),
        ],
        sets: &[PARENT],
        groups: &[],
    },
    TypeSpec {
        name: "RdsDatabase",
        category: Category::Database,
        fields: &[
            req("*password", S),
            req("rdsInstanceId", S),
            req("username", S),
            opt("databaseName", S),
            opt("jdbcDriverJarUri", S),
            rep("jdbcProperties", S),
            opt("region", S),
        ],
        sets: &[PARENT],
        groups: &[],
    },
    TypeSpec {
        name: "RedshiftDatabase",
        category: Category::Database,
        fields: &[
            req("*password", S),
            req("username", S),
            opt("clusterId", S),
            opt("connectionString", S),
            opt("databaseName", S),
            rep("jdbcProperties", S),
            opt("region", S),
        ],
        sets: &[PARENT],
        groups: &[exactly_one(&["clusterId", "connectionString"])],
    },
    TypeSpec {
        name: "Ec2Resource",
        category: Category::Resource,
        fields: &[
            req("resourceRole", S),
            req("role", S),
            opt("actionOnResourceFailure", ValueKind::Enum(&["retryall", "retrynone"])),
            opt("actionOnTaskFailure", ValueKind::Enum(&["continue", "terminate"])),
            opt("associatePublicIpAddress", BOOL),
            opt("availabilityZone", S),
            opt("httpProxy", ref_types(&["HttpProxy"])),
            opt("imageId", S),
            opt("initTimeout", PERIOD),
            opt("instanceCount", INT),
            opt("instanceType", S),
            opt("keyPair", S),
            opt("minInstanceCount", INT),
            opt("region", S),
            opt("runAsUser", S),
            not_allowed("runsOn", RESOURCE_REF),
            rep("securityGroupIds", S),
            rep("securityGroups", S),
            opt("spotBidPrice", S),
            opt("subnetId", S),
            opt("terminateAfter", PERIOD),
            opt("useOnDemandOnLastAttempt", BOOL),
            not_allowed("workerGroup", S),
        ],
        sets: &[RUN, SCHED],
        groups: &[],
    },
    TypeSpec {
        name: "EmrCluster",
        category: Category::Resource,
        fields: &[
            opt("actionOnResourceFailure", ValueKind::Enum(&["retryall", "retrynone"])),
            opt("actionOnTaskFailure", ValueKind::Enum(&["continue", "terminate"])),
            rep("additionalMasterSecurityGroupIds", S),
            rep("additionalSlaveSecurityGroupIds", S),
            opt("amiVersion", S),
            rep("applications", S),
            opt("availabilityZone", S),
            rep("bootstrapAction", S),
            rep("configuration", EMR_CONFIGURATION_REF),
            opt("coreInstanceBidPrice", S),
            opt("coreInstanceCount", INT),
            opt("coreInstanceType", S),
            opt("coreGroupConfiguration", EMR_CONFIGURATION_REF),
            opt("coreEbsConfiguration", ANY_REF),
            opt("EbsBlockDeviceConfig", ANY_REF),
            opt("emrManagedMasterSecurityGroupId", S),
            opt("emrManagedSlaveSecurityGroupId", S),
            opt("emrLogUri", S),
            opt("enableDebugging", S),
            opt(
                "hadoopSchedulerType",
                ValueKind::Enum(&[
                    "PARALLEL_FAIR_SCHEDULING",
                    "PARALLEL_CAPACITY_SCHEDULING",
                    "DEFAULT_SCHEDULER",
                ]),
            ),
            opt("httpProxy", ref_types(&["HttpProxy"])),
            opt("initTimeout", PERIOD),
            // Deprecated (pre-4.x AMIs), still in old definitions.
            opt("installHive", S),
            opt("keyPair", S),
            opt("masterInstanceBidPrice", S),
            opt("masterInstanceType", S),
            opt("masterGroupConfiguration", EMR_CONFIGURATION_REF),
            opt("masterEbsConfiguration", ANY_REF),
            opt("region", S),
            opt("releaseLabel", S),
            opt("resourceRole", S),
            opt("role", S),
            not_allowed("runsOn", RESOURCE_REF),
            opt("serviceAccessSecurityGroupId", S),
            opt("subnetId", S),
            opt("supportedProducts", S),
            // Sluice's extension: the Spark master its EMR-type activities run on (`local[*]`
            // when unset; `local[N]`, `spark://`, `yarn` or `k8s://` for real clusters).
            opt("sparkMaster", S),
            opt("taskInstanceBidPrice", S),
            opt("taskInstanceCount", INT),
            opt("taskInstanceType", S),
            opt("taskGroupConfiguration", EMR_CONFIGURATION_REF),
            opt("taskEbsConfiguration", ANY_REF),
            opt("terminateAfter", ValueKind::PeriodOrHours),
            opt("VolumeSpecification", ANY_REF),
            opt("useOnDemandOnLastAttempt", BOOL),
            not_allowed("workerGroup", S),
        ],
        sets: &[RUN, SCHED],
        groups: &[],
    },
    TypeSpec {
        name: "CSV",
        category: Category::DataFormat,
        fields: &[rep("column", S), opt("escapeChar", S)],
        sets: &[PARENT],
        groups: &[],
    },
    TypeSpec {
        name: "TSV",
        category: Category::DataFormat,
        fields: &[
            rep("column", S),
            opt("columnSeparator", S),
            opt("escapeChar", S),
            opt("recordSeparator", S),
        ],
        sets: &[PARENT],
        groups: &[],
    },
    TypeSpec {
        name: "Custom",
        category: Category::DataFormat,
        fields: &[req("columnSeparator", S), rep("column", S), opt("recordSeparator", S)],
        sets: &[PARENT],
        groups: &[],
    },
    TypeSpec {
        name: "RegEx",
        category: Category::DataFormat,
        fields: &[rep("column", S), opt("inputRegEx", S), opt("outputFormat", S)],
        sets: &[PARENT],
        groups: &[],
    },
    TypeSpec {
        name: "DynamoDBDataFormat",
        category: Category::DataFormat,
        fields: &[rep("column", S)],
        sets: &[PARENT],
        groups: &[],
    },
    TypeSpec {
        name: "DynamoDBExportDataFormat",
        category: Category::DataFormat,
        fields: &[rep("column", S)],
        sets: &[PARENT],
        groups: &[],
    },
    TypeSpec {
        name: "Exists",
        category: Category::Precondition,
        fields: &[],
        sets: &[USER_PRECONDITION, RUN],
        groups: &[],
    },
    TypeSpec {
        name: "S3KeyExists",
        category: Category::Precondition,
        fields: &[req("s3Key", S)],
        sets: &[SERVICE_PRECONDITION, RUN],
        groups: &[],
    },
    TypeSpec {
        name: "S3PrefixNotEmpty",
        category: Category::Precondition,
        fields: &[req("s3Prefix", S)],
        sets: &[SERVICE_PRECONDITION, RUN],
        groups: &[],
    },
    TypeSpec {
        name: "ShellCommandPrecondition",
        category: Category::Precondition,
        fields: &[
            opt("command", S),
            opt("scriptUri", S),
            rep("scriptArgument", S),
            opt("stderr", S),
            opt("stdout", S),
        ],
        sets: &[USER_PRECONDITION, RUN],
        groups: &[exactly_one(&["command", "scriptUri"])],
    },
    TypeSpec {
        name: "DynamoDBTableExists",
        category: Category::Precondition,
        fields: &[req("tableName", S)],
        sets: &[SERVICE_PRECONDITION, RUN],
        groups: &[],
    },
    TypeSpec {
        name: "DynamoDBDataExists",
        category: Category::Precondition,
        fields: &[req("tableName", S)],
        sets: &[SERVICE_PRECONDITION, RUN],
        groups: &[],
    },
    // Legacy and undocumented (reference §d, RdsSqlPrecondition): accepted with the fields of
    // RdsDatabase and SqlActivity it is modelled on, nothing required.
    TypeSpec {
        name: "RdsSqlPrecondition",
        category: Category::Precondition,
        fields: &[
            opt("role", S),
            opt("rdsInstanceId", S),
            opt("database", S),
            opt("username", S),
            opt("*password", S),
            opt("query", S),
        ],
        sets: &[USER_PRECONDITION, RUN],
        groups: &[],
    },
    TypeSpec {
        name: "SnsAlarm",
        category: Category::Action,
        fields: &[req("message", S), req("role", S), req("subject", S), req("topicArn", S)],
        sets: &[PARENT],
        groups: &[],
    },
    TypeSpec {
        name: "Terminate",
        category: Category::Action,
        fields: &[],
        sets: &[PARENT],
        groups: &[],
    },
    TypeSpec {
        name: "ShellScriptConfig",
        category: Category::Utility,
        fields: &[rep("scriptArgument", S), opt("scriptUri", S)],
        sets: &[PARENT],
        groups: &[],
    },
    TypeSpec {
        name: "EmrConfiguration",
        category: Category::Utility,
        fields: &[
            req("classification", S),
            rep("configuration", EMR_CONFIGURATION_REF),
            rep("property", ref_types(&["Property"])),
        ],
        sets: &[PARENT],
        groups: &[],
    },
    TypeSpec {
        name: "Property",
        category: Category::Utility,
        fields: &[req("key", S), req("value", S)],
        sets: &[PARENT],
        groups: &[],
    },
    TypeSpec {
        name: "HttpProxy",
        category: Category::Utility,
        fields: &[
            req("hostname", S),
            req("port", S),
            opt("*password", S),
            opt("s3NoProxy", BOOL),
            opt("username", S),
            opt("windowsDomain", S),
            opt("windowsWorkgroup", S),
        ],
        sets: &[PARENT],
        groups: &[],
    },
];

/// Fields the service or a task runner writes on instances and attempts; a definition may not set
/// them. (`@`-prefixed fields are refused by their prefix.)
pub const RUNTIME_FIELDS: &[&str] = &[
    "cancellationReason",
    "errorId",
    "errorMessage",
    "errorStackTrace",
    "reportProgressTime",
    "emrStepLog",
    "hadoopJobLog",
    "currentRetryCount",
    "lastRetryTime",
    "node",
];

/// Looks a type up by its exact name (type names are case-sensitive, like field names).
pub fn type_spec(name: &str) -> Option<&'static TypeSpec> {
    TYPES.iter().find(|spec| spec.name == name)
}

/// The spec a field has on any type, for objects without a type of their own (`Default` and
/// templates used as parents): their fields are inherited by objects of many types.
pub fn any_type_field(name: &str) -> Option<&'static FieldSpec> {
    TYPES.iter().find_map(|spec| spec.field(name))
}

/// User-defined fields: `my` followed by an upper-case letter or `_`.
pub fn is_user_field(name: &str) -> bool {
    let name = name.strip_prefix('*').unwrap_or(name);
    name.strip_prefix("my")
        .and_then(|rest| rest.chars().next())
        .is_some_and(|next| next.is_ascii_uppercase() || next == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_is_listed_once_and_groups_name_real_fields() {
        for (index, spec) in TYPES.iter().enumerate() {
            assert!(
                TYPES[..index].iter().all(|earlier| earlier.name != spec.name),
                "{} twice",
                spec.name
            );
            for group in spec.groups {
                for member in group.members {
                    assert!(
                        spec.field(member).is_some(),
                        "{}: group member {member} is not a field",
                        spec.name
                    );
                }
            }
        }
    }

    #[test]
    fn user_fields_follow_the_my_prefix_rule() {
        assert!(is_user_field("myComment"));
        assert!(is_user_field("my_customFieldReference"));
        assert!(is_user_field("*myPassword"));
        assert!(!is_user_field("mycomment"));
        assert!(!is_user_field("comment"));
    }
}
