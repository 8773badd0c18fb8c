"""Gateway label keys as plain names (pure: no Django).

Label selectors (a release's `target.labels`, the fleet's `?label=key=value`) are matched with
jsonb containment, never by building an ORM lookup from the key; keys are still checked, so a
selector that could never match (`a__isnull`, a key with spaces) is a 400 rather than silence.
"""

from __future__ import annotations

import re

LABEL_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,62}$")
LABEL_KEY_RULE = "a plain name: a letter or _, then letters, digits, _ . or -, at most 63 characters, no __"


def label_key_ok(key: object) -> bool:
    return isinstance(key, str) and LABEL_KEY.match(key) is not None and "__" not in key
