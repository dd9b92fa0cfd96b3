"""The ``dangling`` end (tamis.scorers.endings) on hand-made responses: what a cut leaves, and
the endings it must leave alone."""

import pytest

from tamis.data.records import Message, Record
from tamis.scorers.endings import DANGLING_END, dangling


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("Calcium is a chemical element with the atomic number of", 1.0),
        ("The list holds 1, 2, 4, 5, 10, and", 1.0),
        ("Sales in 2015 are expected to be higher than", 1.0),
        ("Write to me soon and tell me about the", 1.0),
        ("Calcium is a chemical element with a low atomic number.", 0.0),
        ("Calcium is a chemical element with a low atomic number", 0.0),  # no full stop: a noun
        ("Set clear goals and a plan to strive for", 0.0),  # a stranded preposition ends fine
        ("I'm not sure I can help with that", 0.0),
        ("Best wishes from all of us,\n\nWill", 0.0),  # a name, capitalised
        ("an", 0.0),  # a one-word answer: under MIN_WORDS
        ("I will explain the (", 0.0),  # ends in a bracket, not a letter
    ],
)
def test_dangling(response, expected):
    assert dangling(response, "Tell me about calcium.") == expected


def test_a_prompt_about_words_may_get_an_answer_that_ends_on_one():
    assert dangling("The article in this sentence is the", "Find the article.") == 0.0
    assert dangling("The article in this sentence is the", "Summarise this.") == 1.0


def test_dangling_scorer_column():
    recs = [
        Record(id="a", prompt=[Message("user", "Q")], response="It depends on the", raw={}),
        Record(id="b", prompt=[Message("user", "Q")], response="It depends on the day.", raw={}),
    ]
    assert DANGLING_END.compute_all(recs) == {"dangling": [1.0, 0.0]}
