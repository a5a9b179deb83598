"""The HTML report renderer, with plain data (no browser: see integration/test_report_browser)."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest

from inbox_filter.report import render_html, tone_trouble

GENERATED = "2024-05-01T09:30:00Z"

XSS_NAME = "<script>alert(1)</script>"
XSS_REASON = '"><img src=x onerror=alert(1)>'


def _tone(
    politeness: float | None = 0.6,
    hostility: float = 0.0,
    pressure: float = 0.0,
    cold: float = 0.0,
    scored: int = 3,
    evidence: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    return {
        "politeness": politeness,
        "hostility": hostility,
        "pressure": pressure,
        "cold_outreach": cold,
        "messages_scored": scored,
        "evidence": evidence or {},
    }


def _contact(
    address: str,
    name: str,
    *,
    inbound: int,
    outbound: int = 0,
    replied: int = 0,
    read_rate: float | None = 1.0,
    reciprocity: float = 0.5,
    relationship: str = "none",
    bulk: bool = False,
    tone: dict[str, Any] | None = None,
    action: str = "none",
    tactic: str | None = None,
    rule: str = "keep",
    reasons: list[str] | None = None,
) -> dict[str, Any]:
    """The shape `inbox-filter contacts --json` prints (cli._contact_json)."""
    return {
        "address": address,
        "name": name,
        "inbound": inbound,
        "outbound": outbound,
        "replied": replied,
        "read_rate": read_rate,
        "first": "2023-01-04T10:00:00+00:00",
        "last": "2024-04-28T17:12:00+00:00",
        "reciprocity": reciprocity,
        "relationship": relationship,
        "bulk": bulk,
        "tone": tone or _tone(),
        "unanswered_streak": 0,
        "action": action,
        "tactic": tactic,
        "rule": rule,
        "reasons": reasons if reasons is not None else [f"reciprocity {reciprocity:.2f}"],
    }


def sample_contacts() -> list[dict[str, Any]]:
    """A varied mailbox: every action, bulk senders, null politeness, long reasons,
    non-ASCII names. Shared with the browser test."""
    return [
        _contact(
            "alice@friends.example",
            "Alice Martin",
            inbound=42,
            outbound=38,
            replied=30,
            reciprocity=0.86,
            relationship="close",
            tone=_tone(0.82, 0.02, 0.05, 0.0, 40, {"politeness": ["gratitude: 'thanks'"]}),
            rule="close",
            reasons=["close: you wrote to them 38 times"],
        ),
        _contact(
            "mum@family.example",
            "Mum",
            inbound=64,
            outbound=71,
            replied=55,
            reciprocity=0.97,
            relationship="close",
            tone=_tone(0.9, 0.0, 0.12, 0.0, 60),
            rule="invested",
            reasons=["you wrote to them 71 times (>= 10)"],
        ),
        _contact(
            "news@shop.example",
            "Shop Weekly",
            inbound=183,
            read_rate=0.03,
            reciprocity=0.011,
            bulk=True,
            tone=_tone(0.55, 0.0, 0.31, 0.22, 183, {"pressure": ["'last chance'", "'today only'"]}),
            action="unsubscribe",
            tactic="unsubscribe",
            rule="bulk-unread",
            reasons=[
                "bulk: 183 of 183 messages carry list-unsubscribe, precedence: bulk",
                "you read 5 of 183 (3% < 10%), never replied, last read 2023-11-02",
            ],
        ),
        _contact(
            "notifications@forge.example",
            "Forge",
            inbound=97,
            read_rate=0.81,
            reciprocity=0.02,
            bulk=True,
            tone=_tone(None, 0.0, 0.0, 0.0, 0),
            rule="bulk-read",
            reasons=["bulk: 97 of 97 messages carry list-id", "read 79 of 97 (81%)"],
        ),
        _contact(
            "rex@troll.example",
            "Rex",
            inbound=7,
            reciprocity=0.22,
            tone=_tone(
                0.05, 0.83, 0.55, 0.0, 7, {"hostility": ["'idiot'", "shouting: 'ANSWER ME'"]}
            ),
            action="walk_away",
            tactic="walk_away",
            rule="hostile",
            reasons=[
                "hostility 0.83 >= 0.60: 'idiot', shouting: 'ANSWER ME'",
                "no reply suggested: engaging rarely helps; mute instead",
                "reciprocity 0.22: they wrote 7, you replied to 0 and wrote to them 0 time(s)",
            ],
        ),
        _contact(
            "sales@vendor.example",
            "Vendor Sales Team",
            inbound=1,
            reciprocity=0.33,
            tone=_tone(
                0.7, 0.0, 0.2, 0.74, 1, {"cold_outreach": ["'quick call'", "'{first_name}'"]}
            ),
            action="decline",
            tactic="offer_alternative",
            rule="cold-outreach",
            reasons=[
                "cold outreach 0.74 >= 0.50: 'quick call', template field: '{first_name}'",
                "first contact: 1 message(s), you never wrote to them",
            ],
        ),
        _contact(
            "joerg.mueller@startup.example",
            "Jörg Müller",
            inbound=9,
            reciprocity=0.09,
            tone=_tone(0.45, 0.1, 0.68, 0.4, 9, {"pressure": ["'per my last email'"]}),
            action="decline",
            tactic="offer_alternative",
            rule="one-sided-pushy",
            reasons=[
                "9 messages, you replied to 0; reciprocity 0.09",
                "pressure 0.68 >= 0.50: 'per my last email'",
            ],
        ),
        _contact(
            "zoe.odegard@old-job.example",
            "Zoë Ødegård",
            inbound=23,
            outbound=2,
            replied=1,
            reciprocity=0.18,
            relationship="acquaintance",
            tone=_tone(0.5, 0.05, 0.58, 0.1, 20, {"pressure": ["'asap'", "'urgent'"]}),
            action="decline",
            tactic="honest",
            rule="one-sided-demanding",
            reasons=[
                "23 messages, you replied to 1; reciprocity 0.18: they wrote 23, you replied "
                "to 1 and wrote to them 2 time(s), which over the last eighteen months adds up "
                "to a long run of requests for introductions, reviews, favours and quick "
                "calls that were never returned in kind, and it keeps going",
                "pressure 0.58 >= 0.50: 'asap', 'urgent', 3 follow-up(s) within 14 days "
                "without a reply",
                "acquaintance: you wrote 2 time(s) and replied 1 time(s)",
            ],
        ),
        _contact(
            "talent@recruit.example",
            "Recruiting ✨",
            inbound=5,
            outbound=1,
            reciprocity=0.2,
            relationship="acquaintance",
            tone=_tone(0.75, 0.0, 0.52, 0.3, 5),
            action="decline",
            tactic="humour",
            rule="one-sided-demanding",
            reasons=["5 messages, you replied to 0", "pressure 0.52 >= 0.50"],
        ),
        _contact(
            "li.xiaolong@example.cn",
            "李小龙",
            inbound=12,
            outbound=6,
            replied=5,
            reciprocity=0.55,
            relationship="acquaintance",
            tone=_tone(0.66, 0.0, 0.1, 0.05, 12),
        ),
        _contact(
            "olga@example.ru",
            "Ольга Петрова",
            inbound=2,
            reciprocity=0.5,
            read_rate=None,
            tone=_tone(None, 0.0, 0.0, 0.0, 0),
            reasons=[],
        ),
        _contact(
            "party@events.example",
            "Sami 🎉",
            inbound=3,
            outbound=1,
            replied=1,
            reciprocity=0.6,
            relationship="acquaintance",
            tone=_tone(0.8, 0.0, 0.35, 0.0, 3),
        ),
        _contact(
            "a.very.long.local.part.that.never.ends.and.keeps.going@"
            "subdomain.of.a.rather.long.domain.example",
            "",
            inbound=4,
            reciprocity=0.4,
            tone=_tone(0.6, 0.2, 0.2, 0.2, 4),
        ),
    ]


def hostile_contacts() -> list[dict[str, Any]]:
    """Mail-controlled text in every field the report shows."""
    contacts = sample_contacts()[:4]
    contacts.append(
        _contact(
            'evil"><svg onload=alert(1)>@x.example',
            XSS_NAME,
            inbound=6,
            reciprocity=0.1,
            tone=_tone(
                0.1,
                0.9,
                0.3,
                0.0,
                6,
                {"hostility": ["</script><script>alert(2)</script>", "<!--", XSS_REASON]},
            ),
            action="walk_away",
            tactic="<b>walk</b>",
            rule="</td></tr></table><h1>x</h1>",
            reasons=[XSS_REASON, "</script><!-- <script>alert(3)</script>", "a & b < c > d"],
        )
    )
    contacts.append(
        _contact(
            "quote'apos@x.example",
            "'; alert(4); '",
            inbound=2,
            reciprocity=0.3,
            action="decline",
            tactic="honest",
            reasons=["${alert(5)} {{constructor.constructor('alert(6)')()}}"],
        )
    )
    return contacts


def benign_twin(hostile: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``hostile_contacts()`` with every attacker string replaced by plain text of the same
    structure (same number of reasons and evidence phrases): it must render the same
    elements."""
    benign = copy.deepcopy(hostile)
    for i, c in enumerate(benign[4:]):
        c["address"] = f"plain{i}@x.example"
        c["name"] = "plain"
        c["tactic"] = "honest"
        c["rule"] = "hostile"
        c["reasons"] = [f"reason {j}" for j in range(len(c["reasons"]))]
        c["tone"]["evidence"] = {k: ["e"] * len(v) for k, v in c["tone"]["evidence"].items()}
    return benign


# --- a small tree from html.parser (which treats <script>/<style> text like browsers do) --

VOID = {"meta", "br", "img", "input", "link", "hr", "source", "wbr", "area", "col", "embed"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self) -> list[Node]:
        out = [self]
        for c in self.children:
            if isinstance(c, Node):
                out.extend(c.iter())
        return out

    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]
        self.errors: list[str] = []
        self.doctype: str | None = None

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        if len(dict(attrs)) != len(attrs):
            self.errors.append(f"duplicate attribute in <{tag}>")
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if self.stack[-1].tag != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1].tag}>")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(page: str) -> TreeBuilder:
    tb = TreeBuilder()
    tb.feed(page)
    tb.close()
    assert tb.errors == [], tb.errors
    assert [n.tag for n in tb.stack] == ["#root"], "unclosed elements"
    assert tb.doctype is not None and tb.doctype.lower() == "doctype html"
    return tb


def elements(page: str) -> list[Node]:
    return parse(page).root.iter()[1:]


def marks(page: str) -> list[Node]:
    return [n for n in elements(page) if "contact-mark" in n.classes()]


def by_id(page: str, ident: str) -> Node:
    found = [n for n in elements(page) if n.attrs.get("id") == ident]
    assert len(found) == 1, ident
    return found[0]


def totals(page: str) -> dict[str, int]:
    out = {}
    for n in elements(page):
        key = n.attrs.get("data-total")
        if key:
            value = next(c for c in n.iter() if "value" in c.classes()).text()
            out[key] = int(re.sub(r"\D", "", value))
    return out


def render(contacts: list[dict[str, Any]], **kw: Any) -> str:
    return render_html(contacts, account="me@home.example", generated_at=GENERATED, **kw)


# --- tests ------------------------------------------------------------------------------


def test_page_is_well_formed_and_self_contained() -> None:
    page = render(sample_contacts())
    tree = parse(page)
    tags = Counter(n.tag for n in tree.root.iter())
    assert tags["html"] == tags["head"] == tags["body"] == tags["style"] == 1
    assert tags["script"] == 2  # the JSON data and the tooltip code
    assert by_id(page, "report-data").attrs["type"] == "application/json"
    # Nothing to fetch: no external URL, resource attribute, CSS import or font.
    for n in tree.root.iter():
        for attr in ("src", "href", "srcset", "action", "formaction", "poster", "data"):
            assert attr not in n.attrs, (n.tag, attr)
    assert "@import" not in page and "url(" not in page and "@font-face" not in page
    urls = set(re.findall(r"\w+://[^\s\"'<>]*", page))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls
    assert page.count('<meta charset="utf-8">') == 1
    page.encode("utf-8")  # no lone surrogates


def test_one_mark_per_contact_with_stable_selector() -> None:
    contacts = sample_contacts()
    found = marks(render(contacts))
    assert len(found) == len(contacts)
    assert all(n.tag == "circle" for n in found)
    assert sorted(n.attrs["data-address"] or "" for n in found) == sorted(
        c["address"] for c in contacts
    )
    assert {n.attrs["data-i"] for n in found} == {str(i) for i in range(len(contacts))}
    assert {n.attrs["data-action"] for n in found} == {
        "none",
        "decline",
        "walk_away",
        "unsubscribe",
    }


def test_mark_position_and_size() -> None:
    contacts = sample_contacts()
    found = {n.attrs["data-address"]: n for n in marks(render(contacts))}

    def xyr(address: str) -> tuple[float, float, float]:
        n = found[address]
        return (float(n.attrs["cx"] or 0), float(n.attrs["cy"] or 0), float(n.attrs["r"] or 0))

    mum, rex, shop, sales = (
        xyr("mum@family.example"),
        xyr("rex@troll.example"),
        xyr("news@shop.example"),
        xyr("sales@vendor.example"),
    )
    assert mum[0] > rex[0]  # more reciprocal: further right
    assert rex[1] < mum[1]  # hostile: higher up (SVG y grows downwards)
    assert shop[2] > mum[2] > rex[2] > sales[2]  # volume
    # sqrt scale: area ~ volume, so 183 messages are not 183x the one-message circle
    assert shop[2] / sales[2] < 8


def test_tone_axis_is_the_worst_of_hostility_pressure_cold() -> None:
    c = _contact("a@x.example", "", inbound=1, tone=_tone(None, 0.2, 0.7, 0.4))
    assert tone_trouble(c) == pytest.approx(0.7)
    assert tone_trouble({"tone": {"hostility": 3.0}}) == 1.0  # clamped
    assert tone_trouble({}) == 0.0
    assert tone_trouble({"tone": {"hostility": None, "pressure": "x"}}) == 0.0
    page = render(sample_contacts())
    assert "tone: worse ↑" in page and "max of hostility, pressure, cold outreach" in page
    assert "cold-outreach scores" in by_id(page, "plot-caption").text()


def test_totals() -> None:
    contacts = sample_contacts()
    t = totals(render(contacts))
    assert t == {
        "contacts": 13,
        "received": sum(c["inbound"] for c in contacts),
        "sent": sum(c["outbound"] for c in contacts),
        "bulk": 2,
        "suggestions": 6,
        "action-walk_away": 1,
        "action-decline": 4,
        "action-unsubscribe": 1,
    }
    assert t["received"] == 452  # hand-counted, independent of the sum above


def test_suggestions_table_lists_flagged_contacts_most_serious_first() -> None:
    page = render(sample_contacts())
    rows = [n for n in elements(page) if "suggestion" in n.classes()]
    order = [n.attrs["data-address"] for n in rows]
    assert order[0] == "rex@troll.example"
    assert order[-1] == "news@shop.example"
    assert set(order[1:5]) == {
        "sales@vendor.example",
        "joerg.mueller@startup.example",
        "zoe.odegard@old-job.example",
        "talent@recruit.example",
    }
    zoe = next(n for n in rows if n.attrs["data-address"] == "zoe.odegard@old-job.example")
    text = zoe.text()
    assert "Zoë Ødegård" in text and "honest" in text and "one-sided-demanding" in text
    assert "it keeps going" in text and "acquaintance: you wrote 2 time(s)" in text
    # every row can highlight its mark
    assert all(n.attrs.get("data-i") is not None for n in rows)


def test_explicit_suggestions_are_shown_and_counted() -> None:
    suggestions = [
        {
            "address": "sales@vendor.example",
            "action": "decline",
            "tactic": "offer_alternative",
            "rule": "cold-outreach",
            "reasons": ["only this one"],
        },
        {"address": "gone@x.example", "action": "unsubscribe", "tactic": "unsubscribe"},
        {"address": "mum@family.example", "action": "none", "reasons": []},
    ]
    page = render(sample_contacts(), suggestions=suggestions)
    rows = [n for n in elements(page) if "suggestion" in n.classes()]
    assert [n.attrs["data-address"] for n in rows] == ["sales@vendor.example", "gone@x.example"]
    assert "only this one" in rows[0].text() and "Vendor Sales Team" in rows[0].text()
    assert rows[1].attrs.get("data-i") is None  # not among the contacts: nothing to highlight
    t = totals(page)
    assert (t["suggestions"], t["action-decline"], t["action-unsubscribe"]) == (2, 1, 1)
    assert t["action-walk_away"] == 0


def test_hostile_text_adds_no_element_and_stays_text() -> None:
    hostile = hostile_contacts()
    # The same structure with harmless text: the hostile page must have the same elements.
    benign = benign_twin(hostile)
    evil_page = render(hostile, title="<i>title</i>")
    plain_page = render(benign, title="title")
    evil_tags = Counter(n.tag for n in elements(evil_page))
    assert evil_tags == Counter(n.tag for n in elements(plain_page))
    assert "img" not in evil_tags and evil_tags["script"] == 2 and evil_tags["h1"] == 1
    for n in elements(evil_page):  # no event handler attribute anywhere
        assert not any(a.startswith("on") for a in n.attrs), n
    assert XSS_NAME not in evil_page and "<img" not in evil_page and "<svg onload" not in evil_page
    # ... and every string arrives intact as text
    evil = next(
        n
        for n in marks(evil_page)
        if n.attrs["data-action"] == "walk_away" and "evil" in (n.attrs["data-address"] or "")
    )
    assert evil.attrs["data-address"] == 'evil"><svg onload=alert(1)>@x.example'
    label = evil.iter()[1].text()  # the native <title> tooltip
    assert evil.iter()[1].tag == "title"
    assert XSS_NAME in label and XSS_REASON in label and "a & b < c > d" in label
    row = next(
        n
        for n in elements(evil_page)
        if "suggestion" in n.classes() and "evil" in (n.attrs["data-address"] or "")
    )
    assert XSS_REASON in row.text() and "<b>walk</b>" in row.text()
    assert "</td></tr></table><h1>x</h1>" in row.text()
    assert by_id(evil_page, "report-data").text().count("<") == 0


def test_embedded_json_round_trips_and_cannot_close_its_script() -> None:
    hostile = hostile_contacts()
    page = render(hostile)
    raw = by_id(page, "report-data").text()
    assert "</" not in raw and "<!--" not in raw and "<" not in raw
    data = json.loads(raw)
    assert [d["address"] for d in data] == [c["address"] for c in hostile]
    assert data[4]["name"] == XSS_NAME
    assert data[4]["reasons"][0] == XSS_REASON
    assert "</script><script>alert(2)</script>" in data[4]["evidence"]["hostility"]


def test_csp_allows_exactly_the_inline_style_and_script() -> None:
    page = render(sample_contacts())
    nodes = elements(page)
    csp = next(
        n.attrs["content"] or ""
        for n in nodes
        if n.tag == "meta" and n.attrs.get("http-equiv") == "Content-Security-Policy"
    )
    assert "default-src 'none'" in csp

    def sha(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    style = next(n for n in nodes if n.tag == "style").text()
    code = next(n for n in nodes if n.tag == "script" and "type" not in n.attrs).text()
    assert f"style-src {sha(style)};" in csp
    assert f"script-src {sha(code)};" in csp
    assert "unsafe-inline" not in csp
    assert not any("style" in n.attrs for n in nodes)  # CSP would block style attributes


def test_non_ascii_names_are_kept() -> None:
    page = render(sample_contacts())
    for name in (
        "Jörg Müller",
        "Zoë Ødegård",
        "李小龙",
        "Ольга Петрова",
        "Sami 🎉",
        "Recruiting ✨",
    ):
        assert name in page
    assert "\\u" not in by_id(page, "report-data").text().replace("\\u003c", "").replace(
        "\\u003e", ""
    ).replace("\\u0026", "")


def test_null_politeness_and_missing_fields_do_not_break_the_page() -> None:
    odd: list[dict[str, Any]] = [
        {"address": "bare@x.example"},
        {
            "address": "nan@x.example",
            "inbound": float("nan"),
            "reciprocity": None,
            "tone": None,
            "reasons": "one string, not a list",
            "action": "archive",  # a future action: drawn in the "other" style
        },
        _contact("olga@example.ru", "Ольга", inbound=2, read_rate=None, tone=_tone(None)),
    ]
    page = render(odd)
    found = marks(page)
    assert len(found) == 3
    assert {n.attrs["data-action"] for n in found} == {"none", "archive"}
    assert "a-other" in next(n for n in found if n.attrs["data-action"] == "archive").classes()
    olga = next(n for n in found if "olga" in (n.attrs["data-address"] or ""))
    assert "politeness –" in olga.text()
    assert "one string, not a list" in page
    assert totals(page)["received"] == 2


def test_empty_input_renders_a_page_saying_so() -> None:
    page = render([])
    assert marks(page) == []
    assert "No contacts" in by_id(page, "no-contacts").text()
    assert "No suggestions" in by_id(page, "no-suggestions").text()
    assert set(totals(page).values()) == {0}
    assert json.loads(by_id(page, "report-data").text()) == []
    assert "me@home.example" in page and GENERATED in page


def test_several_accounts_get_an_account_column() -> None:
    contacts = sample_contacts()[:5]
    for c in contacts:
        c["account"] = "work" if "troll" in c["address"] else "home"
    page = render(contacts)
    heads = [n.text() for n in elements(page) if n.tag == "th"]
    assert heads.count("account") == 2  # suggestions and all-contacts tables
    rex = next(
        n
        for n in elements(page)
        if "suggestion" in n.classes() and n.attrs["data-address"] == "rex@troll.example"
    )
    assert "work" in rex.text()


def test_output_is_deterministic() -> None:
    assert render(sample_contacts()) == render(sample_contacts())
