"""One self-contained HTML report of a mailbox's contacts (pure, stdlib only).

``render_html`` takes the dicts that ``inbox-filter contacts --json`` prints (see
``cli._contact_json``) and returns a single HTML page that needs nothing from the
network: inline CSS, an inline SVG scatter plot, a small inline script for a nicer
tooltip (the plot works without it: every mark carries a native SVG ``<title>``).

The plot: x = reciprocity (0 = you never give back .. 1 = fully two-way); y = "tone
trouble", the worst of hostility, pressure and cold outreach (0..1, higher = worse).
Politeness is not the y axis because it is unknown (null) for senders whose text was
never scored, and because low politeness alone is not a reason for any suggestion.
Circle area follows the number of messages received; colour is the suggested action.

Everything that comes from mail (addresses, names, reasons, evidence, tactics) is
untrusted: it is HTML-escaped where it becomes markup, and the JSON embedded for the
tooltip has every ``<``, ``>`` and ``&`` escaped so it cannot close its ``<script>``.
A Content-Security-Policy with the hashes of the page's own style and script blocks
is defence in depth: no other script, handler or network fetch could run anyway.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["ACTIONS", "render_html", "tone_trouble"]

# Drawing order of the legend and the tables: most serious first.
ACTIONS = ("walk_away", "decline", "unsubscribe", "none")
_ACTION_LABEL = {
    "walk_away": "walk away",
    "decline": "decline",
    "unsubscribe": "unsubscribe",
    "none": "no action",
}
_TACTIC_LABEL = {
    "offer_alternative": "offer an alternative",
    "honest": "honest",
    "humour": "humour",
    "walk_away": "no reply",
    "unsubscribe": "unsubscribe",
}
_TONE_KEYS = ("hostility", "pressure", "cold_outreach")
_TONE_LABEL = {
    "politeness": "politeness",
    "hostility": "hostility",
    "pressure": "pressure",
    "cold_outreach": "cold outreach",
}

# Plot geometry, in SVG user units (the SVG scales to the page width).
_W, _H = 960, 580
_ML, _MR, _MT, _MB = 78, 28, 26, 78
_LO, _HI = -0.04, 1.04  # a little room so marks at 0 and 1 are not cut by the frame
_R_MIN, _R_MAX = 4.0, 22.0
_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _e(value: object) -> str:
    """Escape anything for HTML text or a quoted attribute."""
    return html.escape(str(value), quote=True)


def _num(value: object, default: float = 0.0) -> float:
    """A finite float from JSON-ish input, else ``default``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    x = float(value)
    return x if math.isfinite(x) else default


def _opt(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def _clamp01(x: float) -> float:
    return min(1.0, max(0.0, x))


def _count(value: object) -> int:
    return max(0, int(_num(value)))


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _strings(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def _tone(contact: Mapping[str, Any]) -> Mapping[str, Any]:
    tone = contact.get("tone")
    return tone if isinstance(tone, Mapping) else {}


def _action(contact: Mapping[str, Any]) -> str:
    action = contact.get("action")
    return "none" if action is None or action == "" else str(action)


def _css_action(action: str) -> str:
    """A class name for an action; unknown (future) actions share one style."""
    return f"a-{action}" if action in _ACTION_LABEL else "a-other"


def _label(action: str) -> str:
    return _ACTION_LABEL.get(action, action)


def tone_trouble(contact: Mapping[str, Any]) -> float:
    """The plot's y value: max(hostility, pressure, cold_outreach), clamped to 0..1."""
    tone = _tone(contact)
    return _clamp01(max(_num(tone.get(k)) for k in _TONE_KEYS))


def _f2(value: object) -> str:
    x = _opt(value)
    return "–" if x is None else f"{x:.2f}"


def _pct(value: object) -> str:
    x = _opt(value)
    return "–" if x is None else f"{x:.0%}"


def _int(n: int) -> str:
    return f"{n:,}".replace(",", "\u202f")  # narrow no-break space: 12 345


def _sx(v: float) -> float:
    return _ML + (v - _LO) / (_HI - _LO) * (_W - _ML - _MR)


def _sy(v: float) -> float:
    return _MT + (_HI - v) / (_HI - _LO) * (_H - _MT - _MB)


def _radius(inbound: int, top: int) -> float:
    """Circle area proportional to volume (radius ~ sqrt), never smaller than _R_MIN."""
    return _R_MIN + (_R_MAX - _R_MIN) * math.sqrt(min(inbound, top) / top) if top else _R_MIN


def _nice(n: float) -> int:
    """Round down to 1, 2 or 5 times a power of ten (for the size legend)."""
    if n < 1:
        return 1
    p = 10 ** math.floor(math.log10(n))
    return int(max(m * p for m in (1, 2, 5) if m * p <= n))


def _sender_key(item: Mapping[str, Any]) -> tuple[str, str]:
    return (_text(item.get("account")), _text(item.get("address")))


def _evidence(tone: Mapping[str, Any]) -> dict[str, list[str]]:
    ev = tone.get("evidence")
    if not isinstance(ev, Mapping):
        return {}
    return {str(k): _strings(v) for k, v in ev.items() if _strings(v)}


def _title_text(c: Mapping[str, Any]) -> str:
    """Plain text of the native tooltip (escaped by the caller)."""
    tone = _tone(c)
    name = _text(c.get("name"))
    action = _action(c)
    tactic = _text(c.get("tactic"))
    lines = [_text(c.get("address")) + (f" ({name})" if name else "")]
    if c.get("account"):
        lines.append(f"account: {c.get('account')}")
    lines.append(
        f"received {_count(c.get('inbound'))} · sent {_count(c.get('outbound'))} · "
        f"replied {_count(c.get('replied'))} · reciprocity {_f2(c.get('reciprocity'))}"
    )
    lines.append(
        f"politeness {_f2(tone.get('politeness'))} · hostility {_f2(tone.get('hostility'))} · "
        f"pressure {_f2(tone.get('pressure'))} · cold outreach {_f2(tone.get('cold_outreach'))}"
    )
    lines.append(
        f"suggested: {_label(action)}"
        + (f" ({tactic})" if tactic and action != "none" else "")
        + (" · bulk sender" if c.get("bulk") else "")
    )
    lines.extend(f"• {r}" for r in _strings(c.get("reasons")))
    return "\n".join(lines)


def _tip_data(c: Mapping[str, Any]) -> dict[str, Any]:
    """What the inline script shows on hover (it renders every value with textContent)."""
    tone = _tone(c)
    return {
        "address": _text(c.get("address")),
        "name": _text(c.get("name")),
        "account": _text(c.get("account")),
        "inbound": _count(c.get("inbound")),
        "outbound": _count(c.get("outbound")),
        "replied": _count(c.get("replied")),
        "read_rate": _opt(c.get("read_rate")),
        "reciprocity": _opt(c.get("reciprocity")),
        "relationship": _text(c.get("relationship")),
        "bulk": bool(c.get("bulk")),
        "tone": {k: _opt(tone.get(k)) for k in _TONE_LABEL},
        "action": _label(_action(c)),
        "action_class": _css_action(_action(c)),
        "tactic": _TACTIC_LABEL.get(_text(c.get("tactic")), _text(c.get("tactic"))),
        "reasons": _strings(c.get("reasons")),
        "evidence": {_TONE_LABEL.get(k, k): v[:3] for k, v in _evidence(tone).items()},
    }


def _json_for_script(data: object) -> str:
    """JSON that cannot end its <script> element or open a comment inside it."""
    return (
        json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


def _csp_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


# --- the plot -------------------------------------------------------------------------


def _plot_svg(contacts: Sequence[Mapping[str, Any]]) -> str:
    top = max((_count(c.get("inbound")) for c in contacts), default=0)
    x0, x1, y0, y1 = _sx(_LO), _sx(_HI), _sy(_LO), _sy(_HI)
    out: list[str] = [
        f'<svg class="plot" id="plot" viewBox="0 0 {_W} {_H}" role="group" '
        'aria-labelledby="plot-caption" xmlns="http://www.w3.org/2000/svg">',
        f'<rect class="plot-bg" x="{x0:.1f}" y="{y1:.1f}" width="{x1 - x0:.1f}" '
        f'height="{y0 - y1:.1f}"/>',
        '<g class="grid">',
    ]
    for t in _TICKS:
        out.append(f'<line x1="{_sx(t):.1f}" y1="{y1:.1f}" x2="{_sx(t):.1f}" y2="{y0:.1f}"/>')
        out.append(f'<line x1="{x0:.1f}" y1="{_sy(t):.1f}" x2="{x1:.1f}" y2="{_sy(t):.1f}"/>')
    out.append("</g>")
    # Corner notes say what the regions mean (the thresholds themselves are configurable).
    out.append(
        f'<text class="corner" x="{x0 + 10:.1f}" y="{y1 + 20:.1f}">'
        "one-sided, harsh or pushy</text>"
        f'<text class="corner" x="{x1 - 10:.1f}" y="{y0 - 12:.1f}" text-anchor="end">'
        "two-way, calm</text>"
    )
    out.append('<g class="axis">')
    out.append(f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y0:.1f}"/>')
    out.append(f'<line x1="{x0:.1f}" y1="{y1:.1f}" x2="{x0:.1f}" y2="{y0:.1f}"/>')
    for t in _TICKS:
        out.append(f'<line x1="{_sx(t):.1f}" y1="{y0:.1f}" x2="{_sx(t):.1f}" y2="{y0 + 6:.1f}"/>')
        out.append(f'<line x1="{x0 - 6:.1f}" y1="{_sy(t):.1f}" x2="{x0:.1f}" y2="{_sy(t):.1f}"/>')
    out.append("</g>")
    out.append('<g class="ticks">')
    for t in _TICKS:
        label = f"{t:g}"
        out.append(f'<text x="{_sx(t):.1f}" y="{y0 + 22:.1f}" text-anchor="middle">{label}</text>')
        out.append(f'<text x="{x0 - 10:.1f}" y="{_sy(t) + 4:.1f}" text-anchor="end">{label}</text>')
    out.append("</g>")
    mid_x, mid_y = (x0 + x1) / 2, (y0 + y1) / 2
    out.append(
        f'<text class="axis-title" x="{mid_x:.1f}" y="{_H - 26}" text-anchor="middle">'
        "reciprocity → how much you give back</text>"
        f'<text class="axis-note" x="{x0:.1f}" y="{_H - 8}">← you never answer</text>'
        f'<text class="axis-note" x="{x1:.1f}" y="{_H - 8}" text-anchor="end">'
        "fully two-way →</text>"
        f'<text class="axis-title" transform="translate(22 {mid_y:.1f}) rotate(-90)" '
        'text-anchor="middle">tone: worse ↑ (max of hostility, pressure, cold outreach)</text>'
    )
    # Big circles first so small ones stay visible; flagged senders above the rest.
    order = sorted(
        range(len(contacts)),
        key=lambda i: (
            _action(contacts[i]) != "none",
            -_count(contacts[i].get("inbound")),
            i,
        ),
    )
    out.append('<g class="marks">')
    for i in order:
        c = contacts[i]
        action = _action(c)
        x = _sx(_clamp01(_num(c.get("reciprocity"), 0.5)))
        y = _sy(tone_trouble(c))
        r = _radius(_count(c.get("inbound")), top)
        classes = f"contact-mark {_css_action(action)}" + (" bulk" if c.get("bulk") else "")
        title = _title_text(c)
        out.append(
            f'<circle class="{classes}" data-i="{i}" data-address="{_e(_text(c.get("address")))}"'
            f' data-action="{_e(action)}" cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" tabindex="0">'
            f"<title>{_e(title)}</title></circle>"
        )
    out.append("</g></svg>")
    return "".join(out)


def _legend(contacts: Sequence[Mapping[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for c in contacts:
        counts[_action(c)] = counts.get(_action(c), 0) + 1
    known = [a for a in ACTIONS if a in counts] or list(ACTIONS)
    extra = sorted(a for a in counts if a not in _ACTION_LABEL)
    items: list[str] = []
    for action in known + extra:
        items.append(
            '<li><svg class="swatch" viewBox="0 0 16 16" aria-hidden="true">'
            f'<circle class="{_css_action(action)}" cx="8" cy="8" r="6"/></svg>'
            f'{_e(_label(action))} <span class="muted">({counts.get(action, 0)})</span></li>'
        )
    if any(c.get("bulk") for c in contacts):
        items.append(
            '<li><svg class="swatch" viewBox="0 0 16 16" aria-hidden="true">'
            '<circle class="ring bulk" cx="8" cy="8" r="6"/></svg>bulk / list sender</li>'
        )
    top = max((_count(c.get("inbound")) for c in contacts), default=0)
    sizes = sorted({v for v in (_nice(top / 10), _nice(top / 3), top) if v >= 1})
    if top and sizes:
        box = 2 * _R_MAX + 2
        circles = []
        x = 0.0
        for v in sizes:
            r = _radius(v, top)
            x += r + 1
            circles.append(
                f'<circle class="ring" cx="{x:.1f}" cy="{box - r - 1:.1f}" r="{r:.1f}"/>'
                f'<text x="{x:.1f}" y="{box + 13:.1f}" text-anchor="middle">{_int(v)}</text>'
            )
            x += r + 14
        items.append(
            f'<li class="sizes"><svg class="size-key" viewBox="0 0 {x:.0f} {box + 16:.0f}" '
            f'width="{x:.0f}" height="{box + 16:.0f}" aria-hidden="true">'
            + "".join(circles)
            + "</svg><span>messages received (circle area)</span></li>"
        )
    return '<ul class="legend" aria-label="legend">' + "".join(items) + "</ul>"


# --- tables and totals ----------------------------------------------------------------


def _badge(action: str) -> str:
    return f'<span class="badge {_css_action(action)}">{_e(_label(action))}</span>'


def _sender_cell(address: str, name: str) -> str:
    out = f'<span class="addr">{_e(address)}</span>'
    if name:
        out += f'<span class="name">{_e(name)}</span>'
    return out


def _reasons_list(reasons: list[str]) -> str:
    if not reasons:
        return '<span class="muted">–</span>'
    return '<ul class="reasons">' + "".join(f"<li>{_e(r)}</li>" for r in reasons) + "</ul>"


def _suggestion_rows(
    suggestions: Sequence[Mapping[str, Any]],
    index: Mapping[tuple[str, str], int],
    names: Mapping[tuple[str, str], str],
    with_account: bool,
) -> str:
    rows: list[str] = []
    for s in suggestions:
        key = _sender_key(s)
        action = _action(s)
        i = index.get(key)
        data_i = f' data-i="{i}"' if i is not None else ""
        rule = _text(s.get("rule"))
        tactic = _text(s.get("tactic"))
        tactic = _TACTIC_LABEL.get(tactic, tactic) or "–"
        rows.append(
            f'<tr class="suggestion" data-address="{_e(key[1])}"{data_i}>'
            + (f"<td>{_e(key[0])}</td>" if with_account else "")
            + f'<td class="sender">{_sender_cell(key[1], names.get(key, ""))}</td>'
            + f"<td>{_badge(action)}</td>"
            + f"<td>{_e(tactic)}"
            + (f'<span class="rule">rule: {_e(rule)}</span>' if rule else "")
            + "</td>"
            + f"<td>{_reasons_list(_strings(s.get('reasons')))}</td></tr>"
        )
    head = (
        "<tr>"
        + ("<th>account</th>" if with_account else "")
        + "<th>sender</th><th>action</th><th>tactic</th><th>reasons</th></tr>"
    )
    return (
        '<div class="table-wrap"><table class="suggestions" id="suggestions-table">'
        f"<thead>{head}</thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _contact_rows(contacts: Sequence[Mapping[str, Any]], with_account: bool) -> str:
    order = sorted(
        range(len(contacts)),
        key=lambda i: (
            ACTIONS.index(_action(contacts[i])) if _action(contacts[i]) in ACTIONS else -1,
            -_count(contacts[i].get("inbound")),
            _text(contacts[i].get("address")),
        ),
    )
    cols = (
        (["account"] if with_account else [])
        + ["sender", "recv", "sent", "replied", "read", "recip", "relationship"]
        + ["polite", "hostile", "pressure", "cold", "action"]
    )
    num = {"recv", "sent", "replied", "read", "recip", "polite", "hostile", "pressure", "cold"}
    head = "".join(f'<th class="num">{c}</th>' if c in num else f"<th>{c}</th>" for c in cols)
    rows: list[str] = []
    for i in order:
        c = contacts[i]
        tone = _tone(c)
        address = _text(c.get("address"))
        rel = "bulk" if c.get("bulk") else _text(c.get("relationship"))
        cells = (
            ([f"<td>{_e(_text(c.get('account')))}</td>"] if with_account else [])
            + [f'<td class="sender">{_sender_cell(address, _text(c.get("name")))}</td>']
            + [
                f'<td class="num">{v}</td>'
                for v in (
                    _int(_count(c.get("inbound"))),
                    _int(_count(c.get("outbound"))),
                    _int(_count(c.get("replied"))),
                    _pct(c.get("read_rate")),
                    _f2(c.get("reciprocity")),
                )
            ]
            + [f"<td>{_e(rel)}</td>"]
            + [
                f'<td class="num">{_f2(tone.get(k))}</td>'
                for k in ("politeness", "hostility", "pressure", "cold_outreach")
            ]
            + [f"<td>{_badge(_action(c))}</td>"]
        )
        rows.append(f'<tr data-i="{i}">' + "".join(cells) + "</tr>")
    return (
        '<div class="table-wrap"><table class="contacts" id="contacts-table">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _totals(contacts: Sequence[Mapping[str, Any]], suggestions: Sequence[Mapping[str, Any]]) -> str:
    per_action = {a: 0 for a in ACTIONS if a != "none"}
    for s in suggestions:
        per_action[_action(s)] = per_action.get(_action(s), 0) + 1
    mailbox = [
        ("contacts", "contacts", len(contacts)),
        ("received", "messages received", sum(_count(c.get("inbound")) for c in contacts)),
        ("sent", "messages you sent", sum(_count(c.get("outbound")) for c in contacts)),
        ("bulk", "bulk senders", sum(1 for c in contacts if c.get("bulk"))),
    ]
    suggested = [("suggestions", "suggestions", len(suggestions))]
    suggested += [(f"action-{a}", _label(a), n) for a, n in per_action.items()]

    def group(heading: str, cards: list[tuple[str, str, int]]) -> str:
        return (
            f'<div class="group"><h3>{_e(heading)}</h3><div class="cards">'
            + "".join(
                f'<div class="card" data-total="{_e(key)}"><span class="value">{_int(n)}</span>'
                f'<span class="label">{_e(label)}</span></div>'
                for key, label, n in cards
            )
            + "</div></div>"
        )

    return (
        '<div class="totals">'
        + group("Your mailbox", mailbox)
        + group("Suggested", suggested)
        + "</div>"
    )


# --- the page -------------------------------------------------------------------------

_CSS = """
:root{--bg:#f5f6f8;--fg:#1c2129;--muted:#5d6877;--card:#fff;--line:#d8dde4;--grid:#edf0f4;
--plot:#fbfcfd;--walk_away:#d55e00;--decline:#e69f00;--unsubscribe:#0072b2;--none:#98a2ae;
--other:#8e5ea2;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#14171c;--fg:#e5e8ec;--muted:#9ba6b3;
--card:#1c2027;--line:#333a44;--grid:#262c34;--plot:#181c22;--none:#7d8792}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,
"Segoe UI",Roboto,"Noto Sans","Liberation Sans","DejaVu Sans",Arial,sans-serif}
main{max-width:1160px;margin:0 auto;padding:28px 20px 40px}
h1{font-size:1.65rem;line-height:1.2;margin:0 0 4px}
h2{font-size:1.15rem;margin:0 0 12px}
.meta,.muted,figcaption,footer{color:var(--muted)}
.meta{margin:0}
section,figure{background:var(--card);border:1px solid var(--line);border-radius:12px;
padding:18px 20px;margin:18px 0}
.totals{display:grid;grid-template-columns:1fr 1fr;gap:14px 22px}
.totals h3{font-size:.8rem;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);
margin:0 0 6px;font-weight:600}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(110px,1fr));gap:10px}
.card{border:1px solid var(--line);border-radius:10px;padding:8px 12px}
.card .value{display:block;font-size:1.6rem;font-weight:650;font-variant-numeric:tabular-nums}
.card .label{display:block;color:var(--muted);font-size:.82rem;line-height:1.25}
.card[data-total^="action-"]{border-left-width:5px}
.card[data-total="action-walk_away"]{border-left-color:var(--walk_away)}
.card[data-total="action-decline"]{border-left-color:var(--decline)}
.card[data-total="action-unsubscribe"]{border-left-color:var(--unsubscribe)}
.plot-wrap{overflow-x:auto}
svg.plot{display:block;width:100%;min-width:560px;height:auto;font-family:inherit}
.plot text{fill:var(--muted);font-size:13px}
.plot .axis-title{fill:var(--fg);font-size:14px;font-weight:600}
.plot .axis-note{font-size:12px}
.plot .corner{font-size:12px;font-style:italic;opacity:.8}
.plot-bg{fill:var(--plot)}
.grid line{stroke:var(--grid);stroke-width:1}
.axis line{stroke:var(--muted);stroke-width:1}
.contact-mark{fill-opacity:.6;stroke-width:1.5;cursor:pointer;
transition:fill-opacity .1s,stroke-width .1s}
.contact-mark:hover,.contact-mark:focus,.contact-mark.hl{fill-opacity:.95;stroke:var(--fg);
stroke-width:2.5;outline:none}
circle.a-walk_away{fill:var(--walk_away);stroke:var(--walk_away)}
circle.a-decline{fill:var(--decline);stroke:var(--decline)}
circle.a-unsubscribe{fill:var(--unsubscribe);stroke:var(--unsubscribe)}
circle.a-none{fill:var(--none);stroke:var(--none)}
circle.a-other{fill:var(--other);stroke:var(--other)}
circle.bulk{stroke-dasharray:3 2;stroke-width:2}
circle.ring{fill:none;stroke:var(--muted);stroke-width:1.3}
.legend{list-style:none;display:flex;flex-wrap:wrap;align-items:flex-end;gap:8px 22px;
margin:12px 0 0;padding:0}
.legend li{display:flex;align-items:center;gap:6px}
.legend .swatch{width:16px;height:16px}
.legend .swatch circle:not(.ring){fill-opacity:.75}
.legend .sizes{gap:10px}
.size-key text{fill:var(--muted);font-size:11px}
figcaption{font-size:.88rem;margin-top:12px;max-width:80ch}
.table-wrap{overflow-x:auto}
table{width:100%;border-collapse:collapse;font-size:.92rem}
th,td{text-align:left;vertical-align:top;padding:7px 10px;border-bottom:1px solid var(--line)}
th{font-size:.8rem;text-transform:uppercase;letter-spacing:.03em;color:var(--muted)}
th.num,td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tbody tr:hover,tbody tr.hl{background:var(--grid)}
.addr{display:block;font-weight:600;overflow-wrap:anywhere}
.name{display:block;color:var(--muted);font-size:.85rem;overflow-wrap:anywhere}
.rule{display:block;color:var(--muted);font-size:.8rem}
.reasons{margin:0;padding-left:1.1em}
.reasons li{overflow-wrap:anywhere}
.badge{display:inline-block;white-space:nowrap;border-radius:999px;padding:1px 9px;
font-size:.8rem;font-weight:600;color:#fff;background:var(--other)}
.badge.a-walk_away{background:var(--walk_away)}
.badge.a-decline{background:var(--decline);color:#2a1e00}
.badge.a-unsubscribe{background:var(--unsubscribe)}
.badge.a-none{background:transparent;color:var(--muted);border:1px solid var(--line)}
details summary{cursor:pointer;font-weight:600}
details[open] summary{margin-bottom:10px}
.empty{font-size:1.05rem;padding:28px 8px;text-align:center;color:var(--muted)}
footer{font-size:.82rem;text-align:center}
#tooltip{position:fixed;z-index:10;left:0;top:0;max-width:min(440px,92vw);
background:var(--card);color:var(--fg);border:1px solid var(--line);border-radius:9px;
box-shadow:0 8px 28px rgba(0,0,0,.2);padding:10px 13px;font-size:.84rem;line-height:1.4;
pointer-events:none}
#tooltip[hidden]{display:none}
#tooltip .t-addr{font-weight:700;overflow-wrap:anywhere}
#tooltip .t-name,#tooltip .t-small{color:var(--muted);overflow-wrap:anywhere}
#tooltip .badge{margin:4px 0}
#tooltip ul{margin:4px 0 0;padding-left:1.1em}
#tooltip li{overflow-wrap:anywhere}
td.sender{min-width:15em}
table.contacts{font-size:.86rem}
table.contacts th,table.contacts td{padding:6px 7px}
table.contacts td.sender{min-width:12em}
@media (prefers-color-scheme:dark){.contact-mark{fill-opacity:.8}}
@media (max-width:860px){.totals{grid-template-columns:1fr}}
@media (max-width:640px){main{padding:16px 10px}section,figure{padding:12px}
table.suggestions,table.suggestions tbody,table.suggestions tr,table.suggestions td{display:block}
table.suggestions thead{display:none}
table.suggestions tr{padding:10px 0;border-bottom:1px solid var(--line)}
table.suggestions td{border:0;padding:2px 0;min-width:0}
table.suggestions td.sender{min-width:0}}
"""

# The tooltip. It only ever writes text (textContent), never markup.
_JS = """
(function () {
  "use strict";
  var dataEl = document.getElementById("report-data");
  var tip = document.getElementById("tooltip");
  if (!dataEl || !tip) { return; }
  var data = JSON.parse(dataEl.textContent || "[]");
  var marks = document.querySelectorAll(".contact-mark");
  function add(parent, tag, cls, text) {
    var el = document.createElement(tag);
    if (cls) { el.className = cls; }
    if (text !== undefined) { el.textContent = String(text); }
    parent.appendChild(el);
    return el;
  }
  function f2(x) { return x === null || x === undefined ? "\\u2013" : Number(x).toFixed(2); }
  function place(x, y) {
    var w = tip.offsetWidth, h = tip.offsetHeight, pad = 8;
    var left = x + 16, top = y + 16;
    if (left + w > window.innerWidth - pad) { left = Math.max(pad, x - w - 16); }
    if (top + h > window.innerHeight - pad) { top = Math.max(pad, y - h - 16); }
    tip.style.left = left + "px";
    tip.style.top = top + "px";
  }
  function fill(c) {
    tip.replaceChildren();
    add(tip, "div", "t-addr", c.address);
    if (c.name) { add(tip, "div", "t-name", c.name); }
    if (c.account) { add(tip, "div", "t-small", "account: " + c.account); }
    add(tip, "span", "badge " + c.action_class,
        c.action + (c.tactic && c.action_class !== "a-none" ? " \\u00b7 " + c.tactic : ""));
    add(tip, "div", "t-small", "received " + c.inbound + " \\u00b7 sent " + c.outbound +
        " \\u00b7 replied " + c.replied + " \\u00b7 reciprocity " + f2(c.reciprocity) +
        (c.bulk ? " \\u00b7 bulk" : " \\u00b7 " + (c.relationship || "")));
    add(tip, "div", "t-small", "politeness " + f2(c.tone.politeness) + " \\u00b7 hostility " +
        f2(c.tone.hostility) + " \\u00b7 pressure " + f2(c.tone.pressure) +
        " \\u00b7 cold outreach " + f2(c.tone.cold_outreach));
    if (c.reasons.length) {
      var ul = add(tip, "ul", "t-reasons");
      c.reasons.forEach(function (r) { add(ul, "li", "", r); });
    }
    Object.keys(c.evidence).forEach(function (k) {
      add(tip, "div", "t-small", k + ": " + c.evidence[k].join(", "));
    });
  }
  function markOf(i) {
    for (var j = 0; j < marks.length; j++) {
      if (marks[j].getAttribute("data-i") === i) { return marks[j]; }
    }
    return null;
  }
  function show(mark, x, y) {
    var c = data[Number(mark.getAttribute("data-i"))];
    if (!c) { return; }
    fill(c);
    tip.hidden = false;
    place(x, y);
  }
  function hide() { tip.hidden = true; }
  marks.forEach(function (m) {
    var t = m.querySelector("title");
    if (t) {  // the custom tooltip replaces the native one; screen readers keep the text
      m.setAttribute("aria-label", t.textContent);
      t.remove();
    }
    m.addEventListener("mouseenter", function (ev) { show(m, ev.clientX, ev.clientY); });
    m.addEventListener("mousemove", function (ev) { place(ev.clientX, ev.clientY); });
    m.addEventListener("mouseleave", hide);
    m.addEventListener("focus", function () {
      var b = m.getBoundingClientRect();
      show(m, b.right, b.bottom);
    });
    m.addEventListener("blur", hide);
  });
  document.querySelectorAll("tr[data-i]").forEach(function (row) {
    var m = markOf(row.getAttribute("data-i"));
    if (!m) { return; }
    row.addEventListener("mouseenter", function () { m.classList.add("hl"); });
    row.addEventListener("mouseleave", function () { m.classList.remove("hl"); });
  });
  window.addEventListener("scroll", hide, { passive: true });
})();
"""


def render_html(
    contacts: list[dict[str, Any]],
    *,
    account: str,
    generated_at: str,
    suggestions: list[dict[str, Any]] | None = None,
    title: str = "inbox-filter report",
) -> str:
    """The whole report as one self-contained HTML page (UTF-8, no external resources).

    ``contacts`` are ``contacts --json`` items; ``suggestions`` (``scan --json`` items:
    address, action, tactic, rule, reasons) default to the contacts whose action is not
    ``none``. Items with an ``account`` key (several accounts) get an account column.
    """
    people: list[Mapping[str, Any]] = [c for c in contacts if isinstance(c, Mapping)]
    if suggestions is None:
        flagged = [c for c in people if _action(c) != "none"]
        flagged.sort(
            key=lambda c: (
                ACTIONS.index(_action(c)) if _action(c) in ACTIONS else len(ACTIONS),
                -_count(c.get("inbound")),
            )
        )
        sugg: list[Mapping[str, Any]] = flagged
    else:
        sugg = [s for s in suggestions if isinstance(s, Mapping) and _action(s) != "none"]

    index: dict[tuple[str, str], int] = {}
    names: dict[tuple[str, str], str] = {}
    for i, c in enumerate(people):
        index.setdefault(_sender_key(c), i)
        names.setdefault(_sender_key(c), _text(c.get("name")))
    with_account = any(c.get("account") for c in people) or any(s.get("account") for s in sugg)

    if people:
        plot = (
            '<figure class="plot-figure"><h2>Who writes to you</h2>'
            + '<div class="plot-wrap">'
            + _plot_svg(people)
            + "</div>"
            + _legend(people)
            + '<figcaption id="plot-caption">Each circle is one sender. '
            "<b>Across:</b> reciprocity, how much you give back per message received "
            "(0 = you never answer, 1 = fully two-way; senders with little history start "
            "near 0.5). <b>Up:</b> tone trouble, the worst of the sender's hostility, "
            "pressure and cold-outreach scores (0..1, higher is worse); politeness is not "
            "used because it is unknown when no text was scored. <b>Size:</b> circle area "
            "grows with the messages received. <b>Colour:</b> the suggested action; a dashed "
            "outline marks a bulk or list sender. Hover over or tab to a circle for the "
            "address and the reasons.</figcaption></figure>"
        )
        table = (
            _suggestion_rows(sugg, index, names, with_account)
            if sugg
            else '<p class="empty" id="no-suggestions">No suggestions: nobody to decline, '
            "walk away from or unsubscribe from.</p>"
        )
        everyone = (
            f"<section><details><summary>All {_int(len(people))} contacts</summary>"
            + _contact_rows(people, with_account)
            + "</details></section>"
        )
    else:
        plot = (
            '<section class="plot-figure"><p class="empty" id="no-contacts">No contacts to '
            "show. Run <code>inbox-filter scan</code> first, or check the account.</p></section>"
        )
        table = (
            _suggestion_rows(sugg, index, names, with_account)
            if sugg
            else '<p class="empty" id="no-suggestions">No suggestions.</p>'
        )
        everyone = ""

    data_json = _json_for_script([_tip_data(c) for c in people])
    csp = (
        f"default-src 'none'; style-src {_csp_hash(_CSS)}; script-src {_csp_hash(_JS)}; "
        "base-uri 'none'; form-action 'none'"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="generator" content="inbox-filter">'
        f"<title>{_e(title)} – {_e(account)}</title>"
        f"<style>{_CSS}</style></head>\n<body><main>"
        f"<header><h1>{_e(title)}</h1>"
        f'<p class="meta">account <b class="account">{_e(account)}</b> · generated '
        f'<time class="generated">{_e(generated_at)}</time></p></header>'
        f'<section aria-labelledby="totals-h"><h2 id="totals-h">Totals</h2>'
        f"{_totals(people, sugg)}</section>"
        f"{plot}"
        f'<section aria-labelledby="sugg-h"><h2 id="sugg-h">Suggestions</h2>{table}</section>'
        f"{everyone}"
        "<footer>Made by inbox-filter. Nothing in this file is loaded from the network; "
        "names, addresses and reasons come from your mail and are shown as plain text."
        "</footer></main>"
        '<div id="tooltip" role="tooltip" hidden></div>'
        f'<script type="application/json" id="report-data">{data_json}</script>'
        f"<script>{_JS}</script>\n</body></html>\n"
    )
