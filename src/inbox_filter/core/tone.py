"""Tone of one message: politeness, hostility, pressure and cold outreach.

Pure functions over text. ``score_text`` expects the sender's *own* new words --
run :func:`new_text` (and :func:`html_to_text` for HTML-only mail) first, so that a
polite reply quoting an angry message is not scored as angry.

* politeness: P(polite) from the learned model in :mod:`.politeness` (trained on
  short requests; long mail tends to get more extreme probabilities).
* hostility, pressure, cold_outreach: hand-written cue tables below, compiled once
  into token tries (:mod:`.phrases`). Each cue has a weight; a score is
  ``1 - exp(-sum of weights)``, so one mild cue stays low (0.3 -> 0.26) and a strong
  cue or several together approach 1. Every cue that fired is returned as evidence,
  so a decision can say *why* ("'need this today'", "'why haven't you'").
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser

from . import politeness
from .phrases import PhraseTable, candidate_starts, tokenize

__all__ = ["ToneScores", "html_to_text", "new_text", "score_text"]

_MAX_EVIDENCE = 6  # per score: enough to explain, short enough for a table cell
_MAX_SAME_CUE = 2  # a phrase repeated ten times is not ten times the evidence


@dataclass(frozen=True, slots=True)
class ToneScores:
    """Tone of one text; every score is in 0..1, higher = more of that quality.

    ``evidence`` has one key per score, each a short tuple of human-readable reasons:
    quoted phrases as found ("'per my last email'") or labelled ones
    ("gratitude: 'thanks'", "shouting: 'DO IT NOW'", "template field: '{first_name}'").
    """

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


# --- cue tables --------------------------------------------------------------------
# Pattern language: see core/phrases.py -- "(a|b)" alternatives, "(...)?" optional,
# "*" any word. Matched on lower-cased tokens, so case and punctuation do not matter
# ("Why haven’t you", "why havent u"). At each position the longest phrase wins and
# a stretch of text counts once. Weight 0 entries are exceptions that swallow an
# innocent phrase ("you never know") before a shorter cue ("you never") can fire.

_Table = PhraseTable[float]


def _table(rows: Iterable[tuple[float, str]]) -> _Table:
    entries: list[tuple[str, float]] = []
    for weight, patterns in rows:
        entries.extend((p.strip(), weight) for p in patterns.split(";") if p.strip())
    return PhraseTable(entries)


_YOU = "(you|u|ya)"
_YOU_ARE = "(you're|you are|ur|u r|you r|your)"
_WEEKDAY = "(monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|wed|thu|fri)"
_CLOCK = "(" + "|".join(f"{h}{ap}" for h in range(1, 13) for ap in ("am", "pm")) + ")"

_HOSTILITY = _table(
    [
        (0.0, "you never know; thank you; thanks; no problem; not a problem; no worries"),
        # Insults: one is enough to call a message hostile.
        (
            1.4,
            "(idiot|idiots|idiotic|moron|morons|moronic|imbecile|imbeciles|cretin|cretins|"
            "dimwit|halfwit|nitwit|dumbass|jackass|asshole|assholes|bastard|bastards|bitch|"
            "dickhead|prick|scumbag|douchebag|retard|retarded|clowns|buffoon|"
            "buffoons)",
        ),
        (0.0, "winners and losers; losers and winners"),
        (
            1.3,
            _YOU_ARE + " (a|an|so|such a|such an|totally|completely|utterly|absolutely|"
            "really|just|the most)? (stupid|dumb|incompetent|useless|pathetic|worthless|"
            "clueless|ignorant|lazy|brainless|hopeless|disgrace|joke|fool|liar|fraud|amateur|"
            "amateurs|embarrassment|incapable|unprofessional|moron|idiot|failure|loser);"
            "you (loser|losers|idiot|idiots|moron|morons|clown|clowns|fool|fools);"
            "bunch of (idiots|morons|amateurs|clowns|incompetents|losers|liars);"
            "how (stupid|dumb|incompetent|pathetic|useless|lazy) (are|is|can) (you|u)",
        ),
        (
            0.55,
            "(incompetent|incompetence|pathetic|worthless|useless|clueless|brainless|"
            "stupidity|stupid|dumb|disgraceful|disgusting|ridiculous|absurd|laughable|"
            "garbage|rubbish|lousy|shoddy|sloppy|asinine|idiocy|outrageous|"
            "appalling|unprofessional)",
        ),
        (0.45, "unacceptable; unbelievable; what were you thinking; crappy"),
        # Swearing, and swearing *at* someone.
        # Swearing that is not aimed at anyone is common in casual mail: mild.
        (0.45, "(fuck|fucking|fucked|fucker|shit|shitty|bullshit|wtf|stfu)"),
        (0.3, "(damn|damned|dammit|damnit|goddamn|goddamned|crap|pissed)"),
        (
            1.4,
            "(fuck|screw|damn) (you|u|off|yourself|this); go to hell; shut up; get lost; "
            "drop dead; bite me; kiss my; up yours; piss off; back off",
        ),
        # Contempt.
        (
            0.9,
            "(are|do|did|can|could) " + _YOU + " even; can't you read; can you not read; "
            "learn to read; how hard (is|can) it (be)?; how many times do i (have|need) to; "
            "(what's|what is|what the hell is) wrong with " + _YOU + "; who do you think you are; "
            "you have no idea; you clearly (don't|do not|have no); get a clue; grow up; "
            "give me a break; are you kidding me; are you serious; what a (joke|disgrace); "
            "waste of (my)? time; not my problem; do your (job|homework); "
            "use your (brain|head); a child could; thanks for nothing; nice try; "
            "pull yourself together; are you stupid; are you blind",
        ),
        # Blame.
        (
            0.8,
            "(it's|it is|this is|that's|all) (entirely|all|totally)? your fault; your fault; "
            "you people; you guys always; you (screwed|messed|fucked) (up|this up|it up|"
            "everything up); you (ruined|failed|lied|cheated|blew it|dropped the ball); "
            "you've ruined; because of you; this is on you; blame you; "
            "(you're|you are) to blame; shame on you; you should be ashamed; how dare you",
        ),
        (0.4, "you always; you never"),
        # Threats.
        (
            1.2,
            "or else; (you'll|you will) (regret|be sorry); watch your back; "
            "(last|final) warning; consider yourself warned; see you in court; "
            "(i will|we will|i'll|we'll|i am going to|i'm going to|we're going to) "
            "(sue|destroy|ruin|expose) you; (you'll|you will) pay for",
        ),
        (0.7, "my (lawyer|lawyers|attorney); legal action; report you"),
        (
            0.9,
            "(i)? hate (you|this|dealing|working); sick (and tired)? of (you|this|your); "
            "fed up with; had enough of (you|your|this)",
        ),
    ]
)

_PRESSURE = _table(
    [
        (0.0, "last time we; right now we; why don't we; the urgent care"),
        # Urgency.
        (
            0.7,
            "asap; a . s . a . p; urgent; urgently; urgency; right away; at once; "
            "without (further)? delay; time sensitive; top priority; high priority; "
            "emergency; no later than; this instant",
        ),
        (0.5, "immediately; immediate (attention|action|response|reply)"),
        (
            0.35,
            "as soon as (possible|you can); at your earliest convenience; promptly; hurry; "
            "right now; quickly as possible",
        ),
        # Deadlines. "by Friday" alone is ordinary planning: keep it low.
        (
            0.6,
            "(by|before|until) (the)? (end of (the)? (day|business)|eod|cob|close of business|"
            "tonight|noon|lunch|tomorrow|tomorrow morning|today|this afternoon|this evening|"
            "midnight); eod; cob; end of (the)? day; close of business",
        ),
        (
            0.3,
            "(by|before|until|no later than) (" + _WEEKDAY + "|next week|the end of the week|"
            "end of week|the weekend|" + _CLOCK + "|* (am|pm)|* : * (am|pm))",
        ),
        (
            0.4,
            "deadline; deadlines; overdue; past due; due (today|tomorrow|now|immediately); "
            "within (the next)? (24|48|one|two|a few|few|1|2|3) (hours|hour); "
            "in the next hour",
        ),
        (0.15, "today; tonight"),
        # Demands.
        (
            0.5,
            "(i|we) (need|want|must have|expect) (this|that|it|these|those|them|an answer|"
            "a response|a reply|your (answer|response|reply|decision|approval|feedback|"
            "signature)) (done|back|now|today|tonight|asap|immediately|by)?; "
            "(i|we) need you to",
        ),
        (
            0.45,
            "(i|we) expect (you|a|an|this|that|it); you must; make sure you; i insist; "
            "i demand; get (this|it) done; do it now; no excuses",
        ),
        (0.3, "you need to; you have to"),
        # Unanswered follow-ups and nagging.
        (
            0.6,
            "just following up; following up (again|on (my|our|this|the|below)); "
            "follow up again; (just)? checking in (again|on this); circling back; "
            "circle back; bumping (this|up|it); bump this; touching base again; resending; "
            "re sending; sending (this)? again; writing (to you)? again; asking again; "
            "reminding you again; (gentle|friendly|quick|another) reminder; "
            "in case you missed; (just)? wanted to follow up",
        ),
        (0.4, "following up; just checking in; as i (said|mentioned|stated|explained|wrote)"),
        (
            0.8,
            "(as)? per my (last|previous|earlier|prior) (email|e mail|message|note|voicemail|"
            "request|mail); as i (said|mentioned|stated|explained|wrote) (before|earlier|"
            "previously|already|twice|last week); (i|i've|i have|we've|we have) (already)? "
            "(asked|emailed|written|called|reminded) (you)? (several|multiple|many|three|four|"
            "two|a few|numerous|3|4|5) times; (third|3rd|fourth|4th|fifth|final) (time|reminder|"
            "request|attempt|notice|follow up|email); (second|2nd) (reminder|request|attempt|"
            "notice|follow up); last (reminder|request|notice|attempt)",
        ),
        (0.5, "as (previously|already) (mentioned|stated|discussed|requested); second time"),
        (
            0.7,
            "still waiting; still (haven't|have not|didn't) (heard|received|gotten|seen|got); "
            "(haven't|have not|never|didn't|did not) (heard|hear) back; "
            "any (update|updates|news|progress) (on (this|that))? ?; "
            "did you (get|see|receive|read) my; waiting (for|on) (you|your); been waiting; "
            "keep (me|us) waiting; no (response|reply|answer) (yet|from you)",
        ),
        (0.4, "any (update|updates|news|progress) on (this|that)"),
        (
            0.8,
            "why (haven't|hasn't|didn't|won't|aren't|isn't|wasn't|can't) (you|u|this|it|"
            "anyone|i)?; why (have|did) you not; why is (this|it) (taking|still); "
            "what's taking (so long|you); what is taking (so long|you); "
            "how long (does|will|is) (it|this); when (will|can) (i|we) (expect|get|hear|see); "
            "when are you going to",
        ),
        (0.15, "why don't you"),
        # Guilt.
        (
            0.8,
            "i (thought|hoped) i could (count|rely|depend) on you; i was counting on you; "
            "(i'm|i am|we're|we are) (very|really|so|quite)? (disappointed|let down); "
            "you promised; you said you would; you (told|assured) me; "
            "after (all|everything) (i have|we have|i've|we've) done; you owe (me|us); "
            "the least you (could|can) do; let (me|us) down; i expected (better|more); "
            "i can't believe you",
        ),
        # Escalation threats.
        (
            0.8,
            "(don't|do not) make me; (i will|we will|i'll|we'll|i|we)? (have to)? escalate; "
            "escalate (this|to); escalating (this|to); (to|with|tell|inform|involve|cc) your "
            "(manager|boss|supervisor); or (i will|we will|i'll|we'll); "
            "otherwise (i will|we will|i'll|we'll); final notice; last chance; or else",
        ),
    ]
)

_COLD = _table(
    [
        (0.0, "i'm back from"),
        # First contact.
        (
            0.7,
            "i came across your; came across your (profile|website|company|work|post|article|"
            "name); (i)? found your (profile|name|details|email|contact|website|company); "
            "stumbled (upon|across) your; saw your (profile|post|website|company) on; "
            "noticed (that)? (your|you) (company|team|website|profile|are hiring|recently); "
            "(i'm|i am) reaching out; reaching out (to|because|regarding|about); "
            "(i)? wanted to reach out; allow me to introduce; let me introduce myself; "
            "we haven't met; we have not met; i hope you don't mind me reaching out",
        ),
        (0.5, "my name is"),
        (
            0.2,
            "hope (this|my) (email|e mail|message|note) finds you well; "
            "hope you're (well|doing well); hope you are (well|doing well); hope all is well",
        ),
        # Meeting asks.
        (0.4, "(a|just|only)? (10|15|20|30|ten|fifteen|twenty|thirty) (minutes|minute|mins|min)"),
        (
            0.5,
            "quick (call|chat|question|demo|meeting|intro|introduction|sync|zoom|conversation); "
            "(hop|jump|get) on a (quick)? (call|zoom|chat); (book|schedule|set up|grab) "
            "(a|some) (time|call|meeting|demo|slot|chat); (worth|open to) (a|an) (quick)? "
            "(conversation|chat|call|intro); would you be open to; "
            "are you the (right|best) person; who is the (right|best) person; "
            "point me (to|in) the right",
        ),
        (0.3, "(what|which) (day|time|times) (works|work) (best)? for you"),
        # Sales pitch.
        (
            0.5,
            "(i|we) help (companies|businesses|teams|brands|startups|founders|agencies|"
            "organizations|organisations|executives|leaders|clients|firms|people like you); "
            "our (platform|solution|product|software|tool|service|agency|team) (helps|can help|"
            "enables|allows|lets); (increase|boost|grow|double|triple) your (revenue|sales|"
            "leads|roi|conversions|conversion|pipeline|traffic|business); lead generation; "
            "free (demo|trial|consultation|audit|assessment); case study; case studies; "
            "partnership opportunity; partnership opportunities; exclusive offer; "
            "limited time; special offer; no obligation; risk free; "
            "(happy|glad) to (send|share) (over)? (more info|a deck|some info)",
        ),
        # Automated sequence follow-ups.
        (
            0.5,
            "top of your inbox; (did|have) you (get|had|have) a chance to (look|review|read|"
            "see|check); if (this|it) (isn't|is not) (a priority|relevant|the right time|a fit); "
            "not the right (person|time); if you're not interested; if you are not interested",
        ),
        # Unsubscribe in mail that looks personal (bulk mail is judged by its headers).
        (
            0.6,
            "unsubscribe; opt out; reply (with)? (stop|no|remove|unsubscribe); "
            "(don't|do not|rather not|prefer not to) (want to)? hear from (me|us); "
            "remove you from (my|our) list",
        ),
    ]
)

_CUE_FIRST_WORDS = _HOSTILITY.first_words | _PRESSURE.first_words | _COLD.first_words

# Scheduling links and merge-field leftovers are found in the raw text: URL and brace
# characters do not survive tokenising.
_SCHEDULER_LINKS = (
    "calendly.com",
    "meetings.hubspot",
    "hubspot.com/meetings",
    "chilipiper.com",
    "savvycal.com",
    "cal.com/",
    "zcal.co",
    "tidycal.com",
)
_MERGE_FIELD_RE = re.compile(
    r"\{\{?\s*(?:first[_ ]?name|firstname|fname|name|company(?:[_ ]?name)?)\s*\}?\}|"
    r"\[(?:first ?name|name|company(?: ?name)?)\]|%first_?name%|\*\|fname\|\*",
    re.IGNORECASE,
)

# Shouting: runs of capitalised words; a single "ASAP" or "FYI" is not shouting.
_CAPS_HINT_RE = re.compile(r"[A-Z]{3}")
_CAPS_WORD_RE = re.compile(r"\b[A-Z][A-Z']{2,}\b")
_WORD_RE = re.compile(r"\b[A-Za-z][A-Za-z']{2,}\b")
_CAPS_RUN_RE = re.compile(r"\b[A-Z][A-Z']+(?:[ ,]+[A-Z][A-Z']+){2,}\b")
_BANG_RE = re.compile(r"[!?]*![!?]*!+[!?]*|\?!|!\?")
_TYPOGRAPHY_CAP = 0.6  # 1 - exp(-0.6) = 0.45: below the 0.5 a caller may call hostile


def _calibrate(total: float) -> float:
    # Saturating: one mild cue (0.3) -> 0.26, one strong cue (1.2) -> 0.70, two -> 0.91.
    return 1.0 - math.exp(-total)


def _match(
    table: _Table, tokens: Sequence[str], starts: Sequence[int] | None = None
) -> tuple[float, list[str]]:
    """Sum of cue weights and the phrases that fired (a phrase counts at most twice)."""
    total = 0.0
    seen: dict[str, int] = {}
    evidence: list[str] = []
    for m in table.find(tokens, starts):
        if m.payload <= 0.0:
            continue
        phrase = m.text(tokens)
        n = seen.get(phrase, 0)
        if n >= _MAX_SAME_CUE:
            continue
        seen[phrase] = n + 1
        total += m.payload
        if n == 0:
            evidence.append(f"'{phrase}'")
    return total, evidence


def _shouting(text: str) -> tuple[float, list[str]]:
    """Weight and evidence for all-caps runs and stacked exclamation marks.

    Both are weak signs on their own (newsletters have all-caps headlines, friends
    write "Congrats!!!"), so together they stay under _TYPOGRAPHY_CAP: typography alone
    never makes a message hostile, it only tips one that has hostile words.
    """
    total = 0.0
    evidence: list[str] = []
    if _CAPS_HINT_RE.search(text):  # cheap gate: most mail has no 3 capitals in a row
        runs = 0
        for m in _CAPS_RUN_RE.finditer(text):
            start = text.rfind("\n", 0, m.start()) + 1
            end = text.find("\n", m.end())
            line = text[start : end if end >= 0 else len(text)].rstrip()
            # Caps inside a lower-case sentence, or ending in "!"/"?", is raised voice;
            # a line that is all caps and nothing else is usually a heading.
            emphatic = line.endswith(("!", "?")) or any(c.islower() for c in line)
            total += 0.4 if emphatic else 0.1
            if runs == 0:
                evidence.append(f"shouting: '{m.group(0)[:40]}'")
            runs += 1
            if runs == 2:
                break
        if not runs:
            words = _WORD_RE.findall(text)
            caps = _CAPS_WORD_RE.findall(text)
            if len(words) >= 6 and len(caps) / len(words) > 0.6:
                total += 0.4 if "!" in text else 0.2
                evidence.append("shouting: mostly capital letters")
    if "!!" in text or "?!" in text or "!?" in text:
        bangs = _BANG_RE.findall(text)
        total += 0.2 if len(bangs) < 3 else 0.3
        evidence.append(f"'{bangs[0]}' x{len(bangs)}" if len(bangs) > 1 else f"'{bangs[0]}'")
    return min(total, _TYPOGRAPHY_CAP), evidence


def _cold_extras(text: str) -> tuple[float, list[str]]:
    """Scheduling links and unfilled merge fields ("Hi {first_name}")."""
    total = 0.0
    evidence: list[str] = []
    low = text.lower()
    for link in _SCHEDULER_LINKS:
        if link in low:
            total += 0.6
            evidence.append(f"scheduling link: {link.rstrip('/')}")
            break
    if "{" in text or "[" in text or "%" in text or "*|" in text:
        m = _MERGE_FIELD_RE.search(text)
        if m:
            total += 1.5
            evidence.append(f"template field: '{m.group(0)}'")
    return total, evidence


# Pronouns, punctuation and sentiment words fire on almost every text: true, but they
# explain nothing to a reader.
_NOISY_STRATEGIES = frozenset(
    {
        "first_person",
        "second_person",
        "first_person_plural",
        "question_mark",
        "positive",
        "negative",
        "exclamation",
        "question_start",
    }
)


def _politeness_evidence(
    model: politeness.PolitenessModel, a: politeness.Analysis, p: float
) -> tuple[str, ...]:
    """Strategies that pushed the verdict its way, strongest first."""
    direction = 1.0 if p >= 0.5 else -1.0
    weights = model.strategy_w
    ranked = sorted(
        (weights.get(name, 0.0) * direction, name)
        for name in a.strategies
        if name not in _NOISY_STRATEGIES
    )
    out: list[str] = []
    shown: set[str] = set()
    for push, name in reversed(ranked):
        phrase = max(a.strategies[name], key=len)  # "thank you" rather than "thank"
        if push <= 0.05 or phrase in shown:  # "why" is both a why-start and a question
            continue
        shown.add(phrase)
        out.append(f"{politeness.STRATEGY_LABELS.get(name, name)}: '{phrase}'")
        if len(out) >= _MAX_EVIDENCE:
            break
    if not out:
        # No strategy explains it: name the words the model leaned on.
        for feat, contrib in model.contributions(a, top=12):
            kind, _, key = feat.partition(":")
            if (
                contrib * direction > 0
                and kind in ("w", "b")
                and not key.startswith("<s>")
                and any(ch.isalnum() for ch in key)
            ):
                out.append(f"word: '{key}'")
            if len(out) >= 3:
                break
    return tuple(out)


def score_text(text: str, subject: str = "") -> ToneScores:
    """Score the sender's own words (*text*, already through :func:`new_text`).

    *subject* adds pressure and cold-outreach cues ("URGENT", "Quick question") but
    is not fed to the politeness model, which was trained on message bodies. Text
    without any word gets politeness 0.5 (unknown) and no politeness evidence.
    """
    model = politeness.load_model()
    a = politeness.analyze(text)
    # No words at all (an empty or all-quoted reply) says nothing about politeness:
    # report the neutral 0.5 rather than the model's prior.
    has_words = any(ch.isalnum() for ch in a.norm)  # stops at the first letter
    p = model.probability(a) if has_words else 0.5
    # Cues may run over a line break ("just following\nup"), so match on words.
    words = a.words
    both = [*tokenize(politeness.normalize(subject)), ".", *words] if subject else words

    starts = candidate_starts(both, _CUE_FIRST_WORDS)  # one scan for all three tables
    body_starts = starts
    if both is not words:  # hostility is judged on the body only: shift past the subject
        offset = len(both) - len(words)
        body_starts = [i - offset for i in starts if i >= offset]

    h_total, h_ev = _match(_HOSTILITY, words, body_starts)
    s_total, s_ev = _shouting(text)
    p_total, p_ev = _match(_PRESSURE, both, starts)
    c_total, c_ev = _match(_COLD, both, starts)
    x_total, x_ev = _cold_extras(text)

    return ToneScores(
        politeness=p,
        hostility=_calibrate(h_total + s_total),
        pressure=_calibrate(p_total),
        cold_outreach=_calibrate(c_total + x_total),
        evidence={
            "politeness": _politeness_evidence(model, a, p) if has_words else (),
            "hostility": tuple((h_ev + s_ev)[:_MAX_EVIDENCE]),
            "pressure": tuple(p_ev[:_MAX_EVIDENCE]),
            "cold_outreach": tuple((x_ev + c_ev)[:_MAX_EVIDENCE]),
        },
    )


# --- new text: quotes, forwards and signatures -------------------------------------

_QUOTED_RE = re.compile(r"^\s*(?:>|\|(?=\s))")
# Separators after which everything is someone else's message.
_CUT_PATTERNS = (
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
# One pattern for all of them: every line of every text is tried against it, and one
# match call instead of eight is a fifth of new_text's time (each keeps its own anchors).
_CUT_RE = re.compile("|".join(f"(?:{p})" for p in _CUT_PATTERNS), re.IGNORECASE)
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
    # An attribution ends with a colon: most lines start none, and saying so in one
    # C-level test is most of new_text's saving.
    if ":" not in "".join(lines[i : i + 3]):
        return 0
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
        if _CUT_RE.match(line):
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
    # No sign-off: a final paragraph that opens with a name ("John Smith") and holds
    # a phone number, address or URL is a signature. "Call me at 555-0100." is not.
    start = len(body)
    while start > 0 and body[start - 1].strip():
        start -= 1
    block = body[start:]
    if (
        start > 0
        and 2 <= len(block) <= 8
        and _looks_like_name(block[0])
        and all(len(t.strip()) <= 80 for t in block)
        and any(_CONTACT_RE.search(t) for t in block[1:])
    ):
        return body[:start]
    return body


def _looks_like_name(line: str) -> bool:
    words = line.split()
    return (
        1 <= len(words) <= 4
        and not any(ch.isdigit() or ch == "@" for ch in line)
        and not line.rstrip().endswith((".", "?", "!", ":", ","))
    )


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
        if not _QUOTED_RE.match(ln) and not _HEADER_RE.match(ln) and not _CUT_RE.match(ln)
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
