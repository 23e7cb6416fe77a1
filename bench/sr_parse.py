"""SR documents parsed per second, on one core, for a typical fertility SR.

The document is the synthetic follicle-monitoring report of the test suite (pelvis and uterus,
both ovaries, five follicles with 1-3 diameters and their means, an Image Library with a
by-reference item and calipers: 76 content items, 13.7 KB as Part-10).

Prints the median of 5 runs for three starting points:
  dataset  extract_measurements() on a decoded pydicom Dataset (the extractor alone; target
           2,000/s)
  part10   pydicom dcmread() of the file bytes, then extract_measurements()
  json     pydicom Dataset.from_json() of the WADO-RS metadata, then extract_measurements()

    .venv/bin/python bench/sr_parse.py
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pacsbridge.core.sr import extract_measurements
from tests.sr.obgyn_factory import Variant, fertility_sr

RUNS = 5
SECONDS_PER_RUN = 1.0


def documents_per_second(parse: Callable[[], object]) -> float:
    """One run: parse repeatedly for about SECONDS_PER_RUN of this process's CPU time (so that
    other load on a shared machine does not count), return the rate."""
    count = 0
    start = time.process_time()
    while (elapsed := time.process_time() - start) < SECONDS_PER_RUN:
        parse()
        count += 1
    return count / elapsed


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    document = fertility_sr(Variant(image_library=True))
    buffer = io.BytesIO()
    document.save_as(buffer, enforce_file_format=True)
    part10 = buffer.getvalue()
    metadata = document.to_json_dict()
    rows = len(extract_measurements(document).rows)

    cases: dict[str, Callable[[], object]] = {
        "dataset": lambda: extract_measurements(document),
        "part10": lambda: extract_measurements(dcmread(io.BytesIO(part10))),
        "json": lambda: extract_measurements(Dataset.from_json(metadata)),
    }
    print(f"typical fertility SR: {len(part10)} bytes, {rows} rows; median of {RUNS} runs")
    for name, parse in cases.items():
        rates = [documents_per_second(parse) for _ in range(RUNS)]
        runs = ", ".join(f"{rate:.0f}" for rate in rates)
        print(f"{name:8} {statistics.median(rates):8.0f} SR/s   (runs: {runs})")


if __name__ == "__main__":
    main()
