"""Typed settings from the environment.

Every reader fails loudly with one line naming the variable and the reason, so a
bad value stops start-up instead of surfacing later as a strange error. A
secret may also come from a file: `NAME_FILE=/run/secrets/name`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


class ConfigError(Exception):
    """A setting from the environment is missing or malformed."""


def _raw(name: str) -> str | None:
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE={file_path}: cannot read ({exc.strerror})") from None
    return os.environ.get(name)


def env_str(name: str, default: str | None = None) -> str | None:
    value = _raw(name)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={value!r}: expected a boolean (true/false)")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r}: expected an integer") from None
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name}={number}: must be at least {minimum}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None or value.strip() == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_regex_list(name: str, default: list[str]) -> list[str]:
    """Comma-separated regular expressions; each must compile."""
    patterns = env_list(name, default)
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"{name}: {pattern!r} is not a regular expression ({exc})") from None
    return patterns


_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]+$")


def env_proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """`Header-Name=value` (e.g. `X-Forwarded-Proto=https`) as Django's `SECURE_PROXY_SSL_HEADER`
    tuple (`("HTTP_X_FORWARDED_PROTO", "https")`); unset or empty gives None."""
    value = _raw(name)
    if value is None or value.strip() == "":
        return None
    header, sep, expected = (part.strip() for part in value.partition("="))
    if not sep or not _HEADER_NAME.match(header) or not expected:
        raise ConfigError(f"{name}={value!r}: expected <header name>=<value>, e.g. X-Forwarded-Proto=https")
    return "HTTP_" + header.upper().replace("-", "_"), expected
