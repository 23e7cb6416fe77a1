"""The readable tree dump that a support person reads (future `pacsbridge sr-dump`)."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from core.sr import dump_tree, walk

from .obgyn_factory import Variant, early_pregnancy_sr, fertility_sr

pytestmark = pytest.mark.store_free

EARLY_PREGNANCY_DUMP = """\
Comprehensive SR Storage 1.2.826.0.1.3680043.9.7433.1.3
  patient IVF-0042, study 1.2.826.0.1.3680043.9.7433.1.1
  template TID 5000
1          CONTAINER (125000, DCM, "OB-GYN Ultrasound Procedure Report")
1.1          CONTAINS CONTAINER (121111, DCM, "Summary")
1.1.1          CONTAINS DATE (8665-2, LN, "LMP") = "20260301"
1.1.2          CONTAINS CONTAINER (125008, DCM, "Fetus Summary")
1.1.2.1          HAS OBS CONTEXT TEXT (11951-1, LN, "Fetus ID") = "1"
1.1.2.2          CONTAINS NUM (11948-7, LN, "Fetal Heart Rate") = 152 {H.B.}/min
1.1.2.2.1          HAS PROPERTIES CODE (121404, DCM, "Selection Status") = \
(121411, DCM, "Most recent value chosen")
1.1.2.3          CONTAINS NUM (18185-9, LN, "Gestational Age") = 53 d
1.2          CONTAINS CONTAINER (125009, DCM, "Early Gestation")
1.2.1          HAS OBS CONTEXT TEXT (11951-1, LN, "Fetus ID") = "1"
1.2.2          HAS OBS CONTEXT NUM (11878-6, LN, "Number of Fetuses by US") = 1 1
1.2.3          CONTAINS CONTAINER (125005, DCM, "Biometry Group")
1.2.3.1          CONTAINS NUM (11957-8, LN, "Crown Rump Length") = 12.1 mm
1.2.3.2          CONTAINS NUM (11957-8, LN, "Crown Rump Length") = 12.5 mm
1.2.3.3          CONTAINS NUM (11957-8, LN, "Crown Rump Length") = 12.3 mm
1.2.3.3.1          HAS CONCEPT MOD CODE (121401, DCM, "Derivation") = \
(373098007, SCT, "Mean") [SRT R-00317]
1.2.3.4          CONTAINS NUM (18185-9, LN, "Gestational Age") = 53 d
1.2.3.4.1          INFERRED FROM CODE (121420, DCM, "Equation") = \
(11910-7, LN, "CRL, Hadlock 1992")
1.2.4          CONTAINS CONTAINER (125005, DCM, "Biometry Group")
1.2.4.1          CONTAINS NUM (11850-5, LN, "Gestational Sac Diameter") = 25 mm
1.2.5          CONTAINS CONTAINER (125005, DCM, "Biometry Group")
1.2.5.1          CONTAINS NUM (11816-6, LN, "Yolk Sac length") = 4.1 mm
"""


def test_dump_of_an_early_pregnancy_report() -> None:
    assert dump_tree(early_pregnancy_sr(Variant(legacy_codes=True))) == EARLY_PREGNANCY_DUMP


def test_dump_shows_references_images_calipers_and_missing_values() -> None:
    dump = dump_tree(fertility_sr(Variant(image_library=True, missing_values=True)))
    lines = {line.split()[0]: line.split(maxsplit=1)[1].strip() for line in dump.splitlines()[3:]}
    assert lines["1.2.1"] == (
        "CONTAINS IMAGE (no concept name) = "
        "Ultrasound Image Storage 1.2.826.0.1.3680043.9.7433.1.10"
    )
    assert lines["1.6.4.6.2"] == "INFERRED FROM -> 1.2.1 (IMAGE (no concept name))"
    assert lines["1.6.4.6.3"] == (
        'INFERRED FROM SCOORD (111030, DCM, "Image Region") = POLYLINE (4 values)'
    )
    assert lines["1.4.1.4"] == (
        'CONTAINS NUM (33192-6, LN, "Uterus Volume") = '
        '(no value) (114007, DCM, "Measurement not attempted")'
    )


def test_dump_of_a_tree_lists_its_warnings() -> None:
    root = Dataset()
    root.ValueType = "CONTAINER"
    broken = Dataset()
    broken.RelationshipType = "CONTAINS"
    broken.ValueType = "TEXT"
    broken.TextValue = "line one\nline two " + "x" * 100
    reference = Dataset()
    reference.RelationshipType = "INFERRED FROM"
    reference.ReferencedContentItemIdentifier = [1, 7]
    root.ContentSequence = Sequence([broken, reference, Dataset()])
    assert dump_tree(walk(root)) == (
        "1    CONTAINER (no concept name)\n"
        f'1.1    CONTAINS TEXT (no concept name) = "line one line two {"x" * 62}…"\n'
        "1.2    INFERRED FROM -> 1.7 (nothing)\n"
        "1.3    ? (no concept name)\n"
        "warning 1.3: content item has no value type\n"
    )
