"""The opt-out footer test (a sign of a mailing) answers as its regex does, fast or not."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from inbox_filter.analysis import _UNSUBSCRIBE_TEXT, footer_opt_out


def by_regex(text: str) -> bool:
    return _UNSUBSCRIBE_TEXT.search(text[-2000:]) is not None


def test_known_footers_and_their_absence() -> None:
    assert footer_opt_out("Thanks!\n\nClick here to UNSUBSCRIBE.")
    assert footer_opt_out("If you no longer wish to receive these emails, write to us.")
    assert footer_opt_out("You can opt-out of future mailings at any time.")
    assert footer_opt_out("Reply STOP to be removed from this list")
    assert not footer_opt_out("Can we meet on Tuesday? Did you unsubscribe him already?")
    assert not footer_opt_out("To unsubscribe, write to us." + " filler" * 400)  # too far up
    # Unicode case folding: the regex's IGNORECASE matches ſ as s, the fast path's
    # str.lower would not; non-ASCII text goes to the regex.
    assert footer_opt_out("To unſubscribe: reply") == by_regex("To unſubscribe: reply") is True


_PIECES = st.sampled_from([
    "to unsubscribe", "To Unsubscribe", "TO UNSUBSCRIBE", "unsubscribe here", "unsubscribe",
    "unſubſcribe", "UNSUBSCRİBE", "unsubscrıbe", "to be removed from our list",
    "to be removed from", "no longer wish to receive", "NO LONGER WISH TO RECEIVE",
    "opt-out of future", "opt out of our", "Opt Out of these", "opt-out", "optout of this",
    "please unsubscribe", "click here to unsubscribe", " ", "\n", "é", "hello", "x" * 700,
])


@settings(max_examples=2000, deadline=None)
@given(st.lists(_PIECES, max_size=10))
def test_the_fast_answer_is_the_regex_answer(pieces: list[str]) -> None:
    text = " ".join(pieces)
    assert footer_opt_out(text) == by_regex(text)
