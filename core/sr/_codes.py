"""Coded concepts of the OB-GYN ultrasound report, named and grouped like PS3.16.

Codes are compared on (scheme, value) only, after legacy SNOMED-RT (`SRT`) codes are mapped to
SNOMED CT (`SCT`) with the PS3.16 Annex O table that pydicom ships: code meanings differ between
editions and vendors ("Ovarian Follicle" vs "Ovarian follicle structure"), so a meaning is for
display, never for matching.

Templates: https://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_TID_5000.html
and the pages `sect_TID_<n>.html` beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

# PS3.16 Annex O, "SNOMED Concept ID to SNOMED ID Mapping"; pydicom keeps it in a private module,
# and its public `Code` compares through the same table but hashes unmapped, so dict lookups miss.
from pydicom.sr._snomed_dict import mapping as _snomed_mapping

_SRT_TO_SCT: dict[str, str] = _snomed_mapping["SRT"]

# PS3.16 §8.2: a designator starting with "99" is private. Canon's `TSBus` predates that rule.
_PRIVATE_SCHEMES_WITHOUT_99 = frozenset({"TSBus"})


@dataclass(slots=True, eq=False, init=False)
class Code:
    """A coded concept; equal and hashed on (scheme, value) only. Never changed once made: codes
    are shared between reports (`normalized_code` caches them).

    `legacy_value` keeps the SNOMED-RT value the document carried when it was mapped to SCT.
    """

    scheme: str
    value: str
    meaning: str
    legacy_value: str | None

    # Written out, as in the other classes made per content item: compiled (core/compiled.py),
    # a generated __init__ stays interpreted.
    def __init__(
        self, scheme: str, value: str, meaning: str = "", legacy_value: str | None = None
    ) -> None:
        self.scheme = scheme
        self.value = value
        self.meaning = meaning
        self.legacy_value = legacy_value

    # Written out rather than generated: codes are compared and looked up hundreds of times per
    # report, and the generated methods build a tuple on every call.
    def __eq__(self, other: object) -> bool:
        if type(other) is not Code:
            return NotImplemented
        return self.value == other.value and self.scheme == other.scheme

    def __hash__(self) -> int:
        # Equal codes have equal values; one value in two schemes is rare enough not to matter.
        return hash(self.value)

    @property
    def is_private(self) -> bool:
        """Whether the coding scheme is a vendor's own (PS3.16 §8.2)."""
        return self.scheme.startswith("99") or self.scheme in _PRIVATE_SCHEMES_WITHOUT_99

    def __str__(self) -> str:
        return f'({self.value}, {self.scheme}, "{self.meaning}")'


@lru_cache(maxsize=8192)
def normalized_code(scheme: str, value: str, meaning: str = "") -> Code:
    """The code as pacsbridge compares it: SRT values mapped to SCT where Annex O knows them.

    Cached because a report repeats the same few dozen codes many times.
    """
    if scheme == "SRT" and value in _SRT_TO_SCT:
        return Code("SCT", _SRT_TO_SCT[value], meaning, legacy_value=value)
    return Code(scheme, value, meaning)


def _dcm(value: str, meaning: str) -> Code:
    return Code("DCM", value, meaning)


def _ln(value: str, meaning: str) -> Code:
    return Code("LN", value, meaning)


def _sct(value: str, meaning: str) -> Code:
    return Code("SCT", value, meaning)


# --- TID 5000 OB-GYN Ultrasound Procedure Report: root and section containers ---------------
# https://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_TID_5000.html

OBGYN_ULTRASOUND_PROCEDURE_REPORT = _dcm("125000", "OB-GYN Ultrasound Procedure Report")
US_PELVIS = _ln("24869-0", "US Pelvis")
OBSTETRIC_US_SCAN = _sct("268445003", "Obstetric US scan")
# BCID 12024 OB-GYN Ultrasound Report Document Title. Baseline: other titles are allowed, so a
# report is recognised by these, never rejected for another one.
OBGYN_REPORT_TITLES = frozenset({OBGYN_ULTRASOUND_PROCEDURE_REPORT, US_PELVIS, OBSTETRIC_US_SCAN})
ACQUISITION_PROTOCOL = _dcm("125203", "Acquisition Protocol")
TRANSVAGINAL = _sct("54300008", "Trans-vaginal")
TRANSABDOMINAL = _sct("66739002", "Trans-abdominal")
PATIENT_CHARACTERISTICS = _dcm("121118", "Patient Characteristics")  # TID 5001
IMAGE_LIBRARY = _dcm("111028", "Image Library")
SUMMARY = _dcm("121111", "Summary")  # TID 5002
FETAL_BIOMETRY_RATIOS = _dcm("125001", "Fetal Biometry Ratios")  # TID 5004
FETAL_BIOMETRY = _dcm("125002", "Fetal Biometry")  # TID 5005
FETAL_LONG_BONES = _dcm("125003", "Fetal Long Bones")  # TID 5006
FETAL_CRANIUM = _dcm("125004", "Fetal Cranium")  # TID 5007
BIOPHYSICAL_PROFILE = _dcm("125006", "Biophysical Profile")  # TID 5009
EARLY_GESTATION = _dcm("125009", "Early Gestation")  # TID 5011
PELVIS_AND_UTERUS = _dcm("125011", "Pelvis and Uterus")  # TID 5015
# TID 5010 Amniotic Sac, TID 5012 Ovaries, TID 5013 Follicles and TID 5025/5026 vascular
# sections all use this one concept; their Finding Site tells them apart.
FINDINGS = _dcm("121070", "Findings")

# Finding Site values that name a Findings section.
AMNIOTIC_SAC = _sct("70847004", "Amniotic sac")
OVARY = _sct("15497006", "Ovary")
OVARIAN_FOLLICLE = _sct("24162005", "Ovarian follicle")
EMBRYONIC_VASCULAR_STRUCTURE = _sct("51852003", "Embryonic vascular structure")
PELVIC_VASCULAR_STRUCTURE = _sct("281496003", "Pelvic vascular structure")

# --- TID 1008 Subject Context, Fetus (observation context of fetal sections) ------------------
# https://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_TID_1008.html

FETUS_ID = _ln("11951-1", "Fetus ID")
SUBJECT_ID = _dcm("121030", "Subject ID")
NUMBER_OF_FETUSES_BY_US = _ln("11878-6", "Number of Fetuses by US")

# --- TID 300 Measurement and TID 310 Measurement Properties -----------------------------------
# https://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_TID_300.html

FINDING_SITE = _sct("363698007", "Finding Site")
LATERALITY = _sct("272741003", "Laterality")
LEFT = _sct("7771000", "Left")
RIGHT = _sct("24028007", "Right")
DERIVATION = _dcm("121401", "Derivation")
SELECTION_STATUS = _dcm("121404", "Selection Status")

# CID 3627 Measurement Type, plus Maximum/Minimum from CID 3488 that devices send as Derivation.
MEAN = _sct("373098007", "Mean")
MEDIAN = _sct("373099004", "Median")
CALCULATED = _sct("258090004", "Calculated")
ESTIMATED = _sct("414135002", "Estimated")
MEASURED = _sct("258104002", "Measured")
BEST_VALUE = _sct("371912002", "Best value")
MAXIMUM = _sct("56851009", "Maximum")
MINIMUM = _sct("255605001", "Minimum")

# CID 224 Selection Method
USER_CHOSEN_VALUE = _dcm("121410", "User chosen value")
MOST_RECENT_VALUE_CHOSEN = _dcm("121411", "Most recent value chosen")
MEAN_VALUE_CHOSEN = _dcm("121412", "Mean value chosen")

# --- TID 5012 Ovaries, through TID 5016 LWH Volume Group ---------------------------------------
# https://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_TID_5012.html
# Both ovaries' groups are named OVARY; only these child codes tell the side.

LEFT_OVARY_VOLUME = _ln("12164-0", "Left Ovary Volume")
LEFT_OVARY_LENGTH = _ln("11840-6", "Left Ovary Length")
LEFT_OVARY_WIDTH = _ln("11829-9", "Left Ovary Width")
LEFT_OVARY_HEIGHT = _ln("11857-0", "Left Ovary Height")
RIGHT_OVARY_VOLUME = _ln("12165-7", "Right Ovary Volume")
RIGHT_OVARY_LENGTH = _ln("11841-4", "Right Ovary Length")
RIGHT_OVARY_WIDTH = _ln("11830-7", "Right Ovary Width")
RIGHT_OVARY_HEIGHT = _ln("11858-8", "Right Ovary Height")

# --- TID 5013 Follicles and TID 5014 Follicle Measurement Group --------------------------------
# https://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_TID_5013.html

NUMBER_OF_FOLLICLES_LEFT = _ln("11879-4", "Number of follicles in left ovary")
NUMBER_OF_FOLLICLES_RIGHT = _ln("11880-2", "Number of follicles in right ovary")
IDENTIFIER = _dcm("125010", "Identifier")
FOLLICLE_DIAMETER = _ln("11793-7", "Follicle Diameter")
VOLUME = _sct("118565006", "Volume")
# Follicle counting by size range, CID 12010 (2024); where devices will put them is not known yet.
DIAMETER_RANGE_MINIMUM = _dcm("130902", "Diameter Range Minimum Value")
DIAMETER_RANGE_MAXIMUM = _dcm("130903", "Diameter Range Maximum Value")
VOLUME_RANGE_MINIMUM = _dcm("130904", "Volume Range Minimum Value")
VOLUME_RANGE_MAXIMUM = _dcm("130905", "Volume Range Maximum Value")
NUMBER_OF_FOLLICLES_IN_RANGE = _dcm("130906", "Number of Follicles in Range")
TOTAL_ANTRAL_FOLLICLE_COUNT = _dcm("130907", "Total Antral Follicle Count")
FOLLICLE_COUNT_GROUP_IDENTIFIER = _dcm("130914", "Follicle Count Group Identifier")
# TID 1500 measurement groups name themselves with a Tracking Identifier instead.
TRACKING_IDENTIFIER = _dcm("112039", "Tracking Identifier")

# --- TID 5015 Pelvis and Uterus ----------------------------------------------------------------
# https://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_TID_5015.html

UTERUS_VOLUME = _ln("33192-6", "Uterus Volume")
UTERUS_LENGTH = _ln("11842-2", "Uterus Length")
UTERUS_WIDTH = _ln("11865-3", "Uterus Width")
UTERUS_HEIGHT = _ln("11859-6", "Uterus Height")
ENDOMETRIUM_THICKNESS = _ln("12145-9", "Endometrium Thickness")
CERVIX_LENGTH = _ln("11961-0", "Cervix Length")
INTERNAL_OS_DISTANCE = _dcm("131530", "Internal Os Distance")

# --- TID 5011 Early Gestation, through TID 5008 Biometry Group (CID 12009) --------------------
# https://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_TID_5011.html

GESTATIONAL_SAC_DIAMETER = _ln("11850-5", "Gestational Sac Diameter")
CROWN_RUMP_LENGTH = _ln("11957-8", "Crown Rump Length")
YOLK_SAC_LENGTH = _ln("11816-6", "Yolk Sac length")
NUCHAL_TRANSLUCENCY = _ln("33069-6", "Nuchal Translucency")
GESTATIONAL_AGE = _ln("18185-9", "Gestational Age")

# --- TID 5003 Fetus Summary (CID 12019) and TID 5002 Summary ----------------------------------
# https://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_TID_5003.html

FETUS_SUMMARY = _dcm("125008", "Fetus Summary")
FETAL_HEART_RATE = _ln("11948-7", "Fetal Heart Rate")
# Some vendors put plain heart rate in Doppler groups: kept apart from FETAL_HEART_RATE.
HEART_RATE = _ln("8867-4", "Heart rate")
