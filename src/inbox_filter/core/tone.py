"""Tone of one message: politeness, hostility, pressure and cold outreach.

Pure functions over text. ``score_text`` expects the sender's *own* new words --
run :func:`new_text` (and :func:`html_to_text` for HTML-only mail) first, so that a
polite reply quoting an angry message is not scored as angry.

* politeness: probability from the learned model in :mod:`.politeness`.
* hostility, pressure, cold_outreach: hand-written cue tables below (regexes compiled
  once). Each cue has a weight; a score is ``1 - exp(-sum of weights)``, so one mild
  cue stays low, a strong cue or several together approach 1. Every cue that fired
  is returned as evidence, so a decision can say *why* ("'need this today'").
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser

from . import politeness

__all__ = ["ToneScores", "html_to_text", "new_text", "score_text"]

_MAX_EVIDENCE = 6  # per score: enough to explain, short enough for a table cell
_MAX_SAME_CUE = 2  # a phrase repeated ten times is not ten times the evidence


@dataclass(frozen=True, slots=True)
class ToneScores:
    """Tone of one text; every score is in 0..1, higher = more of that quality."""

    politeness: float
    hostility: float
    pressure: float
    cold_outreach: float
    evidence: dict[str, tuple[str, ...]]

    def to_json(self) -> dict[str, object]:
        """Plain JSON-ready dict, floats rounded to 3 places."""
        return {
            "politeness": round(self.politeness, 3),
            "hostility": round(self.hostility, 3),
            "pressure": round(self.pressure, 3),
            "cold_outreach": round(self.cold_outreach, 3),
            "evidence": {k: list(v) for k, v in self.evidence.items()},
        }


# --- cue tables ---------------------------------------------------------------------
# Patterns are matched case-insensitively on text whose quotes are straightened and
# whitespace collapsed to single spaces, so "Why  haven’t\nyou" matches "why haven't
# you". Word boundaries are explicit: "\b" at both ends is added by _compile().


@dataclass(frozen=True, slots=True)
class _Cue:
    rx: re.Pattern[str]
    weight: float


def _compile(table: Iterable[tuple[str, float]]) -> tuple[_Cue, ...]:
    cues = [_Cue(re.compile(r"\b(?:" + src + r")\b", re.IGNORECASE), w) for src, w in table]
    # Strongest first: _match() lets the first cue claim a stretch of text.
    return tuple(sorted(cues, key=lambda c: -c.weight))


_YOU = r"(?:you|u|ya)"
_YOURE = r"(?:you're|you are|your|ur|u r|you r)"

_HOSTILITY = _compile(
    [
        # Insults. Weighted high: one is enough to call a message hostile.
        (
            r"idiots?|idiotic|morons?|moronic|imbeciles?|cretins?|dimwits?|halfwits?|nitwits?|"
            r"dumbass|jackass|asshole|bastards?|bitch|dickhead|prick|scumbag|douche\w*|"
            r"retard(?:ed)?|loser|clowns",
            1.4,
        ),
        (
            r"(?:" + _YOURE + r"|are|so|such|totally|completely|utterly|bunch of|how|"
            r"absolutely) (?:an? )?(?:stupid|dumb|incompetent|useless|pathetic|worthless|"
            r"clueless|ignorant|lazy|brainless|hopeless|disgrace|joke|fool|liar|fraud|"
            r"amateurs?|embarrassment|incapable)",
            1.3,
        ),
        (
            r"incompetent|incompetence|pathetic|worthless|useless|clueless|brainless|"
            r"stupidity|stupid|dumb|disgraceful|disgusting|ridiculous|absurd|laughable|"
            r"moronic|garbage|rubbish|bullshit|crap|crappy|lousy|shoddy|sloppy|asinine",
            0.55,
        ),
        # Swearing, and swearing *at* someone.
        (r"fuck\w*|f\*+k\w*|shit\w*|damn(?:ed|it)?|goddamn\w*|wtf|stfu|piss(?:ed)? off", 0.7),
        (
            r"(?:fuck|screw|damn) (?:you|u|off|yourself|this)|go to hell|shut up|get lost|"
            r"drop dead|bite me|kiss my|up yours|go away",
            1.4,
        ),
        # Contempt.
        (
            r"(?:are|do|did|can|could) " + _YOU + r" even|can't you read|cannot you read|"
            r"can " + _YOU + r" not read|learn to read|how hard (?:is|can) it|"
            r"how many times do i (?:have|need) to|what(?: the hell|'s| is) wrong with "
            + _YOU
            + r"|who do "
            + _YOU
            + r" think "
            + _YOU
            + r" are|you have no idea|"
            r"you clearly (?:don't|do not|have no)|get a clue|grow up|give me a break|"
            r"are you kidding me|are you serious|unbelievable|what a joke|waste of (?:my )?time|"
            r"not my problem|do your (?:job|homework)|use your (?:brain|head)|"
            r"(?:even )?a child could|thanks for nothing|nice try|pull yourself together",
            0.9,
        ),
        # Blame.
        (
            r"(?:it's|it is|this is|that's|all) (?:entirely |all |totally )?your fault|"
            r"your fault|you people|you guys always|you always|you never|"
            r"you (?:screwed|messed|fucked) (?:up|this up|it up|everything up)|"
            r"you ruined|you've ruined|because of you|you (?:failed|blew it|dropped the ball)|"
            r"this is on you|blame (?:is on )?you|you're to blame|you are to blame|"
            r"shame on you|you should be ashamed|how dare you|you (?:lied|cheated)",
            0.8,
        ),
        # Threats.
        (
            r"or else|you'll regret|you will regret|you'll be sorry|you will be sorry|"
            r"watch your back|watch yourself|last warning|final warning|"
            r"consider yourself warned|see you in court|my lawyers?|legal action|"
            r"i (?:will|'ll|am going to|'m going to) (?:sue|destroy|ruin|expose|report) you|"
            r"you(?:'ll| will) pay for",
            1.2,
        ),
        (r"\bhate (?:you|this|dealing)|sick (?:and tired )?of (?:you|this|your)", 0.9),
    ]
)

_PRESSURE = _compile(
    [
        # Urgency.
        (
            r"asap|a\.s\.a\.p|urgent|urgently|immediately|right away|right now|at once|"
            r"without (?:further )?delay|time[- ]sensitive|top priority|high priority|"
            r"emergency|no later than|this instant",
            0.7,
        ),
        (
            r"as soon as (?:possible|you can)|at your earliest (?:convenience)?|promptly|"
            r"quickly|hurry",
            0.35,
        ),
        # Deadlines. "by Friday" alone is ordinary planning: keep the weight low.
        (
            r"(?:by|before|until) (?:the )?(?:end of (?:the )?(?:day|business|week)|eod|cob|"
            r"close of business|tonight|noon|lunch|tomorrow(?: morning)?|today|this afternoon|"
            r"this evening)|\beod\b|\bcob\b|end of (?:the )?day|close of business",
            0.6,
        ),
        (
            r"(?:by|before|until|no later than) (?:monday|tuesday|wednesday|thursday|friday|"
            r"saturday|sunday|next week|the \d+(?:st|nd|rd|th)?|\d{1,2}(?::\d\d)? ?(?:am|pm)|"
            r"\d{1,2}/\d{1,2})",
            0.3,
        ),
        (
            r"deadlines?|overdue|past due|due (?:today|tomorrow|now|immediately)|"
            r"within (?:the next )?(?:\d+|one|two|24|48) hours?|in the next (?:hour|\d+ minutes)",
            0.5,
        ),
        (r"today|tonight", 0.15),
        # Demands.
        (
            r"(?:i|we) (?:need|want|must have|expect) (?:this|that|it|these|those|them|"
            r"an answer|a response|a reply|your (?:answer|response|reply|decision|approval|"
            r"feedback|signature)|you to)(?: (?:done|back|now|today|tonight|asap|immediately|"
            r"by))?",
            0.6,
        ),
        (
            r"(?:i|we) expect|you need to|you must|you have to|make sure you|i insist|"
            r"i demand|get (?:this|it) done|do it now|no excuses",
            0.45,
        ),
        # Unanswered follow-ups and nagging.
        (
            r"just following up|following up (?:again|on (?:my|our|this|the|below))|"
            r"follow(?:ing)?[- ]up (?:again|once more)|just checking in|checking in again|"
            r"circling back|circle back|bumping (?:this|up|it)|bump(?:ing)? this|"
            r"touching base again|resending|re-sending|sending (?:this )?again|"
            r"writing (?:to you )?again|asking again|reminding you again|gentle reminder|"
            r"friendly reminder|quick reminder|another reminder|in case you missed",
            0.6,
        ),
        (
            r"(?:as )?per my (?:last|previous|earlier|prior) (?:e-?mails?|messages?|notes?|"
            r"voicemails?|request)|as i (?:said|mentioned|stated|explained|wrote)(?: (?:before|"
            r"earlier|previously|already|twice))?|as (?:previously|already) (?:mentioned|stated|"
            r"discussed|requested)|i (?:have|'ve) (?:already )?(?:asked|emailed|e-mailed|written|"
            r"called|reminded)(?: you)? (?:several|multiple|many|three|four|two|a few|\d+|"
            r"numerous) times|(?:second|2nd|third|3rd|fourth|4th|fifth|final|last) "
            r"(?:time|reminder|request|attempt|notice|follow[- ]?up|e-?mail)",
            0.8,
        ),
        (
            r"still waiting|still haven't (?:heard|received|gotten|seen)|still have not "
            r"(?:heard|received)|(?:haven't|have not|never|didn't|did not) (?:heard|hear) back|"
            r"any (?:update|news|progress)s?(?: on (?:this|that))?\?|did you (?:get|see|receive|"
            r"read) my|waiting (?:for|on) (?:you|your)|been waiting|keep(?:ing)? me waiting|"
            r"no (?:response|reply|answer) (?:yet|from you)",
            0.7,
        ),
        (
            r"why (?:haven't|hasn't|didn't|don't|won't|aren't|isn't|wasn't|have you not|"
            r"did you not|is it taking|is this taking|is this still|is it still)|"
            r"what's taking (?:so long|you)|what is taking (?:so long|you)|how long (?:does|"
            r"will|is) (?:it|this)|when (?:will|can) (?:i|we) (?:expect|get|hear|see)|"
            r"when are you going to",
            0.8,
        ),
        # Guilt.
        (
            r"i (?:thought|hoped) i could (?:count|rely|depend) on you|i was counting on you|"
            r"(?:i'm|i am|we're|we are) (?:very |really |so |quite )?(?:disappointed|let down)|"
            r"you promised|you said you would|you (?:told|assured) me|after (?:all|everything) "
            r"(?:i|we) (?:have|'ve) done|you owe (?:me|us)|the least you (?:could|can) do|"
            r"let (?:me|us) down|i expected (?:better|more)|i can't believe you",
            0.8,
        ),
        # Escalation threats.
        (
            r"don't make me|do not make me|(?:i|we) (?:will|'ll) (?:have to )?escalate|"
            r"escalat(?:e|ing) (?:this|to)|(?:to|with|tell|inform|involve) your "
            r"(?:manager|boss|supervisor)|or (?:i|we) (?:will|'ll)|otherwise (?:i|we) (?:will|'ll)|"
            r"final notice|last chance|or else",
            0.8,
        ),
    ]
)

_COLD = _compile(
    [
        # First contact.
        (
            r"i came across your|came across your (?:profile|website|company|work|post|article|"
            r"name)|(?:i )?found your (?:profile|name|details|e-?mail|contact|website|company)|"
            r"stumbled (?:upon|across) your|saw your (?:profile|post|website|company) on|"
            r"noticed (?:that )?(?:your|you) (?:company|team|website|profile|are hiring|recently)|"
            r"i(?:'m| am) reaching out|reaching out (?:to|because|regarding|about)|"
            r"(?:i )?wanted to reach out|allow me to introduce|let me introduce myself|"
            r"my name is \w+ (?:and|from|with)|i(?:'m| am) \w+ from|we haven't met|"
            r"we have not met",
            0.7,
        ),
        (
            r"hope (?:this|my) (?:e-?mail|message|note) finds you well|hope you(?:'re| are) "
            r"(?:well|doing well)|hope all is well",
            0.2,
        ),
        # Meeting asks.
        (
            r"(?:a |just |only )?(?:10|15|20|30|ten|fifteen|twenty|thirty)[- ]?(?:minutes?|mins?)"
            r"(?: of your time| call| chat)?",
            0.6,
        ),
        (
            r"quick (?:call|chat|question|demo|meeting|intro|introduction|sync|zoom|conversation)|"
            r"(?:hop|jump|get) on a (?:quick )?(?:call|zoom|chat)|(?:book|schedule|set up|grab) "
            r"(?:a|some) (?:time|call|meeting|demo|slot|chat)|calendly\.com|"
            r"(?:worth|open to) (?:a|an) (?:quick )?(?:conversation|chat|call|intro)|"
            r"would you be open to|are you (?:the right|the best) person|who is the (?:right|best) "
            r"person|point me (?:to|in) the right|(?:what|which) (?:day|time) works (?:best )?"
            r"for you|does (?:\w+ )?(?:next week|tuesday|wednesday|thursday) work",
            0.5,
        ),
        # Sales pitch.
        (
            r"(?:i|we) help (?:companies|businesses|teams|brands|startups|founders|agencies|"
            r"organizations|organisations|executives|leaders|clients|firms|people like you)|"
            r"our (?:platform|solution|product|software|tool|service|agency|team) "
            r"(?:helps|can help|enables|allows|lets)|(?:increase|boost|grow|double|triple) your "
            r"(?:revenue|sales|leads|roi|conversions?|pipeline|traffic|business)|lead generation|"
            r"free (?:demo|trial|consultation|audit|assessment)|case stud(?:y|ies)|"
            r"partnership opportunit(?:y|ies)|exclusive offer|limited time|special offer|"
            r"(?:happy|glad) to (?:send|share) (?:over )?(?:more info|a deck|some info)|"
            r"no obligation|risk[- ]free|guaranteed",
            0.5,
        ),
        # Sequence follow-ups typical of automated outreach.
        (
            r"top of your inbox|(?:did|have) you (?:get|had|have) a chance to (?:look|review|read|"
            r"see|check)|if (?:this|it) (?:isn't|is not) (?:a priority|relevant|the right time|"
            r"a fit)|not (?:the )?right (?:person|time)|if you(?:'re| are) not interested",
            0.5,
        ),
        # Unsubscribe and merge-field leftovers in mail that looks personal.
        (
            r"unsubscribe|opt[- ]out|reply (?:with )?['\"]?(?:stop|no|remove|unsubscribe)['\"]?|"
            r"(?:don't|do not|rather not|prefer not to) (?:want to )?hear from (?:me|us)|"
            r"remove you from (?:my|our) list",
            0.6,
        ),
        (
            r"\{\{?\s*(?:first[_ ]?name|firstname|fname|name|company(?:[_ ]?name)?)\s*\}?\}|"
            r"\[(?:first ?name|name|company(?: ?name)?)\]|%first_?name%|\*\|fname\|\*",
            1.5,
        ),
    ]
)

# Shouting: runs of capitalised words; a single "ASAP" or "FYI" is not shouting.
_CAPS_WORD_RE = re.compile(r"\b[A-Z][A-Z']{2,}\b")
_WORD_RE = re.compile(r"\b[A-Za-z][A-Za-z']{2,}\b")
_CAPS_RUN_RE = re.compile(r"\b[A-Z][A-Z']+(?:[ ,]+[A-Z][A-Z']+){2,}\b")
_BANG_RE = re.compile(r"[!?]*![!?]*!+[!?]*|\?!|!\?")

_QUOTE_TABLE = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_WS_RE = re.compile(r"\s+")


def _flat(text: str) -> str:
    """Straight quotes, single spaces: the form the cue regexes expect."""
    return _WS_RE.sub(" ", text.translate(_QUOTE_TABLE)).strip()


def _calibrate(total: float) -> float:
    # Saturating: one mild cue (0.3) -> 0.26, one strong cue (1.2) -> 0.70, two -> 0.91.
    return 1.0 - math.exp(-total)


def _match(cues: Sequence[_Cue], text: str) -> tuple[float, list[str]]:
    """Sum of cue weights and the phrases that fired.

    Strongest cues are tried first (the tables are sorted by weight) and a stretch of
    text counts once, so "you're stupid" is not also scored as "stupid". A phrase
    repeated many times counts at most twice.
    """
    total = 0.0
    taken: list[tuple[int, int]] = []
    seen: dict[str, int] = {}
    evidence: list[str] = []
    for cue in cues:
        for m in cue.rx.finditer(text):
            start, end = m.span()
            if any(start < e and s < end for s, e in taken):
                continue
            phrase = m.group(0).strip()
            key = phrase.lower()
            n = seen.get(key, 0)
            if n >= _MAX_SAME_CUE:
                continue
            seen[key] = n + 1
            taken.append((start, end))
            total += cue.weight
            if n == 0:
                evidence.append(f"'{phrase}'")
    return total, evidence


def _shouting(text: str) -> tuple[float, list[str]]:
    """Weight and evidence for all-caps runs and stacked exclamation marks."""
    total = 0.0
    evidence: list[str] = []
    runs = [m.group(0) for m in _CAPS_RUN_RE.finditer(text)]
    words = _WORD_RE.findall(text)
    caps = _CAPS_WORD_RE.findall(text)
    if runs:
        total += 0.5 * min(len(runs), 2)
        evidence.append(f"shouting: '{runs[0][:40]}'")
    elif len(words) >= 6 and len(caps) / len(words) > 0.6:
        total += 0.8
        evidence.append("shouting: mostly capital letters")
    bangs = _BANG_RE.findall(text)
    if bangs:
        total += 0.3 * min(len(bangs), 3)
        evidence.append(f"'{bangs[0]}' x{len(bangs)}" if len(bangs) > 1 else f"'{bangs[0]}'")
    return total, evidence


def _politeness_evidence(pred: politeness.Prediction, text: str) -> tuple[str, ...]:
    """Strategy names with the phrase that triggered them, strongest first."""
    norm = politeness.normalize(text)
    found = politeness.strategies(norm)
    weights = politeness.load_model().weights
    ranked = sorted(found, key=lambda s: -abs(weights.get("s:" + s, 0.0)))
    out: list[str] = []
    for name in ranked:
        w = weights.get("s:" + name, 0.0)
        if abs(w) < 0.05 or name in _NOISY_STRATEGIES:
            continue
        label = politeness.STRATEGY_LABELS.get(name, name)
        sign = "+" if w > 0 else "-"
        out.append(f"{sign} {label}: '{found[name][0]}'")
        if len(out) >= _MAX_EVIDENCE:
            break
    if not out:
        # No strategy: explain with the words the model leaned on.
        for feat, contrib in pred.contributions[:3]:
            sign = "+" if contrib > 0 else "-"
            out.append(f"{sign} word: '{feat.split(':', 1)[1]}'")
    return tuple(out)


# Pronoun presence and punctuation fire on almost every text: true but no explanation.
_NOISY_STRATEGIES = frozenset(
    {
        "first_person",
        "second_person",
        "first_person_plural",
        "question_mark",
        "positive",
        "negative",
    }
)


def score_text(text: str, subject: str = "") -> ToneScores:
    """Score the sender's own words (*text*, already through :func:`new_text`).

    *subject* adds pressure and cold-outreach cues ("URGENT", "Quick question") but
    is not fed to the politeness model, which was trained on message bodies.
    """
    flat = _flat(text)
    flat_subject = _flat(subject)
    both = f"{flat_subject} . {flat}" if flat_subject else flat

    # The model sees line breaks (sentence starts matter to it), so not the flat text.
    pred = politeness.load_model().predict(text, top=3)

    h_total, h_ev = _match(_HOSTILITY, flat)
    s_total, s_ev = _shouting(flat)
    h_total += s_total
    h_ev += s_ev
    p_total, p_ev = _match(_PRESSURE, both)
    c_total, c_ev = _match(_COLD, both)

    return ToneScores(
        politeness=pred.p_polite,
        hostility=_calibrate(h_total),
        pressure=_calibrate(p_total),
        cold_outreach=_calibrate(c_total),
        evidence={
            "politeness": _politeness_evidence(pred, text),
            "hostility": tuple(h_ev[:_MAX_EVIDENCE]),
            "pressure": tuple(p_ev[:_MAX_EVIDENCE]),
            "cold_outreach": tuple(c_ev[:_MAX_EVIDENCE]),
        },
    )


# --- new text: quotes, forwards and signatures -------------------------------------

_QUOTED_RE = re.compile(r"^\s*(?:>|\|(?=\s))")
# Separators after which everything is someone else's message.
_CUT_RES = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^\s*-{2,}\s*original message\s*-{2,}\s*$",  # Outlook, Thunderbird
        r"^\s*-{2,}\s*(?:original|forwarded) message\s*-*\s*$",
        r"^\s*-{2,}\s*forwarded message\b",  # Gmail "---------- Forwarded message ---------"
        r"^\s*-{2,}\s*forwarded by\b",  # Lotus Notes (Enron): "----- Forwarded by X on ..."
        r"^\s*begin forwarded message:?\s*$",  # Apple Mail
        r"^\s*(?:sent from my|sent via|sent using|sent from (?:mail|outlook|yahoo|samsung)|"
        r"get outlook for|sent from the .{1,30} app)\b.{0,60}$",  # mobile footers
        r"^\s*-- ?$",  # RFC 3676 section 4.3 signature separator ("-- ")
        r"^\s*_{20,}\s*$",  # mailing-list footer / Outlook separator
    )
)
# "On Mon, Jan 1, 2024 at 10:00 AM X <x@y> wrote:" (and common translations); may wrap.
_ATTRIBUTION_RE = re.compile(
    r"^\s*(?:on|am|le|el|il|op|em)\s.{0,300}(?:wrote|schrieb|a écrit|escribió|ha scritto|"
    r"schreef|escreveu)\s*:\s*$",
    re.IGNORECASE | re.DOTALL,
)
_WROTE_RE = re.compile(r"^.{0,200}\b(?:wrote|writes)\s*:\s*$", re.IGNORECASE)
_HEADER_RE = re.compile(r"^\s*\*?(from|to|cc|bcc|sent|date|subject)\*?\s*:", re.IGNORECASE)
_DATE_LINE_RE = re.compile(r"\d{1,2}/\d{1,2}/\d{2,4}\s+\d{1,2}:\d\d|\d{1,2}:\d\d\s*[ap]m", re.I)
_SIGNOFF_RE = re.compile(
    r"^\s*(?:thanks|thank you|many thanks|thanks again|thanks so much|thanks in advance|"
    r"best|best regards|kind regards|warm regards|warmest regards|regards|cheers|"
    r"sincerely|yours(?: truly| sincerely)?|all the best|talk soon|respectfully|cordially|"
    r"take care|with thanks|thx|rgds|br|best wishes|love|xo+)\s*[,.!-]*\s*$",
    re.IGNORECASE,
)
_CONTACT_RE = re.compile(
    r"(?:\+?\d[\d\s().-]{7,}\d)|@|https?://|www\.|\b(?:tel|phone|mobile|cell|fax|office|"
    r"direct|linkedin)\b",
    re.IGNORECASE,
)


def _header_block_at(lines: Sequence[str], i: int) -> bool:
    """True if an e-mail header block (From/To/Sent/Subject...) starts at line *i*."""
    m = _HEADER_RE.match(lines[i])
    if not m:
        return False
    names = {m.group(1).lower()}
    # Headers may wrap onto continuation lines (long To: lists), so look a bit ahead.
    for line in lines[i + 1 : i + 12]:
        h = _HEADER_RE.match(line)
        if h:
            names.add(h.group(1).lower())
    # "From:" and "To:" alone could be prose; two distinct headers incl. a key one is not.
    return (
        len(names) >= 2
        and bool(names & {"from", "to", "sent", "date"})
        and bool(names & {"subject", "sent", "date", "to", "cc"})
    )


def _attribution_at(lines: Sequence[str], i: int) -> int:
    """Number of lines (1-3) of a "... wrote:" attribution starting at *i*, else 0."""
    for n in (1, 2, 3):
        chunk = " ".join(s.strip() for s in lines[i : i + n])
        if _ATTRIBUTION_RE.match(chunk) or (n == 1 and _WROTE_RE.match(chunk)):
            return n
        if len(chunk) > 300:
            break
    return 0


def _cut_index(lines: Sequence[str]) -> tuple[int, set[int]]:
    """Index where the sender's own text ends, and attribution lines to drop before it."""
    drop: set[int] = set()
    i = 0
    while i < len(lines):
        line = lines[i]
        if _QUOTED_RE.match(line):
            i += 1
            continue
        if any(rx.match(line) for rx in _CUT_RES):
            return i, drop
        n = _attribution_at(lines, i)
        if n:
            nxt = next((s for s in lines[i + n :] if s.strip()), "")
            if _QUOTED_RE.match(nxt):
                # Attribution of a ">" block: drop it, keep any inline answers below.
                drop.update(range(i, i + n))
                i += n
                continue
            return i, drop  # the quoted message follows unmarked
        if _header_block_at(lines, i):
            return _attribution_start(lines, i), drop
        i += 1
    return len(lines), drop


def _attribution_start(lines: Sequence[str], i: int) -> int:
    """Move a header-block cut up over a Lotus Notes "Name / date" preamble."""
    j = i
    # Skip blank lines right above the header.
    while j > 0 and not lines[j - 1].strip():
        j -= 1
    if j > 0 and _DATE_LINE_RE.search(lines[j - 1]) and len(lines[j - 1].strip()) < 100:
        j -= 1
        # The sender's name sits just above the date, without a blank line between.
        if j > 0 and lines[j - 1].strip() and len(lines[j - 1].strip()) < 80:
            j -= 1
        return j
    # An Outlook separator line ("____") directly above the header belongs to it.
    if j > 0 and re.fullmatch(r"\s*[_-]{10,}\s*", lines[j - 1]):
        return j - 1
    return i


def _strip_signature(lines: list[str]) -> list[str]:
    """Drop a trailing name/contact block after a sign-off, or a contact-only block."""
    body = [ln.rstrip() for ln in lines]
    while body and not body[-1].strip():
        body.pop()
    # A sign-off ("Best regards,") followed by a short block: keep the sign-off itself
    # (it is the sender's words and carries tone), drop the name and contact lines.
    for k in range(len(body) - 1, max(-1, len(body) - 9), -1):
        if _SIGNOFF_RE.match(body[k]):
            tail = [t for t in body[k + 1 :] if t.strip()]
            if len(tail) <= 7 and all(len(t.strip()) <= 80 for t in tail):
                return body[: k + 1]
            break
    # No sign-off: a final paragraph of short lines with phone/e-mail/URL is a signature.
    start = len(body)
    while start > 0 and body[start - 1].strip():
        start -= 1
    block = body[start:]
    if (
        start > 0
        and 2 <= len(block) <= 8
        and all(len(t.strip()) <= 80 for t in block)
        and sum(bool(_CONTACT_RE.search(t)) for t in block) >= 1
        and not any(t.rstrip().endswith(("?", ".")) and len(t) > 40 for t in block)
    ):
        return body[:start]
    return body


def _tidy(lines: Iterable[str]) -> str:
    out: list[str] = []
    blank = 0
    for line in lines:
        line = line.rstrip()
        if line.strip():
            blank = 0
            out.append(line)
        elif out:
            blank += 1
            if blank == 1:
                out.append("")
    return "\n".join(out).strip()


def new_text(body: str) -> str:
    """What the sender newly wrote: *body* without quotes, forwards and signature.

    Handles ``>`` quoting (keeping inline answers between quoted lines), Gmail/Apple
    "On ... wrote:" attributions, Outlook "-----Original Message-----" and "From: /
    Sent: / To: / Subject:" blocks, forwards (Gmail, Apple, Lotus Notes "----- Forwarded
    by ... -----"), "-- " signatures, sign-off + contact blocks and mobile footers.
    Conservative: if stripping would leave nothing although the body has unquoted text
    (say a bare forward), the unquoted text is returned instead of an empty string.
    """
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut, drop = _cut_index(lines)
    own = [ln for i, ln in enumerate(lines[:cut]) if i not in drop and not _QUOTED_RE.match(ln)]
    result = _tidy(_strip_signature(own))
    if result:
        return result
    result = _tidy(own)
    if result:
        return result
    # Nothing before the first separator: fall back to every unquoted, non-header line.
    return _tidy(
        ln
        for ln in lines
        if not _QUOTED_RE.match(ln)
        and not _HEADER_RE.match(ln)
        and not any(rx.match(ln) for rx in _CUT_RES)
    )


# --- HTML ----------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "tr",
        "ul",
    }
)
_SKIP_TAGS = frozenset({"script", "style", "head", "title", "noscript", "template", "svg"})


class _TextExtractor(HTMLParser):
    """Collects text; block tags become line breaks, <blockquote> lines get "> "."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._line: list[str] = []
        self._skip = 0
        self._quote = 0

    def _flush(self, blank: bool = False) -> None:
        """End the current line; *blank* also adds an empty line (paragraph, <br><br>)."""
        text = _INLINE_WS_RE.sub(" ", "".join(self._line)).strip()
        self._line = []
        if text:
            # Quoted HTML replies (Gmail, Apple Mail) live in <blockquote>: mark them
            # the plain-text way so new_text() strips them like any other quote.
            self.lines.append("> " * self._quote + text)
        elif blank:
            self.lines.append("")
        if blank and text:
            self.lines.append("")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag == "br":
            self._flush(blank=not "".join(self._line).strip())
        elif tag in _BLOCK_TAGS:
            self._flush(blank=tag in _PARAGRAPH_TAGS)
            if tag == "blockquote":
                self._quote += 1
        elif tag in ("td", "th"):
            self._line.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in _SKIP_TAGS:  # <script/> opens nothing
            self._skip = max(0, self._skip - 1)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS and tag != "br":
            self._flush(blank=tag in _PARAGRAPH_TAGS)
            if tag == "blockquote":
                self._quote = max(0, self._quote - 1)

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._line.append(data)

    def text(self) -> str:
        self._flush()
        return _tidy(self.lines)


_PARAGRAPH_TAGS = frozenset({"p", "blockquote", "table", "ul", "ol", "pre", "hr", "h1", "h2", "h3"})
_INLINE_WS_RE = re.compile(r"[ \t\r\n\f\v\u00a0]+")


def html_to_text(html: str) -> str:
    """Readable text of an HTML mail body (stdlib only; never raises on bad HTML)."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return parser.text()
