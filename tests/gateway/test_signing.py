from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controlplane.lib.signing import SignatureError, parse_header, sign, verify

SECRET = "whsec_unit"


def test_it_accepts_its_own_signature():
    header = sign(SECRET, b'{"a":1}', timestamp=1_000)
    assert verify(SECRET, b'{"a":1}', header, now=1_010)[0] == 1_000


@pytest.mark.parametrize("now", [1_000 + 301, 1_000 - 301])
def test_it_rejects_timestamps_outside_300_seconds(now):
    header = sign(SECRET, b"{}", timestamp=1_000)
    with pytest.raises(SignatureError, match="tolerance"):
        verify(SECRET, b"{}", header, now=now)


def test_it_rejects_another_secret_and_a_changed_timestamp():
    header = sign(SECRET, b"{}", timestamp=1_000)
    with pytest.raises(SignatureError):
        verify("whsec_other", b"{}", header, now=1_000)
    forged = header.replace("t=1000", "t=1001")
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, b"{}", forged, now=1_000)


@pytest.mark.parametrize("header", ["", "v1=abc", "t=12", "t=x,v1=ab", "garbage"])
def test_it_rejects_malformed_headers(header):
    with pytest.raises(SignatureError):
        verify(SECRET, b"{}", header, now=12)


def test_it_accepts_any_listed_v1_during_rotation():
    good = sign(SECRET, b"{}", timestamp=5).split("v1=")[1]
    assert parse_header(f"t=5,v1=dead,v1={good}") == (5, ["dead", good])
    assert verify(SECRET, b"{}", f"t=5,v1=dead,v1={good}", now=5)[1] == good


@given(body=st.binary(max_size=200), flip=st.integers(min_value=0, max_value=199))
def test_any_changed_byte_breaks_the_signature(body, flip):
    header = sign(SECRET, body, timestamp=100)
    if not body:
        tampered = b"x"
    else:
        index = flip % len(body)
        tampered = body[:index] + bytes([body[index] ^ 1]) + body[index + 1 :]
    with pytest.raises(SignatureError):
        verify(SECRET, tampered, header, now=100)


def test_during_rotation_it_signs_under_the_new_and_the_previous_secret():
    header = sign("whsec_new", b"{}", timestamp=7, previous_secret="whsec_old")
    timestamp, signatures = parse_header(header)
    assert timestamp == 7 and len(signatures) == 2
    assert header.startswith(sign("whsec_new", b"{}", timestamp=7) + ",v1=")  # the new one first
    # a receiver holding either secret verifies it, each with its own signature
    assert verify("whsec_new", b"{}", header, now=7)[1] == signatures[0]
    assert verify("whsec_old", b"{}", header, now=7)[1] == signatures[1]
    with pytest.raises(SignatureError, match="does not match"):
        verify("whsec_third", b"{}", header, now=7)
    with pytest.raises(SignatureError, match="does not match"):
        verify("whsec_old", b"{ }", header, now=7)  # tampered body: neither signature holds
    with pytest.raises(SignatureError, match="tolerance"):
        verify("whsec_old", b"{}", header, now=7 + 301)  # the replay window applies to both


def test_without_a_previous_secret_the_header_is_unchanged():
    assert sign(SECRET, b"{}", timestamp=5, previous_secret=None) == sign(SECRET, b"{}", timestamp=5)
    assert len(parse_header(sign(SECRET, b"{}", timestamp=5, previous_secret=""))[1]) == 1
