"""SR documents read per second on one core, for a typical fertility SR.

The document is the synthetic follicle-monitoring report that the demo clinic and the SR tests
use (`pacsbridge.demo.obgyn`): pelvis and uterus, both ovaries, five follicles with 1-3
diameters and their means, an Image Library with a by-reference item and calipers; 76 content
items, 35 rows. Each case reads it from a different starting point and extracts its rows:

  (a) a parsed DICOM JSON object, as `json.loads` returns WADO-RS instance metadata
  (b) the DICOM JSON text, parsing included, as re-extraction from the store reads it
      (`parse_text`: orjson, falling back to json for what only json accepts; both it
      and the extraction with the garbage collector paused)
  (c) a pydicom Dataset whose values are already decoded
  (d) Part-10 bytes: pydicom `dcmread`, whose lazy decoding happens during extraction

and the parsing alone, as `parse_text` does it and with `json.loads`, to show how much of
(b) it takes. The targets are 4,000/s for (a) and 2,000/s for (b).

core/sr runs as the environment has it: compiled with mypyc where scripts/setup-venv built it
(core/compiled.py), interpreted otherwise; the output says which. PACSBRIDGE_INTERPRETED=1
measures the interpreted modules.

Each case runs RUNS times over N documents, in this process pinned to one CPU, timed in CPU
time of this process (so other load on a shared machine counts only as far as it slows the
core down); the table shows the median run. The load average is printed with it.

With --instructions, (a) and (b) are counted in instructions per document instead, which
load and the machine's speed do not change: callgrind counts a child process that reads
INSTRUCTION_DOCUMENTS reports, less one that reads none, with address randomization and hash
randomization off (needs valgrind: apt-get install valgrind).

    .venv/bin/python bench/sr_parse.py [--documents N]
    .venv/bin/python bench/sr_parse.py --instructions
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from pydicom import dcmread

from core.compiled import why_interpreted
from core.dicomweb.dicom_json import CollectorPause, parse_text
from core.sr import ExtractionResult, extract_measurements, walk
from pacsbridge.demo.obgyn import Variant, fertility_sr

RUNS = 5
TARGETS = {"(a) DICOM JSON, parsed": 4000, "(b) DICOM JSON text": 2000}
INSTRUCTION_DOCUMENTS = 200


def extract_from_text(text: str) -> ExtractionResult:
    """As re-extraction reads a stored report (`core.measurements.reextract`)."""
    with CollectorPause():
        return extract_measurements(parse_text(text))


def documents_per_second(read: Callable[[], object], documents: int) -> float:
    """One run: `documents` reads, timed in this process's CPU time."""
    start = time.process_time()
    for _ in range(documents):
        read()
    return documents / (time.process_time() - start)


def typical_report_text() -> str:
    return json.dumps(fertility_sr(Variant(image_library=True)).to_json_dict())


def read_reports(path: str, documents: int) -> None:
    """The child that callgrind counts: `documents` reads by path (a) or (b), after one read
    that warms the caches as in a long-running worker."""
    text = typical_report_text()
    metadata = json.loads(text)
    extract_measurements(metadata)
    read = (
        (lambda: extract_measurements(metadata)) if path == "a" else lambda: extract_from_text(text)
    )
    for _ in range(documents):
        read()


def instructions_per_document(path: str) -> int:
    def counted(documents: int) -> int:
        command = [
            "setarch",
            "-R",
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
        ]
        command += [sys.executable, __file__, "--child", path, str(documents)]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=True,
            # One BLAS thread: numpy's idle threads would add instructions that vary by run.
            env={**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"},
        )
        return int(re.search(r"Collected : (\d+)", done.stderr).group(1))

    return (counted(INSTRUCTION_DOCUMENTS) - counted(0)) // INSTRUCTION_DOCUMENTS


def print_instructions() -> None:
    if shutil.which("valgrind") is None or shutil.which("setarch") is None:
        raise SystemExit("--instructions needs valgrind and setarch: apt-get install valgrind")
    print(f"instructions per document (callgrind, {INSTRUCTION_DOCUMENTS} documents)")
    print(f"core/sr {sr_form()}")
    print()
    print("| read from | instructions |")
    print("|---|---:|")
    for path, name in (("a", "(a) DICOM JSON, parsed"), ("b", "(b) DICOM JSON text")):
        print(f"| {name} | {instructions_per_document(path) / 1e6:.2f} M |")


def sr_form() -> str:
    reason = why_interpreted()
    return "compiled with mypyc" if reason is None else f"interpreted: {reason}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", "-n", type=int, default=300, help="documents per run")
    parser.add_argument("--instructions", action="store_true", help="count instructions instead")
    parser.add_argument("--child", nargs=2, metavar=("PATH", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        read_reports(args.child[0], int(args.child[1]))
        return
    if args.instructions:
        print_instructions()
        return
    documents = args.documents

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    dataset = fertility_sr(Variant(image_library=True))
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    part10 = buffer.getvalue()
    text = json.dumps(dataset.to_json_dict())
    metadata = json.loads(text)
    rows = extract_measurements(metadata).rows
    assert rows == extract_measurements(dataset).rows  # every case reads the same report

    cases: dict[str, Callable[[], object]] = {
        "(a) DICOM JSON, parsed": lambda: extract_measurements(metadata),
        "(b) DICOM JSON text": lambda: extract_from_text(text),
        "(c) pydicom Dataset": lambda: extract_measurements(dataset),
        "(d) Part-10 bytes": lambda: extract_measurements(dcmread(io.BytesIO(part10))),
        "parse_text alone": lambda: parse_text(text),
        "json.loads alone": lambda: json.loads(text),
    }
    items = len(list(walk(metadata).root.iter()))
    print(
        f"typical fertility SR: {items} content items, {len(rows)} rows; "
        f"DICOM JSON {len(text):,} bytes, Part-10 {len(part10):,} bytes"
    )
    print(f"core/sr {sr_form()}")
    print(f"median of {RUNS} runs of {documents} documents, one CPU, CPU time of this process")
    print()
    print("| read from | SR/s (median) | runs |")
    print("|---|---:|---|")
    medians = {}
    for name, read in cases.items():
        read()  # warm the caches (codes, positions) as a long-running worker has them
        rates = [documents_per_second(read, documents) for _ in range(RUNS)]
        medians[name] = statistics.median(rates)
        runs = ", ".join(f"{rate:,.0f}" for rate in rates)
        print(f"| {name} | {medians[name]:,.0f} | {runs} |")
    print()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average at the end (1, 5, 15 min): {load} on {os.cpu_count()} CPUs")
    parse_share = medians["(b) DICOM JSON text"] / medians["parse_text alone"]
    print(f"parsing takes {parse_share:.0%} of (b)")
    for name, target in TARGETS.items():
        verdict = "met" if medians[name] >= target else "not met"
        print(f"target {target:,}/s for {name}: {verdict}")


if __name__ == "__main__":
    main()
