"""Full-sync speed against a local Orthanc, compared in the same run with a floor and dicomweb-client.

  .venv/bin/python bench/sync_bench.py            # speed table (about 2 minutes)
  .venv/bin/python bench/sync_bench.py --rss      # peak memory while pulling >= 500 MB of cine
  .venv/bin/python bench/sync_bench.py --pin      # Orthanc on the last CPU, the clients on the rest

Dataset (fixed): 42 studies of 2 US series x 6 images (64x64) and one SR each, plus 4 cine
loops of 60 frames at 640x480 RGB: 550 instances, about 224 MB of frames.

Compared, each the median of 3 runs:
- floor: each instance's metadata and all its frames as one frame list (`frames/1,2,…,N`, one
  request per instance), fetched by a plain requests thread pool of 8 (one keep-alive session
  per thread, Accept-Encoding identity), bodies read and discarded; no search, nothing stored;
- dicomweb-client: the QIDO walk, metadata and frames sequentially, as its documentation shows;
- pacsbridge: `run_sync` full pull into a fresh state folder (the searches, store rows and
  measurements, one frames file per instance; thumbnails are made on first view, not by the sync).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from pydicom.uid import generate_uid

from core.settings.presets import STORED_FRAMES_ACCEPT
from pacsbridge.demo import synthetic
from pacsbridge.demo.orthanc import OrthancServer

RUNS = 3
STUDIES = 42
CINE_LOOPS = 4


def dataset(cine_loops: int = CINE_LOOPS, studies: int = STUDIES) -> list:
    datasets = []
    for index in range(studies):
        datasets += synthetic.study(
            patient_id=f"BENCH{index:03d}",
            patient_name="Bench^Patient",
            study_date=f"2025{1 + index % 12:02d}{1 + index % 28:02d}",
            n_series=2,
            n_instances=6,
            with_sr=True,
        )
    for index in range(cine_loops):
        first = datasets[index * 13]
        datasets.append(
            synthetic.us_image(
                patient_id=first.PatientID,
                study_uid=first.StudyInstanceUID,
                series_uid=generate_uid(),
                study_date=first.StudyDate,
                series_number=9,
                rows=480,
                columns=640,
                frames=60,
                photometric="RGB",
                seed=index,
            )
        )
    return datasets


def instance_urls(server: OrthancServer, datasets: list) -> list[tuple[str, str | None]]:
    """(metadata URL, frames URL or None) per instance, as pacsbridge builds them."""
    urls = []
    for ds in datasets:
        base = (
            f"{server.dicomweb_url}studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}"
        )
        frames = None
        if ds.Modality != "SR":
            count = int(ds.get("NumberOfFrames", 1))
            frames = f"{base}/frames/{','.join(str(n) for n in range(1, count + 1))}"
        urls.append((f"{base}/metadata", frames))
    return urls


def floor(server: OrthancServer, urls: list[tuple[str, str | None]]) -> float:
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.auth = (server.username, server.password)
        return local.session

    def fetch(pair: tuple[str, str | None]) -> int:
        metadata, frames = pair
        total = len(session().get(metadata, headers={"Accept": "application/dicom+json"}).content)
        if frames:
            response = session().get(
                frames,
                headers={"Accept": STORED_FRAMES_ACCEPT, "Accept-Encoding": "identity"},
                stream=True,
            )
            for chunk in response.iter_content(256 * 1024):
                total += len(chunk)
        return total

    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(fetch, urls))
    return time.perf_counter() - started


def dicomweb_client_walk(server: OrthancServer) -> float:
    from dicomweb_client.api import DICOMwebClient
    from dicomweb_client.session_utils import create_session_from_user_pass

    client = DICOMwebClient(
        url=server.dicomweb_url.rstrip("/"),
        session=create_session_from_user_pass(server.username, server.password),
    )
    started = time.perf_counter()
    for study in client.search_for_studies(
        search_filters={"StudyDate": "19000101-"}, get_remaining=True
    ):
        study_uid = study["0020000D"]["Value"][0]
        for series in client.search_for_series(study_uid, get_remaining=True):
            series_uid = series["0020000E"]["Value"][0]
            for instance in client.search_for_instances(study_uid, series_uid, get_remaining=True):
                sop_uid = instance["00080018"]["Value"][0]
                metadata = client.retrieve_instance_metadata(study_uid, series_uid, sop_uid)
                if "00280010" not in metadata:
                    continue
                count = int(metadata.get("00280008", {}).get("Value", [1])[0])
                client.retrieve_instance_frames(
                    study_uid,
                    series_uid,
                    sop_uid,
                    frame_numbers=list(range(1, count + 1)),
                    media_types=(("application/octet-stream", "*"),),
                )
    return time.perf_counter() - started


def pacsbridge_sync(server: OrthancServer, home: Path) -> tuple[float, dict]:
    """One full sync in a fresh state folder, in a child process (clean module state)."""
    script = f"""
import json, time
from core.settings.model import IntegrationSettings
from core.integrations import add_integration
from core.sync import run_sync
add_integration(IntegrationSettings(name="bench", base_uri={server.dicomweb_url!r}, auth_kind="basic",
    username={server.username!r}, max_concurrent_requests=8, page_size=1000), {server.password!r})
started = time.perf_counter()
first = run_sync("bench").to_json()
elapsed = time.perf_counter() - started
idle = run_sync("bench").to_json()
# VmHWM: this process's own peak resident memory (ru_maxrss would include the forking
# parent's memory, which Linux carries over exec).
peak_kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({{"elapsed": elapsed, "first": first, "idle_requests": idle["requests"], "peak_rss_mb": peak_kb / 1024}}))
"""
    env = {**os.environ, "PACSBRIDGE_HOME": str(home)}
    output = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    import json

    result = json.loads(output.stdout.strip().splitlines()[-1])
    return result["elapsed"], result


def pin(server: OrthancServer) -> str:
    """Orthanc's threads on the last CPU, this process (and the sync processes it starts) on the
    others, so that neither side's CPU time is taken from the other; returns how."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("--pin needs at least 2 CPUs")
    # Every thread of Orthanc: an affinity is per thread, and new ones inherit their creator's.
    for task in Path(f"/proc/{server.pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), {cpus[-1]})
    os.sched_setaffinity(0, set(cpus[:-1]))
    return f"Orthanc on CPU {cpus[-1]}, the clients on CPU {','.join(map(str, cpus[:-1]))}"


def speed(workdir: Path, pinned: bool = False) -> None:
    server = OrthancServer.start(workdir / "orthanc")
    try:
        if pinned:
            print(pin(server))
        datasets = dataset()
        started = time.perf_counter()
        server.upload(datasets)
        print(f"loaded {len(datasets)} instances in {time.perf_counter() - started:.1f} s")
        urls = instance_urls(server, datasets)
        floors, clients, ours, details = [], [], [], []
        for run in range(RUNS):
            floors.append(floor(server, urls))
            clients.append(dicomweb_client_walk(server))
            elapsed, result = pacsbridge_sync(server, workdir / f"home-{run}")
            ours.append(elapsed)
            details.append(result)
            print(
                f"run {run + 1}: floor {floors[-1]:.2f} s, dicomweb-client {clients[-1]:.2f} s, "
                f"pacsbridge {ours[-1]:.2f} s ({ours[-1] / floors[-1]:.2f} × floor)"
            )
        first = details[-1]["first"]
        f, c, p = (statistics.median(x) for x in (floors, clients, ours))
        print()
        print("| what | median of 3 | ratio |")
        print("|---|---|---|")
        print(f"| floor (frame lists, requests, 8 threads, nothing stored) | {f:.2f} s | 1.00 |")
        print(f"| dicomweb-client, sequential walk | {c:.2f} s | {c / f:.2f} × floor |")
        print(
            f"| pacsbridge full sync (8 concurrent) | {p:.2f} s | {p / f:.2f} × floor, {p / c:.2f} × dicomweb-client |"
        )
        print(
            f"\npacsbridge pulled {first['instances']} instances, {first['frames']} frames, "
            f"{first['bytes'] / 1e6:.0f} MB in {first['requests']} requests; "
            f"idle re-sync: {details[-1]['idle_requests']} requests"
        )
    finally:
        server.stop()


def peak_rss(workdir: Path) -> None:
    """Peak RSS of a sync process pulling ten 55 MB cine loops (550 MB)."""
    server = OrthancServer.start(workdir / "orthanc-rss")
    try:
        server.upload(dataset(cine_loops=10, studies=12))
        elapsed, result = pacsbridge_sync(server, workdir / "home-rss")
        print(
            f"pulled {result['first']['bytes'] / 1e6:.0f} MB in {elapsed:.1f} s; "
            f"peak RSS of the sync process: {result['peak_rss_mb']:.0f} MB"
        )
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rss", action="store_true", help="measure peak memory instead of speed")
    parser.add_argument(
        "--pin", action="store_true", help="Orthanc on one CPU, the clients on the others"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        if args.rss:
            peak_rss(Path(directory))
        else:
            speed(Path(directory), pinned=args.pin)


if __name__ == "__main__":
    main()
