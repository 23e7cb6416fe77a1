"""Synthetic ultrasound and SR datasets for the tests and the demo clinic.

Real patient files cannot go into a repository, and sample files from libraries share UIDs.
These generators build small, valid objects with fresh UIDs and pixel content that depends
only on ``seed`` and the frame number, so tests can compare what the server returns byte by
byte with what was uploaded (``expected_frame_bytes``).
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, get_frame
from pydicom.sequence import Sequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    generate_uid,
)

US_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.6.1")
US_MULTIFRAME_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.3.1")
COMPREHENSIVE_SR_STORAGE = UID("1.2.840.10008.5.1.4.1.1.88.33")
FRAME_TIME_TAG = 0x00181063
CHARACTER_SET = "ISO_IR 192"
FRAME_TIME_MS = 33.3
JPEG_QUALITY = 90


def us_image(
    *,
    patient_id: str,
    patient_name: str = "Test^Patient",
    study_uid: str,
    series_uid: str,
    sop_uid: str | None = None,
    study_date: str = "20250102",
    study_time: str = "093000",
    study_description: str = "US Pelvis",
    accession_number: str | None = None,
    series_number: int = 1,
    instance_number: int = 1,
    rows: int = 64,
    columns: int = 64,
    frames: int = 1,
    photometric: str = "MONOCHROME2",
    jpeg: bool = False,
    seed: int = 0,
    pixels: list[np.ndarray] | None = None,
    manufacturer: str = "pacsbridge tests",
) -> Dataset:
    """An ultrasound image (multi-frame when ``frames`` > 1), native or JPEG baseline.

    ``photometric`` is "MONOCHROME2" or "RGB" (8 bits). With ``jpeg`` the frames are encoded
    by Pillow; RGB is then stored as YBR_FULL_422, which is what a 4:2:2 baseline JPEG holds.
    ``pixels`` gives the frames (uint8, rows x columns, x 3 for RGB) instead of the seeded
    gradient; their shape then sets rows, columns, frames and the photometric interpretation.
    """
    if pixels is not None:
        rows, columns = pixels[0].shape[:2]
        frames = len(pixels)
        photometric = "RGB" if pixels[0].ndim == 3 else "MONOCHROME2"
    if photometric not in ("MONOCHROME2", "RGB"):
        raise ValueError(f"unsupported photometric interpretation {photometric!r}")
    if frames < 1:
        raise ValueError("frames must be at least 1")
    sop_class = US_IMAGE_STORAGE if frames == 1 else US_MULTIFRAME_IMAGE_STORAGE
    sop_uid = sop_uid or generate_uid()
    transfer_syntax = JPEGBaseline8Bit if jpeg else ExplicitVRLittleEndian
    ds = _base_dataset(sop_class, sop_uid, transfer_syntax)
    add_patient_study_series(
        ds,
        patient_id=patient_id,
        patient_name=patient_name,
        study_uid=study_uid,
        series_uid=series_uid,
        study_date=study_date,
        study_time=study_time,
        study_description=study_description,
        accession_number=accession_number,
        modality="US",
        series_number=series_number,
        manufacturer=manufacturer,
    )
    ds.InstanceNumber = instance_number
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.ContentDate = study_date
    ds.ContentTime = study_time

    rgb = photometric == "RGB"
    ds.SamplesPerPixel = 3 if rgb else 1
    ds.PhotometricInterpretation = photometric
    if rgb:
        ds.PlanarConfiguration = 0
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
        ds.FrameTime = FRAME_TIME_MS
        ds.FrameIncrementPointer = FRAME_TIME_TAG
        ds.CineRate = round(1000 / FRAME_TIME_MS)

    if pixels is None:
        pixels = [_frame_pixels(rows, columns, rgb=rgb, seed=seed, frame=n) for n in range(frames)]
    if jpeg:
        ds.PixelData = encapsulate([_jpeg_baseline(p) for p in pixels])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        if rgb:
            ds.PhotometricInterpretation = "YBR_FULL_422"
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionMethod = "ISO_10918_1"
    else:
        ds.PixelData = b"".join(p.tobytes() for p in pixels)
        ds["PixelData"].VR = "OB"
    return ds


def expected_frame_bytes(ds: Dataset, frame_number: int) -> bytes:
    """The stored bytes of frame ``frame_number`` (1-based, as in WADO-RS frame URLs).

    Native data: that frame's slice of PixelData. JPEG: the frame's encapsulated fragment,
    including the trailing pad byte DICOM adds to odd-length fragments.
    """
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if not 1 <= frame_number <= frames:
        raise ValueError(f"frame {frame_number} outside 1..{frames}")
    if ds.file_meta.TransferSyntaxUID.is_encapsulated:
        return get_frame(ds.PixelData, frame_number - 1, number_of_frames=frames)
    size = ds.Rows * ds.Columns * ds.SamplesPerPixel * (ds.BitsAllocated // 8)
    return ds.PixelData[(frame_number - 1) * size : frame_number * size]


def basic_sr(
    *,
    patient_id: str,
    study_uid: str,
    series_uid: str,
    sop_uid: str | None = None,
    patient_name: str = "Test^Patient",
    study_date: str = "20250102",
    study_time: str = "093000",
    study_description: str = "US Pelvis",
    accession_number: str | None = None,
    series_number: int = 99,
    instance_number: int = 1,
    comment: str = "Synthetic report",
    length_mm: float = 18.5,
    laterality: str = "Left",
) -> Dataset:
    """A small Comprehensive SR: CONTAINER root > TEXT, and a measurement group CONTAINER >
    NUM (mm, UCUM) + CODE, so metadata tests can walk a nested ContentSequence."""
    lateralities = {"Left": "7771000", "Right": "24028007"}
    if laterality not in lateralities:
        raise ValueError(f"laterality must be one of {sorted(lateralities)}")
    sop_uid = sop_uid or generate_uid()
    ds = _base_dataset(COMPREHENSIVE_SR_STORAGE, sop_uid, ExplicitVRLittleEndian)
    add_patient_study_series(
        ds,
        patient_id=patient_id,
        patient_name=patient_name,
        study_uid=study_uid,
        series_uid=series_uid,
        study_date=study_date,
        study_time=study_time,
        study_description=study_description,
        accession_number=accession_number,
        modality="SR",
        series_number=series_number,
    )
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    ds.InstanceNumber = instance_number
    ds.ContentDate = study_date
    ds.ContentTime = study_time
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.PerformedProcedureCodeSequence = Sequence()

    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = [_code("125000", "DCM", "OB-GYN Ultrasound Procedure Report")]
    ds.ContinuityOfContent = "SEPARATE"

    text = _content_item("CONTAINS", "TEXT", _code("121106", "DCM", "Comment"))
    text.TextValue = comment

    measured = Dataset()
    measured.NumericValue = f"{length_mm:g}"
    measured.MeasurementUnitsCodeSequence = [_code("mm", "UCUM", "millimeter")]
    num = _content_item("CONTAINS", "NUM", _code("410668003", "SCT", "Length"))
    num.MeasuredValueSequence = [measured]

    side = _content_item("HAS CONCEPT MOD", "CODE", _code("272741003", "SCT", "Laterality"))
    side.ConceptCodeSequence = [_code(lateralities[laterality], "SCT", laterality)]

    group = _content_item("CONTAINS", "CONTAINER", _code("125007", "DCM", "Measurement Group"))
    group.ContinuityOfContent = "SEPARATE"
    group.ContentSequence = [num, side]

    ds.ContentSequence = [text, group]
    return ds


def study(
    *,
    patient_id: str,
    patient_name: str,
    study_date: str,
    n_series: int = 1,
    n_instances: int = 2,
    with_sr: bool = False,
    study_time: str = "093000",
    study_description: str = "US Pelvis",
    accession_number: str | None = None,
    frames: int = 1,
    photometric: str = "MONOCHROME2",
    jpeg: bool = False,
    rows: int = 64,
    columns: int = 64,
) -> list[Dataset]:
    """One study with fresh UIDs: ``n_series`` US series of ``n_instances`` images each,
    plus one SR series when ``with_sr``. Each image gets its own pixel seed."""
    study_uid = generate_uid()
    common = {
        "patient_id": patient_id,
        "patient_name": patient_name,
        "study_uid": study_uid,
        "study_date": study_date,
        "study_time": study_time,
        "study_description": study_description,
        "accession_number": accession_number,
    }
    datasets = []
    for series_index in range(n_series):
        series_uid = generate_uid()
        for instance_index in range(n_instances):
            datasets.append(
                us_image(
                    **common,
                    series_uid=series_uid,
                    series_number=series_index + 1,
                    instance_number=instance_index + 1,
                    rows=rows,
                    columns=columns,
                    frames=frames,
                    photometric=photometric,
                    jpeg=jpeg,
                    seed=series_index * n_instances + instance_index,
                )
            )
    if with_sr:
        datasets.append(basic_sr(**common, series_uid=generate_uid(), series_number=n_series + 1))
    return datasets


def _base_dataset(sop_class: UID, sop_uid: str, transfer_syntax: UID) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = CHARACTER_SET
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    return ds


def add_patient_study_series(
    ds: Dataset,
    *,
    patient_id: str,
    patient_name: str,
    study_uid: str,
    series_uid: str,
    study_date: str,
    study_time: str,
    study_description: str,
    accession_number: str | None,
    modality: str,
    series_number: int,
    manufacturer: str = "pacsbridge tests",
) -> None:
    """The patient, study and series attributes every object of a study shares: QIDO-RS
    searches match on them, so an object without them is not found with its study."""
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "F"
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = study_date
    ds.StudyTime = study_time
    ds.StudyID = "1"
    ds.StudyDescription = study_description
    ds.AccessionNumber = accession_number or _accession_for(study_uid)
    ds.ReferringPhysicianName = ""
    ds.Modality = modality
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.Manufacturer = manufacturer


def _accession_for(study_uid: str) -> str:
    """A stable 16-character accession number (the SH maximum) derived from the study UID."""
    return "A" + hashlib.sha256(study_uid.encode()).hexdigest()[:15].upper()


def _frame_pixels(rows: int, columns: int, *, rgb: bool, seed: int, frame: int) -> np.ndarray:
    """A smooth gradient shifted by seed and frame: deterministic and JPEG-friendly."""
    y, x = np.mgrid[0:rows, 0:columns]
    base = x * 3 + y * 2 + seed * 7 + frame * 16
    if not rgb:
        return (base % 256).astype(np.uint8)
    channels = [base, x * 2 + frame * 16 + seed * 5, y * 3 + seed * 11 + frame * 8]
    return (np.stack(channels, axis=-1) % 256).astype(np.uint8)


def _jpeg_baseline(pixels: np.ndarray) -> bytes:
    """Baseline JPEG via Pillow; colour uses 4:2:2 so the data match YBR_FULL_422."""
    buffer = io.BytesIO()
    image = Image.fromarray(pixels)
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling="4:2:2")
    return buffer.getvalue()


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _content_item(relationship: str, value_type: str, concept: Dataset) -> Dataset:
    item = Dataset()
    item.RelationshipType = relationship
    item.ValueType = value_type
    item.ConceptNameCodeSequence = [concept]
    return item
