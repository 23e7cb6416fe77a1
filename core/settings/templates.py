"""The five DICOMweb path templates of an integration, and how the client fills them.

A template is a path relative to the integration's base URI with `%{study_uid}`-style
placeholders. People write templates; only the client fills placeholders, and only with values
that passed the DICOM UID grammar (PS3.5 §9.1) — so nothing a PACS or a person sends can
steer a request to another path (`../`), another query (`?`) or another host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from core.errors import ConfigProblem, InvalidInput
from core.uids import check_uid


class Placeholder(StrEnum):
    STUDY_UID = "study_uid"
    SERIES_UID = "series_uid"
    INSTANCE_UID = "instance_uid"
    FRAME_NUMBER = "frame_number"


class TemplateKind(StrEnum):
    """The five requests a pull makes; the value is the settings field that holds the template."""

    STUDIES = "studies_template"
    SERIES = "series_template"
    INSTANCES = "instances_template"
    METADATA = "metadata_template"
    FRAMES = "frames_template"


_S, _SE, _I, _F = (
    Placeholder.STUDY_UID,
    Placeholder.SERIES_UID,
    Placeholder.INSTANCE_UID,
    Placeholder.FRAME_NUMBER,
)

# Which placeholders each template must contain: a series search is always within a study,
# and a frame needs every level down to the frame number.
REQUIRED_PLACEHOLDERS: dict[TemplateKind, frozenset[Placeholder]] = {
    TemplateKind.STUDIES: frozenset(),
    TemplateKind.SERIES: frozenset({_S}),
    TemplateKind.INSTANCES: frozenset({_S, _SE}),
    TemplateKind.METADATA: frozenset({_S, _SE, _I}),
    TemplateKind.FRAMES: frozenset({_S, _SE, _I, _F}),
}

TEMPLATE_LABELS: dict[TemplateKind, str] = {
    TemplateKind.STUDIES: "all studies",
    TemplateKind.SERIES: "all series",
    TemplateKind.INSTANCES: "all instances",
    TemplateKind.METADATA: "instance metadata",
    TemplateKind.FRAMES: "instance image (frames)",
}

_PLACEHOLDER = re.compile(r"%\{([^}]*)\}")
_SERIES_INSTANCES = "/series/%{series_uid}/instances"
_INSTANCE_METADATA = "/series/%{series_uid}/instances/%{instance_uid}/metadata"
_SAFE_PATH = re.compile(r"[A-Za-z0-9._~/\-]*")


def check_frame_numbers(frames: list[int]) -> list[int]:
    """Frame numbers are 1-based positive integers (PS3.18 §10.4.1.1.3)."""
    if not frames:
        raise InvalidInput("no frame numbers given", hint="Frame numbers start at 1.")
    for number in frames:
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise InvalidInput(f"frame number {number!r} is not a positive integer")
    return frames


def template_problems(kind: TemplateKind, template: str) -> list[ConfigProblem]:
    """Everything wrong with one template, each with the field, the cause and the fix."""
    field = kind.value
    label = TEMPLATE_LABELS[kind]
    problems: list[ConfigProblem] = []
    if not template.strip():
        return [ConfigProblem(field, f"the {label} template is empty", "Pick a preset to fill it.")]
    parts = urlsplit(template)
    if parts.scheme or parts.netloc or template.startswith("//"):
        problems.append(
            ConfigProblem(
                field,
                f"the {label} template contains a scheme or host ({template!r})",
                "Templates are paths relative to the base URI; put the host in the base URI.",
            )
        )
        return problems
    if "?" in template or "#" in template:
        problems.append(
            ConfigProblem(
                field,
                f"the {label} template contains a query or fragment",
                "Remove everything from '?' or '#'; the client adds query parameters itself.",
            )
        )
    found = _PLACEHOLDER.findall(template)
    known = {p.value for p in Placeholder}
    for name in found:
        if name not in known:
            problems.append(
                ConfigProblem(
                    field,
                    f"the {label} template has an unknown placeholder %{{{name}}}",
                    "Use only %{study_uid}, %{series_uid}, %{instance_uid} and %{frame_number}.",
                )
            )
    missing = sorted(
        p.value for p in REQUIRED_PLACEHOLDERS[kind] - {Placeholder(n) for n in found if n in known}
    )
    if missing:
        problems.append(
            ConfigProblem(
                field,
                f"the {label} template lacks " + ", ".join(f"%{{{m}}}" for m in missing),
                "Each level below the study needs the UIDs above it; compare with the preset.",
            )
        )
    duplicated = sorted({n for n in found if found.count(n) > 1})
    if duplicated:
        problems.append(
            ConfigProblem(
                field,
                f"the {label} template repeats %{{{duplicated[0]}}}",
                "Each placeholder may appear once.",
            )
        )
    literal = _PLACEHOLDER.sub("", template)
    if ".." in literal.split("/") or not _SAFE_PATH.fullmatch(literal):
        problems.append(
            ConfigProblem(
                field,
                f"the {label} template contains characters not allowed in a path ({template!r})",
                "Use letters, digits, '-', '_', '.', '~' and '/' only, and no '..' segments.",
            )
        )
    return problems


@dataclass(frozen=True)
class PathTemplates:
    """The five templates of one integration, expanded only with checked values."""

    studies: str
    series: str
    instances: str
    metadata: str
    frames: str

    def studies_path(self) -> str:
        return _expand(self.studies, {})

    def series_path(self, study_uid: str) -> str:
        return _expand(self.series, {_S: check_uid(study_uid, what="Study Instance UID")})

    def instances_path(self, study_uid: str, series_uid: str) -> str:
        return _expand(
            self.instances,
            {
                _S: check_uid(study_uid, what="Study Instance UID"),
                _SE: check_uid(series_uid, what="Series Instance UID"),
            },
        )

    @property
    def study_instances(self) -> str | None:
        """The study-level instance search (PS3.18 §10.6.1, `studies/{study}/instances`), when
        the instances template has the standard `…/series/%{series_uid}/instances` ending.

        Derived, not a sixth setting: the standard resource sits beside the series one. A
        template of another shape names a server whose paths cannot be guessed: None.
        """
        return _at_study_level(self.instances, _SERIES_INSTANCES, "/instances")

    def study_instances_path(self, study_uid: str) -> str | None:
        return _expand_at_study_level(self.study_instances, study_uid)

    @property
    def study_metadata(self) -> str | None:
        """The study's metadata in one answer (PS3.18 §10.4.1.1.2, `studies/{study}/metadata`),
        when the metadata template has the standard `…/series/%{series_uid}/instances/
        %{instance_uid}/metadata` ending; derived like `study_instances`, else None."""
        return _at_study_level(self.metadata, _INSTANCE_METADATA, "/metadata")

    def study_metadata_path(self, study_uid: str) -> str | None:
        return _expand_at_study_level(self.study_metadata, study_uid)

    def metadata_path(self, study_uid: str, series_uid: str, instance_uid: str) -> str:
        return _expand(self.metadata, _instance_values(study_uid, series_uid, instance_uid))

    def frames_path(
        self, study_uid: str, series_uid: str, instance_uid: str, frames: list[int]
    ) -> str:
        values = _instance_values(study_uid, series_uid, instance_uid)
        # PS3.18 §10.4.1.1.3: a comma-separated frame list fetches several frames in one body,
        # which matters for cine loops (the server re-reads the whole file per request).
        values[_F] = ",".join(str(n) for n in check_frame_numbers(frames))
        return _expand(self.frames, values)


def _instance_values(study_uid: str, series_uid: str, instance_uid: str) -> dict[Placeholder, str]:
    return {
        _S: check_uid(study_uid, what="Study Instance UID"),
        _SE: check_uid(series_uid, what="Series Instance UID"),
        _I: check_uid(instance_uid, what="SOP Instance UID"),
    }


def _expand(template: str, values: dict[Placeholder, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        return values[Placeholder(match.group(1))]

    return _PLACEHOLDER.sub(replace, template).lstrip("/")


def _at_study_level(template: str, ending: str, resource: str) -> str | None:
    """`template` with its standard per-instance or per-series `ending` replaced by the study's
    `resource`, when it has that ending and only the study's placeholder is left."""
    template = template.rstrip("/")
    if not template.endswith(ending):
        return None
    study_level = template[: -len(ending)] + resource
    return study_level if set(_PLACEHOLDER.findall(study_level)) == {_S.value} else None


def _expand_at_study_level(template: str | None, study_uid: str) -> str | None:
    values = {_S: check_uid(study_uid, what="Study Instance UID")}
    return None if template is None else _expand(template, values)
