"""Outbound webhooks verify with the Standard Webhooks reference library, and the shared signer
refuses what a receiver must refuse."""

from __future__ import annotations

import base64
import json
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from controlplane.lib import signing

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
BODY = json.dumps({"alert": {"state": "firing"}}).encode()


def test_the_reference_library_verifies_our_headers() -> None:
    webhook = Webhook(SECRET)
    now = int(time.time())  # the library checks the timestamp against its own clock
    headers = signing.standard_webhook_headers(SECRET, BODY, message_id="notification-7", timestamp=now)
    assert webhook.verify(BODY, headers) == {"alert": {"state": "firing"}}
    with pytest.raises(WebhookVerificationError):
        webhook.verify(BODY + b" ", headers)


def test_a_wrong_secret_an_old_timestamp_or_a_changed_id_is_refused() -> None:
    headers = signing.standard_webhook_headers(SECRET, BODY, message_id="notification-7", timestamp=1_000)
    signing.verify_standard_webhook(SECRET, BODY, headers, now=1_100)
    other = "whsec_" + base64.b64encode(b"another secret of 32 bytes......").decode()
    for secret, changed, now in (
        (other, headers, 1_100),
        (SECRET, headers, 1_000 + 301),
        (SECRET, {**headers, "webhook-id": "notification-8"}, 1_100),
    ):
        with pytest.raises(signing.SignatureError):
            signing.verify_standard_webhook(secret, BODY, changed, now=now)


def test_a_secret_that_is_not_whsec_base64_signs_with_its_own_bytes() -> None:
    headers = signing.standard_webhook_headers("plain secret", BODY, message_id="m", timestamp=5)
    signing.verify_standard_webhook("plain secret", BODY, headers, now=5)
    with pytest.raises(signing.SignatureError):
        signing.verify_standard_webhook("plain secreT", BODY, headers, now=5)


def test_the_shared_module_loads_without_django() -> None:
    import subprocess
    import sys

    code = (
        "import sys, controlplane.lib.signing, controlplane.lib.histograms; "
        "print(any(name == 'django' or name.startswith('django.') for name in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
