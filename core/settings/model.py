"""An integration's settings: one clinic's PACS, its address, credentials and limits.

`IntegrationSettings` is everything a support person edits except the secret; the store's
`Integration` table extends it. Its checks are in `core.settings.validation`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlmodel import Field, SQLModel

from core.settings.auth import AuthKind
from core.settings.presets import DEFAULT_PRESET, STANDARD_TEMPLATES
from core.settings.templates import PathTemplates, TemplateKind


class IntegrationSettings(SQLModel):
    """The editable settings of one clinic's PACS connection (the secret is kept apart)."""

    name: str = Field(index=True, unique=True, max_length=64)
    base_uri: str
    preset: str = DEFAULT_PRESET
    auth_kind: AuthKind = AuthKind.NONE
    # Basic: the account name; OAuth2: the client ID. Not secret, shown in the dashboard.
    username: str | None = None
    token_url: str | None = None
    scope: str | None = None
    studies_template: str = STANDARD_TEMPLATES[TemplateKind.STUDIES]
    series_template: str = STANDARD_TEMPLATES[TemplateKind.SERIES]
    instances_template: str = STANDARD_TEMPLATES[TemplateKind.INSTANCES]
    metadata_template: str = STANDARD_TEMPLATES[TemplateKind.METADATA]
    frames_template: str = STANDARD_TEMPLATES[TemplateKind.FRAMES]
    ca_bundle: str | None = None
    allow_insecure_http: bool = False
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    max_concurrent_requests: int = 4
    page_size: int = 100
    schedule_minutes: int = 5
    # Scheduled runs search StudyDate from the last successful run minus this many days, so
    # series and reports that arrive after the exam day are still found.
    lookback_days: int = 3
    # Stimulation monitoring (core.cycles): more days than this between two follicle scans
    # start a new cycle; follicles are counted at or above each threshold (mm, comma-separated);
    # the trigger criterion is met on a scan with this many follicles at least this size,
    # both ovaries together. The defaults are the usual ones; each clinic may set its own.
    cycle_gap_days: int = 10
    follicle_thresholds_mm: str = "10,12,14,16,18"
    trigger_follicle_count: int = 3
    trigger_diameter_mm: float = 17.0
    enabled: bool = True
    # The largest search or metadata answer read, in MB: a PACS sending an endless or huge
    # body must not exhaust the worker that serves every clinic. Frames have their own caps.
    max_response_mb: int = 64

    def templates(self) -> PathTemplates:
        return PathTemplates(
            studies=self.studies_template,
            series=self.series_template,
            instances=self.instances_template,
            metadata=self.metadata_template,
            frames=self.frames_template,
        )

    def follicle_thresholds(self) -> tuple[float, ...]:
        """The follicle size thresholds (mm), smallest first; ValueError when the text is not
        a comma-separated list of numbers."""
        parts = [part.strip() for part in self.follicle_thresholds_mm.split(",")]
        return tuple(sorted({float(part) for part in parts if part}))

    def uses_plain_http(self) -> bool:
        return urlsplit(self.base_uri).scheme == "http"

    def needs_secret(self) -> bool:
        return self.auth_kind is not AuthKind.NONE
