"""``gradwise demo``: a guided tour, one section per capability.

Each capability registers a section with :func:`register`; ``gradwise demo``
runs every section's quick version, ``gradwise demo NAME`` runs one in full
and ``gradwise demo --list`` lists them.
"""

from gradwise.demo._registry import DemoSection, register, run_section, sections

__all__ = ["DemoSection", "register", "run_section", "sections"]
