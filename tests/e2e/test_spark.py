"""EMR-type activities on Apache Spark: EmrActivity steps through spark-submit, HadoopActivity's
jar, HiveActivity's HiveQL through spark-sql with staged tables. Spark is pyspark from PyPI (it
ships spark-submit and spark-sql) on the machine's Java, in local mode."""

import json
import os
import subprocess

import boto3
import pytest

from conftest import SLUICE, VENV_BIN, unique

# Spark's JVMs make these the slowest tests; the store is not what they are about.
pytestmark = pytest.mark.sqlite_only


@pytest.fixture(scope="module")
def spark_home():
    found = subprocess.run([str(VENV_BIN / "python"), "-c",
                            "import os, pyspark; print(os.path.dirname(pyspark.__file__))"],
                           capture_output=True, text=True, timeout=60)
    assert found.returncode == 0, "pyspark is in tests/requirements.txt: " + found.stderr
    return found.stdout.strip()


def sluice_run(definition, tmp_path, *args, spark_home=None, extra_env=None, timeout=600):
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(definition))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "SPARK_HOME"}
    if spark_home:
        env["SPARK_HOME"] = spark_home
    env.update(extra_env or {})
    return subprocess.run([SLUICE, "run", str(path), "--log-dir", str(tmp_path / "logs"), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def stderr_of(tmp_path, component):
    logs = list((tmp_path / "logs").glob(f"df-*/{component}/*/*/stderr"))
    assert logs, f"no stderr log for {component}"
    return "\n".join(log.read_text() for log in logs)


WORDCOUNT = r'''
import os, sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
source, target = sys.argv[1], sys.argv[2]
counts = (spark.sparkContext.textFile(source).flatMap(lambda line: line.split())
          .map(lambda word: (word, 1)).reduceByKey(lambda a, b: a + b).collect())
conf = spark.sparkContext.getConf()
with open(target, "w") as out:
    for word, count in sorted(counts):
        out.write(f"{word},{count}\n")
with open(target + ".settings", "w") as out:
    json = {"master": conf.get("spark.master"), "custom": conf.get("spark.sluice.custom", ""),
            "hadoop": conf.get("spark.hadoop.fs.sluice.test", ""), "greeting": os.environ.get("GREETING", ""),
            "name": conf.get("spark.app.name"), "ui": conf.get("spark.ui.enabled", "")}
    import json as j
    out.write(j.dumps(json))
spark.stop()
'''

HELLO_JAVA = '''
import java.nio.file.*;
public class Hello {
    public static void main(String[] args) throws Exception {
        Files.writeString(Path.of(args[0]), "hello from " + String.join(" ", args).substring(args[0].length() + 1) + "\\n");
    }
}
'''


def test_emr_hadoop_and_hive_activities_run_on_spark(tmp_path, s3_server, spark_home):
    # The Spark job lives in S3, as EMR users keep theirs; the step names it by s3:// URI.
    bucket = unique("jobs")
    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1",
                      aws_access_key_id=s3_server.ACCESS_KEY, aws_secret_access_key=s3_server.SECRET_KEY)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="jobs/wordcount.py", Body=WORDCOUNT.encode())
    s3.put_object(Bucket=bucket, Key="jobs/after.sh", Body=b'echo "$1" > "$2"\n')

    (tmp_path / "copy.py").write_text(WORDCOUNT)
    text = tmp_path / "text.txt"
    text.write_text("the river runs\nthe sluice holds the river\n")
    counts = tmp_path / "counts.csv"
    marker = tmp_path / "after.txt"

    # A Java main class in a jar, for HadoopActivity (javac and jar from the machine's JDK 17).
    java = tmp_path / "java"
    java.mkdir()
    (java / "Hello.java").write_text(HELLO_JAVA)
    subprocess.run(["javac", "-d", str(java), str(java / "Hello.java")], check=True, timeout=120)
    jar = tmp_path / "hello.jar"
    subprocess.run(["jar", "cf", str(jar), "-C", str(java), "Hello.class"], check=True, timeout=60)
    hello = tmp_path / "hello.txt"

    people_in = tmp_path / "people"
    people_in.mkdir()
    (people_in / "part-1.csv").write_text("ada,36\nbob,29\n")
    (people_in / "part-2.csv").write_text("cyd,41\n")
    people_out = tmp_path / "adults"

    definition = {"objects": [
        {"id": "Default", "name": "Default", "scheduleType": "ondemand", "failureAndRerunMode": "cascade"},
        {"id": "Cluster", "name": "Cluster", "type": "EmrCluster", "releaseLabel": "emr-6.15.0",
         "applications": "spark", "sparkMaster": "local[2]",
         "configuration": [{"ref": "SparkDefaults"}, {"ref": "CoreSite"}, {"ref": "SparkEnv"},
                           {"ref": "Maximize"}]},
        {"id": "SparkDefaults", "name": "SparkDefaults", "type": "EmrConfiguration",
         "classification": "spark-defaults", "property": [{"ref": "Custom"}, {"ref": "Partitions"}]},
        {"id": "Custom", "name": "Custom", "type": "Property", "key": "spark.sluice.custom", "value": "from-emr-config"},
        {"id": "Partitions", "name": "Partitions", "type": "Property", "key": "spark.sql.shuffle.partitions",
         "value": "2"},
        {"id": "CoreSite", "name": "CoreSite", "type": "EmrConfiguration", "classification": "core-site",
         "property": [{"ref": "HadoopKey"}, {"ref": "HadoopSecret"}]},
        {"id": "HadoopKey", "name": "HadoopKey", "type": "Property", "key": "fs.sluice.test", "value": "core"},
        {"id": "HadoopSecret", "name": "HadoopSecret", "type": "Property", "key": "fs.s3a.secret.key",
         "value": "kept-off-the-command-line-4711"},
        {"id": "SparkEnv", "name": "SparkEnv", "type": "EmrConfiguration", "classification": "spark-env",
         "configuration": {"ref": "Exports"}},
        {"id": "Exports", "name": "Exports", "type": "EmrConfiguration", "classification": "export",
         "property": {"ref": "Greeting"}},
        {"id": "Greeting", "name": "Greeting", "type": "Property", "key": "GREETING", "value": "bonjour"},
        {"id": "Maximize", "name": "Maximize", "type": "EmrConfiguration", "classification": "spark",
         "property": {"ref": "MaximizeOn"}},
        {"id": "MaximizeOn", "name": "MaximizeOn", "type": "Property", "key": "maximizeResourceAllocation",
         "value": "true"},

        {"id": "WordCount", "name": "WordCount", "type": "EmrActivity", "runsOn": {"ref": "Cluster"},
         # A pre-step command may make what a step runs (relative to the attempt's folder).
         "preStepCommand": [f"echo before > {tmp_path}/pre.txt", f"cp {tmp_path}/copy.py again.py"],
         "step": [f"command-runner.jar,spark-submit,--conf,spark.executor.memory=512m,"
                  f"s3://{bucket}/jobs/wordcount.py,file://{text},{counts}",
                  f"again.py,file://{text},{counts}.again",
                  f"script-runner.jar,s3://{bucket}/jobs/after.sh,steps\\, all done,{marker}"],
         "postStepCommand": f"test -s {counts} && echo after > {tmp_path}/post.txt"},

        {"id": "Hello", "name": "Hello", "type": "HadoopActivity", "runsOn": {"ref": "Cluster"},
         "jarUri": str(jar), "mainClass": "Hello", "argument": [str(hello), "spark", "jar"]},

        {"id": "PeopleFormat", "name": "PeopleFormat", "type": "CSV", "column": ["name STRING", "age INT"]},
        {"id": "People", "name": "People", "type": "S3DataNode", "directoryPath": f"file://{people_in}",
         "dataFormat": {"ref": "PeopleFormat"}},
        {"id": "Adults", "name": "Adults", "type": "S3DataNode", "directoryPath": f"file://{people_out}",
         "dataFormat": {"ref": "PeopleFormat"}},
        {"id": "Hive", "name": "Hive", "type": "HiveActivity", "runsOn": {"ref": "Cluster"},
         "input": {"ref": "People"}, "output": {"ref": "Adults"}, "scriptVariable": "bump=1",
         "hiveScript": "INSERT OVERWRITE TABLE ${output1} "
                       "SELECT upper(name), age + ${bump} FROM ${input1} WHERE age > 30;"},
    ]}
    # `sluice run` reads the object store's credentials from the environment.
    result = sluice_run(definition, tmp_path, "--s3-endpoint", s3_server.endpoint, spark_home=spark_home,
                        extra_env=s3_server.env)
    assert result.returncode == 0, result.stdout + result.stderr + stderr_of(tmp_path, "WordCount")

    # EmrActivity: pre-step command, two Spark steps (command-runner.jar and a bare .py),
    # script-runner.jar with an escaped comma, post-step command.
    assert (tmp_path / "pre.txt").read_text() == "before\n"
    assert counts.read_text() == "holds,1\nriver,2\nruns,1\nsluice,1\nthe,3\n"
    assert (tmp_path / "counts.csv.again").read_text() == counts.read_text()
    assert marker.read_text() == "steps, all done\n"
    assert (tmp_path / "post.txt").read_text() == "after\n"
    # The cluster's configuration reached Spark as EMR applies it.
    settings = json.loads((tmp_path / "counts.csv.settings").read_text())
    assert settings["master"] == "local[2]"
    assert settings["custom"] == "from-emr-config" and settings["hadoop"] == "core"
    assert settings["greeting"] == "bonjour" and settings["ui"] == "false"
    assert settings["name"].endswith("/WordCount")
    log = stderr_of(tmp_path, "WordCount")
    assert "[sluice] step 1 (spark-submit): spark-submit --master local[2]" in log
    assert "maximizeResourceAllocation" in log and "not applied" in log
    # Spark's properties went in a file of the attempt's, not on the command line or in a log.
    assert "--properties-file" in log
    for path in (tmp_path / "logs").rglob("*"):
        if path.is_file():
            assert "kept-off-the-command-line-4711" not in path.read_text(errors="replace"), path

    # HadoopActivity: the jar's main class through spark-submit.
    assert hello.read_text() == "hello from spark jar\n"

    # HiveActivity: the input folder staged as table input1, the output as output1, the rows
    # written published to the output node, without Hadoop's _SUCCESS and .crc files.
    published = sorted(path.name for path in people_out.iterdir())
    assert published and all(not name.startswith((".", "_")) for name in published), published
    rows = sorted(line for path in people_out.iterdir() for line in path.read_text().splitlines())
    assert rows == ["ADA,37", "CYD,42"]


def test_spark_failures_are_clear(tmp_path, spark_home):
    people = tmp_path / "people"
    people.mkdir()
    (people / "a.csv").write_text("ada,36\n")
    base = [
        {"id": "Default", "name": "Default", "scheduleType": "ondemand", "failureAndRerunMode": "none",
         "maximumRetries": "0"},
        {"id": "Cluster", "name": "Cluster", "type": "EmrCluster"},
        {"id": "Format", "name": "Format", "type": "TSV", "column": ["name STRING", "age INT"]},
        {"id": "People", "name": "People", "type": "S3DataNode", "directoryPath": f"file://{people}",
         "dataFormat": {"ref": "Format"}},
    ]
    definition = {"objects": base + [
        {"id": "BadHive", "name": "BadHive", "type": "HiveActivity", "runsOn": {"ref": "Cluster"},
         "input": {"ref": "People"}, "hiveScript": "SELECT no_such_function(name) FROM ${input1};"},
        {"id": "DistCp", "name": "DistCp", "type": "EmrActivity", "runsOn": {"ref": "Cluster"},
         "step": "command-runner.jar,s3-dist-cp,--src,s3://a/,--dest,s3://b/"},
        {"id": "EmrPath", "name": "EmrPath", "type": "HadoopActivity", "runsOn": {"ref": "Cluster"},
         "jarUri": "/home/hadoop/contrib/streaming/hadoop-streaming.jar"},
        # The second step fails silently: its message must not quote the first step's output.
        {"id": "Quiet", "name": "Quiet", "type": "EmrActivity", "runsOn": {"ref": "Cluster"},
         "step": ["script-runner.jar,first.sh", "script-runner.jar,second.sh"],
         "preStepCommand": "echo 'echo chatty first step >&2' > first.sh; echo 'exit 7' > second.sh"},
    ]}
    result = sluice_run(definition, tmp_path, spark_home=spark_home)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout + result.stderr
    # Spark's own error line, not its INFO chatter, is the attempt's error message.
    assert "the Hive script exited with status 1" in out and "no_such_function" in out, out
    assert "s3-dist-cp" in out and "spark-submit, spark-sql or hive-script" in out, out
    assert "/home/hadoop/contrib/streaming/hadoop-streaming.jar is not on this runner" in out, out
    assert "step 2 (script-runner.jar) exited with status 7" in out and "chatty first step" not in out, out
    # A failure before any process ran is in the attempt's stderr too.
    assert "hadoop-streaming.jar is not on this runner" in stderr_of(tmp_path, "EmrPath")

    # A runner without Spark says how to give it one.
    nospark = tmp_path / "nospark"
    nospark.mkdir()
    result = sluice_run({"objects": base + [
        {"id": "Hive", "name": "Hive", "type": "HiveActivity", "runsOn": {"ref": "Cluster"},
         "input": {"ref": "People"}, "hiveScript": "SELECT 1;"}]}, nospark)
    assert result.returncode == 1 and "--spark-home or SPARK_HOME" in result.stdout + result.stderr

    # Refused before anything runs: Pig, a staged table without columns, a master that is none.
    for objects, expected in [
        ([{"id": "Pig", "name": "Pig", "type": "PigActivity", "runsOn": {"ref": "Cluster"},
           "script": "A = LOAD 'x';"}], "does not run Pig Latin"),
        ([{"id": "NoColumns", "name": "NoColumns", "type": "CSV"},
          {"id": "In", "name": "In", "type": "S3DataNode", "directoryPath": f"file://{people}",
           "dataFormat": {"ref": "NoColumns"}},
          {"id": "Hive", "name": "Hive", "type": "HiveActivity", "runsOn": {"ref": "Cluster"},
           "input": {"ref": "In"}, "hiveScript": "SELECT 1;"}], "without `column` fields"),
        ([{"id": "Lines", "name": "Lines", "type": "RegEx", "inputRegEx": "(.*)", "column": "line STRING"},
          {"id": "Out", "name": "Out", "type": "S3DataNode", "directoryPath": f"file://{tmp_path}/out",
           "dataFormat": {"ref": "Lines"}},
          {"id": "Hive", "name": "Hive", "type": "HiveActivity", "runsOn": {"ref": "Cluster"},
           "output": {"ref": "Out"}, "hiveScript": "SELECT 1;"}], "Hive reads but cannot write"),
        ([{"id": "Cluster", "name": "Cluster", "type": "EmrCluster", "sparkMaster": "localhost:7077"},
          {"id": "Emr", "name": "Emr", "type": "EmrActivity", "runsOn": {"ref": "Cluster"},
           "step": "x.py"}], "is not a Spark master"),
    ]:
        ids = {o["id"] for o in objects}
        folder = tmp_path / unique("refused")
        folder.mkdir()
        result = sluice_run({"objects": [o for o in base if o["id"] not in ids] + objects}, folder,
                            spark_home=spark_home, timeout=120)
        assert result.returncode != 0 and expected in result.stdout + result.stderr, result.stdout + result.stderr
