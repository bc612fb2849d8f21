"""``gradwise demo``: a guided tour, one section per capability.

Each capability registers a section with :func:`register`; ``gradwise demo``
runs every section's quick version, ``gradwise demo NAME`` runs one in full
and ``gradwise demo --list`` lists them. ``gradwise demo --check`` runs every
section's teaching claims over seeds and thread counts (:func:`check_claims`).
"""

from gradwise.demo._claims import SECTIONS, Claim, SectionClaims, all_pass, claims_table
from gradwise.demo._claims_run import ClaimCheckError, check_claims
from gradwise.demo._registry import DemoSection, register, run_section, sections

__all__ = [
    "SECTIONS",
    "Claim",
    "ClaimCheckError",
    "DemoSection",
    "SectionClaims",
    "all_pass",
    "check_claims",
    "claims_table",
    "register",
    "run_section",
    "sections",
]
