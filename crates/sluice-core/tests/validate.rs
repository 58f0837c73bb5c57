//! Validation behaviour, one definition at a time: `check(definition, expect![[...]])`.
//! Refresh the expectations with `UPDATE_EXPECT=1 cargo test -p sluice-core --test validate`.

use expect_test::{Expect, expect};
use sluice_core::{Limits, definition_file, validate};

fn render(definition_json: &str, limits: &Limits) -> String {
    let definition = definition_file::parse(definition_json).expect("test definitions parse");
    let report = validate(&definition, limits);
    let mut out = String::new();
    for entry in &report.errors {
        for message in &entry.messages {
            out.push_str(&format!("error [{}] {message}\n", entry.id));
        }
    }
    for entry in &report.warnings {
        for message in &entry.messages {
            out.push_str(&format!("warning [{}] {message}\n", entry.id));
        }
    }
    if report.has_fatal_errors() {
        out.push_str(&format!("fatal: {}\n", report.fatal.len()));
    }
    if out.is_empty() { "ok\n".to_string() } else { out }
}

fn check(definition_json: &str, expected: Expect) {
    expected.assert_eq(&render(definition_json, &Limits::default()));
}

const HEAD: &str = r#"{"id": "Default", "workerGroup": "wg", "schedule": {"ref": "Every"}},
    {"id": "Every", "type": "Schedule", "period": "1 hour", "startDateTime": "2026-01-01T00:00:00"}"#;

fn with_head(objects: &str) -> String {
    format!(r#"{{"objects": [{HEAD}, {objects}]}}"#)
}

#[test]
fn a_complete_activity_inheriting_from_default_is_valid() {
    check(
        &with_head(r#"{"id": "A", "type": "ShellCommandActivity", "command": "echo"}"#),
        expect![[r#"
        ok
    "#]],
    );
}

#[test]
fn required_fields_and_groups() {
    check(
        &with_head(
            r#"{"id": "A", "type": "ShellCommandActivity", "command": "a", "scriptUri": "s3://b/k"},
               {"id": "B", "type": "SqlActivity", "script": "select 1"},
               {"id": "C", "type": "S3DataNode", "filePath": "s3://b/f", "directoryPath": "s3://b/d"},
               {"id": "E", "type": "Ec2Resource", "role": "r", "resourceRole": "rr", "workerGroup": "no"}"#,
        ),
        expect![[r#"
            error [A] CONFLICTING_FIELDS: only one of 'command', 'scriptUri' may be set, found 'command', 'scriptUri'
            error [B] MISSING_REQUIRED_FIELD: 'database' is required on SqlActivity
            error [C] CONFLICTING_FIELDS: only one of 'filePath', 'directoryPath' may be set, found 'filePath', 'directoryPath'
            error [E] INVALID_FIELD_NAME: 'workerGroup' is not allowed on Ec2Resource
        "#]],
    );
}

#[test]
fn runs_on_wins_over_worker_group_with_a_warning() {
    check(
        &with_head(
            r#"{"id": "A", "type": "ShellCommandActivity", "command": "a", "runsOn": {"ref": "E"}},
               {"id": "E", "type": "Ec2Resource", "role": "r", "resourceRole": "rr"}"#,
        ),
        expect![[r#"
            warning [A] CONFLICTING_FIELDS: both 'runsOn' and 'workerGroup' are set; 'workerGroup' is ignored and the task runs on 'runsOn'
        "#]],
    );
}

#[test]
fn references_must_exist_fit_the_slot_and_be_references() {
    check(
        &with_head(
            r#"{"id": "A", "type": "ShellCommandActivity", "command": "a", "input": {"ref": "Every"},
                "output": {"ref": "Nowhere"}, "dependsOn": "B", "myNote": {"ref": "Gone"}}"#,
        ),
        expect![[r#"
            error [A] INVALID_FIELD_VALUE: 'dependsOn' must be a reference ({"ref": "<objectId>"}), found a string
            error [A] INVALID_REFERENCE: 'input' must reference a data node, but 'Every' is a Schedule
            error [A] INVALID_REFERENCE: 'myNote' references 'Gone', which is not defined
            error [A] INVALID_REFERENCE: 'output' references 'Nowhere', which is not defined
        "#]],
    );
}

#[test]
fn cycles_in_parent_and_depends_on() {
    check(
        &with_head(
            r#"{"id": "T1", "parent": {"ref": "T2"}}, {"id": "T2", "parent": {"ref": "T1"}},
               {"id": "A", "type": "ShellCommandActivity", "command": "a", "dependsOn": {"ref": "B"}},
               {"id": "B", "type": "ShellCommandActivity", "command": "b", "dependsOn": {"ref": "A"}}"#,
        ),
        expect![[r#"
            error [T1] INVALID_REFERENCE: the 'parent' chain loops: T1 -> T2 -> T1
            error [T2] INVALID_REFERENCE: the 'parent' chain loops: T2 -> T1 -> T2
            error [A] INVALID_REFERENCE: 'dependsOn' forms a cycle: A -> B -> A
            error [B] INVALID_REFERENCE: 'dependsOn' forms a cycle: A -> B -> A
        "#]],
    );
}

#[test]
fn field_types_enums_and_ranges() {
    check(
        &with_head(
            r#"{"id": "A", "type": "ShellCommandActivity", "command": "a", "maximumRetries": "9",
                "failureAndRerunMode": "CASCADE", "stage": "yes", "attemptTimeout": "5 fortnights", "scheduleType": "Cron"},
               {"id": "S", "type": "Schedule", "period": "0 minutes", "startDateTime": "2026-02-30T00:00:00", "occurrences": "2",
                "endDateTime": "2026-03-01T00:00:00"},
               {"id": "D", "type": "DynamoDBDataNode", "tableName": "t", "readThroughputPercent": "2.5"}"#,
        ),
        expect![[r#"
            error [A] INVALID_FIELD_VALUE: 'attemptTimeout': '5 fortnights' is not a period: unit 'fortnights' is not one of minutes, hours, days, weeks, months, years
            error [A] INVALID_FIELD_VALUE: 'maximumRetries': 9 is outside 0..5
            error [A] INVALID_FIELD_VALUE: 'stage': 'yes' is not a boolean: expected true or false
            error [S] INVALID_FIELD_VALUE: 'period': '0 minutes' is not a period: '0' is not a positive whole number
            error [S] INVALID_FIELD_VALUE: 'startDateTime': '2026-02-30T00:00:00' is not a datetime: no such calendar date or time
            error [S] CONFLICTING_FIELDS: only one of 'endDateTime', 'occurrences' may be set, found 'endDateTime', 'occurrences'
            error [D] INVALID_FIELD_VALUE: 'readThroughputPercent': 2.5 is outside 0.1..1
            warning [D] NOT_SUPPORTED: Sluice does not support DynamoDBDataNode yet; ActivatePipeline will refuse this pipeline until it can
        "#]],
    );
}

#[test]
fn on_demand_pipelines_need_no_schedule_and_allow_no_other_schedule_type() {
    check(
        r#"{"objects": [{"id": "Default", "scheduleType": "ONDEMAND", "workerGroup": "wg"},
            {"id": "A", "type": "ShellCommandActivity", "command": "a"},
            {"id": "B", "type": "ShellCommandActivity", "command": "b", "scheduleType": "cron"},
            {"id": "C", "type": "ShellCommandActivity", "command": "c", "scheduleType": "ondemand"}]}"#,
        expect![[r#"
            error [B] INVALID_FIELD_VALUE: 'scheduleType' is 'cron', but the pipeline is ondemand; an ondemand pipeline uses no other schedule type
            error [C] INVALID_FIELD_VALUE: 'scheduleType' ondemand may only be set on Default
        "#]],
    );
    check(
        r#"{"objects": [{"id": "Default", "workerGroup": "wg"}, {"id": "A", "type": "ShellCommandActivity", "command": "a"}]}"#,
        expect![[r#"
            error [A] MISSING_REQUIRED_FIELD: 'schedule' is required on ShellCommandActivity (set it here or on Default, or make the pipeline ondemand)
        "#]],
    );
}

#[test]
fn types_names_and_runtime_fields() {
    check(
        &with_head(
            r#"{"id": "A", "type": "ShellComandActivity", "command": "a"},
               {"id": "B", "type": "ShellCommandActivity", "command": "b", "@status": "FINISHED", "errorMessage": "x", "comand": "y"},
               {"id": "C"},
               {"id": "B", "type": "CSV"}"#,
        ),
        expect![[r#"
            error [A] INVALID_OBJECT_TYPE: 'ShellComandActivity' is not a known object type
            error [B] INVALID_FIELD_NAME: '@status' is a read-only runtime field and cannot be set
            error [B] INVALID_FIELD_NAME: 'errorMessage' is a runtime field that the service sets; a definition cannot set it
            error [B] INVALID_OBJECT_ID: the id 'B' is used by more than one object
            error [C] MISSING_REQUIRED_FIELD: 'type' is required (only 'Default' and objects used as a 'parent' may omit it)
            warning [B] INVALID_FIELD_NAME: 'comand' is not a known field of ShellCommandActivity and is ignored (user-defined fields start with 'my'); did you mean 'command'?
        "#]],
    );
}

#[test]
fn a_template_parent_supplies_type_and_fields() {
    check(
        &with_head(
            r#"{"id": "Base", "type": "ShellCommandActivity", "command": "a", "maximumRetries": "1"},
               {"id": "A", "parent": {"ref": "Base"}, "myNote": "x"}"#,
        ),
        expect![[r#"
            ok
        "#]],
    );
}

#[test]
fn parameters_declarations_and_values() {
    check(
        r##"{"objects": [{"id": "Default", "scheduleType": "ondemand", "workerGroup": "#{myGroup}"},
              {"id": "A", "type": "ShellCommandActivity", "command": "echo #{myCount} #{*myPassword} #{myMissing} #{oops",
               "maximumRetries": "#{myCount}"}],
            "parameters": [
              {"id": "myGroup", "allowedValues": ["a", "b"], "default": "c"},
              {"id": "myCount", "type": "Integer"},
              {"id": "*myPassword", "optional": "true"},
              {"id": "badName"},
              {"id": "myList", "type": "Double", "isArray": "false", "optional": "maybe"},
              {"id": "myKind", "type": "Blob"}],
            "values": {"myCount": "7", "myList": ["1.5", "x"], "myStray": "1"}}"##,
        expect![[r#"
            error [A] INVALID_FIELD_VALUE: 'command': the expression starting at position 44 is not closed with '}'
            error [A] INVALID_FIELD_VALUE: 'maximumRetries': 7 is outside 0..5
            error [myGroup] INVALID_FIELD_VALUE: 'default': 'c' is not one of the allowed values a, b
            error [badName] INVALID_FIELD_NAME: parameter id 'badName' must start with 'my' (or '*my' for a secret)
            error [badName] MISSING_REQUIRED_FIELD: parameter 'badName' has no value and no default; supply a value or declare it "optional": "true"
            error [myList] INVALID_FIELD_VALUE: 'optional': 'maybe' is not a boolean: expected true or false
            error [myList] INVALID_FIELD_VALUE: parameter 'myList' takes one value, found 2 (declare "isArray": "true" for a list)
            error [myList] INVALID_FIELD_VALUE: value of parameter 'myList': 'x' is not a number
            error [myKind] INVALID_FIELD_VALUE: parameter type 'Blob' is not one of String, Integer, Double, AWS::S3::ObjectKey
            warning [myStray] UNDECLARED_PARAMETER: a value is given for 'myStray', which has no parameter object; it is used as a String
        "#]],
    );
}

#[test]
fn undeclared_parameters_in_expressions_are_errors() {
    check(
        &with_head(
            r#"{"id": "A", "type": "ShellCommandActivity", "command": "echo #{myMissing} #{format(@scheduledStartTime, 'YYYY')}"}"#,
        ),
        expect![[r#"
            error [A] INVALID_FIELD_VALUE: 'command': '#{myMissing}' at position 5 is neither a declared parameter nor a field of this object
        "#]],
    );
}

#[test]
fn service_limits_are_fatal() {
    let many_fields: String = (0..51)
        .map(|index| format!(r#""myField{index}": "v""#))
        .collect::<Vec<_>>()
        .join(", ");
    let long_value = "x".repeat(10_241);
    check(
        &with_head(&format!(
            r#"{{"id": "A", "type": "ShellCommandActivity", "command": "a", {many_fields}}},
               {{"id": "B", "type": "ShellCommandActivity", "command": "{long_value}"}},
               {{"id": "C", "type": "ShellCommandActivity", "command": ""}}"#
        )),
        expect![[r#"
            error [A] LIMIT_EXCEEDED: the object has 53 fields; the limit is 50
            error [B] LIMIT_EXCEEDED: field 'command' is 10241 bytes; the limit is 10240
            error [C] INVALID_FIELD_VALUE: field 'command' has an empty value
            fatal: 3
        "#]],
    );
    let limits = Limits {
        max_objects: 3,
        ..Limits::default()
    };
    let report = render(
        &with_head(r#"{"id": "A", "type": "CSV"}, {"id": "B", "type": "CSV"}"#),
        &limits,
    );
    assert!(
        report.contains("error [B] LIMIT_EXCEEDED: the definition has 4 objects; the limit is 3 per pipeline"),
        "{report}"
    );
}

#[test]
fn literal_secrets_are_flagged() {
    check(
        &with_head(
            r#"{"id": "Db", "type": "JdbcDatabase", "connectionString": "jdbc:x", "jdbcDriverClass": "D", "username": "u", "*password": "hunter2"}"#,
        ),
        expect![[r#"
            warning [Db] LITERAL_SECRET: '*password' holds a literal value; pass it as a '*my...' parameter so it is masked and kept out of the definition
            warning [Db] NOT_SUPPORTED: Sluice connects to PostgreSQL, Redshift (over PostgreSQL's protocol), MySQL and MariaDB; 'jdbc:x' is none of them; ActivatePipeline will refuse this pipeline until it can
        "#]],
    );
}

#[test]
fn bad_expressions_name_the_field_and_position() {
    check(
        &with_head(
            r#"{"id": "A", "type": "ShellCommandActivity", "command": "echo #{format(@scheduledStartTime, 'YYYY'}"},
               {"id": "B", "type": "ShellCommandActivity", "command": "echo #{plusDays(@scheduledStartTime, 1)} #{frobnicate(1)}"},
               {"id": "C", "type": "ShellCommandActivity", "command": "echo #{1 +}"}"#,
        ),
        expect![[r#"
            error [A] INVALID_FIELD_VALUE: 'command': expected ',' or ')' at position 41
            error [B] INVALID_FIELD_VALUE: 'command': 'frobnicate' is not a function of the expression language at position 43
            error [C] INVALID_FIELD_VALUE: 'command': the expression ends too early at position 10
        "#]],
    );
}

#[test]
fn guard_rails_refuse_credentials_and_flag_personal_data() {
    check(
        r##"{"objects": [{"id": "Default", "scheduleType": "ondemand", "workerGroup": "wg"},
            {"id": "Db", "name": "jane.doe@example.com", "type": "JdbcDatabase", "connectionString": "jdbc:mysql://admin:hunter2@db:3306/x",
             "jdbcDriverClass": "D", "username": "u", "*password": "#{*myPassword}"},
            {"id": "Safe", "type": "JdbcDatabase", "connectionString": "jdbc:mysql://admin:#{*myPassword}@db:3306/x",
             "jdbcDriverClass": "D", "username": "u", "*password": "#{*myPassword}"}],
           "parameters": [{"id": "*myPassword"}, {"id": "myUrl"}],
           "values": {"*myPassword": "pw", "myUrl": "https://bob:secret@example.com/"}}"##,
        expect![[r#"
            error [Db] CREDENTIAL_IN_DEFINITION: field 'connectionString' holds a password inside a URL; put the secret in a '*' field or a '*my' parameter
            error [myUrl] CREDENTIAL_IN_DEFINITION: the value of parameter 'myUrl' holds a password inside a URL; declare it as '*myUrl'
            warning [Db] PERSONAL_DATA: the object's name seems to hold an email address; ids and names reach logs and audit records unencrypted
            fatal: 2
        "#]],
    );
}
