"""OB-GYN ultrasound SR documents (TID 5000), shaped like the trees in PS3.16 and PS3.17 Annex I.

No public OB-GYN SR with follicle, ovary or endometrium measurements exists under a usable
licence, so pacsbridge builds its own: the demo clinic's reports and the SR tests' fixtures
come from here. `Variant` switches one device habit at a time; `fertility_sr()` is a
follicle-monitoring scan and `early_pregnancy_sr()` a first-trimester one, each with the
measurements given (by default a reference scan the tests know by heart).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.sr._snomed_dict import mapping as snomed_mapping
from pydicom.uid import ExplicitVRLittleEndian

COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
ENHANCED_SR = "1.2.840.10008.5.1.4.1.1.88.22"
US_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"

# The reference scan's identity (fixed, so tests can compare dumps and rows word for word).
PATIENT_ID = "IVF-0042"
STUDY_UID = "1.2.826.0.1.3680043.9.7433.1.1"
SERIES_UID = "1.2.826.0.1.3680043.9.7433.1.2"
SOP_UID = "1.2.826.0.1.3680043.9.7433.1.3"
IMAGE_UIDS = ("1.2.826.0.1.3680043.9.7433.1.10", "1.2.826.0.1.3680043.9.7433.1.11")

Code = tuple[str, str, str]  # (value, scheme, meaning), as in the standard's tables

# Concepts, written out as the tables of PS3.16 give them, not imported from core.sr:
# documents built from them test the reader against the standard, not against itself.
REPORT = ("125000", "DCM", "OB-GYN Ultrasound Procedure Report")
ACQUISITION_PROTOCOL = ("125203", "DCM", "Acquisition Protocol")
TRANSVAGINAL = ("54300008", "SCT", "Trans-vaginal")
IMAGE_LIBRARY = ("111028", "DCM", "Image Library")
SUMMARY = ("121111", "DCM", "Summary")
FETUS_SUMMARY = ("125008", "DCM", "Fetus Summary")
LMP = ("8665-2", "LN", "LMP")
FINDINGS = ("121070", "DCM", "Findings")
FINDING_SITE = ("363698007", "SCT", "Finding Site")
LATERALITY = ("272741003", "SCT", "Laterality")
LEFT = ("7771000", "SCT", "Left")
RIGHT = ("24028007", "SCT", "Right")
OVARY = ("15497006", "SCT", "Ovary")
OVARIAN_FOLLICLE = ("24162005", "SCT", "Ovarian follicle")
FOLLICLE_COUNT = {
    "left": ("11879-4", "LN", "Number of follicles in left ovary"),
    "right": ("11880-2", "LN", "Number of follicles in right ovary"),
}
MEASUREMENT_GROUP = ("125007", "DCM", "Measurement Group")
IDENTIFIER = ("125010", "DCM", "Identifier")
FOLLICLE_DIAMETER = ("11793-7", "LN", "Follicle Diameter")
VOLUME = ("118565006", "SCT", "Volume")
DERIVATION = ("121401", "DCM", "Derivation")
MEAN = ("373098007", "SCT", "Mean")
MAXIMUM = ("56851009", "SCT", "Maximum")
SELECTION_STATUS = ("121404", "DCM", "Selection Status")
USER_CHOSEN = ("121410", "DCM", "User chosen value")
MOST_RECENT = ("121411", "DCM", "Most recent value chosen")
OVARY_LWH = {
    "left": (
        ("11840-6", "LN", "Left Ovary Length"),
        ("11829-9", "LN", "Left Ovary Width"),
        ("11857-0", "LN", "Left Ovary Height"),
        ("12164-0", "LN", "Left Ovary Volume"),
    ),
    "right": (
        ("11841-4", "LN", "Right Ovary Length"),
        ("11830-7", "LN", "Right Ovary Width"),
        ("11858-8", "LN", "Right Ovary Height"),
        ("12165-7", "LN", "Right Ovary Volume"),
    ),
}
PELVIS_AND_UTERUS = ("125011", "DCM", "Pelvis and Uterus")
UTERUS = ("35039007", "SCT", "Uterus")
UTERUS_LWH = (
    ("11842-2", "LN", "Uterus Length"),
    ("11865-3", "LN", "Uterus Width"),
    ("11859-6", "LN", "Uterus Height"),
    ("33192-6", "LN", "Uterus Volume"),
)
ENDOMETRIUM = ("2739003", "SCT", "Endometrium")
ENDOMETRIUM_THICKNESS = ("12145-9", "LN", "Endometrium Thickness")
CERVIX_LENGTH = ("11961-0", "LN", "Cervix Length")
EARLY_GESTATION = ("125009", "DCM", "Early Gestation")
FETUS_ID = ("11951-1", "LN", "Fetus ID")
NUMBER_OF_FETUSES = ("11878-6", "LN", "Number of Fetuses by US")
BIOMETRY_GROUP = ("125005", "DCM", "Biometry Group")
CRL = ("11957-8", "LN", "Crown Rump Length")
GS_DIAMETER = ("11850-5", "LN", "Gestational Sac Diameter")
YOLK_SAC = ("11816-6", "LN", "Yolk Sac length")
GESTATIONAL_AGE = ("18185-9", "LN", "Gestational Age")
EQUATION = ("121420", "DCM", "Equation")
CRL_HADLOCK = ("11910-7", "LN", "CRL, Hadlock 1992")
FETAL_HEART_RATE = ("11948-7", "LN", "Fetal Heart Rate")
MEASUREMENT_NOT_ATTEMPTED = ("114007", "DCM", "Measurement not attempted")
SOURCE_IMAGE = ("121324", "DCM", "Source Image")
IMAGE_REGION = ("111030", "DCM", "Image Region")
# A vendor's own code, the way Samsung sends cervix width (value "99005-03"; scheme assumed).
PRIVATE_CERVIX_WIDTH = ("99005-03", "99SMSN", "Cervix Width")

UNITS = {
    "mm": ("mm", "UCUM", "millimeter"),
    "cm": ("cm", "UCUM", "centimeter"),
    "ml": ("ml", "UCUM", "milliliter"),
    "cm3": ("cm3", "UCUM", "cubic centimeter"),
    "1": ("1", "UCUM", "no units"),
    "d": ("d", "UCUM", "day"),
    "{H.B.}/min": ("{H.B.}/min", "UCUM", "heart beats per minute"),
}
# pydicom's SNOMED CT to SNOMED-RT table: a private module, but the only copy that ships with
# a dependency, and only the legacy-codes variant needs it.
_SCT_TO_SRT: dict[str, str] = snomed_mapping["SCT"]


@dataclass(frozen=True)
class Variant:
    """One device habit at a time; the default is a clean, current-edition document."""

    legacy_codes: bool = False  # SNOMED-RT (SRT) codes instead of SNOMED CT, like Canon in 2022
    diameter_unit: str = "mm"  # "cm": follicle diameters and endometrium sent in centimetres
    selection_status: bool = False  # Selection Status marks the value to read, no Mean item
    mean_item: bool = True  # False: only the individual diameters/lengths, nothing marked
    private_item: bool = False  # a vendor-private NUM beside the standard ones
    image_library: bool = False  # Image Library + by-reference INFERRED FROM + SCOORD calipers
    sop_class: str = COMPREHENSIVE_SR
    sop_instance_uid: str = SOP_UID
    predecessor_uid: str | None = None  # an amended report names the one it replaces
    missing_values: bool = False  # a follicle diameter not measured, volumes without a value


@dataclass(frozen=True)
class ReportHeader:
    """Whose report it is: the patient, the study and series it belongs to, its images."""

    patient_id: str = PATIENT_ID
    patient_name: str = "Test^Fertility"
    study_uid: str = STUDY_UID
    series_uid: str = SERIES_UID
    # What the Image Library lists; the first one carries the calipers of follicle #1.
    image_uids: tuple[str, ...] = IMAGE_UIDS
    manufacturer: str = "pacsbridge test factory"


@dataclass(frozen=True)
class Follicle:
    identifier: str
    diameters: tuple[float, ...]  # in mm
    mean: float | None = None  # in mm; marked Derivation = Mean (or selected)
    volume: float | None = None  # in ml


@dataclass(frozen=True)
class Lwh:
    length: float  # mm
    width: float  # mm
    height: float  # mm
    volume: float  # ml


@dataclass(frozen=True)
class FollicleScan:
    """What a follicle-monitoring scan measured. The counts include follicles too small to be
    measured one by one, so they can exceed the measured lists."""

    left_follicles: tuple[Follicle, ...]
    right_follicles: tuple[Follicle, ...]
    left_count: int
    right_count: int
    left_ovary: Lwh
    right_ovary: Lwh
    uterus: Lwh
    endometrium: float  # mm
    cervix: float  # mm
    lmp: str  # DICOM date of the last menstrual period


@dataclass(frozen=True)
class EarlyPregnancy:
    """What a first-trimester scan measured (one fetus)."""

    crl: tuple[float, ...]  # crown-rump lengths in mm, each measurement
    crl_mean: float  # mm
    gestational_age_days: int  # reported as derived from the CRL by Hadlock's 1992 equation
    sac_diameter: float  # mean gestational sac diameter, mm
    yolk_sac: float  # mm
    heart_rate: int  # beats per minute
    lmp: str  # DICOM date


@dataclass
class Builder:
    """Content items and TID 5000 sections, written the way the variant's device would."""

    variant: Variant
    header: ReportHeader = field(default_factory=ReportHeader)

    # --- items --------------------------------------------------------------------------------

    def code(self, code: Code) -> Dataset:
        value, scheme, meaning = code
        if self.variant.legacy_codes and scheme == "SCT" and value in _SCT_TO_SRT:
            value, scheme = _SCT_TO_SRT[value], "SRT"
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = scheme
        item.CodeMeaning = meaning
        return item

    def item(self, relationship: str | None, value_type: str, concept: Code | None) -> Dataset:
        item = Dataset()
        if relationship:
            item.RelationshipType = relationship
        item.ValueType = value_type
        if concept:
            item.ConceptNameCodeSequence = Sequence([self.code(concept)])
        return item

    def container(
        self, concept: Code, *children: Dataset, relationship: str = "CONTAINS"
    ) -> Dataset:
        item = self.item(relationship, "CONTAINER", concept)
        item.ContinuityOfContent = "SEPARATE"
        item.ContentSequence = Sequence(list(children))
        return item

    def code_item(
        self, concept: Code, value: Code, relationship: str = "HAS CONCEPT MOD"
    ) -> Dataset:
        item = self.item(relationship, "CODE", concept)
        item.ConceptCodeSequence = Sequence([self.code(value)])
        return item

    def text_item(self, concept: Code, text: str, relationship: str = "HAS OBS CONTEXT") -> Dataset:
        item = self.item(relationship, "TEXT", concept)
        item.TextValue = text
        return item

    def num(
        self,
        concept: Code,
        value: float | None,
        unit: str | None,
        *children: Dataset,
        relationship: str = "CONTAINS",
    ) -> Dataset:
        item = self.item(relationship, "NUM", concept)
        measured = Dataset()
        if value is not None:
            measured.NumericValue = f"{value:g}"
        if unit:
            measured.MeasurementUnitsCodeSequence = Sequence([self.code(UNITS[unit])])
        item.MeasuredValueSequence = Sequence([measured] if value is not None else [])
        if value is None:
            item.NumericValueQualifierCodeSequence = Sequence(
                [self.code(MEASUREMENT_NOT_ATTEMPTED)]
            )
        if children:
            item.ContentSequence = Sequence(list(children))
        return item

    def image(
        self, uid: str, relationship: str = "CONTAINS", concept: Code | None = None
    ) -> Dataset:
        item = self.item(relationship, "IMAGE", concept)
        reference = Dataset()
        reference.ReferencedSOPClassUID = US_IMAGE
        reference.ReferencedSOPInstanceUID = uid
        item.ReferencedSOPSequence = Sequence([reference])
        return item

    def by_reference(self, relationship: str, position: tuple[int, ...]) -> Dataset:
        item = Dataset()
        item.RelationshipType = relationship
        item.ReferencedContentItemIdentifier = list(position)
        return item

    def calipers(self, image_uid: str) -> Dataset:
        item = self.item("INFERRED FROM", "SCOORD", IMAGE_REGION)
        item.GraphicType = "POLYLINE"
        item.GraphicData = [10.0, 10.0, 52.5, 40.25]
        item.ContentSequence = Sequence([self.image(image_uid, "SELECTED FROM", SOURCE_IMAGE)])
        return item

    def marked(self, *, mean: bool = False, selected: Code | None = None) -> list[Dataset]:
        children = []
        if mean:
            children.append(self.code_item(DERIVATION, MEAN))
        if selected:
            children.append(self.code_item(SELECTION_STATUS, selected, "HAS PROPERTIES"))
        return children

    def measured(
        self, concept: Code, values: tuple[float, ...], mean: float | None, unit: str
    ) -> list[Dataset]:
        """1-n individual values, then the one to read: Mean (or, in the Selection Status
        variant, a Selection Status on the last individual value instead of a Mean item)."""
        factor = 0.1 if unit == "cm" else 1.0
        items = [self.num(concept, v * factor, unit) for v in values]
        if mean is None or not (self.variant.mean_item or self.variant.selection_status):
            return items
        if self.variant.selection_status:
            items[-1].ContentSequence = Sequence(self.marked(selected=USER_CHOSEN))
            return items
        return [*items, self.num(concept, mean * factor, unit, *self.marked(mean=True))]

    # --- TID 5000 sections ---------------------------------------------------------------------

    def follicles(self, side: str, count: int, follicles: tuple[Follicle, ...]) -> Dataset:
        """TID 5013 Follicles with one TID 5014 group per follicle."""
        unit = self.variant.diameter_unit
        children = [
            self.code_item(FINDING_SITE, OVARIAN_FOLLICLE),
            self.code_item(LATERALITY, LEFT if side == "left" else RIGHT),
            self.num(FOLLICLE_COUNT[side], count, "1"),
        ]
        for follicle in follicles:
            group = [self.text_item(IDENTIFIER, follicle.identifier)]
            if follicle.volume is not None:
                group.append(self.num(VOLUME, follicle.volume, "cm3"))
            group += self.measured(FOLLICLE_DIAMETER, follicle.diameters, follicle.mean, unit)
            if self.variant.image_library and follicle is follicles[0]:
                # The mean's source image by reference (Image Library item 1) and its calipers.
                group[-1].ContentSequence = Sequence(
                    [
                        *group[-1].get("ContentSequence", []),
                        self.by_reference("INFERRED FROM", (1, 2, 1)),
                        self.calipers(self.header.image_uids[0]),
                    ]
                )
            if self.variant.missing_values and follicle is follicles[-1]:
                group.append(self.num(FOLLICLE_DIAMETER, None, None))
            children.append(self.container(MEASUREMENT_GROUP, *group))
        return self.container(FINDINGS, *children)

    def lwh(
        self, name: Code, codes: tuple[Code, ...], lwh: Lwh, *, two_lengths: bool = False
    ) -> Dataset:
        """TID 5016 LWH Volume Group; `two_lengths`: the length measured twice, plus the mean."""
        length, width, height, volume = codes
        lengths = (
            self.measured(length, (lwh.length - 0.5, lwh.length + 0.5), lwh.length, "mm")
            if two_lengths
            else [self.num(length, lwh.length, "mm")]
        )
        return self.container(
            name,
            *lengths,
            self.num(width, lwh.width, "mm"),
            self.num(height, lwh.height, "mm"),
            self.num(volume, None if self.variant.missing_values else lwh.volume, "ml"),
        )

    def ovaries(self, left: Lwh, right: Lwh) -> Dataset:
        """TID 5012 Ovaries: both groups are named Ovary; the side is in the child codes."""
        return self.container(
            FINDINGS,
            self.code_item(FINDING_SITE, OVARY),
            self.lwh(OVARY, OVARY_LWH["left"], left, two_lengths=True),
            self.lwh(OVARY, OVARY_LWH["right"], right),
        )

    def pelvis_and_uterus(self, uterus: Lwh, endometrium: float, cervix: float) -> Dataset:
        """TID 5015 Pelvis and Uterus."""
        unit = self.variant.diameter_unit
        factor = 0.1 if unit == "cm" else 1.0
        children = [
            self.lwh(UTERUS, UTERUS_LWH, uterus),
            self.num(
                ENDOMETRIUM_THICKNESS,
                endometrium * factor,
                unit,
                self.code_item(FINDING_SITE, ENDOMETRIUM),
            ),
            self.num(CERVIX_LENGTH, cervix, "mm"),
        ]
        if self.variant.private_item:
            children.append(self.num(PRIVATE_CERVIX_WIDTH, 28.4, None))
        return self.container(PELVIS_AND_UTERUS, *children)

    def image_library(self) -> Dataset:
        return self.container(IMAGE_LIBRARY, *(self.image(uid) for uid in self.header.image_uids))

    def early_gestation(self, pregnancy: EarlyPregnancy) -> Dataset:
        """TID 5011 Early Gestation, one TID 5008 Biometry Group per measurement type."""
        equation = self.code_item(EQUATION, CRL_HADLOCK, "INFERRED FROM")
        return self.container(
            EARLY_GESTATION,
            self.text_item(FETUS_ID, "1"),
            self.num(NUMBER_OF_FETUSES, 1, "1", relationship="HAS OBS CONTEXT"),
            self.container(
                BIOMETRY_GROUP,
                *self.measured(CRL, pregnancy.crl, pregnancy.crl_mean, "mm"),
                self.num(GESTATIONAL_AGE, pregnancy.gestational_age_days, "d", equation),
            ),
            self.container(BIOMETRY_GROUP, self.num(GS_DIAMETER, pregnancy.sac_diameter, "mm")),
            self.container(BIOMETRY_GROUP, self.num(YOLK_SAC, pregnancy.yolk_sac, "mm")),
        )

    def summary(self, lmp_date: str, pregnancy: EarlyPregnancy | None = None) -> Dataset:
        """TID 5002 Summary, with a TID 5003 Fetus Summary in pregnancy."""
        lmp = self.item("CONTAINS", "DATE", LMP)
        lmp.Date = lmp_date
        children = [lmp]
        if pregnancy is not None:
            heart_rate = self.num(
                FETAL_HEART_RATE,
                pregnancy.heart_rate,
                "{H.B.}/min",
                *self.marked(selected=MOST_RECENT),
            )
            children.append(
                self.container(
                    FETUS_SUMMARY,
                    self.text_item(FETUS_ID, "1"),
                    heart_rate,
                    self.num(GESTATIONAL_AGE, pregnancy.gestational_age_days, "d"),
                )
            )
        return self.container(SUMMARY, *children)

    def document(self, *sections: Dataset) -> Dataset:
        variant = self.variant
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = variant.sop_class
        ds.file_meta.MediaStorageSOPInstanceUID = variant.sop_instance_uid
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID = variant.sop_class
        ds.SOPInstanceUID = variant.sop_instance_uid
        header = self.header
        ds.StudyInstanceUID = header.study_uid
        ds.SeriesInstanceUID = header.series_uid
        ds.PatientID = header.patient_id
        ds.PatientName = header.patient_name
        ds.Modality = "SR"
        ds.Manufacturer = header.manufacturer
        ds.CompletionFlag = "COMPLETE"
        ds.VerificationFlag = "UNVERIFIED"
        if variant.predecessor_uid:
            sop = Dataset()
            sop.ReferencedSOPClassUID = variant.sop_class
            sop.ReferencedSOPInstanceUID = variant.predecessor_uid
            series = Dataset()
            series.SeriesInstanceUID = header.series_uid
            series.ReferencedSOPSequence = Sequence([sop])
            study = Dataset()
            study.StudyInstanceUID = header.study_uid
            study.ReferencedSeriesSequence = Sequence([series])
            ds.PredecessorDocumentsSequence = Sequence([study])
        template = Dataset()
        template.MappingResource = "DCMR"
        template.TemplateIdentifier = "5000"
        ds.ContentTemplateSequence = Sequence([template])
        ds.ValueType = "CONTAINER"
        ds.ConceptNameCodeSequence = Sequence([self.code(REPORT)])
        ds.ContinuityOfContent = "SEPARATE"
        ds.ContentSequence = Sequence(list(sections))
        return ds


# The reference scan: 1-3 diameters per follicle, mean marked when there are several, volumes
# on the largest.
LEFT_FOLLICLES = (
    Follicle("#1", (18.2, 17.6, 18.9), mean=18.2, volume=2.8),
    Follicle("#2", (14.1, 13.5), mean=13.8),
    Follicle("#3", (10.2,)),
)
RIGHT_FOLLICLES = (
    Follicle("#1", (16.0, 15.2, 16.4), mean=15.9, volume=2.1),
    Follicle("#2", (12.0, 11.4), mean=11.7),
)
LEFT_OVARY = Lwh(length=35.1, width=22.4, height=28.0, volume=11.5)
RIGHT_OVARY = Lwh(length=33.0, width=20.1, height=25.2, volume=8.8)
UTERUS_SIZE = Lwh(length=78.2, width=45.1, height=38.0, volume=70.2)
REFERENCE_SCAN = FollicleScan(
    left_follicles=LEFT_FOLLICLES,
    right_follicles=RIGHT_FOLLICLES,
    left_count=3,
    right_count=2,
    left_ovary=LEFT_OVARY,
    right_ovary=RIGHT_OVARY,
    uterus=UTERUS_SIZE,
    endometrium=9.4,
    cervix=32.5,
    lmp="20260301",
)
REFERENCE_PREGNANCY = EarlyPregnancy(
    crl=(12.1, 12.5),
    crl_mean=12.3,
    gestational_age_days=53,
    sac_diameter=25.0,
    yolk_sac=4.1,
    heart_rate=152,
    lmp="20260301",
)


def fertility_sr(
    variant: Variant = Variant(),
    scan: FollicleScan = REFERENCE_SCAN,
    header: ReportHeader = ReportHeader(),
) -> Dataset:
    """A transvaginal follicle-monitoring report: pelvis and uterus, ovaries, both follicle sets."""
    b = Builder(variant, header)
    sections = [b.code_item(ACQUISITION_PROTOCOL, TRANSVAGINAL, "HAS ACQ CONTEXT")]
    if variant.image_library:
        sections.append(b.image_library())
    sections += [
        b.summary(scan.lmp),
        b.pelvis_and_uterus(scan.uterus, endometrium=scan.endometrium, cervix=scan.cervix),
        b.ovaries(scan.left_ovary, scan.right_ovary),
        b.follicles("left", scan.left_count, scan.left_follicles),
        b.follicles("right", scan.right_count, scan.right_follicles),
    ]
    return b.document(*sections)


def early_pregnancy_sr(
    variant: Variant = Variant(),
    pregnancy: EarlyPregnancy = REFERENCE_PREGNANCY,
    header: ReportHeader = ReportHeader(),
) -> Dataset:
    """A first-trimester report: early gestation biometry and the fetus summary with FHR."""
    b = Builder(variant, header)
    return b.document(b.summary(pregnancy.lmp, pregnancy), b.early_gestation(pregnancy))


def empty_sr(variant: Variant = Variant(), header: ReportHeader = ReportHeader()) -> Dataset:
    """A report with a title and nothing else, as some devices send when re-sending."""
    ds = Builder(variant, header).document()
    del ds.ContentSequence
    return ds
