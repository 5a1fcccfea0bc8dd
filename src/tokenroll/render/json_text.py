"""JSON text exactly as chat templates write it."""

from __future__ import annotations

import json
from typing import Any


def to_json(value: Any) -> str:
    """Hugging Face's `tojson` template filter: `json.dumps` without ASCII escaping."""
    return json.dumps(value, ensure_ascii=False)
