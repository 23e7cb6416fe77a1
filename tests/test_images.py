"""Thumbnails: the fast paths agree with pydicom's general decoder."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pydicom.encaps import generate_frames

from core.dicomweb.dicom_json import dataset_from_dicom_json
from core.images import THUMBNAIL_SIZE, frame_pixels, to_8bit, write_thumbnail
from pacsbridge.demo import synthetic

pytestmark = pytest.mark.store_free


@pytest.mark.parametrize(
    "options",
    [
        {"photometric": "MONOCHROME2"},
        {"photometric": "RGB"},
        {"photometric": "RGB", "jpeg": True},
        {"photometric": "MONOCHROME2", "jpeg": True},
    ],
    ids=["grey", "rgb", "rgb-jpeg", "grey-jpeg"],
)
def test_thumbnail_matches_the_decoded_frame(tmp_path, options):
    dataset = synthetic.us_image(
        patient_id="P", study_uid="1.2", series_uid="1.3", rows=240, columns=320, **options
    )
    metadata = dataset_from_dicom_json(dataset.to_json_dict())  # as WADO-RS metadata arrives
    syntax = str(dataset.file_meta.TransferSyntaxUID)
    frame = next(generate_frames(dataset.PixelData)) if options.get("jpeg") else dataset.PixelData
    destination = tmp_path / "thumbnail.jpg"

    write_thumbnail(metadata, frame, syntax, destination)

    with Image.open(destination) as thumbnail:
        assert max(thumbnail.size) == THUMBNAIL_SIZE[0]
        reference = Image.fromarray(
            to_8bit(frame_pixels(metadata, frame, syntax), str(metadata.PhotometricInterpretation))
        )
        reference.thumbnail(THUMBNAIL_SIZE)
        ours = np.asarray(thumbnail.convert(reference.mode), dtype=np.float32)
        theirs = np.asarray(reference, dtype=np.float32)
    assert ours.shape == theirs.shape
    # JPEG re-encoding of the thumbnail allows small differences, not a different picture.
    assert float(np.abs(ours - theirs).mean()) < 6.0


def test_an_undecodable_frame_raises(tmp_path):
    dataset = synthetic.us_image(patient_id="P", study_uid="1.2", series_uid="1.3")
    metadata = dataset_from_dicom_json(dataset.to_json_dict())

    with pytest.raises(Exception):  # noqa: B017, PT011 - any decoder error; the caller falls back to /rendered
        write_thumbnail(metadata, b"\x00\x01", "1.2.840.10008.1.2.4.80", tmp_path / "t.jpg")
    assert not (tmp_path / "t.jpg").exists()
