"""Public generic SR files (see data/README.md) through the walker, the extractor and the dump."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread

from core.sr import Code, dump_tree, extract_measurements, walk

pytestmark = pytest.mark.store_free

DATA = Path(__file__).parent / "data"
SAMPLES = sorted(DATA.glob("*.dcm"))


def test_all_five_samples_are_here() -> None:
    assert [path.name for path in SAMPLES] == [
        "highdicom_sr_document.dcm",
        "highdicom_sr_document_with_multiple_groups.dcm",
        "offis_reportlp.dcm",
        "pydicom_reportsi.dcm",
        "pydicom_test-SR.dcm",
    ]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda path: path.stem)
def test_sample_reads_without_warnings(path: Path) -> None:
    dataset = dcmread(path)
    tree = walk(dataset)
    assert tree.warnings == []
    result = extract_measurements(dataset)
    assert result.warnings == ()
    dump = dump_tree(dataset)
    assert len(dump.splitlines()) >= len(list(tree.root.iter()))
    assert "warning" not in dump


def test_reportlp_cycle_of_references() -> None:
    tree = walk(dcmread(DATA / "offis_reportlp.dcm"))
    first, second = tree.root.children
    assert tree.resolve(first.children[0]) is second
    assert tree.resolve(second.children[0]) is first


def test_test_sr_has_every_value_type_and_references() -> None:
    tree = walk(dcmread(DATA / "pydicom_test-SR.dcm"))
    value_types = {node.value_type for node in tree.root.iter()}
    assert value_types == {
        "",  # by-reference items
        "CONTAINER",
        "TEXT",
        "CODE",
        "NUM",
        "UIDREF",
        "SCOORD",
        "TCOORD",
        "COMPOSITE",
        "DATE",
        "TIME",
        "DATETIME",
        "IMAGE",
        "WAVEFORM",
    }
    references = [node for node in tree.root.iter() if node.reference]
    assert [(node.label, node.reference) for node in references] == [
        ("1.3.3.1", (1, 3, 2)),
        ("1.5.1.1.1", (1, 2, 2, 1)),
    ]
    assert all(tree.resolve(node) is not None for node in references)


def test_legacy_srt_codes_are_compared_as_sct() -> None:
    tree = walk(dcmread(DATA / "highdicom_sr_document.dcm"))
    site = next(node for node in tree.root.iter() if node.concept == Code("SCT", "363698007"))
    assert site.concept is not None
    assert (site.concept.scheme, site.concept.legacy_value) == ("SCT", "G-C0E3")
    area = next(node for node in tree.root.iter() if node.value_type == "NUM")
    assert area.concept == Code("SCT", "131184002")


def test_tid1500_groups_give_other_rows() -> None:
    result = extract_measurements(dcmread(DATA / "highdicom_sr_document_with_multiple_groups.dcm"))
    assert not result.document.is_obgyn_report
    rows = result.rows
    assert [(r.kind, r.concept_code, r.value, r.unit, r.group, r.finding_site) for r in rows] == [
        ("other", "X6K6", -119.0738525390625, "[hnsf'U]", "Image0001", None),
        ("other", "81827009", 10.0, "mm", "LungNodule0001", "Lung"),
        ("other", "81827009", 20.0, "mm", "Aorta0001", None),
        ("other", "118565006", 200.0, "mm3", "Vertebra0001", None),
    ]
