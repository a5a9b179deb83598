"""Where the read-only shared data lives: ``../shared/data`` beside the checkout.

``INBOX_FILTER_SHARED_DATA`` overrides it (e.g. for a clone kept elsewhere).
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA = Path(
    os.environ.get("INBOX_FILTER_SHARED_DATA")
    or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)
