"""Tone scores, evidence, new_text and html_to_text, on plain data."""

from __future__ import annotations

import pytest

from inbox_filter.core.tone import ToneScores, html_to_text, new_text, score_text

NEUTRAL = (
    "Hi Dana, the minutes from Tuesday's meeting are attached. Let me know if I missed anything."
)


# --- ToneScores -------------------------------------------------------------------------


def test_to_json_rounds_and_lists_evidence() -> None:
    s = ToneScores(0.12345, 0.5, 0.0, 1.0, {"pressure": ("'asap'",)})
    assert s.to_json() == {
        "politeness": 0.123,
        "hostility": 0.5,
        "pressure": 0.0,
        "cold_outreach": 1.0,
        "evidence": {"pressure": ["'asap'"]},
    }


def test_text_without_words_is_neutral() -> None:
    for text in ("", "   \n> ", "...", "- -"):
        s = score_text(text)
        assert (s.politeness, s.hostility, s.pressure, s.cold_outreach) == (0.5, 0, 0, 0)
        assert s.evidence["politeness"] == ()


def test_scores_are_probabilities_and_every_key_has_evidence() -> None:
    for text in ("", "ok", NEUTRAL, "YOU IDIOT!!! " * 50, "asap urgent today deadline " * 40):
        s = score_text(text)
        for v in (s.politeness, s.hostility, s.pressure, s.cold_outreach):
            assert 0.0 <= v <= 1.0
        assert set(s.evidence) == {"politeness", "hostility", "pressure", "cold_outreach"}


# --- hostility -------------------------------------------------------------------------------


def test_insult_is_hostile_and_neutral_note_is_not() -> None:
    hostile = score_text("You are an incompetent idiot. This mess is your fault.")
    calm = score_text(NEUTRAL)
    assert hostile.hostility > 0.8
    assert calm.hostility < 0.1
    assert "'idiot'" in hostile.evidence["hostility"]
    assert "'this mess is your fault'" not in hostile.evidence["hostility"]  # phrase as written
    assert any("your fault" in e for e in hostile.evidence["hostility"])


@pytest.mark.parametrize(
    "text",
    [
        "Are you even reading my emails?",
        "What is wrong with you people",
        "Do that again and you'll regret it.",
        "Shut up and fix it.",
    ],
)
def test_contempt_threats_and_directed_abuse_count(text: str) -> None:
    assert score_text(text).hostility >= 0.5


def test_thanks_never_raises_hostility() -> None:
    base = "The numbers in the report are wrong."
    for thanks in ("Thanks!", "Thank you so much.", "Many thanks, and thanks again!"):
        assert score_text(f"{base} {thanks}").hostility <= score_text(base).hostility


def test_shouting_and_exclamations_are_weak_cues() -> None:
    shout = score_text("WHY IS THIS NOT DONE YET!!!")
    headline = score_text("QUARTERLY RESULTS SUMMARY\nRevenue grew 4% this quarter.")
    assert shout.hostility > headline.hostility
    assert any(e.startswith("shouting") for e in shout.evidence["hostility"])
    assert score_text("Congrats on the launch!!!").hostility < 0.3


def test_casual_words_that_contain_insults_do_not_fire() -> None:
    text = "The study lists the winners and losers of the new tariff; you never know."
    assert score_text(text).hostility == 0.0


# --- pressure -------------------------------------------------------------------------------


def test_urgent_demand_is_pressure_and_relaxed_note_is_not() -> None:
    pushy = score_text("I need this today. Why haven't you answered my last three emails?")
    relaxed = score_text("No rush on this - whenever you get to it next month is fine.")
    assert pushy.pressure > 0.7
    assert relaxed.pressure < 0.1
    assert "'i need this today'" in pushy.evidence["pressure"]
    assert "'why haven't you'" in pushy.evidence["pressure"]


@pytest.mark.parametrize(
    "text",
    [
        "Just following up on this again.",
        "As per my last email, the invoice is overdue.",
        "Circling back - any update?",
        "This is the third time I'm asking.",
        "Still waiting for your reply.",
        "Don't make me escalate this to your manager.",
        "I thought I could count on you.",
    ],
)
def test_nagging_and_guilt_are_pressure(text: str) -> None:
    assert score_text(text).pressure >= 0.45


def test_ordinary_deadline_is_mild_pressure_at_most() -> None:
    s = score_text("Please review the draft by Friday. Thanks!")
    assert 0.0 < s.pressure < 0.35
    assert s.evidence["pressure"] == ("'by friday'",)


def test_matching_ignores_case_apostrophes_and_line_breaks() -> None:
    variants = [
        "WHY HAVEN'T YOU ANSWERED",
        "why havent u answered",
        "Why haven\u2019t\nyou answered",
    ]
    for text in variants:
        s = score_text(text)
        assert s.pressure >= 0.5, text
        assert s.evidence["pressure"][0].startswith("'why haven't"), text


def test_cues_survive_hard_wrapped_lines() -> None:
    # Plain-text mail wrapped at ~72 columns breaks lines mid-phrase.
    body = (
        "Hello Ken, I wanted to let you know that I am still just following\n"
        "up on the contract we talked about. As per my last\n"
        "email, the counterparty is waiting for the signed copy.\n"
    )
    ev = score_text(body).evidence["pressure"]
    assert "'just following up'" in ev
    assert "'as per my last email'" in ev


def test_short_lines_still_end_sentences_for_politeness() -> None:
    # "Hi Ana," on its own line: the next line starts a sentence ("why" opens it).
    found = score_text("Hi Ana,\nwhy is the report late?").evidence["politeness"]
    assert "starts with why: 'why'" in found


def test_subject_adds_pressure() -> None:
    body = "See the attached form."
    assert score_text(body, subject="URGENT: sign today").pressure > score_text(body).pressure + 0.4


def test_subject_counts_for_pressure_and_cold_but_not_hostility() -> None:
    # A reply keeps the original subject ("Re: ..."): insults there may not be the
    # sender's words, while "URGENT" or "Quick question" still frame the message.
    s = score_text("Fine, you idiot.", subject="Quick question, urgent")
    assert s.evidence["hostility"] == ("'you idiot'",)
    assert s.evidence["pressure"] == ("'urgent'",)
    assert s.evidence["cold_outreach"] == ("'quick question'",)
    assert score_text("Thanks.", subject="you idiot").hostility == 0.0


def test_more_cues_mean_more_pressure() -> None:
    one = score_text("Please send it asap.").pressure
    two = score_text("Please send it asap. Still waiting.").pressure
    three = score_text("Please send it asap. Still waiting. Why haven't you replied?").pressure
    assert one < two < three < 1.0


# --- cold outreach ---------------------------------------------------------------------------

COLD = (
    "Hi {first_name},\n\nI came across your profile and was impressed. We help companies like "
    "yours increase your revenue. Do you have 15 minutes for a quick call next week? "
    "Grab a slot here: https://calendly.com/rep/intro\n\nIf you're not interested, reply "
    "'unsubscribe'."
)
COLLEAGUE = "Hey Sam, I pushed the fix for the login bug. Can you check it on staging after lunch?"


def test_templated_sales_ask_is_cold_and_colleague_note_is_not() -> None:
    cold = score_text(COLD, subject="Quick question")
    colleague = score_text(COLLEAGUE, subject="login bug")
    assert cold.cold_outreach > 0.9
    assert colleague.cold_outreach < 0.1
    ev = cold.evidence["cold_outreach"]
    assert "template field: '{first_name}'" in ev
    assert "scheduling link: calendly.com" in ev
    assert "'i came across your'" in ev


@pytest.mark.parametrize(
    "text",
    [
        "Hi [First Name], hope this email finds you well.",
        "Hello *|FNAME|*, are you the right person to talk to about payroll?",
        "Would you be open to a quick chat? I'm reaching out because we help startups.",
    ],
)
def test_cold_cues(text: str) -> None:
    assert score_text(text).cold_outreach >= 0.5


# --- politeness (the learned model) -------------------------------------------------------


def test_politeness_model_orders_clear_examples() -> None:
    polite = score_text(
        "Thank you so much for your help! Could you please take a look when you have a moment?"
    )
    rude = score_text("Why did you revert my edit? Stop it.")
    assert polite.politeness > 0.5
    assert rude.politeness < 0.5
    assert "gratitude: 'thank you'" in polite.evidence["politeness"]
    assert any("'why'" in e or "'stop'" in e for e in rude.evidence["politeness"])


EMAIL_REQUESTS = [
    ("Hi Priya, thanks for the quick turnaround. Could you send the final version when ready?", 1),
    ("Sorry for the late reply! Would you mind checking the figures on page 3?", 1),
    ("Good morning - I was wondering whether you had a chance to look at my proposal?", 1),
    ("Great presentation today. Would it be possible to get a copy of the slides?", 1),
    ("Why is the report still missing? Send it now.", 0),
    ("Fix the typo in the contract and stop wasting my time.", 0),
    ("What were you thinking? The client saw the wrong numbers.", 0),
    ("So are you going to answer me or not?", 0),
]


def test_politeness_transfers_to_short_email_requests() -> None:
    # Written for the tests, not taken from the training corpus (Wikipedia talk pages).
    right = sum((score_text(t).politeness > 0.5) == bool(label) for t, label in EMAIL_REQUESTS)
    assert right >= 7


# --- new_text --------------------------------------------------------------------------------


def test_gmail_attribution_and_quote_are_removed() -> None:
    body = (
        "Sounds good, see you at 3.\n\n"
        "On Mon, Jan 1, 2024 at 10:00 AM Jane Doe <jane@example.com> wrote:\n"
        "> Can we meet at 3?\n> Jane\n"
    )
    assert new_text(body) == "Sounds good, see you at 3."


def test_wrapped_gmail_attribution() -> None:
    body = (
        "Sure thing.\r\n\r\nOn Mon, Jan 1, 2024 at 10:00 AM Jane Doe <\r\n"
        "jane@example.com> wrote:\r\n\r\n> Can we meet at 3?\r\n"
    )
    assert new_text(body) == "Sure thing."


def test_inline_answers_between_quotes_are_kept() -> None:
    body = (
        "On Tue, Feb 2, 2021, Bob <b@x.org> wrote:\n"
        "> First question?\nFirst answer.\n\n> Second question?\nSecond answer.\n"
    )
    assert new_text(body) == "First answer.\n\nSecond answer."


def test_outlook_original_message() -> None:
    body = (
        "Please see my comments below.\n\n-----Original Message-----\n"
        "From: Smith, John\nSent: Monday, May 14, 2001 9:00 AM\nTo: Lay, Kenneth\n"
        "Subject: Meeting\n\nCan we talk tomorrow?\n"
    )
    assert new_text(body) == "Please see my comments below."


def test_outlook_header_block_without_separator_text() -> None:
    body = (
        "I agree with Tom.\n\n________________________________\n"
        "From: Tom <tom@x.com>\nSent: Tuesday, March 3, 2020 10:00\nTo: Ann <ann@x.com>\n"
        "Subject: Plan\n\nHere is the plan, why haven't you read it?\n"
    )
    assert new_text(body) == "I agree with Tom."


def test_lotus_notes_forward_as_in_enron_mail() -> None:
    body = (
        "Ken, FYI - see below.\n\n"
        "---------------------- Forwarded by Rosalee Fleming/Corp/Enron on 05/08/2001 10:03 AM "
        "---------------------------\n\n\n"
        "John Doe <jdoe@x.com> on 05/07/2001 05:00:00 PM\n"
        "To: kenneth.lay@enron.com\ncc:  \nSubject: Hello\n\nDear Ken, you idiots ruined it.\n"
    )
    assert new_text(body) == "Ken, FYI - see below."


def test_lotus_notes_reply_header_with_name_and_date() -> None:
    body = (
        "Thanks, I will be there.\n\n\n\n"
        "\tJane Smith\n\t09/05/2000 01:24 PM\n\t\t \n"
        "\t\t To: Kenneth Lay/HOU/ECT@ECT\n\t\t cc: \n\t\t Subject: Dinner\n\n"
        "Would you join us?\n"
    )
    assert new_text(body) == "Thanks, I will be there."


def test_gmail_forward_with_a_note() -> None:
    body = (
        "Have a look at this one.\n\n---------- Forwarded message ---------\n"
        "From: A <a@x.com>\nDate: Mon, Jan 1, 2024\nSubject: Hi\nTo: B <b@x.com>\n\nBuy now!\n"
    )
    assert new_text(body) == "Have a look at this one."


def test_rfc3676_signature_separator() -> None:
    body = "Please send the file.\n\n-- \nJohn Smith\nAcme Corp | +1 555 0100\n"
    assert new_text(body) == "Please send the file."


def test_mobile_footer_and_apple_quote() -> None:
    body = (
        "Ok will do\n\nSent from my iPhone\n\n"
        "> On Jan 1, 2024, at 10:00, Jane <j@x.com> wrote:\n>\n> Do it today\n"
    )
    assert new_text(body) == "Ok will do"


def test_signoff_keeps_closing_and_drops_contact_block() -> None:
    body = (
        "Can you send me the deck by Friday?\n\nBest regards,\nJohn Smith\n"
        "VP Sales, Acme Inc.\n+1 555 123 4567\njohn@acme.com\n"
    )
    assert new_text(body) == "Can you send me the deck by Friday?\n\nBest regards,"


def test_contact_block_without_signoff() -> None:
    body = "Can you send me the deck?\n\nJohn Smith\nDirector\n713-853-4589 office\n"
    assert new_text(body) == "Can you send me the deck?"


def test_closing_sentences_with_a_phone_number_are_kept() -> None:
    body = "Here is the plan.\n\nPlease call me at 555-123-4567 tomorrow.\nThanks a lot"
    assert new_text(body) == body


def test_never_empty_when_there_is_unquoted_text() -> None:
    bare_forward = (
        "---------- Forwarded message ---------\nFrom: A <a@x.com>\nSubject: Hi\n"
        "To: B <b@x.com>\n\nBuy our stuff.\n"
    )
    assert new_text(bare_forward) == "Buy our stuff."
    assert new_text("Thanks,\nJohn") == "Thanks,"
    assert new_text("-- \nonly a signature") == "only a signature"
    assert new_text("> all of it\n> is quoted\n") == ""


def test_plain_text_is_left_alone() -> None:
    body = "Line one.\n\nLine two, with a To: in the middle.\nFrom: here on it is prose."
    assert new_text(body) == body


# --- html_to_text ----------------------------------------------------------------------------


def test_html_blocks_entities_and_scripts() -> None:
    html = (
        "<html><head><style>p {color: red}</style><title>t</title></head><body>"
        "<p>Hello&nbsp;there &amp; welcome</p><div>Line two<br>Line three</div>"
        "<script>var x = '<p>not text</p>';</script><ul><li>one</li><li>two</li></ul>"
        "</body></html>"
    )
    assert html_to_text(html) == "Hello there & welcome\n\nLine two\nLine three\n\none\ntwo"


def test_html_blockquote_reply_is_stripped_by_new_text() -> None:
    html = (
        "<div>Works for me, thanks.</div><div class='gmail_quote'>"
        "<div>On Mon, Jan 1, 2024 at 10:00 AM X &lt;x@y.com&gt; wrote:<br></div>"
        "<blockquote>Is Friday ok?<br>X</blockquote></div>"
    )
    assert new_text(html_to_text(html)) == "Works for me, thanks."


def test_broken_html_does_not_raise() -> None:
    assert (
        html_to_text("<p>unclosed <b>bold <div>text &bogus; &lt") == "unclosed bold\ntext &bogus; <"
    )
