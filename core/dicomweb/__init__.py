"""DICOMweb client: QIDO-RS search, WADO-RS metadata and frames, and the PacsError tree.

The public surface is what this module exports, plus `dicom_json` for reading DICOM JSON;
the underscore modules are private to this package."""

from core.dicomweb._auth import ClientCredentials
from core.dicomweb._client import DicomwebClient, FileFrameSink, FrameSink, QidoResult, SavedFrame
from core.dicomweb._errors import (
    AuthenticationRejected,
    CaBundleUnusable,
    CertificateExpired,
    CertificateHostMismatch,
    CertificateUntrusted,
    ConnectionLost,
    ConnectionRefused,
    ConnectTimeout,
    HostNotFound,
    HttpStatusError,
    MalformedResponse,
    NetworkError,
    NotAcceptable,
    NotDicomweb,
    NotFound,
    PacsError,
    PermissionDenied,
    ReadTimeout,
    RequestRejected,
    ServerBusy,
    ServerError,
    Timeout,
    TlsError,
    TlsProtocolMismatch,
    TokenRequestFailed,
)
from core.dicomweb._multipart import PartHeaders
from core.dicomweb._query import DateRange, exact_value
from core.dicomweb._transport import RetryPolicy, classify_tls_error

__all__ = [
    "AuthenticationRejected",
    "CaBundleUnusable",
    "CertificateExpired",
    "CertificateHostMismatch",
    "CertificateUntrusted",
    "ClientCredentials",
    "ConnectTimeout",
    "ConnectionLost",
    "ConnectionRefused",
    "DateRange",
    "DicomwebClient",
    "FileFrameSink",
    "FrameSink",
    "HostNotFound",
    "HttpStatusError",
    "MalformedResponse",
    "NetworkError",
    "NotAcceptable",
    "NotDicomweb",
    "NotFound",
    "PacsError",
    "PartHeaders",
    "PermissionDenied",
    "QidoResult",
    "ReadTimeout",
    "RequestRejected",
    "RetryPolicy",
    "SavedFrame",
    "ServerBusy",
    "ServerError",
    "Timeout",
    "TlsError",
    "TlsProtocolMismatch",
    "TokenRequestFailed",
    "classify_tls_error",
    "exact_value",
]
