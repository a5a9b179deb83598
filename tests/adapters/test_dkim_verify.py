"""Every DKIM signature is verified, and one-click needs an aligned one covering both headers.

Real RSA keys (openssl CLI) and real dkimpy signatures; only DNS is replaced, by a
dict served through the injected ``dnsfunc``.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import dkim
import pytest

from inbox_filter.adapters.dkim_verify import (
    DkimSignatureResult,
    one_click_authenticated,
    verify_signatures,
)

ONE_CLICK_HEADERS = [b"from", b"to", b"subject", b"list-unsubscribe", b"list-unsubscribe-post"]


def _rsa_key(path: Path) -> tuple[bytes, bytes]:
    """(PKCS#1 private key PEM for dkimpy, the DNS TXT record with the public key)."""
    subprocess.run(
        ["openssl", "genrsa", "-traditional", "-out", str(path), "2048"],
        check=True,
        capture_output=True,
    )
    der = subprocess.run(
        ["openssl", "rsa", "-in", str(path), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return path.read_bytes(), b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, bytes]]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is needed to generate test DKIM keys")
    base = tmp_path_factory.mktemp("dkim")
    return {name: _rsa_key(base / f"{name}.pem") for name in ("news", "unrelated", "stale")}


@pytest.fixture(scope="module")
def dns(keys: dict[str, tuple[bytes, bytes]]) -> Callable[[bytes], bytes]:
    records = {
        b"s1._domainkey.news.example.": keys["news"][1],
        b"u1._domainkey.unrelated.example.": keys["unrelated"][1],
        # The "old" selector publishes the news key, but the stale key signs with it.
        b"old._domainkey.news.example.": keys["news"][1],
    }

    def lookup(name: bytes) -> bytes:
        return records.get(name, b"")

    return lookup


def message(
    *,
    from_domain: str = "news.example",
    body: bytes = b"This week's news.\r\n",
    extra: Sequence[bytes] = (),
) -> bytes:
    headers = [
        *extra,
        f"From: News <letter@{from_domain}>".encode(),
        b"To: me@mine.example",
        b"Subject: Weekly news",
        b"Date: Mon, 01 Jan 2024 10:00:00 +0000",
        b"Message-ID: <1@news.example>",
        b"List-Unsubscribe: <https://news.example/u/1>, <mailto:u@news.example>",
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
    ]
    return b"\r\n".join(headers) + b"\r\n\r\n" + body


def sign(
    msg: bytes,
    key: bytes,
    *,
    domain: bytes = b"news.example",
    selector: bytes = b"s1",
    headers: Sequence[bytes] = ONE_CLICK_HEADERS,
) -> bytes:
    return dkim.sign(msg, selector, domain, key, include_headers=list(headers)) + msg


def test_valid_covering_signature_allows_one_click(keys, dns) -> None:
    signed = sign(message(), keys["news"][0])
    results = verify_signatures(signed, dnsfunc=dns)
    assert len(results) == 1
    r = results[0]
    assert (r.index, r.domain, r.selector, r.passed, r.reason) == (
        0,
        "news.example",
        "s1",
        True,
        "pass",
    )
    assert r.signed_headers == (
        "from",
        "to",
        "subject",
        "list-unsubscribe",
        "list-unsubscribe-post",
    )
    ok, why = one_click_authenticated(results, "news.example")
    assert ok, why
    assert "news.example" in why


def test_parent_domain_signature_aligns_with_sub_domain_from(keys, dns) -> None:
    signed = sign(message(from_domain="mail.news.example"), keys["news"][0])
    ok, why = one_click_authenticated(verify_signatures(signed, dnsfunc=dns), "mail.news.example")
    assert ok, why


def test_signature_not_covering_list_unsubscribe_post_is_refused(keys, dns) -> None:
    headers = [b"from", b"to", b"subject", b"list-unsubscribe"]
    results = verify_signatures(sign(message(), keys["news"][0], headers=headers), dnsfunc=dns)
    assert results[0].passed  # the signature is fine; it just does not vouch for the header
    assert one_click_authenticated(results, "news.example") == (
        False,
        "signature does not cover List-Unsubscribe-Post",
    )
    headers = [b"from", b"subject", b"list-unsubscribe-post"]
    results = verify_signatures(sign(message(), keys["news"][0], headers=headers), dnsfunc=dns)
    assert one_click_authenticated(results, "news.example") == (
        False,
        "signature does not cover List-Unsubscribe",
    )


def test_tampered_body_is_refused(keys, dns) -> None:
    signed = sign(message(), keys["news"][0]).replace(b"This week's", b"Click here:")
    results = verify_signatures(signed, dnsfunc=dns)
    assert (results[0].passed, results[0].reason) == (False, "body hash mismatch")
    assert one_click_authenticated(results, "news.example") == (
        False,
        "signature did not verify: body hash mismatch",
    )


def test_tampered_signed_header_is_refused(keys, dns) -> None:
    signed = sign(message(), keys["news"][0]).replace(
        b"<https://news.example/u/1>", b"<https://evil.example/u/1>"
    )
    results = verify_signatures(signed, dnsfunc=dns)
    assert results[0].passed is False
    ok, why = one_click_authenticated(results, "news.example")
    assert not ok and why.startswith("signature did not verify")


def test_unrelated_domain_is_not_aligned(keys, dns) -> None:
    signed = sign(message(), keys["unrelated"][0], domain=b"unrelated.example", selector=b"u1")
    results = verify_signatures(signed, dnsfunc=dns)
    assert results[0].passed and results[0].domain == "unrelated.example"
    assert one_click_authenticated(results, "news.example") == (
        False,
        "DKIM signature from unrelated.example is not aligned with From domain news.example",
    )


def test_every_signature_is_checked_not_only_the_top_one(keys, dns) -> None:
    inner = sign(message(), keys["news"][0])  # valid, aligned, covering
    # On top: a signature for news.example made with a key DNS does not publish.
    signed = sign(inner, keys["stale"][0], selector=b"old")
    assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: dns(name)) is False  # top only
    results = verify_signatures(signed, dnsfunc=dns)
    assert [(r.index, r.selector, r.passed) for r in results] == [
        (0, "old", False),
        (1, "s1", True),
    ]
    ok, why = one_click_authenticated(results, "news.example")
    assert ok, why


def test_valid_top_signature_does_not_hide_a_better_one(keys, dns) -> None:
    inner = sign(message(), keys["news"][0])
    signed = sign(inner, keys["unrelated"][0], domain=b"unrelated.example", selector=b"u1")
    results = verify_signatures(signed, dnsfunc=dns)
    assert [(r.domain, r.passed) for r in results] == [
        ("unrelated.example", True),
        ("news.example", True),
    ]
    assert one_click_authenticated(results, "news.example")[0] is True


def test_no_signature_is_refused(dns) -> None:
    assert verify_signatures(message(), dnsfunc=dns) == []
    assert one_click_authenticated([], "news.example") == (False, "no DKIM signature")


def test_added_unsigned_copy_of_list_unsubscribe_is_refused(keys, dns) -> None:
    # DKIM signs the bottom instance (RFC 6376 §5.4.2), so a copy added on top still
    # verifies, and a reader taking the first header would POST to the attacker.
    signed = sign(message(), keys["news"][0])
    forged = b"List-Unsubscribe: <https://evil.example/x>\r\n" + signed
    results = verify_signatures(forged, dnsfunc=dns)
    assert results[0].passed
    ok, why = one_click_authenticated(results, "news.example")
    assert not ok
    assert why == (
        "List-Unsubscribe appears 2 times but the signature covers 1: "
        "an unsigned copy may have been added"
    )


def test_oversigned_headers_cover_all_copies(keys, dns) -> None:
    headers = [*ONE_CLICK_HEADERS, b"list-unsubscribe", b"list-unsubscribe-post"]
    results = verify_signatures(sign(message(), keys["news"][0], headers=headers), dnsfunc=dns)
    assert results[0].covers("list-unsubscribe") and results[0].covers("list-unsubscribe-post")
    assert one_click_authenticated(results, "news.example")[0] is True


def test_missing_key_and_failing_dns_are_reasons_not_crashes(keys) -> None:
    signed = sign(message(), keys["news"][0])
    results = verify_signatures(signed, dnsfunc=lambda name: b"")
    assert results[0].passed is False
    assert "missing public key" in results[0].reason

    def broken(name: bytes) -> bytes:
        raise OSError("resolver exploded")

    results = verify_signatures(signed, dnsfunc=broken)
    assert results[0].passed is False and "resolver exploded" in results[0].reason


def test_malformed_signatures_and_messages_do_not_raise(dns) -> None:
    bad_sig = b"DKIM-Signature: v=1; a=rsa-sha256; d=news.example; s=s1; h=from; b=!!; bh=x\r\n"
    results = verify_signatures(bad_sig + message(), dnsfunc=dns)
    assert len(results) == 1 and results[0].passed is False and results[0].reason
    garbage = b"DKIM-Signature: ;;;==\r\n" + message()
    assert verify_signatures(garbage, dnsfunc=dns)[0].passed is False
    assert verify_signatures(b" continuation first\r\n\r\n", dnsfunc=dns) == []
    assert verify_signatures(b"\x00\xff not a message", dnsfunc=dns) == []


def test_reason_ranking_prefers_the_aligned_signature() -> None:
    unrelated = DkimSignatureResult(0, "unrelated.example", "u1", ("from",), True, "pass")
    broken = DkimSignatureResult(1, "news.example", "s1", ("from",), False, "body hash mismatch")
    assert one_click_authenticated([unrelated, broken], "news.example") == (
        False,
        "signature did not verify: body hash mismatch",
    )


def test_signature_count_is_capped(keys, dns) -> None:
    from inbox_filter.adapters.dkim_verify import MAX_SIGNATURES

    lookups: list[bytes] = []

    def counting(name: bytes) -> bytes:
        lookups.append(name)
        return dns(name)

    valid = sign(message(), keys["news"][0])
    junk = b"DKIM-Signature: v=1; a=rsa-sha256; d=x.example; s=s1; h=from; bh=AAAA; b=AAAA\r\n"
    results = verify_signatures(junk * (MAX_SIGNATURES + 5) + valid, dnsfunc=counting)
    assert len(results) == MAX_SIGNATURES + 6
    assert len(lookups) <= MAX_SIGNATURES
    assert results[-1].passed is False and results[-1].reason.startswith("not checked")
