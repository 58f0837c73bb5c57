use std::collections::HashMap;

use chrono::NaiveDateTime;

use super::*;

struct TestScope {
    names: HashMap<&'static str, Value>,
    members: HashMap<(&'static str, &'static str), Value>,
}

impl Scope for TestScope {
    fn resolve(&self, name: &str) -> Option<Value> {
        self.names.get(name).cloned()
    }

    fn member(&self, object_id: &str, name: &str) -> Option<Value> {
        self.members
            .iter()
            .find(|((id, field), _)| *id == object_id && *field == name)
            .map(|(_, value)| value.clone())
    }
}

fn time(text: &str) -> NaiveDateTime {
    crate::values::parse_date_time(text).expect("test datetime")
}

fn scope() -> TestScope {
    let mut names = HashMap::new();
    names.insert("@scheduledStartTime", Value::DateTime(time("2011-05-24T17:10:00")));
    names.insert("myBucket", Value::String("bucket".into()));
    names.insert("*myPassword", Value::String("pw".into()));
    names.insert(
        "myList",
        Value::List(vec![Value::String("one".into()), Value::String("two".into())]),
    );
    names.insert("input", Value::Ref("InputNode".into()));
    names.insert("endOfMonth", Value::DateTime(time("2011-01-31T08:00:00")));
    let mut members = HashMap::new();
    members.insert(("InputNode", "directoryPath"), Value::String("s3://in/".into()));
    TestScope { names, members }
}

fn eval(expression: &str) -> String {
    match evaluate(expression, &scope()) {
        Ok(value) => value.render(),
        Err(error) => format!("error: {error}"),
    }
}

#[test]
fn the_documented_date_functions() {
    let dt = "@scheduledStartTime";
    let cases = [
        (format!("year({dt})"), "2011"),
        (format!("month({dt})"), "5"),
        (format!("day({dt})"), "24"),
        (format!("hour({dt})"), "17"),
        (format!("minute({dt})"), "10"),
        (format!("dayOfYear({dt})"), "144"),
        (format!("plusDays({dt}, 1)"), "2011-05-25T17:10:00"),
        (format!("minusMonths({dt}, 1)"), "2011-04-24T17:10:00"),
        (format!("plusMinutes({dt}, 50)"), "2011-05-24T18:00:00"),
        (format!("minusHours({dt}, 18)"), "2011-05-23T23:10:00"),
        (format!("plusWeeks({dt}, 1)"), "2011-05-31T17:10:00"),
        (format!("plusYears({dt}, 1)"), "2012-05-24T17:10:00"),
        (format!("yesterday({dt})"), "2011-05-23T17:10:00"),
        (format!("midnight({dt})"), "2011-05-24T00:00:00"),
        (format!("firstOfMonth({dt})"), "2011-05-01T17:10:00"),
        (format!("sunday({dt})"), "2011-05-22T17:10:00"),
        ("makeDate(2011, 5, 24)".to_string(), "2011-05-24T00:00:00"),
        ("makeDateTime(2011, 5, 24, 14, 21)".to_string(), "2011-05-24T14:21:00"),
        (
            format!("format({dt}, 'YYYY-MM-dd HH:mm:ss z')"),
            "2011-05-24 17:10:00 UTC",
        ),
        (format!("{dt}.format('YYYY-MM-dd')"), "2011-05-24"),
        (
            format!("format(minusMinutes({dt},30),'YYYY-MM-dd hh:mm:ss')"),
            "2011-05-24 04:40:00",
        ),
        ("plusMonths(endOfMonth, 1)".to_string(), "2011-02-28T08:00:00"),
        (format!("plusPeriod({dt}, '1 day')"), "2011-05-25T17:10:00"),
        (format!("minusPeriod({dt}, '2 hours')"), "2011-05-24T15:10:00"),
    ];
    for (expression, expected) in cases {
        assert_eq!(eval(&expression), expected, "{expression}");
    }
}

#[test]
fn arithmetic_strings_and_lists() {
    let cases = [
        ("1/2", "0"),
        ("1.0/2", "0.5"),
        ("2^2", "4.0"),
        ("2^3^2", "512.0"),
        ("2 + 3 * 4", "14"),
        ("(2 + 3) * 4", "20"),
        ("-3 + 10", "7"),
        ("\"hel\" + \"lo\"", "hello"),
        ("'n=' + 4", "n=4"),
        ("'this is ' + myList", "this is one,this is two"),
        ("myBucket + '/x'", "bucket/x"),
        ("*myPassword", "pw"),
        ("input.directoryPath", "s3://in/"),
        ("input", "InputNode"),
    ];
    for (expression, expected) in cases {
        assert_eq!(eval(expression), expected, "{expression}");
    }
}

#[test]
fn errors_name_the_position() {
    let cases = [
        ("1 +", "error: the expression ends too early (at position 3)"),
        ("'open", "error: the string is not closed (at position 0)"),
        ("1 2", "error: unexpected text after the expression (at position 2)"),
        ("", "error: the expression is empty (at position 0)"),
        (
            "nope(1)",
            "error: 'nope' is not a function of the expression language (at position 0)",
        ),
        (
            "year(myMissing)",
            "error: 'myMissing' is not defined here (at position 5)",
        ),
        ("1/0", "error: division by zero (at position 1)"),
        (
            "myBucket.size",
            "error: '.size' needs a reference, found a string (at position 9)",
        ),
        (
            "format(@scheduledStartTime, 'qq')",
            "error: 'q' is not a letter of Joda date patterns (in 'qq') (at position 0)",
        ),
        ("year(1, 2)", "error: year() takes 1 argument(s), got 2 (at position 0)"),
        (
            "makeDate(2011, 2, 30)",
            "error: makeDate() was given no such date or time (at position 0)",
        ),
        ("a # b", "error: unexpected character '#' (at position 2)"),
        (
            "myList + myList + myList + myList + myList + myList + myList + myList + myList + myList",
            "error: the result would hold more than 1000 values (at position 79)",
        ),
    ];
    for (expression, expected) in cases {
        assert_eq!(eval(expression), expected, "{expression}");
    }
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(eval(&deep).contains("nests deeper than 64 levels"));
    let negations = format!("{}1", "-".repeat(10_000));
    assert!(eval(&negations).contains("nests deeper than 64 levels"));
    let powers = vec!["2"; 10_000].join("^");
    assert!(eval(&powers).contains("nests deeper than 64 levels"));
    let calls = format!(
        "{}@scheduledStartTime{}",
        "yesterday(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert!(eval(&calls).contains("nests deeper than 64 levels"));
}

#[test]
fn joda_patterns() {
    let dt = time("2011-05-24T17:10:05");
    let cases = [
        ("YYYY-MM-dd'T'HH:mm:ss", "2011-05-24T17:10:05"),
        ("YY/M/d", "11/5/24"),
        ("EEEE, MMMM d", "Tuesday, May 24"),
        ("EEE MMM", "Tue May"),
        ("h:mm a", "5:10 PM"),
        ("k K", "17 5"),
        ("D e w xxxx", "144 2 21 2011"),
        ("'it''s' HH", "it's 17"),
        ("Z ZZ ZZZ z SSS G C", "+0000 +00:00 UTC UTC 000 AD 20"),
    ];
    for (pattern, expected) in cases {
        assert_eq!(format_date_time(dt, pattern).expect(pattern), expected, "{pattern}");
    }
}

#[test]
fn joda_year_week_and_month_edge_cases() {
    // 2012-12-31 is a Monday in ISO week 1 of 2013: only the week-year (x) says 2013.
    let new_years_eve = time("2012-12-31T23:59:59");
    let cases = [
        ("YYYY yyyy xxxx ww", "2012 2012 2013 01"),
        ("YY yy xx", "12 12 13"),
        ("M MM MMM MMMM", "12 12 Dec December"),
        ("D DDD", "366 366"),
        ("hh:mm a, kk", "11:59 PM, 23"),
    ];
    for (pattern, expected) in cases {
        assert_eq!(
            format_date_time(new_years_eve, pattern).expect(pattern),
            expected,
            "{pattern}"
        );
    }
    // 2010-01-03 is a Sunday in ISO week 53 of 2009.
    let sunday = time("2010-01-03T00:00:00");
    assert_eq!(
        format_date_time(sunday, "xxxx-'W'ww-e YYYY").expect("pattern"),
        "2009-W53-7 2010"
    );
    assert_eq!(format_date_time(sunday, "h a K k").expect("pattern"), "12 AM 0 24");
    assert_eq!(
        format_date_time(time("2011-09-05T00:00:00"), "MMM. d").expect("pattern"),
        "Sep. 5"
    );
    assert!(
        format_date_time(sunday, "YYYY-MM-dd q").is_err(),
        "q is not a Joda letter"
    );
    assert!(format_date_time(sunday, "'open").is_err(), "an unclosed quote");
}

#[test]
fn time_zones() {
    let dt = "@scheduledStartTime"; // 2011-05-24T17:10:00 UTC
    let cases = [
        (
            format!("inTimeZone({dt}, 'America/Los_Angeles')"),
            "2011-05-24T10:10:00",
        ),
        (format!("hour(inTimeZone({dt}, 'America/Los_Angeles'))"), "10"),
        (
            format!("format(inTimeZone({dt}, 'America/Los_Angeles'), 'YYYY-MM-dd HH:mm z Z ZZ ZZZ')"),
            "2011-05-24 10:10 PDT -0700 -07:00 America/Los_Angeles",
        ),
        (
            format!("format(inTimeZone({dt}, 'Asia/Kolkata'), 'HH:mm Z')"),
            "22:40 +0530",
        ),
        (
            format!("format(inTimeZone({dt}, 'UTC'), 'HH:mm z Z')"),
            "17:10 UTC +0000",
        ),
        (format!("format({dt}, 'HH:mm z ZZ')"), "17:10 UTC +00:00"),
        // Days move the local calendar across the DST change; hours move the instant.
        (
            "format(plusDays(inTimeZone(makeDateTime(2011,11,6,7,30), 'America/New_York'), 1), 'dd HH:mm z')".into(),
            "07 02:30 EST",
        ),
        (
            "format(plusHours(inTimeZone(makeDateTime(2011,11,6,5,30), 'America/New_York'), 1), 'dd HH:mm z')".into(),
            "06 01:30 EST",
        ),
        (
            format!("midnight(inTimeZone({dt}, 'Asia/Tokyo'))"),
            "2011-05-25T00:00:00",
        ),
        // A zoned time given to a function that takes an instant counts as that instant.
        (
            format!("inTimeZone(inTimeZone({dt}, 'Asia/Tokyo'), 'Europe/London')"),
            "2011-05-24T18:10:00",
        ),
    ];
    for (expression, expected) in &cases {
        assert_eq!(eval(expression), *expected, "{expression}");
    }
    assert!(eval(&format!("inTimeZone({dt}, 'Mars/Olympus')")).contains("is not a time zone id"));
    assert!(eval(&format!("inTimeZone({dt})")).contains("takes 2 argument"));
}

#[test]
fn templates_splice_values_and_expand_lists() {
    let scope = scope();
    assert_eq!(
        evaluate_template(
            "s3://#{myBucket}/#{format(@scheduledStartTime,'YYYY-MM-dd')}/x.csv",
            &scope
        )
        .expect("evaluates"),
        vec!["s3://bucket/2011-05-24/x.csv".to_string()]
    );
    assert_eq!(
        evaluate_template("#{myList}!", &scope).expect("evaluates"),
        vec!["one!".to_string(), "two!".to_string()]
    );
    assert_eq!(
        evaluate_template("no expressions, ${INPUT1_STAGING_DIR}", &scope).expect("evaluates"),
        vec!["no expressions, ${INPUT1_STAGING_DIR}".to_string()]
    );
    let error = evaluate_template("echo #{year(x)}", &scope).unwrap_err();
    assert_eq!(error.position, 12, "positions count from the start of the field value");
}

#[test]
fn component_scope_reads_fields_inheritance_parameters_and_references() {
    let definition = crate::definition_file::parse(
        r##"{"objects": [
            {"id": "Default", "workerGroup": "wg", "myEnv": "prod"},
            {"id": "Base", "type": "S3DataNode", "directoryPath": "s3://bucket/#{myEnv}/#{id}"},
            {"id": "In", "parent": {"ref": "Base"}},
            {"id": "Copy", "type": "ShellCommandActivity", "input": {"ref": "In"}, "command": "cp #{input.directoryPath}",
             "scriptArgument": ["a", "b"]}],
           "parameters": [{"id": "myRegion", "default": "eu-west-1"}, {"id": "*myPassword"}],
           "values": {"*myPassword": "pw"}}"##,
    )
    .expect("parses");
    let scope = ComponentScope::new(&definition, "df-1", "Copy").expect("object exists");
    let render = |text: &str| {
        evaluate_template(text, &scope)
            .map(|parts| parts.join("|"))
            .unwrap_or_else(|error| format!("error: {error}"))
    };
    assert_eq!(
        render("#{workerGroup} #{myRegion} #{*myPassword} #{@pipelineId} #{id}"),
        "wg eu-west-1 pw df-1 Copy"
    );
    assert_eq!(render("#{input.directoryPath}"), "s3://bucket/prod/In");
    assert_eq!(render("#{command}"), "cp s3://bucket/prod/In");
    assert_eq!(render("#{scriptArgument}"), "a|b");
    assert_eq!(
        render("#{input.@scheduledStartTime}"),
        "error: 'In' has no field '@scheduledStartTime' (at position 8)"
    );
    assert_eq!(
        render("#{@scheduledStartTime}"),
        "error: '@scheduledStartTime' is not defined here (at position 2)"
    );
    assert!(ComponentScope::new(&definition, "df-1", "Nope").is_none());
    let masked = ComponentScope::new(&definition, "df-1", "Copy")
        .expect("object exists")
        .masking_secrets();
    assert_eq!(
        evaluate_template("#{*myPassword}/#{myRegion}", &masked).expect("evaluates"),
        vec![format!("{MASK}/eu-west-1")]
    );
    // A `*` parameter named without its star is still a secret.
    assert_eq!(
        evaluate_template("#{myPassword}", &masked).expect("evaluates"),
        vec![MASK.to_string()]
    );
}
