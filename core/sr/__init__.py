"""Measurements from OB-GYN ultrasound SR documents (PS3.16 TID 5000), for a fertility clinic.

    result = extract_measurements(metadata, code_mapping)  # one SR -> rows + warnings
    print(dump_tree(metadata))                             # what a support person reads

An SR is given either as WADO-RS instance metadata, a DICOM JSON object (PS3.18 F.2) as
`json.loads` returns it, which is read as it is, or as a pydicom Dataset from a Part-10 file;
both give the same rows (stored metadata text is parsed by `core.dicomweb.dicom_json.parse_text`).
`dataset_from_json` is for callers who need a Dataset of the metadata.
Reading never raises on damaged content: it yields what can be read and records warnings.

The modules run compiled with mypyc where that build matches their source (core/compiled.py).
"""

from core.compiled import search_path

# Before any module of the package is imported: the compiled ones come first while current.
__path__ = search_path(__path__)


from ._codes import Code, normalized_code
from ._content import walk
from ._document import SrDocument
from ._dump import dump_tree
from ._extract import CodeMapping, extract_measurements, extract_study_measurements
from ._items import (
    CompositeReference,
    ContentItem,
    ContentTree,
    ContentValue,
    Coordinates,
    NumericValue,
    ParseWarning,
)
from ._json import dataset_from_json
from ._kinds import KIND_TABLE, OTHER, KindRule
from ._model import ExtractionResult, MeasurementRow
from ._tid5000 import Section
from ._tid5014 import FROM_VOLUME, sphere_diameter_mm

__all__ = [
    "FROM_VOLUME",
    "KIND_TABLE",
    "OTHER",
    "Code",
    "CodeMapping",
    "CompositeReference",
    "ContentItem",
    "ContentTree",
    "ContentValue",
    "Coordinates",
    "ExtractionResult",
    "KindRule",
    "MeasurementRow",
    "NumericValue",
    "ParseWarning",
    "Section",
    "SrDocument",
    "dataset_from_json",
    "dump_tree",
    "extract_measurements",
    "extract_study_measurements",
    "normalized_code",
    "sphere_diameter_mm",
    "walk",
]
