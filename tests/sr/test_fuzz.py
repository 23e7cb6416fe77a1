"""Property-based fuzzing: random content trees, damaged values and bytes never make the reader
raise, and what it builds stays bounded by what it was given."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from core.sr import KIND_TABLE, _content, dataset_from_json, dump_tree, extract_measurements, walk
from core.sr import _codes as c

from .obgyn_factory import Variant, fertility_sr

# pydicom warns about the invalid values these tests make on purpose.
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.store_free]

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

RELATIONSHIPS = [
    "CONTAINS",
    "HAS PROPERTIES",
    "HAS CONCEPT MOD",
    "HAS OBS CONTEXT",
    "HAS ACQ CONTEXT",
    "INFERRED FROM",
    "SELECTED FROM",
    "",
    "NONSENSE",
]
VALUE_TYPES = [
    "CONTAINER",
    "NUM",
    "CODE",
    "TEXT",
    "DATE",
    "TIME",
    "DATETIME",
    "PNAME",
    "UIDREF",
    "IMAGE",
    "COMPOSITE",
    "WAVEFORM",
    "SCOORD",
    "SCOORD3D",
    "TCOORD",
    "TABLE",
    "",
    "num",
]
# Real concepts, so that random trees reach the section, kind and modifier logic too.
KNOWN_CODES = [
    (code.scheme, code.value)
    for code in (
        *(rule.concept for rule in KIND_TABLE),
        c.FINDINGS,
        c.FINDING_SITE,
        c.LATERALITY,
        c.LEFT,
        c.RIGHT,
        c.OVARY,
        c.OVARIAN_FOLLICLE,
        c.IDENTIFIER,
        c.DERIVATION,
        c.MEAN,
        c.SELECTION_STATUS,
        c.USER_CHOSEN_VALUE,
        c.PELVIS_AND_UTERUS,
        c.EARLY_GESTATION,
        c.FETUS_ID,
    )
] + [
    ("DCM", "125007"),  # Measurement Group
    ("DCM", "125005"),  # Biometry Group
    ("SRT", "T-87600"),
    ("UCUM", "mm"),
    ("UCUM", "cm"),
    ("99X", "P-1"),
]

short_text = st.text(max_size=12)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), short_text)


def element(vr: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A DICOM JSON element, sometimes without a Value, sometimes with a bare value (no array)."""
    return st.one_of(
        st.builds(lambda v: {"vr": vr, "Value": v}, st.lists(values, max_size=3)),
        st.builds(lambda v: {"vr": vr, "Value": v}, values),
        st.just({"vr": vr}),
    )


def sequence(items: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(lambda v: {"vr": "SQ", "Value": v}, st.lists(items, max_size=3))


codes = st.one_of(
    st.builds(
        lambda key, meaning: {
            "00080100": {"vr": "SH", "Value": [key[1]]},
            "00080102": {"vr": "SH", "Value": [key[0]]},
            "00080104": {"vr": "LO", "Value": [meaning]},
        },
        st.sampled_from(KNOWN_CODES),
        short_text,
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "00080100": element("SH", short_text),
            "00080102": element("SH", short_text),
            "00080104": element("LO", json_scalar),
        },
    ),
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.sampled_from(["12.5", " 3 ", "abc", "", "1e400", "-0", "NaN"]),
    st.none(),
)
measured_values = st.fixed_dictionaries(
    {},
    optional={
        "0040A30A": element("DS", numbers),
        "0040A161": element("FD", numbers),
        "004008EA": sequence(codes),
        "0040A301": sequence(codes),
    },
)


def content_item(
    children: st.SearchStrategy[Any] | None = None,
) -> st.SearchStrategy[dict[str, Any]]:
    nested = {"0040A730": sequence(children)} if children is not None else {}
    return st.fixed_dictionaries(
        {},
        optional={
            "0040A010": element("CS", st.sampled_from(RELATIONSHIPS)),
            "0040A040": element("CS", st.sampled_from(VALUE_TYPES)),
            "0040A043": sequence(codes),
            "0040A168": sequence(codes),
            "0040A300": sequence(measured_values),
            "0040A301": sequence(codes),
            "0040A160": element("UT", json_scalar),
            "0040A123": element("PN", st.one_of(short_text, st.just({"Alphabetic": "Doe^J"}))),
            "0040DB73": element("UL", st.integers(min_value=-2, max_value=6)),
            "00700022": element("FL", numbers),
            "00081199": sequence(
                st.fixed_dictionaries({}, optional={"00081155": element("UI", short_text)})
            ),
            **nested,
        },
    )


content_trees = st.recursive(content_item(), content_item, max_leaves=40)
documents = st.builds(
    lambda root: {
        **root,
        "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.88.33"]},
        "00100020": {"vr": "LO", "Value": ["FUZZ"]},
    },
    content_trees,
)


def count_items(item: Any) -> int:
    """Content items in a DICOM JSON tree: the root and every item of every Content Sequence."""
    if not isinstance(item, dict):
        return 1
    children = item.get("0040A730", {}).get("Value", [])
    if not isinstance(children, list):
        children = [children]
    return 1 + sum(count_items(child) for child in children)


@FUZZ
@given(documents)
def test_random_json_trees_never_raise(metadata: dict[str, Any]) -> None:
    dataset, _ = dataset_from_json(metadata)
    tree = walk(dataset)
    result = extract_measurements(dataset)
    dump = dump_tree(dataset)

    size = len(list(tree.root.iter()))
    assert size <= count_items(metadata)
    numeric_items = sum(1 for node in tree.root.iter() if node.value_type == "NUM")
    assert len(result.rows) <= 2 * numeric_items  # each NUM, plus at most one computed mean
    assert len(dump.splitlines()) <= 3 + size + len(result.warnings) + len(tree.warnings)


@FUZZ
@given(documents)
def test_random_json_trees_read_directly_never_raise(metadata: dict[str, Any]) -> None:
    tree = walk(metadata)
    result = extract_measurements(metadata)
    dump = dump_tree(metadata)

    size = len(list(tree.root.iter()))
    assert size <= count_items(metadata)
    numeric_items = sum(1 for node in tree.root.iter() if node.value_type == "NUM")
    assert len(result.rows) <= 2 * numeric_items
    assert len(dump.splitlines()) <= 3 + size + len(result.warnings) + len(tree.warnings)


# Keys that lead the reader into what it reads, among DICOM JSON's own and some junk.
JSON_KEYS = [
    "0040A730",
    "0040A043",
    "0040A168",
    "0040A010",
    "0040A040",
    "0040A300",
    "0040A301",
    "0040A30A",
    "0040A161",
    "004008EA",
    "0040A160",
    "0040A123",
    "0040DB73",
    "00081199",
    "00081160",
    "00700022",
    "00080100",
    "00080102",
    "00080104",
    "00080016",
    "0040A504",
    "0040A360",
    "Value",
    "vr",
    "Alphabetic",
    "x",
]
any_json = st.recursive(
    st.one_of(json_scalar, st.sampled_from(["SQ", "PN", "NUM", "CONTAINER", "CODE", "DS"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(JSON_KEYS), inner, max_size=5)
    ),
    max_leaves=60,
)


@FUZZ
@given(any_json)
def test_any_json_at_all_never_raises(metadata: Any) -> None:
    """Wrong types anywhere: a list where an object belongs, a number for a sequence, ..."""
    tree = walk(metadata)
    extract_measurements(metadata)
    dump_tree(metadata)
    assert len(list(tree.root.iter())) <= _content.MAX_ITEMS


@st.composite
def shared_json(draw: st.DrawFn) -> dict[str, Any]:
    """DICOM JSON objects nested in memory with random shared subtrees and back-edges, which
    JSON text cannot express but a Python caller can build."""
    nodes: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(min_value=1, max_value=12))):
        node = {
            "0040A010": {"vr": "CS", "Value": [draw(st.sampled_from(RELATIONSHIPS[:5]))]},
            "0040A040": {"vr": "CS", "Value": [draw(st.sampled_from(["CONTAINER", "NUM"]))]},
            "0040A730": {"vr": "SQ", "Value": []},
        }
        nodes.append(node)
    for _ in range(draw(st.integers(min_value=0, max_value=30))):
        parent = draw(st.sampled_from(nodes))
        child = draw(st.sampled_from(nodes))  # may be the parent or one of its ancestors
        parent["0040A730"]["Value"].append(child)
    # Values shared between items, and a value that contains itself.
    loop: list[Any] = []
    loop.append(loop)
    for node in nodes:
        node["0040A043"] = {"vr": "SQ", "Value": [draw(st.sampled_from(nodes))]}
        node["0040A160"] = {"vr": "UT", "Value": loop}
    return nodes[0]


@FUZZ
@given(shared_json())
def test_shared_and_cyclic_json_stays_bounded(root: dict[str, Any]) -> None:
    tree = walk(root)
    assert len(list(tree.root.iter())) <= _content.MAX_ITEMS + 1
    assert max(len(node.position) for node in tree.root.iter()) <= _content.MAX_DEPTH + 1
    extract_measurements(root)
    dump_tree(root)


def test_exponential_sharing_in_json_is_cut_at_the_item_limit() -> None:
    level: dict[str, Any] = {"0040A040": {"vr": "CS", "Value": ["TEXT"]}}
    for _ in range(30):  # 2**30 paths if walked naively
        level = {
            "0040A010": {"vr": "CS", "Value": ["CONTAINS"]},
            "0040A040": {"vr": "CS", "Value": ["CONTAINER"]},
            "0040A730": {"vr": "SQ", "Value": [level, level]},
        }
    tree = walk(level)
    assert len(list(tree.root.iter())) == _content.MAX_ITEMS
    assert tree.warnings[-1].message.startswith("document has more than")


@st.composite
def cyclic_trees(draw: st.DrawFn) -> Dataset:
    """Datasets nested in memory with random back-edges and shared subtrees (which no file or
    JSON can express, but a caller might build)."""
    nodes = []
    for _ in range(draw(st.integers(min_value=1, max_value=12))):
        node = Dataset()
        node.RelationshipType = draw(st.sampled_from(RELATIONSHIPS[:5]))
        node.ValueType = draw(st.sampled_from(["CONTAINER", "NUM", "TEXT"]))
        node.ContentSequence = Sequence([])
        nodes.append(node)
    for _ in range(draw(st.integers(min_value=0, max_value=30))):
        parent = draw(st.sampled_from(nodes))
        child = draw(st.sampled_from(nodes))  # may be the parent or one of its ancestors
        parent.ContentSequence.append(child)
    return nodes[0]


@FUZZ
@given(cyclic_trees())
def test_cycles_and_shared_subtrees_stay_bounded(root: Dataset) -> None:
    tree = walk(root)
    assert len(list(tree.root.iter())) <= _content.MAX_ITEMS + 1
    assert max(len(node.position) for node in tree.root.iter()) <= _content.MAX_DEPTH + 1
    extract_measurements(root)
    dump_tree(root)


def test_exponential_sharing_is_cut_at_the_item_limit() -> None:
    level = Dataset()
    level.ValueType = "TEXT"
    for _ in range(30):  # 2**30 paths if walked naively
        outer = Dataset()
        outer.RelationshipType = "CONTAINS"
        outer.ValueType = "CONTAINER"
        outer.ContentSequence = Sequence([level, level])
        level = outer
    tree = walk(level)
    assert len(list(tree.root.iter())) == _content.MAX_ITEMS
    assert tree.warnings[-1].message.startswith("document has more than")


PART10 = io.BytesIO()
fertility_sr(Variant(image_library=True, private_item=True)).save_as(
    PART10, enforce_file_format=True
)


@settings(FUZZ, max_examples=75)  # each example decodes a whole file: slower than the others
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=132, max_value=len(PART10.getvalue()) - 1), st.integers(0, 255)
        ),
        min_size=1,
        max_size=8,
    )
)
def test_damaged_part10_bytes_never_raise(damage: list[tuple[int, int]]) -> None:
    data = bytearray(PART10.getvalue())
    for offset, value in damage:
        data[offset] = value
    try:
        dataset = dcmread(io.BytesIO(bytes(data)))
    except Exception:  # a file pydicom cannot open at all is not the reader's to handle
        assume(False)
        raise
    extract_measurements(dataset)
    dump_tree(dataset)
