"""Noise injection: exact counts, determinism, each corruption doing what it says, untouched
records untouched, and clear errors. Pure Python, no model."""

import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tamis.base.errors import TamisError
from tamis.data.noise import (
    KINDS,
    PLACEHOLDERS,
    corrupt,
    find_response_field,
    write_corrupted,
)
from tamis.data.readers import read_dataset

RESPONSES = [
    "The capital of France is Paris, and it lies on the Seine.",
    "There are 7 days in a week and 12 months in a year.",
    "Water boils at 100 degrees Celsius at sea level.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "She met Marie and Pierre at the station before the train left.",
    "Yes.",
    "Three quick brown foxes jumped over 2 lazy dogs in the garden.",
    "1. Eat well\n2. Sleep enough\n3. Move every day",
    "A haiku has three lines of five, seven and five syllables.",
    "Positive",
]


def alpaca(n=40):
    return [
        {
            "id": i,
            "instruction": f"Question {i}?",
            "input": "" if i % 3 else "some context",
            "output": RESPONSES[i % len(RESPONSES)] + ("" if i < len(RESPONSES) else f" ({i})"),
            "source": {"nested": [i, "x"]},
        }
        for i in range(n)
    ]


def corrupted_only(labels):
    return [label for label in labels if label["kind"] is not None]


def test_exact_count_balanced_kinds_and_untouched_records():
    n = 8 * len(KINDS)
    records = alpaca(n)
    before = json.dumps(records)
    objects, labels = corrupt(records, 0.5, seed=3)
    assert json.dumps(records) == before  # the input is not modified
    assert len(objects) == len(labels) == n
    bad = corrupted_only(labels)
    assert len(bad) == n // 2
    assert Counter(label["kind"] for label in bad) == dict.fromkeys(KINDS, 4)
    for obj, rec, label in zip(objects, records, labels, strict=True):
        assert label["id"] == obj["id"] == rec["id"] and label["original"] == rec["output"]
        assert label["corrupted"] == obj["output"]
        if label["kind"] is None:
            assert json.dumps(obj) == json.dumps(rec)
        else:
            assert obj["output"] != rec["output"]
            assert {k: v for k, v in obj.items() if k != "output"} == {
                k: v for k, v in rec.items() if k != "output"
            }


def test_deterministic_for_a_seed_and_different_across_seeds():
    records = alpaca(40)
    assert corrupt(records, 0.3, seed=7) == corrupt(records, 0.3, seed=7)
    picks = {
        seed: [label["index"] for label in corrupted_only(corrupt(records, 0.3, seed)[1])]
        for seed in range(4)
    }
    assert len({tuple(p) for p in picks.values()}) > 1


def by_kind(kind, seed=0):
    """Records, the labels of the records corrupted by ``kind``, all labels. ``kind`` takes
    three quarters of the 20 corrupted records, ``empty`` the rest and any record ``kind``
    cannot corrupt."""
    records = alpaca(40)
    kinds = [kind] if kind == "empty" else [kind, kind, kind, "empty"]
    _, labels = corrupt(records, 0.5, seed, kinds=kinds)
    bad = corrupted_only(labels)
    assert len(bad) == 20
    return records, [label for label in bad if label["kind"] == kind], labels


def test_swap_takes_another_records_response():
    records, swapped, _ = by_kind("swap")
    assert len(swapped) == 15
    originals = [r["output"] for r in records]
    for label in swapped:
        assert label["corrupted"] in originals
        assert label["corrupted"] != label["original"]
        assert originals.index(label["corrupted"]) != label["index"]


def test_truncate_is_a_proper_prefix_cut_at_a_word():
    _, cut, labels = by_kind("truncate")
    assert cut  # short responses ("Yes.", "Positive") fall back to another kind
    for label in cut:
        original, short = label["original"], label["corrupted"]
        assert original.startswith(short) and len(short) < len(original)
        n_words, kept = len(original.split()), len(short.split())
        assert 0.2 * n_words <= kept <= 0.6 * n_words
        assert original[len(short)].isspace() and not short[-1].isspace()
    short_ones = [label for label in labels if label["original"] in ("Yes.", "Positive")]
    assert all(label["kind"] != "truncate" for label in short_ones)


def test_shuffle_keeps_the_words_and_changes_the_order():
    _, shuffled, _ = by_kind("shuffle")
    assert shuffled
    for label in shuffled:
        before, after = label["original"].split(), label["corrupted"].split()
        assert Counter(before) == Counter(after) and before != after


def test_number_changes_exactly_one_token():
    _, changed, _ = by_kind("number")
    assert changed
    for label in changed:
        before, after = label["original"].split(), label["corrupted"].split()
        assert len(before) == len(after)
        assert sum(a != b for a, b in zip(before, after, strict=True)) == 1


def test_number_keeps_list_markers_and_digit_counts():
    records = [{"output": "1. Bake at 180 degrees\n2. Wait"}, {"output": "Other answer here."}]
    for seed in range(20):
        objs, labels = corrupt(records, 0.5, seed, kinds=["number", "empty"])
        for obj, label in zip(objs, labels, strict=True):
            if label["kind"] == "number" and label["index"] == 0:
                assert obj["output"].startswith("1. Bake at ") and "\n2. Wait" in obj["output"]
                assert len(obj["output"]) == len(records[0]["output"])


def test_number_falls_back_to_an_entity_from_another_record():
    records = [
        {"response": "We visited Paris last spring with friends."},
        {"response": "The meeting was moved to Berlin this year."},
    ]
    objects, labels = corrupt(records, 1.0, seed=1, kinds="number")
    assert objects[0]["response"] == "We visited Berlin last spring with friends."
    assert objects[1]["response"] == "The meeting was moved to Paris this year."


def test_empty_uses_a_non_empty_placeholder_that_the_reader_accepts(tmp_path):
    records, emptied, _ = by_kind("empty")
    assert len(emptied) == 20
    for label in emptied:
        assert label["corrupted"] in PLACEHOLDERS and label["corrupted"].strip()
    objects, labels = corrupt(records, 0.5, 0)
    noisy, label_path = write_corrupted(tmp_path / "noise", objects, labels)
    data = read_dataset(noisy)  # no record rejected: every corrupted record is still scored
    assert [r.id for r in data.records] == [str(r["id"]) for r in records] and not data.bad
    written = [json.loads(line) for line in label_path.read_text().splitlines()]
    assert written == labels


def test_fallback_when_no_kind_applies_to_a_record():
    with pytest.raises(TamisError, match="add 'empty'"):
        corrupt([{"output": "Yes."}], 1.0, 0, kinds=["shuffle", "truncate"])
    objects, labels = corrupt([{"output": "Yes."}], 1.0, 0, kinds=["shuffle", "empty"])
    assert labels[0]["kind"] == "empty"


def test_response_field_detection():
    assert find_response_field([{"instruction": "q", "context": "", "response": "a"}]) == "response"
    assert find_response_field([{"prompt": "q", "completion": "a"}]) == "completion"
    with pytest.raises(TamisError, match="output, response, completion"):
        find_response_field([{"messages": []}])
    with pytest.raises(TamisError, match="record 1: field 'output' must be text"):
        find_response_field([{"output": "a"}, {"output": None}])
    objects, _ = corrupt([{"answer": "one two three four"}], 1.0, 0, response_field="answer")
    assert objects[0]["answer"] != "one two three four"


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan"), "0.2", True])
def test_bad_rate(rate):
    with pytest.raises(TamisError, match="between 0 and 1"):
        corrupt(alpaca(4), rate, 0)


def test_bad_kinds():
    with pytest.raises(TamisError, match="unknown corruption 'typo'; choose one of: swap, trunc"):
        corrupt(alpaca(4), 0.5, 0, kinds=["swap", "typo"])
    with pytest.raises(TamisError, match="no corruption kinds"):
        corrupt(alpaca(4), 0.5, 0, kinds=[])


def test_edge_rates():
    records = alpaca(10)
    assert corrupt([], 0.5, 0) == ([], [])
    assert not corrupted_only(corrupt(records, 0.0, 0)[1])
    assert len(corrupted_only(corrupt(records, 1.0, 0)[1])) == 10
    assert len(corrupted_only(corrupt(records, 0.25, 0)[1])) == round(2.5)


words = st.text(alphabet="abcdefgXYZ0123456789.", min_size=1, max_size=6)
responses = st.lists(words, min_size=1, max_size=12).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(
    texts=st.lists(responses, min_size=1, max_size=25),
    rate=st.floats(0, 1),
    seed=st.integers(0, 2**32),
)
def test_property_count_determinism_and_untouched(texts, rate, seed):
    records = [{"id": f"r{i}", "output": t, "meta": i} for i, t in enumerate(texts)]
    objects, labels = corrupt(records, rate, seed)
    assert (objects, labels) == corrupt(records, rate, seed)
    bad = corrupted_only(labels)
    assert len(bad) == round(rate * len(records))
    for obj, rec, label in zip(objects, records, labels, strict=True):
        assert obj["id"] == rec["id"] == label["id"] and obj["meta"] == rec["meta"]
        changed = obj["output"] != rec["output"]
        assert changed == (label["kind"] is not None)
        if label["kind"] == "empty":
            assert obj["output"] in PLACEHOLDERS
        if label["kind"] == "shuffle":
            assert Counter(obj["output"].split()) == Counter(rec["output"].split())
        if label["kind"] == "truncate":
            assert rec["output"].startswith(obj["output"])


# The first five kinds, byte for byte as before the nine below were added (computed with that code).

OLD_FIVE = ("swap", "truncate", "shuffle", "number", "empty")
GOLDEN_RECORDS = [
    {
        "instruction": "When did Apollo 11 land?",
        "input": "",
        "output": "Apollo 11 landed on the Moon in 1969, with Neil Armstrong and Buzz Aldrin.",
    },
    {
        "instruction": "Give three tips.",
        "input": "",
        "output": "1. Eat well\n2. Sleep 8 hours\n3. Walk to Lyon often",
    },
    {
        "instruction": "Describe Rome.",
        "input": "city",
        "output": "Rome is old. It was founded, legend says, by Romulus and Remus.",
    },
]
APOLLO, TIPS, _ = (r["output"] for r in GOLDEN_RECORDS)
GOLDEN = {
    "swap": [TIPS, APOLLO, APOLLO],
    "truncate": [
        "Apollo 11 landed",
        "1. Eat well\n2. Sleep",
        "Rome is old. It was founded, legend",
    ],
    "shuffle": [
        "with the Apollo Aldrin. 11 Moon landed in Neil Armstrong and Buzz 1969, on",
        "3. Eat hours 8 often well to 1. Walk 2. Sleep Lyon",
        "old. Romulus by says, It and Remus. was legend is Rome founded,",
    ],
    "number": [
        "Apollo 11 landed on the Moon in 2024, with Neil Armstrong and Buzz Aldrin.",
        "1. Eat well\n2. Sleep 6 hours\n3. Walk to Lyon often",
        "Rome is old. It was founded, legend says, by Buzz and Remus.",
    ],
    "empty": ["I don't know.", "N/A", "N/A"],
}
GOLDEN_MIXED = [
    ("number", "Apollo 11 landed on the Moon in 2494, with Neil Armstrong and Buzz Aldrin."),
    ("empty", "I don't know."),
    ("swap", APOLLO),
    ("shuffle", "landed Buzz Armstrong Moon Neil and Apollo on 11 in Aldrin. the with 1969,"),
    ("swap", APOLLO),
    ("truncate", "Rome is old. It was founded,"),
]


def test_first_five_kinds_unchanged_byte_for_byte():
    assert KINDS[:5] == OLD_FIVE and len(KINDS) == 14
    for kind, expected in GOLDEN.items():
        _, labels = corrupt(GOLDEN_RECORDS, 1.0, 11, [kind])
        assert [label["corrupted"] for label in labels] == expected, kind
    _, labels = corrupt(GOLDEN_RECORDS * 2, 1.0, 5, OLD_FIVE)
    assert [(label["kind"], label["corrupted"]) for label in labels] == GOLDEN_MIXED
