"""The Studies page (search, series, viewer, measurements, resync) and core.viewer."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from pydicom import Dataset
from pydicom.uid import generate_uid
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from core import files, store, viewer
from core.dicomweb.dicom_json import dataset_from_dicom_json
from core.images import write_thumbnail
from core.integrations import add_integration
from core.settings.model import IntegrationSettings
from core.store import (
    Instance,
    InstanceMetadata,
    Measurement,
    Series,
    Study,
    SyncRequest,
    SyncScope,
)
from core.viewer import (
    ImageUnavailable,
    Window,
    apply_window,
    cine_clip,
    cine_gif,
    render_frame,
    viewable_image,
)
from dashboard._widgets import OPEN_STUDY, plain
from pacsbridge.demo import synthetic

PAGE = "views/studies.py"


def click(app: AppTest, label: str) -> AppTest:
    next(button for button in app.button if button.label == label).click()
    return app.run()


def store_instance(integration_id: int, study: Study, series: Series, ds: Dataset) -> Instance:
    """Store one synthetic image as a sync would: frame files, thumbnail, rows."""
    meta = ds.to_json_dict()
    meta.pop("7FE00010", None)  # metadata never holds the pixels
    syntax = str(ds.file_meta.TransferSyntaxUID)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    relative = files.instance_dir(
        integration_id, study.study_uid, series.series_uid, ds.SOPInstanceUID
    )
    directory = files.absolute(relative)
    directory.mkdir(parents=True)
    for n in range(1, frames + 1):
        (directory / files.frame_name(n)).write_bytes(synthetic.expected_frame_bytes(ds, n))
    write_thumbnail(
        dataset_from_dicom_json(meta),
        (directory / files.frame_name(1)).read_bytes(),
        syntax,
        directory / files.THUMBNAIL_NAME,
    )
    with store.session() as db:
        instance = Instance(
            integration_id=integration_id,
            series_id=series.id,
            study_uid=study.study_uid,
            series_uid=series.series_uid,
            sop_instance_uid=ds.SOPInstanceUID,
            sop_class_uid=ds.SOPClassUID,
            instance_number=ds.InstanceNumber,
            number_of_frames=frames,
            rows=ds.Rows,
            columns=ds.Columns,
            transfer_syntax=syntax,
            files_path=str(relative),
            thumbnail_path=str(relative / files.THUMBNAIL_NAME),
        )
        db.add(instance)
        db.flush()
        db.add(InstanceMetadata(instance_id=instance.id, dicom_json=json.dumps(meta)))
    return instance


@pytest.fixture
def pulled() -> dict[str, Instance | Study]:
    """A clinic with one pulled study: a still image, a cine loop and one SR measurement."""
    integration = add_integration(
        IntegrationSettings(name="clinic", base_uri="http://127.0.0.1:8042/dicom-web"), None
    )
    (still,) = synthetic.study(
        patient_id="FC-1001", patient_name="Jansen^Emma", study_date="20261105", n_instances=1
    )
    cine = synthetic.us_image(
        patient_id="FC-1001",
        study_uid=still.StudyInstanceUID,
        series_uid=generate_uid(),
        series_number=2,
        frames=5,
        jpeg=True,
        photometric="RGB",
    )
    with store.session() as db:
        study = Study(
            integration_id=integration.id,
            study_uid=still.StudyInstanceUID,
            patient_id="FC-1001",
            patient_name="Jansen^Emma",
            study_date="20261105",
            description="US follicle monitoring",
            remote_instance_count=2,
        )
        db.add(study)
        db.flush()
        series = [
            Series(
                integration_id=integration.id,
                study_id=study.id,
                study_uid=study.study_uid,
                series_uid=ds.SeriesInstanceUID,
                modality="US",
                series_number=number,
            )
            for number, ds in enumerate((still, cine), start=1)
        ]
        db.add_all(series)
        db.add(
            Measurement(
                integration_id=integration.id,
                patient_id="FC-1001",
                study_uid=study.study_uid,
                series_uid="1.2.3",
                sop_instance_uid="1.2.3.4",
                study_date="20261105",
                kind="endometrium_thickness",
                concept_code="12145-6",
                concept_scheme="LN",
                concept_meaning="Endometrium Thickness",
                value=8.5,
                unit="mm",
                reported=True,
            )
        )
    return {
        "study": study,
        "still": store_instance(integration.id, study, series[0], still),
        "cine": store_instance(integration.id, study, series[1], cine),
    }


# --- core.viewer -----------------------------------------------------------------------------


def test_window_and_level_change_the_pixels(pulled):
    still = pulled["still"]
    image = viewable_image(still.id)
    assert image.monochrome
    assert image.frames == 1
    assert image.value_range == (0, 255)
    full = render_frame(still.id, 1, image.default_window)
    narrow = render_frame(still.id, 1, Window(center=128, width=32))
    brighter = render_frame(still.id, 1, Window(center=64, width=256))
    assert full.dtype == np.uint8
    assert not np.array_equal(full, narrow)
    # A narrow window saturates: more pixels are pure black or white than with the full one.
    assert np.isin(narrow, (0, 255)).sum() > np.isin(full, (0, 255)).sum()
    # Lowering the level brightens every pixel that is not white already.
    assert (brighter.astype(int) >= full.astype(int)).all()
    assert brighter.mean() > full.mean()


def test_linear_window_follows_the_standard():
    # PS3.3 C.11.2.1.2.1, centre 100 and width 101: black up to 49.5, white from 149.5,
    # a straight line between.
    values = np.array([0.0, 49.5, 99.5, 149.5, 200.0])
    assert apply_window(values, Window(100, 101), "MONOCHROME2").tolist() == [0, 0, 127, 255, 255]
    assert apply_window(values, Window(100, 101), "MONOCHROME1").tolist() == [255, 255, 128, 0, 0]


def test_frames_of_a_cine_loop_differ(pulled):
    cine = pulled["cine"]
    image = viewable_image(cine.id)
    assert image.frames == 5
    assert not image.monochrome
    assert image.default_window is None
    first, third = render_frame(cine.id, 1), render_frame(cine.id, 3)
    assert first.shape == (64, 64, 3)
    assert not np.array_equal(first, third)
    assert cine_gif(cine.id).startswith(b"GIF89a")


def test_a_played_clip_decodes_a_bounded_number_of_frames(pulled, monkeypatch):
    cine = pulled["cine"]
    decoded = []
    decode = viewer.frame_pixels
    monkeypatch.setattr(viewer, "frame_pixels", lambda *a: decoded.append(a) or decode(*a))
    monkeypatch.setattr(viewer, "CINE_CLIP_FRAMES", 2)

    with Image.open(io.BytesIO(cine_gif(cine.id, first_frame=2))) as gif:
        assert gif.n_frames == 2
    assert len(decoded) == 2
    assert cine_clip(cine.id, 5) == range(5, 6)  # the loop's end cuts the clip short
    monkeypatch.setattr(viewer, "CINE_CLIP_FRAMES", 50)
    monkeypatch.setattr(viewer, "CINE_CLIP_BYTES", 3 * 64 * 64 * 3)  # room for three RGB frames
    assert cine_clip(cine.id, 1) == range(1, 4)


def test_missing_frame_file_is_reported(pulled):
    cine = pulled["cine"]
    (files.absolute(cine.files_path) / files.frame_name(2)).unlink()
    with pytest.raises(ImageUnavailable, match="frame 2 is missing"):
        render_frame(cine.id, 2)
    with pytest.raises(ImageUnavailable, match=r"outside 1\.\.5"):
        render_frame(cine.id, 6)


# --- the page --------------------------------------------------------------------------------


def test_without_integration_says_what_to_do(open_page, viewer):
    app = open_page(PAGE, viewer)
    assert not app.exception
    assert "No integration yet" in app.info[0].value


def test_without_pulls_points_to_sync_activity(open_page, viewer):
    add_integration(
        IntegrationSettings(name="clinic", base_uri="http://127.0.0.1:8042/dicom-web"), None
    )
    app = open_page(PAGE, viewer)
    assert not app.exception
    assert "Nothing pulled from clinic yet" in app.info[0].value


def test_search_lists_the_study(pulled, open_page, viewer):
    app = open_page(PAGE, viewer)
    assert not app.exception
    assert "1 study found · showing 1–1" in [c.value for c in app.caption]
    table = app.dataframe[0].value
    assert table["Patient ID"].tolist() == ["FC-1001"]
    assert table["Pulled"].tolist() == ["2 / 2"]
    app.text_input(key="search.patient").input("nobody")
    click(app, "Search")
    assert "No pulled study matches" in app.warning[0].value


def test_open_study_shows_thumbnails_viewer_and_measurements(pulled, open_page, viewer):
    study = pulled["study"]
    app = open_page(PAGE, viewer, integration="clinic", session={OPEN_STUDY: study.study_uid})
    assert not app.exception
    assert plain("Jansen^Emma (FC-1001)") in app.subheader[0].value
    assert len(app.image) >= 3  # two thumbnails and the viewer
    measurements = app.dataframe[1].value
    assert measurements["Kind"].tolist() == ["endometrium_thickness"]
    labels = [s.label for s in app.slider]
    assert labels == ["Window centre (level)", "Window width"]


def viewer_image(app: AppTest) -> tuple[str, str]:
    """The URL (content-addressed) and caption of the viewer's image, the page's last one."""
    image = app.image[-1]
    return image.value[0], image.captions[0]


def test_window_sliders_change_the_shown_image(pulled, open_page, viewer):
    app = open_page(
        PAGE, viewer, integration="clinic", session={OPEN_STUDY: pulled["study"].study_uid}
    )
    before, caption = viewer_image(app)
    assert caption == "frame 1 of 1"
    app.slider(key=f"level-{pulled['still'].id}").set_value(60).run()
    after_level, _ = viewer_image(app)
    app.slider(key=f"width-{pulled['still'].id}").set_value(40).run()
    after_width, _ = viewer_image(app)
    assert not app.exception
    assert len({before, after_level, after_width}) == 3


def test_frame_slider_steps_through_a_cine_loop(pulled, open_page, viewer):
    app = open_page(
        PAGE, viewer, integration="clinic", session={OPEN_STUDY: pulled["study"].study_uid}
    )
    cine = pulled["cine"]
    picker = next(s for s in app.selectbox if s.label == "Image")
    assert picker.options == ["Series 1 · US · #1 · 1 frame(s)", "Series 2 · US · #1 · 5 frame(s)"]
    picker.set_value(cine.id).run()
    first, caption = viewer_image(app)
    assert caption == "frame 1 of 5"
    assert [s.label for s in app.slider] == ["Frame"]  # colour: no window/level
    app.slider(key=f"frame-{cine.id}").set_value(3).run()
    third, caption = viewer_image(app)
    assert caption == "frame 3 of 5"
    assert third != first
    app.toggle(key=f"play-{cine.id}").set_value(True).run()
    assert viewer_image(app)[1] == "frames 3–5 of 5, looping"  # played from the chosen frame


def test_admin_queues_a_resync_of_the_study(pulled, open_page, admin):
    study = pulled["study"]
    app = open_page(PAGE, admin, integration="clinic", session={OPEN_STUDY: study.study_uid})
    click(app, "Resync this study")
    assert not app.exception
    assert "Resync queued" in app.success[0].value
    with store.session() as db:
        request = db.exec(select(SyncRequest)).one()
    assert (request.scope, request.scope_value) == (SyncScope.STUDY, study.study_uid)
    assert request.requested_by == "ada"


def test_viewer_cannot_resync(pulled, open_page, viewer):
    app = open_page(
        PAGE, viewer, integration="clinic", session={OPEN_STUDY: pulled["study"].study_uid}
    )
    button = next(b for b in app.button if b.label == "Resync this study")
    # Disabled: Streamlit also drops a forged click on a disabled widget server-side.
    assert button.disabled
    assert button.help == "Admins only"


def test_pages_through_many_studies(open_page, viewer):
    integration = add_integration(
        IntegrationSettings(name="clinic", base_uri="http://127.0.0.1:8042/dicom-web"), None
    )
    with store.session() as db:
        db.add_all(
            Study(
                integration_id=integration.id,
                study_uid=f"1.2.826.0.1.{n}",
                patient_id=f"FC-{n % 3}",
                study_date=f"2026{1 + n % 12:02d}01",
            )
            for n in range(60)
        )
    app = open_page(PAGE, viewer)
    assert "60 studies found · showing 1–50" in [c.value for c in app.caption]
    assert len(app.dataframe[0].value) == 50
    app.pagination[0].set_value(2).run()
    assert "60 studies found · showing 51–60" in [c.value for c in app.caption]
    assert len(app.dataframe[0].value) == 10
    app.text_input(key="search.patient").input("FC-1")
    click(app, "Search")  # a new search starts again on its first page
    assert "20 studies found · showing 1–20" in [c.value for c in app.caption]


def test_study_not_in_this_integration(pulled, open_page, viewer):
    app = open_page(PAGE, viewer, integration="clinic", session={OPEN_STUDY: "1.2.999"})
    assert not app.exception
    assert plain("Study 1.2.999 is not among the pulled studies of clinic") in app.info[0].value


def test_selecting_a_row_opens_the_study(pulled, open_page, viewer):
    app = open_page(PAGE, viewer)
    assert not app.subheader
    # What a click on the table's first row sends.
    app.session_state["found"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    app.run()
    assert app.session_state[OPEN_STUDY] == pulled["study"].study_uid
    assert plain("Jansen^Emma (FC-1001)") in app.subheader[0].value
