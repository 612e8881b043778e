"""Sharing findings: report folders as one MISP event or one STIX 2.1 bundle.

``findings`` verifies report folders and keeps what may leave them (indicator
hits and report metadata, nothing that identifies the person); ``misp`` and
``stix`` write that out. Neither needs PyMISP nor stix2: the box has neither.
"""
from .findings import TLP_LEVELS, Export, Finding, Report, collect, from_document, open_report
from .misp import event as misp_event
from .stix import bundle as stix_bundle

__all__ = ["TLP_LEVELS", "Export", "Finding", "Report", "collect", "from_document", "misp_event", "open_report",
           "stix_bundle"]
