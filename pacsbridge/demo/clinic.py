"""The demo clinic: a local Orthanc seeded with a synthetic fertility clinic's ultrasound.

Lets a newcomer see pacsbridge work end to end without a real PACS: the data live under
`$PACSBRIDGE_HOME/demo-pacs` (kept between runs, seeded once) and the integration
`demo-clinic` points at the server with a fresh random password each start.

The clinic: three patients in an IVF stimulation cycle, scanned every two or three days until
the trigger (follicles growing on both ovaries, the endometrium thickening), and one patient
with two early-pregnancy scans. Each visit is a study with a TID 5000 report and ultrasound
images drawn from the report's numbers; two visits have a cine loop. Study dates count back
from the day of seeding, so the charts show a recent cycle. Everything else comes from a fixed
seed: UIDs are hashed from it (not random), so seeding again yields the same objects.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from pydicom import Dataset

from core.errors import UnknownIntegration
from core.home import pacsbridge_home
from core.integrations import add_integration, edit_integration, get_integration
from core.settings.auth import AuthKind
from core.settings.model import IntegrationSettings
from pacsbridge.demo import obgyn, synthetic, ultrasound
from pacsbridge.demo.obgyn import EarlyPregnancy, Follicle, FollicleScan, Lwh, ReportHeader
from pacsbridge.demo.orthanc import OrthancServer

DEMO_INTEGRATION = "demo-clinic"
DEMO_SEED = 7
MANUFACTURER = "pacsbridge demo"
MONITORING = "US Transvaginal follicle monitoring"
EARLY_PREGNANCY = "US Early pregnancy"
# Written once every object is stored, so an interrupted first seeding is finished next time.
SEEDED_MARKER = "seeded"
CINE_FRAMES = 24
IMAGE_SERIES, CINE_SERIES, REPORT_SERIES = 1, 2, 99
SIDES = ("left", "right")
_UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:pacsbridge:demo-clinic")


@dataclass(frozen=True)
class DemoPatient:
    patient_id: str
    name: str
    scan_days_ago: tuple[int, ...]  # oldest first
    pregnant: bool = False


DEMO_PATIENTS = (
    DemoPatient("FC-1001", "Jansen^Emma", (10, 7, 5, 3, 1)),
    DemoPatient("FC-1002", "Müller^Sofia", (9, 6, 4, 2)),
    DemoPatient("FC-1003", "O'Brien^Aoife", (13, 11, 8, 6)),
    DemoPatient("FC-1004", "Nakamura^Yui", (17, 3), pregnant=True),
)


@dataclass(frozen=True)
class GrowingFollicle:
    """A follicle followed through the cycle: its size on the first scan and its daily growth."""

    identifier: str
    first_mm: float
    mm_per_day: float
    place: tuple[float, float]  # direction (row, column) from the ovary's centre, for pictures
    depth: float  # where a sweep through the ovary crosses it, -0.5 to 0.5 (for the cine loop)

    def diameter(self, days: float) -> float:
        return round(self.first_mm + self.mm_per_day * days, 1)


@dataclass(frozen=True)
class Visit:
    """One scan of one patient: its study, what its report measured and, for the pictures, the
    follicles of the cycle per side in the report's order."""

    patient: DemoPatient
    number: int  # 0 for the first visit
    study_date: date
    scan: FollicleScan | None = None
    pregnancy: EarlyPregnancy | None = None
    follicles: dict[str, list[GrowingFollicle]] = field(default_factory=dict)

    @property
    def dicom_date(self) -> str:
        return self.study_date.strftime("%Y%m%d")


def demo_uid(seed: int, *parts: object) -> str:
    """A UID named by the seed and the object's place in the clinic: new to the world, yet the
    same every time the clinic is generated. A name-based UUID (RFC 4122 version 5) under the
    2.25 root is both; pydicom's generate_uid ignores its entropy sources under that root."""
    name = "/".join(str(part) for part in (seed, *parts))
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, name).int}"


def demo_visits(today: date | None = None, seed: int = DEMO_SEED) -> list[Visit]:
    """Every patient's visits with the measurements their reports carry."""
    today = today or date.today()
    visits = []
    for patient in DEMO_PATIENTS:
        rng = random.Random(f"{seed}:{patient.patient_id}")
        dates = [today - timedelta(days=days) for days in patient.scan_days_ago]
        if patient.pregnant:
            lmp = dates[-1] - timedelta(days=57)  # 8 weeks + 1 day at the last scan
            for number, day in enumerate(dates):
                pregnancy = _pregnancy((day - lmp).days, lmp, rng)
                visits.append(Visit(patient, number, day, pregnancy=pregnancy))
            continue
        cycle = _Cycle(rng, first_scan=dates[0], span_days=(dates[-1] - dates[0]).days)
        for number, day in enumerate(dates):
            scan = cycle.scan((day - dates[0]).days)
            visits.append(Visit(patient, number, day, scan=scan, follicles=cycle.follicles))
    return visits


class _Cycle:
    """A stimulation cycle: antral follicles on the first scan, then follicles on both ovaries
    growing 1-2 mm a day until three or four are at least 17 mm on the last scan, one of them
    leading at 18-20 mm; the endometrium and the ovaries growing with them."""

    def __init__(self, rng: random.Random, first_scan: date, span_days: int) -> None:
        self.rng = rng
        self.span_days = span_days
        # The first scan is on day 3 of the menstrual cycle.
        self.lmp = (first_scan - timedelta(days=2)).strftime("%Y%m%d")
        leading_side = rng.choice(SIDES)
        # Besides the leading follicle, two or three more ripen (17-17.8 mm on the last scan),
        # spread over both ovaries: the cohort a clinic triggers on.
        ripe = rng.randint(2, 3)
        ripe_left = rng.randint(1, ripe - 1)
        ripening = {"left": ripe_left, "right": ripe - ripe_left}
        self.follicles = {
            side: self._follicles(side == leading_side, ripening[side]) for side in SIDES
        }
        # Follicles too small to be measured one by one, still counted.
        self.small = {side: rng.randint(2, 7) for side in SIDES}
        self.ovaries = {
            side: (rng.uniform(27, 31), rng.uniform(19, 23), rng.uniform(17, 20)) for side in SIDES
        }
        self.uterus = _lwh(rng.uniform(74, 82), rng.uniform(42, 48), rng.uniform(36, 41))
        self.cervix = round(rng.uniform(30, 36), 1)
        self.endometrium = (rng.uniform(4.5, 5.5), rng.uniform(0.55, 0.75))

    def _follicles(self, leading: bool, ripe: int) -> list[GrowingFollicle]:
        """The follicles of one ovary that answer the stimulation: antral on the first scan
        (4-9 mm), growing about 1-2 mm a day; `ripe` of them reach 17-17.8 mm by the last scan,
        one or more stay behind (11-16.5 mm), and on one ovary the leading one is ahead."""
        rng = self.rng
        span = max(self.span_days, 1)
        growth = []
        if leading:
            # The dominant follicle grows 1.5-2 mm a day under stimulation and is 18-20 mm on
            # the last scan, when the trigger is given.
            last = rng.uniform(18.0, 20.0)
            # Not smaller than an antral follicle (4 mm) on the first scan.
            rate = min(rng.uniform(1.6, 1.9), (last - 4.0) / span)
            growth.append((last - rate * span, rate))
        lasts = [rng.uniform(17.0, 17.8) for _ in range(ripe)]
        lasts += [rng.uniform(11.0, 16.5) for _ in range(rng.randint(1, 3))]
        for last in lasts:
            # Antral (at most 8.5 mm) on the first scan, growing at most 1.9 mm a day.
            low = max(4.0, last - 1.9 * span)
            first = rng.uniform(low, max(low, min(8.5, last - 0.8 * span)))
            growth.append((first, (last - first) / span))
        # Numbered by size on the last scan, the way a sonographer numbers them.
        growth.sort(key=lambda g: g[0] + g[1] * self.span_days, reverse=True)
        # Spread around the ovary's centre (the pictures), at different depths (the sweep).
        turn = rng.uniform(0, 2 * math.pi)
        angles = [turn + 2 * math.pi * k / len(growth) for k in range(len(growth))]
        return [
            GrowingFollicle(
                f"#{number}",
                first,
                rate,
                (0.3 * math.sin(angle), 0.3 * math.cos(angle)),
                rng.uniform(-0.3, 0.3),
            )
            for number, ((first, rate), angle) in enumerate(zip(growth, angles, strict=True), 1)
        ]

    def scan(self, days: int) -> FollicleScan:
        """What the scan ``days`` after the first one measured."""
        measured = {side: self._measured(side, days) for side in SIDES}
        ovaries = {side: self._ovary(side, days) for side in SIDES}
        thickness, per_day = self.endometrium
        return FollicleScan(
            left_follicles=measured["left"],
            right_follicles=measured["right"],
            left_count=len(measured["left"]) + self._small(side="left", days=days),
            right_count=len(measured["right"]) + self._small(side="right", days=days),
            left_ovary=ovaries["left"],
            right_ovary=ovaries["right"],
            uterus=self.uterus,
            endometrium=round(min(thickness + per_day * days, 12.5), 1),
            cervix=self.cervix,
            lmp=self.lmp,
        )

    def _small(self, side: str, days: int) -> int:
        """Small follicles that do not respond to the stimulation shrink away, one every few
        days."""
        return max(self.small[side] - days // 4, 1)

    def _measured(self, side: str, days: int) -> tuple[Follicle, ...]:
        """Each follicle measured twice, across and along, with the mean marked; the volume of
        those big enough for it to matter (a sphere: pi d^3 / 6)."""
        measured = []
        for follicle in self.follicles[side]:
            mean = follicle.diameter(days)
            spread = round(self.rng.uniform(0.2, 0.8), 1)
            volume = round(math.pi * mean**3 / 6000, 2) if mean >= 14 else None
            measured.append(
                Follicle(
                    follicle.identifier,
                    (round(mean + spread, 1), round(mean - spread, 1)),
                    mean=mean,
                    volume=volume,
                )
            )
        return tuple(measured)

    def _ovary(self, side: str, days: int) -> Lwh:
        # Stimulated ovaries swell with their follicles.
        length, width, height = self.ovaries[side]
        return _lwh(length + 1.1 * days, width + 0.8 * days, height + 0.9 * days)


def _lwh(length: float, width: float, height: float) -> Lwh:
    """Rounded sizes and the ellipsoid volume ultrasound devices report (0.523 L W H)."""
    length, width, height = round(length, 1), round(width, 1), round(height, 1)
    return Lwh(length, width, height, round(0.523 * length * width * height / 1000, 1))


def _pregnancy(days_since_lmp: int, lmp: date, rng: random.Random) -> EarlyPregnancy:
    """First-trimester biometry for a gestational age, from the usual dating curves."""
    # Robinson's CRL dating curve, GA (days) = 8.052 * sqrt(CRL in mm) + 23.73, solved for CRL.
    crl = round(((days_since_lmp - 23.73) / 8.052) ** 2, 1)
    spread = round(rng.uniform(0.1, 0.4), 1)
    return EarlyPregnancy(
        crl=(round(crl - spread, 1), round(crl + spread, 1)),
        crl_mean=crl,
        gestational_age_days=days_since_lmp,
        sac_diameter=round(days_since_lmp - 30 + rng.uniform(-1, 1), 1),  # MSD ≈ GA - 30 days
        yolk_sac=round(3.2 + 0.08 * (days_since_lmp - 40), 1),
        heart_rate=int(100 + 4.5 * (days_since_lmp - 42)),  # about 100 at 6 weeks, 160 by 8+
        lmp=lmp.strftime("%Y%m%d"),
    )


def demo_datasets(today: date | None = None, seed: int = DEMO_SEED) -> list[Dataset]:
    """The whole clinic as DICOM objects: per visit two images, a report, sometimes a loop."""
    datasets: list[Dataset] = []
    for visit in demo_visits(today, seed):
        datasets += _visit_datasets(visit, seed)
    return datasets


def _visit_datasets(visit: Visit, seed: int) -> list[Dataset]:
    patient = visit.patient
    index = DEMO_PATIENTS.index(patient)

    def uid(*role: object) -> str:
        return demo_uid(seed, patient.patient_id, visit.number, *role)

    study = {
        "patient_id": patient.patient_id,
        "patient_name": patient.name,
        "study_uid": uid("study"),
        "study_date": visit.dicom_date,
        "study_time": f"{8 + index:02d}{15 * visit.number % 60:02d}00",
        "study_description": EARLY_PREGNANCY if patient.pregnant else MONITORING,
        "manufacturer": MANUFACTURER,
    }
    rng = np.random.default_rng([seed, index, visit.number])
    pictures = _pregnancy_pictures(visit, rng) if patient.pregnant else _ovary_pictures(visit, rng)
    datasets = [
        synthetic.us_image(
            **study,
            series_uid=uid("images"),
            sop_uid=uid("image", number),
            series_number=IMAGE_SERIES,
            instance_number=number,
            # The annotated screen as a device saves it (colour JPEG), the other one plain.
            jpeg=frames[0].ndim == 3,
            pixels=frames,
        )
        for number, frames in enumerate(pictures, start=1)
    ]
    for image in datasets:
        image.SeriesDescription = "Pregnancy" if patient.pregnant else "Ovaries"
    # What the report's Image Library would list: the single-frame US images.
    image_uids = tuple(image.SOPInstanceUID for image in datasets)
    loop = _cine_loop(visit, rng)
    if loop:
        datasets.append(
            synthetic.us_image(
                **study,
                series_uid=uid("cine"),
                sop_uid=uid("cine", 1),
                series_number=CINE_SERIES,
                jpeg=True,
                pixels=loop,
            )
        )
        datasets[-1].SeriesDescription = "Cine loop"
    header = ReportHeader(
        patient_id=patient.patient_id,
        patient_name=patient.name,
        study_uid=study["study_uid"],
        series_uid=uid("report"),
        image_uids=image_uids,
        manufacturer=MANUFACTURER,
    )
    variant = obgyn.Variant(sop_instance_uid=uid("report", 1))
    if visit.pregnancy:
        report = obgyn.early_pregnancy_sr(variant, visit.pregnancy, header)
    else:
        assert visit.scan is not None
        report = obgyn.fertility_sr(variant, visit.scan, header)
    # The report shares the study's attributes, which QIDO-RS searches match on.
    synthetic.add_patient_study_series(
        report,
        **study,
        series_uid=header.series_uid,
        accession_number=None,
        modality="SR",
        series_number=REPORT_SERIES,
    )
    report.SpecificCharacterSet = synthetic.CHARACTER_SET
    report.SeriesDescription = "Report"
    report.InstanceNumber = 1
    report.ContentDate = visit.dicom_date
    report.ContentTime = study["study_time"]
    return [*datasets, report]


def _ovary_pictures(visit: Visit, rng: np.random.Generator) -> list[list[np.ndarray]]:
    """The left ovary as an annotated colour screen with calipers, the right one plain grey."""
    assert visit.scan is not None
    scan = visit.scan
    left = ultrasound.ovary_blobs("left", _ovary_mm(scan.left_ovary), _placed(visit, "left"))
    right = ultrasound.ovary_blobs("right", _ovary_mm(scan.right_ovary), _placed(visit, "right"))
    screen = ultrasound.annotated(
        ultrasound.frame(left, rng),
        [MANUFACTURER, "TV 7.5 MHz", f"LT OVARY  {len(scan.left_follicles)} foll."],
        calipers=left[1:],
    )
    return [[screen], [ultrasound.frame(right, rng)]]


def _pregnancy_pictures(visit: Visit, rng: np.random.Generator) -> list[list[np.ndarray]]:
    """The embryo with its CRL calipers (colour screen) and the sac with the yolk sac (grey)."""
    pregnancy = visit.pregnancy
    assert pregnancy is not None
    blobs = ultrasound.pregnancy_blobs(
        pregnancy.sac_diameter, pregnancy.crl_mean, pregnancy.yolk_sac, heart=1.0
    )
    weeks, days = divmod(pregnancy.gestational_age_days, 7)
    screen = ultrasound.annotated(
        ultrasound.frame(blobs, rng),
        [MANUFACTURER, "TV 7.5 MHz", f"GA {weeks}w{days}d  FHR {pregnancy.heart_rate} bpm"],
        calipers=[blobs[3]],
        measured="CRL",
    )
    return [[screen], [ultrasound.frame(blobs, rng)]]


def _cine_loop(visit: Visit, rng: np.random.Generator) -> list[np.ndarray] | None:
    """A loop on the last visit of the first patient (the probe sweeping through the left ovary
    and back) and of the pregnant one (the beating heart); None for every other visit. Both end
    where they start, so the loop plays without a jump."""
    patient = visit.patient
    last = visit.number == len(patient.scan_days_ago) - 1
    if not last or patient not in (DEMO_PATIENTS[0], DEMO_PATIENTS[-1]):
        return None
    frames = []
    for number in range(CINE_FRAMES):
        phase = number / CINE_FRAMES
        if visit.pregnancy:
            pregnancy = visit.pregnancy
            # Two beats over the loop, whatever the rate.
            heart = 0.5 + 0.5 * math.cos(4 * math.pi * phase)
            blobs = ultrasound.pregnancy_blobs(
                pregnancy.sac_diameter, pregnancy.crl_mean, pregnancy.yolk_sac, heart
            )
        else:
            assert visit.scan is not None
            blobs = ultrasound.ovary_blobs(
                "left",
                _ovary_mm(visit.scan.left_ovary),
                _placed(visit, "left", sweep=0.45 * math.sin(2 * math.pi * phase)),
            )
        frames.append(ultrasound.annotated(ultrasound.frame(blobs, rng), [MANUFACTURER, "CINE"]))
    return frames


def _ovary_mm(ovary: Lwh) -> tuple[float, float]:
    return ovary.length, ovary.height


def _placed(
    visit: Visit, side: str, sweep: float | None = None
) -> list[tuple[float, float, float]]:
    """(diameter, row, column) of each measured follicle in the picture. In a sweep (the plane
    at ``sweep``, -0.5 to 0.5, across the ovary) a follicle shows as the circle where the plane
    cuts it, and not at all when the plane misses it."""
    assert visit.scan is not None
    follicles = visit.scan.left_follicles if side == "left" else visit.scan.right_follicles
    placed = []
    for follicle, growing in zip(follicles, visit.follicles[side], strict=True):
        assert follicle.mean is not None
        diameter = follicle.mean
        if sweep is not None:
            ovary = visit.scan.left_ovary if side == "left" else visit.scan.right_ovary
            offset = (sweep - growing.depth) * ovary.width
            if abs(offset) >= diameter / 2:
                continue
            diameter = 2 * math.sqrt((diameter / 2) ** 2 - offset**2)
        placed.append((diameter, *growing.place))
    return placed


def start_demo_pacs(home: Path | None = None, today: date | None = None) -> OrthancServer:
    """Start the demo Orthanc on a free loopback port; seed it until seeding has completed once."""
    workdir = (home or pacsbridge_home()) / "demo-pacs"
    server = OrthancServer.start(workdir)
    marker = workdir / SEEDED_MARKER
    if not marker.exists():
        try:
            # Orthanc answers "AlreadyStored" for what an interrupted seeding left behind.
            server.upload(demo_datasets(today))
        except BaseException:
            server.stop()
            raise
        marker.write_text((today or date.today()).isoformat() + "\n")
    return server


def register_demo_integration(server: OrthancServer) -> IntegrationSettings:
    """Create or update `demo-clinic` to point at this run's port and password."""
    changes = {
        "base_uri": server.dicomweb_url,
        "auth_kind": AuthKind.BASIC,
        "username": server.username,
    }
    try:
        get_integration(DEMO_INTEGRATION)
    except UnknownIntegration:
        return add_integration(
            IntegrationSettings(name=DEMO_INTEGRATION, **changes), server.password
        )
    return edit_integration(DEMO_INTEGRATION, changes, server.password)
