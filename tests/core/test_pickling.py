"""What the analysis worker sends back pickles as its fields and comes back equal."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from inbox_filter.analysis import TextResult
from inbox_filter.core.features import RawMessage, TextPart, extract_features
from inbox_filter.core.history import MessageTone
from inbox_filter.core.pickling import by_fields


def test_worker_records_round_trip_through_their_fields() -> None:
    header = (b"From: Bob <bob@x.example>\r\nTo: me@y.example\r\nSubject: hi\r\n"
              b"Message-ID: <1@x>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
    raw = RawMessage("INBOX", 7, "in", ("\\Seen",), datetime(2024, 1, 2, tzinfo=UTC), 99,
                     header, TextPart("1", "plain", "utf-8", "7bit", 10), b"hello")
    tone = MessageTone(0.2, 0.1, 0.7, 0.0, {"pressure": ("'asap'",)})
    features = extract_features(raw)
    for record in (raw, features, tone, TextResult(tone, True), raw.text_part):
        assert pickle.loads(pickle.dumps(record, protocol=5)) == record
        cls, values = record.__reduce__()  # by_fields: the class and its fields, in order
        assert cls is type(record) and values == tuple(getattr(record, f) for f in
                                                      record.__dataclass_fields__)


def test_by_fields_refuses_what_init_cannot_take_back() -> None:
    with pytest.raises(TypeError):
        @by_fields
        @dataclass(frozen=True)
        class OneField:
            a: int

    with pytest.raises(TypeError):
        @by_fields
        @dataclass(frozen=True)
        class NotInInit:
            a: int
            b: list[int] = field(default_factory=list, init=False)
