"""How long a short `pacsbridge` command takes to start, and where the time goes.

    .venv/bin/python bench/cli_startup.py [--runs 5]

Times `pacsbridge --help` and `pacsbridge integrations list` (a store with 20 integrations)
as whole processes, median of --runs, then lists the largest cumulative imports of
`integrations list` from `python -X importtime`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACSBRIDGE = Path(sys.executable).with_name("pacsbridge")


def wall_time(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([str(PACSBRIDGE), *argv], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def largest_imports(argv: list[str], env: dict[str, str], top: int) -> list[tuple[int, str]]:
    """(cumulative µs, module) of the top-level imports that cost most."""
    probe = f"from pacsbridge.cli import main; main({argv!r})"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        depth = len(name) - len(name.lstrip()) - 1
        if depth <= 2:  # the command's own imports and what they import directly
            rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "PACSBRIDGE_HOME": home, "PACSBRIDGE_SECRET": "unused"}
        for n in range(20):
            subprocess.run(
                [str(PACSBRIDGE), "integrations", "add", f"clinic-{n:02d}",
                 "--base-uri", f"https://pacs{n}.clinic.example/dicom-web/",
                 "--auth", "basic", "--username", "reader"],
                env=env, check=True, capture_output=True,
            )  # fmt: skip
        commands = {
            "pacsbridge --help": ["--help"],
            "pacsbridge integrations list": ["integrations", "list"],
            "python -c pass (interpreter alone)": None,
        }
        print("| command | median of", args.runs, "| min |")
        print("|---|---|---|")
        for label, argv in commands.items():
            if argv is None:
                times = []
                for _ in range(args.runs):
                    started = time.perf_counter()
                    subprocess.run([sys.executable, "-c", "pass"], check=True)
                    times.append(time.perf_counter() - started)
            else:
                times = [wall_time(argv, env) for _ in range(args.runs)]
            print(f"| `{label}` | {statistics.median(times):.3f} s | {min(times):.3f} s |")
        print()
        print("Largest imports of `integrations list` (cumulative, -X importtime):")
        print()
        print("| module | ms |")
        print("|---|---|")
        for micros, name in largest_imports(["integrations", "list"], env, top=12):
            print(f"| `{name}` | {micros / 1000:.0f} |")


if __name__ == "__main__":
    main()
