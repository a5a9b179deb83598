"""DKIM verification of every signature on a message (dkimpy), for RFC 8058 §4.

``dkim.verify`` checks only the top signature, so a message whose first signature
is broken (a forwarder's, an expired key) but whose second is the list's own valid
one would be refused, and one whose top signature is valid but unrelated would be
"verified". Here every ``DKIM-Signature`` is verified on its own and reported; the
decision (aligned with From, ``h=`` covers both List-Unsubscribe headers) is made
by :func:`one_click_authenticated`.

The DNS lookup is injectable so tests run offline; dkimpy calls it as
``dnsfunc(name, timeout=...)`` with ``name`` like ``b"sel._domainkey.example.com."``
and expects the TXT record bytes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import dkim
import dkim.util

from ..core.unsubscribe import aligned

log = logging.getLogger(__name__)

DnsFunc = Callable[[bytes], bytes]

# Each signature costs a DNS lookup and a pass over the message: a hostile message
# with hundreds of signatures must not turn one check into minutes of work.
MAX_SIGNATURES = 10

# RFC 8058 §4: the signature must cover both headers.
ONE_CLICK_HEADERS = ("list-unsubscribe", "list-unsubscribe-post")
_DISPLAY = {
    "list-unsubscribe": "List-Unsubscribe",
    "list-unsubscribe-post": "List-Unsubscribe-Post",
}


@dataclass(frozen=True, slots=True)
class DkimSignatureResult:
    """The outcome of one DKIM-Signature header (index 0 is the topmost)."""

    index: int
    domain: str  # d=, lower-case ("" when unreadable)
    selector: str  # s=
    signed_headers: tuple[str, ...]  # h=, lower-case, in order, repeats kept
    passed: bool
    reason: str  # "pass", or why it failed ("body hash mismatch", ...)
    # How many times each h= header occurs in the message: a header signed once
    # but present twice has an unsigned copy (RFC 6376 §5.4.2 signs bottom-up).
    header_counts: tuple[tuple[str, int], ...] = ()

    def present(self, name: str) -> int:
        return dict(self.header_counts).get(name.lower(), 0)

    def covers(self, name: str) -> bool:
        """Every instance of header ``name`` in the message is signed (and there is one)."""
        present = self.present(name)
        return present > 0 and self.signed_headers.count(name.lower()) >= present


class _Collector(logging.Handler):
    """Keeps dkimpy's error messages: on DNS/key failures it logs and returns False."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def verify_signatures(message: bytes, dnsfunc: DnsFunc | None = None) -> list[DkimSignatureResult]:
    """Verify every DKIM-Signature of ``message`` independently; [] when there is none."""
    try:
        headers = dkim.DKIM(message).headers
    except Exception as exc:  # noqa: BLE001 - dkimpy raises assorted errors on hostile mail
        log.info("DKIM: message headers could not be parsed: %s", exc)
        return []
    counts: dict[str, int] = {}
    for name, _ in headers:
        key = name.decode("ascii", "replace").lower()
        counts[key] = counts.get(key, 0) + 1
    sig_values = [value for name, value in headers if name.lower() == b"dkim-signature"]
    lookup = _wrap_dns(dnsfunc)
    results = []
    for idx, raw in enumerate(sig_values):
        domain, selector, signed = _describe(raw)
        if idx < MAX_SIGNATURES:
            passed, reason = _verify_one(message, idx, lookup)
        else:
            passed, reason = False, f"not checked: only the first {MAX_SIGNATURES} are verified"
        results.append(
            DkimSignatureResult(
                index=idx,
                domain=domain,
                selector=selector,
                signed_headers=signed,
                passed=passed,
                reason=reason,
                header_counts=tuple((h, counts.get(h, 0)) for h in dict.fromkeys(signed)),
            )
        )
    return results


def _wrap_dns(dnsfunc: DnsFunc | None) -> Callable[..., bytes] | None:
    if dnsfunc is None:
        return None  # dkimpy's own resolver (dnspython)

    def lookup(name: bytes, timeout: float = 5) -> bytes:
        return dnsfunc(name)

    return lookup


def _describe(raw: bytes) -> tuple[str, str, tuple[str, ...]]:
    """d=, s= and h= of a signature header, read even when it will not verify."""
    try:
        tags = dkim.util.parse_tag_value(re.sub(rb"\r?\n", b"", raw))
    except Exception:  # noqa: BLE001 - malformed tag list: report it as unreadable
        return "", "", ()

    def text(tag: bytes) -> str:
        return re.sub(r"\s+", "", tags.get(tag, b"").decode("ascii", "replace"))

    signed = tuple(h.lower() for h in text(b"h").split(":") if h)
    return text(b"d").lower().rstrip("."), text(b"s"), signed


def _verify_one(message: bytes, idx: int, lookup: Callable[..., bytes] | None) -> tuple[bool, str]:
    collector = _Collector()
    logger = logging.Logger(f"{__name__}.dkimpy")  # private: not in the logging tree
    logger.addHandler(collector)
    # A fresh DKIM object per signature: verify() keeps per-signature state.
    checker = dkim.DKIM(message, logger=logger)
    try:
        ok = bool(checker.verify(idx=idx) if lookup is None else checker.verify(idx, lookup))
    except dkim.DKIMException as exc:
        return False, _short_reason(str(exc))
    except Exception as exc:  # noqa: BLE001 - hostile signatures raise anything; never fatal
        return False, f"{type(exc).__name__}: {exc}"
    if ok:
        return True, "pass"
    if collector.messages:
        return False, _short_reason(collector.messages[-1])
    return False, "signature does not match the signed headers"


def _short_reason(text: str) -> str:
    if text.startswith("body hash mismatch"):
        return "body hash mismatch"  # drop the two base64 digests
    return text.replace("KeyFormatError: ", "")[:200]


def one_click_authenticated(
    results: Iterable[DkimSignatureResult], from_domain: str
) -> tuple[bool, str]:
    """May RFC 8058 one-click be used? (yes/no, the reason a person can read).

    §4: yes only when some signature verifies, is aligned with the From domain
    and its h= covers List-Unsubscribe and List-Unsubscribe-Post (every copy of
    them). Otherwise the most relevant failure is reported: a coverage problem of
    an aligned passing signature, then why an aligned one failed, then alignment.
    """
    results = list(results)
    if not results:
        return False, "no DKIM signature"
    from_domain = from_domain.strip().lower()
    if not from_domain:
        return False, "the message has no From domain to align the DKIM signature with"
    ranked: list[tuple[int, str]] = []
    for r in results:
        is_aligned = aligned(r.domain, from_domain)
        if r.passed and is_aligned:
            problem = _coverage_problem(r)
            if problem is None:
                return True, f"DKIM signature from {r.domain} covers {_both()}"
            ranked.append((0, problem))
        elif is_aligned:
            ranked.append((1, f"signature did not verify: {r.reason}"))
        elif r.passed:
            ranked.append(
                (
                    2,
                    f"DKIM signature from {r.domain or '?'} is not aligned with "
                    f"From domain {from_domain}",
                )
            )
        else:
            ranked.append((3, f"DKIM signature from {r.domain or '?'} did not verify: {r.reason}"))
    return False, min(ranked, key=lambda item: item[0])[1]  # first of the best rank


def _both() -> str:
    return " and ".join(_DISPLAY[h] for h in ONE_CLICK_HEADERS)


def _coverage_problem(r: DkimSignatureResult) -> str | None:
    for name in ONE_CLICK_HEADERS:
        display = _DISPLAY[name]
        if name not in r.signed_headers:
            return f"signature does not cover {display}"
        present = r.present(name)
        if present == 0:
            return f"the message has no {display} header"
        if not r.covers(name):
            return (
                f"{display} appears {present} times but the signature covers "
                f"{r.signed_headers.count(name)}: an unsigned copy may have been added"
            )
    return None
