"""``part_relevance``, ``tail_relevance`` and ``prompt_relevance``: how a response is cut into
parts, and, with the real bundled MiniLM, that a second answer, a leaked example or a boilerplate
line scores below the clean response (past junk's ``off_topic`` and ``appended`` cuts), while
clean responses stay above them; that an answer to another question is off the prompt's topic."""

import pytest

from tamis.scorers.junk import APPENDED_CUT, OFF_TOPIC_CUT, UNRELATED_RELEVANCE_CUT
from tamis.scorers.topic import MAX_PARTS, part_relevance, relevance, response_parts


def test_parts_are_the_sentences_of_each_line():
    text = "Paris is the capital of France. It lies on the Seine.\nIt has two million people."
    assert response_parts(text) == [
        "Paris is the capital of France.",
        "It lies on the Seine.",
        "It has two million people.",
    ]


def test_short_parts_join_the_next_and_the_last_joins_the_one_before():
    text = "Sure!\n1. Apples are red fruit.\n2. Bananas are yellow fruit.\nEnjoy them!"
    assert response_parts(text) == [
        "Sure! 1. Apples are red fruit.",
        "2. Bananas are yellow fruit. Enjoy them!",
    ]
    assert response_parts("Yes.") == ["Yes."]  # one short part stays a part
    assert response_parts("  \n ") == []


def test_abbreviations_and_decimals_do_not_split_a_sentence():
    # a split needs an end mark, then space, then a capital or a digit
    assert response_parts("It costs 3.5 dollars, e.g. at the market.") == [
        "It costs 3.5 dollars, e.g. at the market."
    ]


def test_a_long_response_has_at_most_max_parts_and_keeps_every_word():
    text = "\n".join(f"Line number {i} has some words." for i in range(100))
    parts = response_parts(text)
    assert len(parts) == MAX_PARTS
    assert " ".join(parts).split() == text.split()


PROMPT = "Explain how photosynthesis works in plants."
ANSWER = (
    "Photosynthesis is how plants turn light into chemical energy. Chlorophyll in the leaves "
    "absorbs sunlight. The plant uses that energy to make glucose from carbon dioxide and "
    "water, and releases oxygen."
)
OTHER = "The French Revolution began in 1789 with the storming of the Bastille in Paris."
LIST_PROMPT = "Name three fruits that are high in vitamin C."
LIST_ANSWER = "1. Oranges are rich in vitamin C.\n2. Kiwis have even more.\n3. Strawberries too."


@pytest.fixture(scope="module")
def embedder():
    from tamis.model.embed import load_embedder

    return load_embedder()


def test_a_foreign_part_scores_below_the_clean_response_and_past_the_cut(embedder):
    cases = {
        "clean": ANSWER,
        "list": LIST_ANSWER,
        "merged": ANSWER + "\n\n" + OTHER,
        "runon": ANSWER + "\n\n### Instruction:\nWhen did the French Revolution begin?",
        "boilerplate": ANSWER + "\nPlease enable JavaScript to view the comments on this site.",
    }
    prompts = [LIST_PROMPT if k == "list" else PROMPT for k in cases]
    got = dict(zip(cases, part_relevance(prompts, list(cases.values()), embedder), strict=True))
    assert got["clean"] > OFF_TOPIC_CUT and got["list"] > OFF_TOPIC_CUT, got
    for name in ("merged", "boilerplate"):
        assert got[name] <= OFF_TOPIC_CUT, (name, got)
    # the leaked instruction is a question about history: below the clean answer, though not
    # past the cut here (junk's template_leak flag sees its marker)
    assert max(got["merged"], got["runon"], got["boilerplate"]) < got["clean"] / 2, got


def test_values_do_not_depend_on_the_batch_and_empty_texts_get_none(embedder):
    prompts = [PROMPT, PROMPT, LIST_PROMPT]
    responses = [ANSWER + "\n\n" + OTHER, "", LIST_ANSWER]
    together = part_relevance(prompts, responses, embedder)
    alone = [part_relevance([p], [r], embedder)[0] for p, r in zip(prompts, responses, strict=True)]
    # padding moves a cosine by ~1e-7: at most one unit of the 4th decimal after rounding
    assert together[1] is None and alone[1] is None
    for a, b in zip(together, alone, strict=True):
        assert a is None or abs(a - b) <= 1e-4
    reverse = part_relevance(prompts[::-1], responses[::-1], embedder)[::-1]
    assert all(a is None or abs(a - b) <= 1e-4 for a, b in zip(together, reverse, strict=True))
    assert part_relevance([" "], [ANSWER], embedder) == [None]  # no prompt to relate to
    # in chunks of one record: the same values
    chunked = part_relevance(prompts, responses, embedder, chunk=1)
    assert all(a is None or abs(a - b) <= 1e-4 for a, b in zip(together, chunked, strict=True))


SECOND_ANSWER = (
    "The French Revolution began in 1789. Crowds in Paris stormed the Bastille, a royal "
    "prison, and within a few years the monarchy had fallen and the king was executed."
)


def test_a_whole_second_answer_is_a_foreign_tail(embedder):
    cases = {
        "clean": ANSWER,
        "list": LIST_ANSWER,
        "merged": ANSWER + "\n\n" + SECOND_ANSWER,
        "merged-same-line": ANSWER + " " + SECOND_ANSWER,
        "one-part": "Plants make sugar from light, water and carbon dioxide in their leaves.",
        "short-tail": ANSWER + " Thanks!",
    }
    prompts = [LIST_PROMPT if k == "list" else PROMPT for k in cases]
    got = relevance(prompts, list(cases.values()), embedder)
    tail = dict(zip(cases, got["tail_relevance"], strict=True))
    assert tail["clean"] > APPENDED_CUT and tail["list"] > APPENDED_CUT, tail
    assert tail["merged"] < APPENDED_CUT and tail["merged-same-line"] < APPENDED_CUT, tail
    # no boundary with MIN_TAIL_WORDS after it: nothing to compare
    assert tail["one-part"] is None
    assert tail["short-tail"] > APPENDED_CUT  # "Thanks!" joins the last sentence
    # the same part values as part_relevance gives alone
    assert got["part_relevance"] == part_relevance(prompts, list(cases.values()), embedder)


def test_prompt_relevance_is_low_for_an_answer_to_another_question(embedder):
    prompts = [PROMPT, PROMPT, "Who was Alfred Nobel?", "Who was Alfred Nobel?"]
    responses = [ANSWER, SECOND_ANSWER, "He invented dynamite.", LIST_ANSWER]
    got = relevance(prompts, responses, embedder)["prompt_relevance"]
    # the answers to the question and the short fact about its subject stay above the cut junk's
    # ``unrelated`` needs; answers to another question fall below it
    assert got[0] > UNRELATED_RELEVANCE_CUT and got[2] > UNRELATED_RELEVANCE_CUT, got
    assert got[1] < UNRELATED_RELEVANCE_CUT and got[3] < UNRELATED_RELEVANCE_CUT, got
    # one part: its own cosine with the prompt, as part_relevance has it
    alone = relevance(prompts[2:3], responses[2:3], embedder)["part_relevance"][0]
    assert got[2] == pytest.approx(alone, abs=1e-4)  # the batch moves the 4th decimal at most
    assert relevance([PROMPT], ["  "], embedder)["prompt_relevance"] == [None]


def test_tail_relevance_takes_the_weakest_boundary():
    import numpy as np

    from tamis.scorers.topic import _tail_relevance

    asked = np.array([1.0, 0.0, 0.0])
    parts = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    # after part 1: the tail (mean of parts 2, 3) has cosine 0 with the prompt and the head;
    # after part 2: part 3 has cosine 0 with both too; 8 words needed after a boundary
    assert _tail_relevance(asked, parts, [5, 5, 8]) == 0.0
    assert _tail_relevance(asked, parts, [5, 6, 2]) == 0.0  # only the first boundary counts
    assert _tail_relevance(asked, parts, [5, 3, 4]) is None  # no tail of 8 words
    near = np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0]])
    assert _tail_relevance(asked, near, [5, 8]) == 0.8
