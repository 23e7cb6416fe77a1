"""The fleet: many clinics on one worker, several workers with one killed, a fleet-sized Overview.

  .venv/bin/python bench/fleet.py idle [--clinics 1000] [--minutes 3] [--database URL]
  .venv/bin/python bench/fleet.py failover [--clinics 20] [--workers 3] --database URL
  .venv/bin/python bench/fleet.py overview [--clinics 1000] [--database URL]

idle: a real Orthanc holding no study stands in for every clinic; the clinics are imported
with a 1-minute schedule and one `pacsbridge worker` runs for --minutes. Reported: runs per
clinic per minute, how late each run started against its due time (the gap to the clinic's
previous run minus its interval), requests per run after a clinic's first (which searches its
whole history), and the worker's CPU and peak RSS.

failover: an Orthanc with a small clinic's studies; --clinics integrations point at it; the
pull from scratch is timed with one worker, then again with --workers workers of which one is
SIGKILLed once a third of the instances are stored (and with --workers and no kill, for the
gain alone). The killed worker's runs wait for their lease to run out (2 minutes) before another
worker takes them over. Reported: wall times, whether every clinic
ends exact (stored instances equal the PACS's), and instances fetched twice (pulled by a run
but stored by another, i.e. lost with the killed worker).

overview: --clinics integrations with two weeks of runs and health checks each; the Overview
page's first render (Streamlit AppTest, median of 5).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from pydicom.uid import generate_uid
from sqlmodel import func, select

ROOT = Path(__file__).resolve().parents[1]
PACSBRIDGE = Path(sys.executable).with_name("pacsbridge")


def environment(home: Path, database: str | None) -> dict[str, str]:
    env = {**os.environ, "PACSBRIDGE_HOME": str(home)}
    env.pop("DATABASE_URL", None)
    if database:
        env["DATABASE_URL"] = database
    return env


def use(env: dict[str, str]) -> None:
    """Point this process's store at the same database as the commands it starts."""
    os.environ.update(env)
    if "DATABASE_URL" not in env:
        os.environ.pop("DATABASE_URL", None)


def import_clinics(env: dict[str, str], base_uri: str, count: int, **settings: object) -> None:
    lines = "".join(
        json.dumps({"name": f"clinic-{n:04d}", "base_uri": base_uri, **settings}) + "\n"
        for n in range(count)
    )
    subprocess.run(
        [str(PACSBRIDGE), "integrations", "import", "-"],
        input=lines, text=True, env=env, check=True, capture_output=True,
    )  # fmt: skip


def process_usage(pid: int) -> tuple[float, int]:
    """CPU seconds (user + system) and peak RSS in kB of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    return cpu, peak


def start_worker(env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(PACSBRIDGE), "worker", "--claim-interval", "1", *extra],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=120)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


# --- idle --------------------------------------------------------------------------------------


def idle(args: argparse.Namespace) -> None:
    from core import store
    from core.store import SyncRun
    from pacsbridge.demo.orthanc import OrthancServer

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        orthanc = OrthancServer.start(folder / "orthanc")
        try:
            env = environment(folder / "home", args.database)
            if args.database:
                fresh_database(args.database)
            use(env)
            import_clinics(
                env, orthanc.dicomweb_url, args.clinics, schedule_minutes=1,
                auth_kind="basic", username=orthanc.username, secret=orthanc.password,
            )  # fmt: skip
            worker = start_worker(env, "--slots", str(args.slots))
            started = time.monotonic()
            time.sleep(args.minutes * 60)
            cpu, peak_kb = process_usage(worker.pid)
            elapsed = time.monotonic() - started
            stop_worker(worker)
        finally:
            orthanc.stop()
        with store.session() as db:
            runs = db.exec(
                select(SyncRun).order_by(SyncRun.integration_id, SyncRun.started_at)
            ).all()
        store.dispose()
    first_minute_end = min(r.started_at for r in runs) + timedelta(seconds=60)
    by_clinic: dict[int, list[SyncRun]] = {}
    for run in runs:
        by_clinic.setdefault(run.integration_id, []).append(run)
    lateness = [
        (later.started_at - earlier.started_at).total_seconds() - 60
        for clinic_runs in by_clinic.values()
        for earlier, later in itertools.pairwise(clinic_runs)
    ]
    # A clinic's first run searches its whole history in windows; the idle runs are the rest.
    requests = [r.requests for rs in by_clinic.values() for r in rs[1:] if r.finished_at]
    first = [r for r in runs if r.started_at < first_minute_end]
    print(f"clinics {args.clinics}, slots {args.slots}, {elapsed / 60:.1f} min, "
          f"store {'PostgreSQL' if args.database else 'SQLite'}")  # fmt: skip
    print(f"runs: {len(runs)} ({len(runs) / args.clinics / (elapsed / 60):.2f} per clinic per min)")
    print(f"first minute: {len(first)} runs started (every clinic due at once)")
    if lateness:
        lateness.sort()
        print(
            f"after it, lateness s: median {statistics.median(lateness):.1f}, "
            f"p95 {lateness[int(len(lateness) * 0.95)]:.1f}, max {lateness[-1]:.1f}; "
            f"over 30 s: {sum(x > 30 for x in lateness)} of {len(lateness)}"
        )
    print(f"requests per idle run: max {max(requests)}, median {statistics.median(requests)}")
    durations = [(r.finished_at - r.started_at).total_seconds() for r in runs if r.finished_at]
    print(f"run duration s: median {statistics.median(durations):.2f}, max {max(durations):.2f}")
    print(f"worker: CPU {cpu:.0f} s in {elapsed:.0f} s ({cpu / elapsed:.0%} of a core), "
          f"peak RSS {peak_kb / 1024:.0f} MB")  # fmt: skip


# --- failover ----------------------------------------------------------------------------------


def clinic_data(studies: int) -> list:
    from pacsbridge.demo import synthetic

    datasets = []
    for index in range(studies):
        datasets += synthetic.study(
            patient_id=f"FLEET{index:03d}", patient_name="Fleet^Patient",
            study_date=f"2025{1 + index % 12:02d}{1 + index % 28:02d}",
            n_series=2, n_instances=4,
        )  # fmt: skip
    datasets.append(
        synthetic.us_image(
            patient_id="FLEET000", study_uid=datasets[0].StudyInstanceUID,
            series_uid=generate_uid(), study_date=datasets[0].StudyDate, frames=20,
            rows=480, columns=640, photometric="RGB",
        )
    )  # fmt: skip
    return datasets


def fresh_database(database: str) -> None:
    """Empty the benchmark's database (a schema of its own would do too)."""
    import psycopg

    plain = database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")


def pull_fleet(
    args: argparse.Namespace, orthanc_url: str, auth: tuple[str, str], workers: int, kill: bool
) -> dict[str, object]:
    from core import store
    from core.store import Instance, RunStatus, SyncRun

    fresh_database(args.database)
    with tempfile.TemporaryDirectory() as scratch:
        env = environment(Path(scratch) / "home", args.database)
        # One shared data root, as on a shared mount.
        env["PACSBRIDGE_DATA"] = str(Path(scratch) / "data")
        Path(env["PACSBRIDGE_DATA"]).mkdir(mode=0o700)
        use(env)
        import_clinics(
            env, orthanc_url, args.clinics, schedule_minutes=60,
            auth_kind="basic", username=auth[0], secret=auth[1],
        )  # fmt: skip
        total = args.clinics * args.instances
        started = time.monotonic()
        running = [start_worker(env, "--slots", "4") for _ in range(workers)]
        killed = False
        try:
            while True:
                with store.session() as db:
                    stored = db.exec(select(func.count()).select_from(Instance)).one()
                if kill and not killed and stored >= total / 3:
                    running[0].send_signal(signal.SIGKILL)
                    running[0].wait()
                    killed = True
                if stored >= total:
                    break
                if time.monotonic() - started > args.timeout:
                    raise SystemExit(f"not done after {args.timeout} s: {stored} of {total}")
                time.sleep(0.5)
            wall = time.monotonic() - started
        finally:
            for worker in running[killed:]:
                stop_worker(worker)
        with store.session() as db:
            per_clinic = dict(
                db.exec(
                    select(Instance.integration_id, func.count()).group_by(Instance.integration_id)
                ).all()
            )
            pulled = db.exec(select(func.sum(SyncRun.instances_pulled))).one() or 0
            interrupted = db.exec(
                select(func.count())
                .select_from(SyncRun)
                .where(SyncRun.status == RunStatus.INTERRUPTED)
            ).one()
        store.dispose()
    exact = len(per_clinic) == args.clinics and set(per_clinic.values()) == {args.instances}
    return {"wall": wall, "exact": exact, "twice": pulled - total, "interrupted": interrupted}


def failover(args: argparse.Namespace) -> None:
    from pacsbridge.demo.orthanc import OrthancServer

    if not args.database:
        raise SystemExit("failover needs --database postgresql://… (workers share it)")
    with tempfile.TemporaryDirectory() as scratch:
        orthanc = OrthancServer.start(Path(scratch) / "orthanc")
        try:
            datasets = clinic_data(args.studies)
            orthanc.upload(datasets)
            args.instances = len(datasets)
            auth = (orthanc.username, orthanc.password)
            one = pull_fleet(args, orthanc.dicomweb_url, auth, workers=1, kill=False)
            shared = pull_fleet(args, orthanc.dicomweb_url, auth, workers=args.workers, kill=False)
            several = pull_fleet(args, orthanc.dicomweb_url, auth, workers=args.workers, kill=True)
        finally:
            orthanc.stop()
    print(f"{args.clinics} clinics x {args.instances} instances, PostgreSQL")
    print(f"1 worker: {one['wall']:.1f} s, exact {one['exact']}")
    print(f"{args.workers} workers: {shared['wall']:.1f} s, exact {shared['exact']}")
    print(
        f"{args.workers} workers, one SIGKILLed at a third: {several['wall']:.1f} s, "
        f"exact {several['exact']}, pulled twice {several['twice']}, "
        f"runs left interrupted {several['interrupted']}"
    )


# --- overview ----------------------------------------------------------------------------------


def overview(args: argparse.Namespace) -> None:
    from streamlit.testing.v1 import AppTest

    from core import store, users
    from core.store import HealthCheck, RunStatus, SyncRun, utcnow
    from dashboard.auth import SESSION_KEY, SignedIn

    with tempfile.TemporaryDirectory() as scratch:
        env = environment(Path(scratch) / "home", args.database)
        if args.database:
            fresh_database(args.database)
        use(env)
        import_clinics(env, "https://pacs.clinic.example/dicom-web/", args.clinics)
        now = utcnow()
        with store.session() as db:
            for integration_id in range(1, args.clinics + 1):
                for hours in range(0, 14 * 24, 8):  # two weeks, a run and a check every 8 h
                    at = now - timedelta(hours=hours)
                    db.add(SyncRun(integration_id=integration_id, trigger="schedule",
                                   status=RunStatus.SUCCESS, started_at=at, finished_at=at))  # fmt: skip
                    db.add(HealthCheck(integration_id=integration_id, ok=hours % 48 != 0,
                                       checked_at=at))  # fmt: skip
        users.add_user("bench", "a long bench password", "viewer")
        times = []
        for _ in range(5):
            app = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
            app.session_state[SESSION_KEY] = SignedIn("bench", "viewer", time.time())
            started = time.perf_counter()
            app.run()
            times.append(time.perf_counter() - started)
            assert not app.exception, app.exception
        store.dispose()
    print(
        f"Overview, {args.clinics} integrations with {14 * 3} runs and checks each, "
        f"{'PostgreSQL' if args.database else 'SQLite'}: first render median "
        f"{statistics.median(times):.2f} s (min {min(times):.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("idle")
    one.add_argument("--clinics", type=int, default=1000)
    one.add_argument("--minutes", type=float, default=3)
    one.add_argument("--slots", type=int, default=8)
    one.add_argument("--database")
    many = commands.add_parser("failover")
    many.add_argument("--clinics", type=int, default=20)
    many.add_argument("--studies", type=int, default=6)
    many.add_argument("--workers", type=int, default=3)
    many.add_argument("--timeout", type=float, default=900)
    many.add_argument("--database")
    page = commands.add_parser("overview")
    page.add_argument("--clinics", type=int, default=1000)
    page.add_argument("--database")
    args = parser.parse_args()
    {"idle": idle, "failover": failover, "overview": overview}[args.command](args)


if __name__ == "__main__":
    main()
