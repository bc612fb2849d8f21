"""Suite-wide settings."""

from __future__ import annotations

import os
import tempfile

# gradwise's caches (the instruct demo's base models) go to a throwaway
# directory, never the user's cache, unless a run sets its own.
os.environ.setdefault("GRADWISE_CACHE_DIR", tempfile.mkdtemp(prefix="gradwise-test-cache-"))
