"""The ``misspelt`` share (tamis.scorers.spelling, with the real word list) and the ``dangling``
end (tamis.scorers.endings) on hand-made responses: which words count, what a typo or a cut does,
and what they must leave alone."""

import pytest

from tamis.data.records import Message, Record
from tamis.scorers.endings import DANGLING_END, dangling
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
        'forget the cat\'s "toys".\n```\nfor itm in lst: prnt(itm)\n```\nok'
    )
    # Capitalised words, digits, dots, underscores, code blocks and words under 3 letters drop;
    # quotes and brackets are stripped, a possessive loses its 's, a curly apostrophe is one.
    assert counted_words(text) == ["run", "see", "and", "don't", "forget", "the", "cat", "toys"]
    assert counted_words(text + " prnt") == [*counted_words(text), "prnt"]  # outside the fence
    assert misspelt(text, "") == 0.0


def test_a_word_the_prompt_uses_is_not_misspelt():
    response = "The zorblat spins the grommix twice, then the zorblat rests."
    assert misspelt(response, "What does a zorblat do to a grommix?") == 0.0
    assert misspelt(response, "Describe a machine.") == pytest.approx(3 / 9)


def test_another_language_is_not_judged_for_spelling():
    assert misspelt("el perro está ladrando y la niña quiere convertirse", "Translate.") is None
    assert misspelt("", "Say nothing.") == 0.0  # no word counts


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


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("Calcium is a chemical element with the atomic number of", 1.0),
        ("The list holds 1, 2, 4, 5, 10, and", 1.0),
        ("Sales in 2015 are expected to be", 1.0),
        ("Calcium is a chemical element with atomic number 20.", 0.0),
        ("Calcium is a chemical element with atomic number 20", 0.0),  # no full stop: a noun
        ("Write to me soon and tell me about the", 1.0),
        ("Best wishes from all of us,\n\nWill", 0.0),  # a name, capitalised
        ("Just walk as much as the", 1.0),
        ("an", 0.0),  # a one-word answer: under MIN_WORDS
        ("I will explain the (", 0.0),  # ends in a bracket, not a letter
    ],
)
def test_dangling(response, expected):
    assert dangling(response) == expected


def test_dangling_scorer_column():
    recs = [
        Record(id="a", prompt=[Message("user", "Q")], response="It depends on the", raw={}),
        Record(id="b", prompt=[Message("user", "Q")], response="It depends on the day.", raw={}),
    ]
    assert DANGLING_END.compute_all(recs) == {"dangling": [1.0, 0.0]}
