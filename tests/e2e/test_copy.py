"""CopyActivity between SQL tables and object stores in every data format, and
RedshiftCopyActivity's insert modes, against the running PostgreSQL and MariaDB and a real
S3-protocol server (s3s-fs); two AWS samples run unchanged."""

import gzip
import json
import os
import subprocess
import time

from conftest import ROOT, SLUICE

SAMPLES = ROOT.parent / "shared" / "reference" / "dp-samples"


def psql(sql):
    return subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-tA", "-v", "ON_ERROR_STOP=1",
                           "-c", sql], capture_output=True, text=True, check=True).stdout.strip()


def mariadb(sql):
    return subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", "test", "-N", "-e", sql],
                          capture_output=True, text=True, check=True).stdout.strip()


def run(tmp_path, definition, *args, s3=None):
    path = tmp_path / f"definition-{time.time_ns()}.json"
    path.write_text(json.dumps(definition))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    extra = []
    if s3 is not None:
        env.update(s3.env)
        extra = ["--s3-endpoint", s3.endpoint]
    return subprocess.run([SLUICE, "run", str(path), "--log-dir", str(tmp_path / "logs"), *extra, *args],
                          capture_output=True, text=True, env=env, timeout=180)


def s3_client(s3):
    import boto3
    return boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1",
                        aws_access_key_id=s3.ACCESS_KEY, aws_secret_access_key=s3.SECRET_KEY)


def databases():
    subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", "-e",
                    "CREATE USER IF NOT EXISTS 'sluice_e2e'@'%' IDENTIFIED BY 'e2e-Secret/pw@1'; "
                    "CREATE USER IF NOT EXISTS 'sluice_e2e'@'localhost' IDENTIFIED BY 'e2e-Secret/pw@1'; "
                    "GRANT ALL ON test.* TO 'sluice_e2e'@'%'; GRANT ALL ON test.* TO 'sluice_e2e'@'localhost';"],
                   check=True, capture_output=True)
    return [
        {"id": "Pg", "name": "Pg", "type": "JdbcDatabase", "jdbcDriverClass": "org.postgresql.Driver",
         "connectionString": "jdbc:postgresql://127.0.0.1:5432/test", "username": "postgres",
         "*password": "pg-Trusted-anyway"},
        {"id": "Maria", "name": "Maria", "type": "JdbcDatabase", "jdbcDriverClass": "com.mysql.jdbc.Driver",
         "connectionString": "jdbc:mysql://127.0.0.1:3306/test", "username": "sluice_e2e",
         "*password": "e2e-Secret/pw@1"},
    ]


def test_copy_between_tables_and_a_bucket_in_every_format(tmp_path, s3_server):
    table = f"copy_e2e_{time.time_ns()}"
    psql(f"CREATE TABLE {table}_src (id int PRIMARY KEY, name text, amount numeric(10,2), day date);"
         f"INSERT INTO {table}_src VALUES (1, 'Smith, Jane', 10.50, '2026-01-02'), (2, 'say \"hi\"', NULL, NULL),"
         f"(3, 'tab\there', 0, '2026-03-04'), (4, '', 7.25, '2026-05-06')")
    s3 = s3_client(s3_server)
    s3.create_bucket(Bucket="tables")
    (tmp_path / "logs.txt").write_text("alpha 1 2026-01-01\nbeta 22 2026-02-02\n")
    definition = {"objects": [
        {"id": "Default", "name": "Default", "scheduleType": "ondemand", "workerGroup": "local",
         "failureAndRerunMode": "cascade"},
        *databases(),
        {"id": "Csv", "name": "Csv", "type": "CSV"},
        {"id": "Tsv", "name": "Tsv", "type": "TSV", "escapeChar": "\\"},
        {"id": "Pipes", "name": "Pipes", "type": "Custom", "columnSeparator": "|", "escapeChar": "\\",
         "column": ["id INT", "name STRING", "amount DECIMAL", "day DATE"]},
        {"id": "Lines", "name": "Lines", "type": "RegEx", "inputRegEx": "(\\w+) (\\d+) (\\S+)",
         "outputFormat": "%1$s;%2$s;%3$s"},
        # PostgreSQL → a bucket, gzip CSV.
        {"id": "Source", "name": "Source", "type": "SqlDataNode", "database": {"ref": "Pg"},
         "table": f"{table}_src", "selectQuery": f"SELECT id, name, amount, day FROM {table}_src ORDER BY id"},
        {"id": "Bucket", "name": "Bucket", "type": "S3DataNode", "directoryPath": "s3://tables/export",
         "compression": "gzip", "dataFormat": {"ref": "Csv"}},
        {"id": "Export", "name": "Export", "type": "CopyActivity", "input": {"ref": "Source"},
         "output": {"ref": "Bucket"}},
        # The bucket → MariaDB, a table created on the way.
        {"id": "MariaTable", "name": "MariaTable", "type": "SqlDataNode", "database": {"ref": "Maria"},
         "table": table, "createTableSql": f"CREATE TABLE {table} (id int, name varchar(40), "
                                           "amount decimal(10,2), day date)"},
        {"id": "Import", "name": "Import", "type": "CopyActivity", "input": {"ref": "Bucket"},
         "output": {"ref": "MariaTable"}, "dependsOn": {"ref": "Export"}},
        # MariaDB (a MySqlDataNode with its own connection) → one TSV file, then a Custom file.
        {"id": "MariaNode", "name": "MariaNode", "type": "MySqlDataNode",
         "connectionString": "jdbc:mysql://127.0.0.1:3306/test", "username": "root", "table": table,
         "selectQuery": "select * from #{table} order by id"},
        {"id": "TsvFile", "name": "TsvFile", "type": "S3DataNode", "filePath": "s3://tables/tsv/all.tsv",
         "dataFormat": {"ref": "Tsv"}},
        {"id": "ToTsv", "name": "ToTsv", "type": "CopyActivity", "input": {"ref": "MariaNode"},
         "output": {"ref": "TsvFile"}, "dependsOn": {"ref": "Import"}},
        {"id": "PipeFile", "name": "PipeFile", "type": "S3DataNode", "filePath": f"file://{tmp_path}/pipes.txt",
         "dataFormat": {"ref": "Pipes"}},
        {"id": "TsvToPipes", "name": "TsvToPipes", "type": "CopyActivity", "input": {"ref": "TsvFile"},
         "output": {"ref": "PipeFile"}, "dependsOn": {"ref": "ToTsv"}},
        # RegEx lines → PostgreSQL through an insertQuery, and back out in the RegEx outputFormat.
        {"id": "LogFile", "name": "LogFile", "type": "S3DataNode", "filePath": f"file://{tmp_path}/logs.txt",
         "dataFormat": {"ref": "Lines"}},
        {"id": "Events", "name": "Events", "type": "SqlDataNode", "database": {"ref": "Pg"},
         "table": f"{table}_events", "createTableSql": f"CREATE TABLE {table}_events (who text, n int, day date)",
         "insertQuery": f"INSERT INTO {table}_events (who, n, day) VALUES (?, ?, ?)"},
        {"id": "LoadLines", "name": "LoadLines", "type": "CopyActivity", "input": {"ref": "LogFile"},
         "output": {"ref": "Events"}},
        {"id": "LinesOut", "name": "LinesOut", "type": "S3DataNode", "filePath": f"file://{tmp_path}/lines.txt",
         "dataFormat": {"ref": "Lines"}},
        {"id": "LinesBack", "name": "LinesBack", "type": "CopyActivity", "output": {"ref": "LinesOut"},
         "input": {"ref": "EventsSorted"}, "dependsOn": {"ref": "LoadLines"}},
        {"id": "EventsSorted", "name": "EventsSorted", "type": "SqlDataNode", "database": {"ref": "Pg"},
         "table": f"{table}_events", "selectQuery": f"SELECT who, n, day FROM {table}_events ORDER BY n"},
    ]}
    try:
        result = run(tmp_path, definition, s3=s3_server)
        assert result.returncode == 0, result.stderr + result.stdout
        exported = s3.get_object(Bucket="tables", Key="export/part-00000.csv.gz")["Body"].read()
        assert gzip.decompress(exported).decode() == (
            '1,"Smith, Jane",10.50,2026-01-02\n2,"say ""hi""",,\n3,tab\there,0.00,2026-03-04\n4,,7.25,2026-05-06\n')
        rows = mariadb(f"SELECT id, IFNULL(name, 'NULL'), IFNULL(amount, 'NULL'), IFNULL(day, 'NULL') "
                       f"FROM {table} ORDER BY id").split("\n")
        assert rows == ["1\tSmith, Jane\t10.50\t2026-01-02", '2\tsay "hi"\tNULL\tNULL',
                        "3\ttab\\there\t0.00\t2026-03-04", "4\tNULL\t7.25\t2026-05-06"]
        tsv = s3.get_object(Bucket="tables", Key="tsv/all.tsv")["Body"].read().decode()
        assert tsv.split("\n")[1] == 'say "hi"'.join(["2\t", "\t\\N\t\\N"])
        assert "tab\\\there" in tsv, "the separator inside a value is escaped"
        assert (tmp_path / "pipes.txt").read_text().split("\n")[:2] == [
            "1|Smith, Jane|10.50|2026-01-02", '2|say "hi"|\\N|\\N']
        assert psql(f"SELECT who || ':' || n || ':' || day FROM {table}_events ORDER BY n") == \
            "alpha:1:2026-01-01\nbeta:22:2026-02-02"
        assert (tmp_path / "lines.txt").read_text() == "alpha;1;2026-01-01\nbeta;22;2026-02-02\n"
        (summary,) = (tmp_path / "logs").glob("df-*/Import/*/*/stdout")
        assert "copied 4 record(s) from s3://tables/export" in summary.read_text()
    finally:
        psql(f"DROP TABLE IF EXISTS {table}_src; DROP TABLE IF EXISTS {table}_events")
        mariadb(f"DROP TABLE IF EXISTS {table}")


def test_a_failing_copy_writes_nothing_and_names_the_cause(tmp_path):
    table = f"copy_fail_{time.time_ns()}"
    psql(f"CREATE TABLE {table} (id int PRIMARY KEY, name text)")
    # The third record is not a number: the whole load is rolled back.
    (tmp_path / "in.csv").write_text("1,one\n2,two\nthree,3\n")
    (tmp_path / "bad.txt").write_text("fine 1\nnot matching at all!\n")
    definition = {"objects": [
        {"id": "Default", "name": "Default", "scheduleType": "ondemand", "workerGroup": "local",
         "maximumRetries": "0"},
        *databases(),
        {"id": "File", "name": "File", "type": "S3DataNode", "filePath": f"file://{tmp_path}/in.csv"},
        {"id": "Table", "name": "Table", "type": "SqlDataNode", "database": {"ref": "Pg"}, "table": table},
        {"id": "Load", "name": "Load", "type": "CopyActivity", "input": {"ref": "File"}, "output": {"ref": "Table"}},
        {"id": "Lines", "name": "Lines", "type": "RegEx", "inputRegEx": "(\\w+) (\\d+)"},
        {"id": "BadFile", "name": "BadFile", "type": "S3DataNode", "filePath": f"file://{tmp_path}/bad.txt",
         "dataFormat": {"ref": "Lines"}},
        {"id": "LoadBad", "name": "LoadBad", "type": "CopyActivity", "input": {"ref": "BadFile"},
         "output": {"ref": "Table"}},
        {"id": "Missing", "name": "Missing", "type": "SqlDataNode", "database": {"ref": "Maria"},
         "table": "no_such_table_sluice"},
        {"id": "LoadMissing", "name": "LoadMissing", "type": "CopyActivity", "input": {"ref": "File"},
         "output": {"ref": "Missing"}},
    ]}
    try:
        result = run(tmp_path, definition)
        assert result.returncode == 1, result.stderr + result.stdout
        assert 'invalid input syntax for type integer: "three"' in result.stdout, result.stdout
        assert "line 2 does not match inputRegEx" in result.stdout
        assert "table no_such_table_sluice does not exist" in result.stdout
        assert psql(f"SELECT count(*) FROM {table}") == "0", "nothing half-written"
    finally:
        psql(f"DROP TABLE IF EXISTS {table}")


def test_redshift_copy_activity_insert_modes_on_postgresql(tmp_path):
    base = f"rs_e2e_{time.time_ns()}"
    modes = ["KEEP_EXISTING", "OVERWRITE_EXISTING", "TRUNCATE", "APPEND"]
    for mode in modes:
        psql(f"CREATE TABLE {base}_{mode.lower()} (id int PRIMARY KEY, name text, score int);"
             f"INSERT INTO {base}_{mode.lower()} VALUES (1, 'old', 10), (2, 'old', 20)")
    psql(f"CREATE TABLE {base}_transformed (id int PRIMARY KEY, name text, score int)")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part1.tsv").write_text("id\tname\tscore\n2\tnew\t200\n")
    (tmp_path / "in" / "part2.tsv").write_text("id\tname\tscore\n3\tnew\t300\n")
    objects = [
        {"id": "Default", "name": "Default", "scheduleType": "ondemand", "workerGroup": "local",
         "maximumRetries": "0"},
        {"id": "Warehouse", "name": "Warehouse", "type": "RedshiftDatabase",
         "connectionString": "jdbc:redshift://127.0.0.1:5432/test", "username": "postgres",
         "*password": "not-needed-here"},
        {"id": "Tsv", "name": "Tsv", "type": "TSV"},
        {"id": "Files", "name": "Files", "type": "S3DataNode", "directoryPath": f"file://{tmp_path}/in",
         "dataFormat": {"ref": "Tsv"}},
    ]
    for mode in modes:
        objects += [
            {"id": f"Target{mode}", "name": f"Target{mode}", "type": "RedshiftDataNode",
             "database": {"ref": "Warehouse"}, "tableName": f"{base}_{mode.lower()}"},
            {"id": f"Load{mode}", "name": f"Load{mode}", "type": "RedshiftCopyActivity", "insertMode": mode,
             "input": {"ref": "Files"}, "output": {"ref": f"Target{mode}"}, "commandOptions": "IGNOREHEADER 1"},
        ]
    objects += [
        {"id": "Transformed", "name": "Transformed", "type": "RedshiftDataNode", "database": {"ref": "Warehouse"},
         "tableName": f"{base}_transformed", "primaryKeys": "id"},
        {"id": "LoadTransformed", "name": "LoadTransformed", "type": "RedshiftCopyActivity",
         "insertMode": "OVERWRITE_EXISTING", "input": {"ref": "Files"}, "output": {"ref": "Transformed"},
         "commandOptions": ["IGNOREHEADER AS 1"],
         "transformSql": "SELECT id, upper(name) AS name, score * 2 AS score FROM staging"},
        {"id": "Unloaded", "name": "Unloaded", "type": "S3DataNode", "filePath": f"file://{tmp_path}/unloaded.csv"},
        {"id": "Unload", "name": "Unload", "type": "RedshiftCopyActivity", "insertMode": "APPEND",
         "input": {"ref": "Transformed"}, "output": {"ref": "Unloaded"}, "dependsOn": {"ref": "LoadTransformed"}},
        {"id": "Bad", "name": "Bad", "type": "RedshiftCopyActivity", "insertMode": "APPEND",
         "input": {"ref": "Files"}, "output": {"ref": "TargetAPPEND"}, "commandOptions": "MAXERROR 5"},
    ]
    try:
        result = run(tmp_path, {"objects": objects})
        assert result.returncode == 1, result.stderr + result.stdout
        assert "'MAXERROR' is a Redshift COPY option" in result.stdout
        assert "not-needed-here" not in result.stdout + result.stderr

        def rows(mode):
            return psql(f"SELECT id || ':' || name || ':' || score FROM {base}_{mode} ORDER BY id, name").split("\n")
        assert rows("keep_existing") == ["1:old:10", "2:old:20", "3:new:300"]
        assert rows("overwrite_existing") == ["1:old:10", "2:new:200", "3:new:300"]
        assert rows("truncate") == ["2:new:200", "3:new:300"]
        # APPEND ignores keys: the duplicate id fails the whole load and the table is unchanged.
        assert rows("append") == ["1:old:10", "2:old:20"]
        assert 'duplicate key value violates unique constraint' in result.stdout
        assert rows("transformed") == ["2:NEW:400", "3:NEW:600"]
        assert (tmp_path / "unloaded.csv").read_text() == "2,NEW,400\n3,NEW,600\n"
    finally:
        for suffix in [mode.lower() for mode in modes] + ["transformed"]:
            psql(f"DROP TABLE IF EXISTS {base}_{suffix}")


def test_aws_samples_rds_to_s3_and_tsv_to_redshift_run_unchanged(tmp_path, s3_server):
    table = f"rds_sample_{time.time_ns()}"
    mariadb(f"CREATE TABLE {table} (id int, city varchar(20)); INSERT INTO {table} VALUES (1, 'Oslo'), (2, 'Lima')")
    psql("CREATE SCHEMA IF NOT EXISTS schemaNameInRedshift; DROP TABLE IF EXISTS "
         "schemaNameInRedshift.DestRedshiftTableName; CREATE TABLE schemaNameInRedshift.DestRedshiftTableName "
         "(id int PRIMARY KEY, city text); INSERT INTO schemaNameInRedshift.DestRedshiftTableName VALUES (1, 'old')")
    s3 = s3_client(s3_server)
    s3.create_bucket(Bucket="samples")
    s3.put_object(Bucket="samples", Key="tsv/cities.tsv", Body=b"1\tBergen\n5\tQuito\n")
    try:
        rds = subprocess.run(
            [SLUICE, "run", str(SAMPLES / "RDStoS3__RDStoS3Pipeline.json"), "--log-dir", str(tmp_path / "logs"),
             "--s3-endpoint", s3_server.endpoint,
             "--param", "myRDSConnectStr=jdbc:mysql://127.0.0.1:3306/test", "--param", "myRDSUsername=root",
             "--param", "*myRDSPassword=", "--param", f"myRDSTableName={table}",
             "--param", "myOutputS3Path=s3://samples/rds", "--param", "myS3LogsPath=s3://samples/logs"],
            capture_output=True, text=True, timeout=180,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **s3_server.env})
        assert rds.returncode == 0, rds.stderr + rds.stdout
        keys = [item["Key"] for item in s3.list_objects_v2(Bucket="samples", Prefix="rds/")["Contents"]]
        (key,) = [key for key in keys if key.endswith(".csv")]
        assert s3.get_object(Bucket="samples", Key=key)["Body"].read() == b"1,Oslo\n2,Lima\n"
        assert any(key.startswith("logs/") for key in
                   (item["Key"] for item in s3.list_objects_v2(Bucket="samples")["Contents"])), "logs uploaded"
        redshift = subprocess.run(
            [SLUICE, "run", str(SAMPLES / "LoadTsvFilesInS3ToRedshift__LoadTsvFilesInS3ToRedshift.json"),
             "--log-dir", str(tmp_path / "logs"), "--s3-endpoint", s3_server.endpoint,
             "--param", "myRedshiftJdbcConnectStr=jdbc:postgresql://127.0.0.1:5432/test",
             "--param", "myRedshiftDbName=test", "--param", "myRedshiftUsername=postgres",
             "--param", "*myRedshiftPassword=unused", "--param", "myRedshiftSecurityGrpIds=sg-1",
             "--param", "myRedshiftTableName=ignored", "--param", "myInputTsvFilesS3Loc=s3://samples/tsv/cities.tsv"],
            capture_output=True, text=True, timeout=180,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **s3_server.env})
        assert redshift.returncode == 0, redshift.stderr + redshift.stdout
        assert psql("SELECT id || ':' || city FROM schemaNameInRedshift.DestRedshiftTableName ORDER BY id") == \
            "1:Bergen\n5:Quito", "OVERWRITE_EXISTING replaced row 1 and added row 5"
    finally:
        mariadb(f"DROP TABLE IF EXISTS {table}")
        psql("DROP SCHEMA IF EXISTS schemaNameInRedshift CASCADE")


def test_database_connections_take_tls_as_the_connection_string_asks(tmp_path):
    table = f"tls_e2e_{time.time_ns()}"
    definition = {"objects": [
        {"id": "Default", "name": "Default", "scheduleType": "ondemand", "workerGroup": "local",
         "maximumRetries": "0"},
        {"id": "PgTls", "name": "PgTls", "type": "JdbcDatabase", "jdbcDriverClass": "org.postgresql.Driver",
         "connectionString": "jdbc:postgresql://127.0.0.1:5432/test?ssl=true&tcpKeepAlive=true",
         "username": "postgres", "*password": "unused"},
        {"id": "PgVerified", "name": "PgVerified", "type": "JdbcDatabase", "jdbcDriverClass": "org.postgresql.Driver",
         "connectionString": "jdbc:postgresql://127.0.0.1:5432/test", "jdbcProperties": "sslmode=verify-full",
         "username": "postgres", "*password": "unused"},
        {"id": "MariaTls", "name": "MariaTls", "type": "JdbcDatabase", "jdbcDriverClass": "com.mysql.jdbc.Driver",
         "connectionString": "jdbc:mysql://127.0.0.1:3306/test?useSSL=true", "username": "root", "*password": "x"},
        {"id": "Record", "name": "Record", "type": "SqlActivity", "database": {"ref": "PgTls"},
         "script": f"CREATE TABLE {table} AS SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"},
        {"id": "Unverified", "name": "Unverified", "type": "SqlActivity", "database": {"ref": "PgVerified"},
         "script": "SELECT 1"},
        {"id": "NoTls", "name": "NoTls", "type": "SqlActivity", "database": {"ref": "MariaTls"}, "script": "SELECT 1"},
    ]}
    try:
        result = run(tmp_path, definition)
        assert result.returncode == 1, result.stderr + result.stdout
        # Debian's PostgreSQL serves TLS with a self-signed certificate: taken when required,
        # refused when it must be verified; MariaDB here has no TLS, so requiring it fails.
        assert psql(f"SELECT ssl || ' ' || version FROM {table}") in ("true TLSv1.3", "true TLSv1.2")
        failures = {line.split(":")[0].strip().split("_")[0].lstrip("@"): line for line in result.stdout.split("\n")
                    if ": FAILED" in line}
        assert set(failures) == {"Unverified", "NoTls"}, result.stdout
        assert "cannot connect to postgres://127.0.0.1:5432/test" in failures["Unverified"]
        assert "cannot connect to mysql://127.0.0.1:3306/test" in failures["NoTls"]
    finally:
        psql(f"DROP TABLE IF EXISTS {table}")


def encryption_definition(tmp_path):
    (tmp_path / "in.csv").write_text("1,a\n2,b\n")
    return {"objects": [
        {"id": "Default", "name": "Default", "scheduleType": "ondemand", "workerGroup": "local"},
        {"id": "Source", "name": "Source", "type": "S3DataNode", "filePath": f"file://{tmp_path}/in.csv"},
        {"id": "Default1", "name": "Default1", "type": "S3DataNode", "directoryPath": "s3://sse/default"},
        {"id": "Kms", "name": "Kms", "type": "S3DataNode", "directoryPath": "s3://sse/kms",
         "s3EncryptionType": "SERVER_SIDE_ENCRYPTION_KMS", "s3EncryptionKmsKeyId": "alias/pipeline-data"},
        {"id": "Plain", "name": "Plain", "type": "S3DataNode", "directoryPath": "s3://sse/none",
         "s3EncryptionType": "NONE"},
        *[{"id": f"To{node}", "name": f"To{node}", "type": "CopyActivity", "input": {"ref": "Source"},
           "output": {"ref": node}} for node in ("Default1", "Kms", "Plain")],
    ]}


def test_s3_outputs_ask_for_the_server_side_encryption_the_node_names(tmp_path, s3_server):
    from conftest import RecordingProxy
    s3_client(s3_server).create_bucket(Bucket="sse")
    proxy = RecordingProxy(s3_server.port, tmp_path / "proxy")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(s3_server.env)
        path = tmp_path / "sse.json"
        path.write_text(json.dumps(encryption_definition(tmp_path)))
        result = subprocess.run([SLUICE, "run", str(path), "--log-dir", str(tmp_path / "logs"),
                                 "--s3-endpoint", proxy.endpoint], capture_output=True, text=True, env=env, timeout=180)
        assert result.returncode == 0, result.stdout + result.stderr
        # The plain-HTTP endpoint is the explicit, logged opt-out for local development.
        assert "plain HTTP" in result.stderr
    finally:
        proxy.stop()
    writes = {path.split("/")[2]: (sse, key) for path, sse, key in proxy.writes() if path.startswith("/sse/")}
    assert writes == {"default": ("AES256", None), "kms": ("aws:kms", "alias/pipeline-data"),
                      "none": (None, None)}, proxy.writes()


def test_an_untrusted_s3_certificate_is_refused_unless_trusted(tmp_path, s3_server):
    from conftest import RecordingProxy
    s3_client(s3_server).create_bucket(Bucket="sse")
    proxy = RecordingProxy(s3_server.port, tmp_path / "proxy", tls=True)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(s3_server.env)
        path = tmp_path / "sse.json"
        path.write_text(json.dumps(encryption_definition(tmp_path)))
        command = [SLUICE, "run", str(path), "--log-dir", str(tmp_path / "logs"), "--s3-endpoint", proxy.endpoint]
        refused = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)
        assert refused.returncode != 0
        assert not proxy.writes(), "nothing may be sent to an endpoint whose certificate is not trusted"
        logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "logs").rglob("*") if p.is_file())
        assert "certificate" in (refused.stdout + refused.stderr + logs).lower(), refused.stdout + refused.stderr
        trusted = subprocess.run([*command, "--s3-ca-bundle", proxy.cert], capture_output=True, text=True, env=env,
                                 timeout=180)
        assert trusted.returncode == 0, trusted.stdout + trusted.stderr
        assert "plain HTTP" not in trusted.stderr
        assert {sse for path, sse, _ in proxy.writes() if path.startswith("/sse/")} == {"AES256", "aws:kms", None}
    finally:
        proxy.stop()
