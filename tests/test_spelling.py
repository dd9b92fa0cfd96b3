"""The ``misspelt`` share (tamis.scorers.spelling, with the real word list) on hand-made
responses: which words count, what a typo does, and what it must leave alone."""

import pytest

from tamis.data.records import Message, Record
from tamis.scorers.spelling import MISSPELT, counted_words, misspelt, misspelt_words

CLEAN = (
    "The water cycle moves water between the oceans, the air and the land. Heat from the sun "
    "turns water into vapour, the vapour cools into clouds, and rain brings it back down."
)


def test_clean_english_has_no_misspelt_word():
    assert misspelt(CLEAN, "Explain the water cycle.") == 0.0


def test_typos_raise_the_share_by_the_words_they_break():
    typos = CLEAN.replace("water", "wtaer", 2).replace("clouds", "cluods").replace("back", "bakc")
    bad, n = misspelt_words(typos, "Explain the water cycle.")
    assert bad == ["wtaer", "wtaer", "cluods", "bakc"]
    assert n == len(counted_words(CLEAN))
    assert misspelt(typos, "Explain the water cycle.") == pytest.approx(4 / n)


def test_which_words_count():
    text = (
        "Call Dr. Smith at 5pm: run numpy.sqrt(x) or my_var, see www.example.com, and don't "
        'forget the cat\'s "toys" or `argmax`.\n```\nfor itm in lst: prnt(itm)\n```\nok'
    )
    # Capitalised words, digits, dots, underscores, inline code, code blocks and words under 3
    # letters drop; quotes and brackets are stripped, a possessive loses its 's.
    assert counted_words(text) == ["run", "see", "and", "don't", "forget", "the", "cat", "toys"]
    assert counted_words(text + " prnt") == [*counted_words(text), "prnt"]  # outside the fence
    assert misspelt(text, "") == 0.0


def test_a_fenced_one_liner_does_not_hide_the_rest():
    text = "```python print(1)```\nthe wtaer is cold and clean now"
    assert counted_words(text) == ["the", "wtaer", "cold", "and", "clean", "now"]
    assert misspelt(text, "Q") == pytest.approx(1 / 6)


def test_a_word_the_prompt_uses_is_not_misspelt():
    response = "The zorblat spins the grommix twice, then the zorblat rests."
    assert misspelt(response, "What does a zorblat do to a grommix?") == 0.0
    assert misspelt(response, "Describe a machine.") == pytest.approx(3 / 9)
    # the prompt's words are normalised like the response's: possessive, plural, hyphen
    assert misspelt("the zorblat's tail is long", "Describe the zorblat's tail.") == 0.0
    assert misspelt("a zorblat is long", "What are zorblats?") == 0.0
    assert misspelt("the grommix spins fast", "Build a zorblat-grommix.") == 0.0


def test_another_language_is_not_judged_but_short_typo_heavy_english_is():
    assert misspelt("el perro está ladrando y la niña quiere convertirse", "Translate.") is None
    # 3 of 4 unknown, but "for" says English: typos, not another language
    assert misspelt("It is an importnat prcoess for plnats.", "Q") == pytest.approx(3 / 4)
    assert misspelt("", "Say nothing.") == 0.0  # no word counts


def test_the_foreign_share_boundary():
    # 2 of 5 unknown is 0.4, not past it: judged; 3 of 5 with no common English word: None
    assert misspelt("zorblat grommix tree stone river", "Q") == pytest.approx(0.4)
    assert misspelt("zorblat grommix frobnicatr stone river", "Q") is None


def test_windows_line_endings_count_the_same_words():
    assert counted_words("the wtaer\r\nis cold") == counted_words("the wtaer\nis cold")


def test_scorer_reads_every_prompt_message():
    rec = Record(
        id="r",
        prompt=[Message("system", "Use the word frobnicatr."), Message("user", "Go.")],
        response="You should frobnicatr the widget now.",
        raw={},
    )
    assert MISSPELT.compute_all([rec]) == {"misspelt": [0.0]}
    alone = Record(id="s", prompt=[Message("user", "Go.")], response=rec.response, raw={})
    assert MISSPELT.compute_all([alone]) == {"misspelt": [0.2]}
