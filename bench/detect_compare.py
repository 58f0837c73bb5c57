#!/usr/bin/env python3
"""Sensitive-data scanning throughput, side by side on the same generated data: Sluice's detector
(`sluice scan`, every managed identifier), Microsoft Presidio's analyzer (its predefined pattern
recognizers only, no NLP model) and Yelp's detect-secrets (default plugins, line by line).

    python3 bench/detect_compare.py [--mib 32] [--sluice target/release/sluice]

Presidio and detect-secrets are installed from PyPI into their own virtualenv
(bench/.compare-venv). The Python tools are run on a slice of the data (they are slow); the
figures are per core, MiB/s."""

import argparse
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
VENV = ROOT / "bench" / ".compare-venv"

PRESIDIO = r"""
import sys, time
from presidio_analyzer.predefined_recognizers import (CreditCardRecognizer, EmailRecognizer, IbanRecognizer,
    IpRecognizer, UsSsnRecognizer, UsBankRecognizer, UsPassportRecognizer, CryptoRecognizer)
recognizers = [CreditCardRecognizer(), EmailRecognizer(), IbanRecognizer(), IpRecognizer(), UsSsnRecognizer(),
               UsBankRecognizer(), UsPassportRecognizer(), CryptoRecognizer()]
data = open(sys.argv[1], encoding="utf-8").read()
lines = data.splitlines()
started = time.perf_counter()
found = 0
for line in lines:
    for recognizer in recognizers:
        found += len(recognizer.analyze(line, recognizer.supported_entities, None))
seconds = time.perf_counter() - started
print(f"{len(data.encode()) / 1048576 / seconds:.2f} {found}")
"""

DETECT_SECRETS = r"""
import sys, time
from detect_secrets.core.scan import scan_line
from detect_secrets.settings import default_settings
data = open(sys.argv[1], encoding="utf-8").read()
lines = data.splitlines()
found = 0
with default_settings():
    started = time.perf_counter()
    for line in lines:
        found += sum(1 for _ in scan_line(line))
    seconds = time.perf_counter() - started
print(f"{len(data.encode()) / 1048576 / seconds:.2f} {found}")
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=32, help="size of the generated data for sluice")
    parser.add_argument("--python-mib", type=float, default=2, help="slice given to the Python tools")
    parser.add_argument("--sluice", default=str(ROOT / "target" / "release" / "sluice"))
    parser.add_argument("--venv", default=str(VENV), help="virtualenv for Presidio and detect-secrets")
    options = parser.parse_args()
    venv = pathlib.Path(options.venv)
    corpus = ROOT / "target" / "detect-corpus"
    subprocess.run(["cargo", "bench", "-q", "-p", "sluice-detect", "--bench", "scan", "--",
                    str(options.mib), "--write", str(corpus)], cwd=ROOT, check=True)
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                        "presidio-analyzer", "detect-secrets"], check=True)
    rows = []
    total = sum(path.stat().st_size for path in corpus.iterdir())
    started = time.perf_counter()
    result = subprocess.run([options.sluice, "scan", str(corpus)], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    rows.append(("sluice scan (30 identifiers, CSV + JSON lines + text, one process)",
                 total / 1048576 / seconds, result.stdout.strip().splitlines()[-1]))
    text = (corpus / "orders.log").read_bytes()
    slice_path = corpus / "slice.log"
    cut = int(options.python_mib * 1048576)
    slice_path.write_bytes(text[: text.rfind(b"\n", 0, cut) + 1])
    for name, script in [("Presidio analyzer, 8 predefined pattern recognizers, no NLP model", PRESIDIO),
                         ("detect-secrets, default plugins, scan_line", DETECT_SECRETS)]:
        output = subprocess.run([str(venv / "bin" / "python"), "-c", script, str(slice_path)],
                                capture_output=True, text=True)
        if output.returncode != 0:
            rows.append((name, float("nan"), output.stderr.strip().splitlines()[-1] if output.stderr else "failed"))
            continue
        speed, found = output.stdout.split()
        rows.append((name, float(speed), f"{found} detections on {options.python_mib} MiB of the log text"))
    slice_path.unlink()
    print(f"{'tool':<70} {'MiB/s':>9}  notes")
    for name, speed, note in rows:
        print(f"{name:<70} {speed:>9.2f}  {note}")


if __name__ == "__main__":
    main()
