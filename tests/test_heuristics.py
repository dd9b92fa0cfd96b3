"""Heuristic scorers: hand-computed values of the pure functions, deduplication determinism, and
``tamis run --scorer heuristics --filter default`` end to end."""

import base64
import doctest
import json
import math
import random
import re
import unicodedata

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tamis.base.errors import TamisError
from tamis.cli import main
from tamis.data.records import to_record
from tamis.scorers import (
    DEFAULT_SCORERS,
    DIRECTIONS,
    HEURISTIC_SCORERS,
    dedup,
    get_scorers,
    heuristics,
)
from tamis.scorers.dedup import (
    DUP_EXACT,
    DUP_NEAR,
    duplicate_flags,
    near_duplicate_flags,
    shingles,
)
from tamis.scorers.heuristics import (
    DEFAULT_FILTERS,
    echo,
    length_outliers,
    non_text,
    normalize,
    placeholder,
    prompt_parts,
    repetition,
    robust_z,
    words,
)
from tamis.select import parse_filter

COLUMNS = (
    "response_words",
    "echo",
    "placeholder",
    "repetition",
    "length_outlier",
    "non_text",
    "dup_exact",
    "dup_near",
    "markup",
    "template_leak",
    "boilerplate",
    "refusal",
    "misspelt",
    "dangling",
    "loop_copies",
)


def alpaca(instruction, output, input_="", id_=None):
    obj = {"instruction": instruction, "input": input_, "output": output}
    if id_ is not None:
        obj["id"] = id_
    return obj


def record(instruction, output, input_=""):
    return to_record(alpaca(instruction, output, input_), "alpaca", "test")


VOCAB = [f"w{i}" for i in range(400)]


def text(seed, n=200):
    """n words drawn from 400 distinct ones: two such texts share almost no 5-gram."""
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCAB) for _ in range(n))


def replace_word(t, position, new="changed"):
    w = t.split()
    w[position] = new
    return " ".join(w)


# -- the docstring examples are hand-computed values too


@pytest.mark.parametrize("module", [heuristics, dedup])
def test_docstring_examples_hold(module):
    result = doctest.testmod(module)
    assert result.attempted >= 2 and result.failed == 0


# -- words and normalisation


def test_words_split_on_punctuation_and_keep_marks_of_every_script():
    assert words("Don't stop-now!") == ["don", "t", "stop", "now"]
    assert words("HELLO   World") == ["hello", "world"]
    # Devanagari vowel signs and Arabic vowel marks (Unicode category M) stay inside their word
    for s in ("हिन्दी भाषा", "مَرْحَبًا بِكُمْ"):
        assert words(s) == unicodedata.normalize("NFKC", s).split()
        assert len(words(s)) == 2
    # Chinese characters, kana and emoji are a word each; punctuation is not a word
    assert words("你好，世界。") == ["你", "好", "世", "界"]
    assert words("すし 🙂🎉") == ["す", "し", "🙂", "🎉"]
    assert words("snake_case x2 3.14") == ["snake_case", "x2", "3", "14"]
    assert words("... -- ?!") == []


def test_normalize_folds_case_width_and_whitespace():
    assert normalize("  Ｈｅｌｌｏ\n\tWORLD  ") == "hello world"  # NFKC turns full width ASCII
    assert normalize("Straße") == normalize("STRASSE")  # casefold, not lower


# -- repetition


def test_repetition_hand_computed():
    assert repetition("a b c a b c") == 0.25  # abc bca cab abc: 1 of 4 repeats
    assert repetition("x x x x x") == pytest.approx(2 / 3)  # xxx three times: 2 of 3
    assert repetition("one two three four") == 0.0
    assert repetition("one two") == 0.0  # fewer words than n: no 3-gram
    assert repetition("The cat. the CAT!", n=2) == pytest.approx(1 / 3)  # the-cat twice
    assert repetition("a b a b", n=1) == 0.5


@pytest.mark.parametrize("m,k", [(4, 2), (10, 2), (10, 3), (25, 3), (10, 4), (7, 10)])
def test_repetition_of_a_sentence_k_times_matches_the_formula(m, k):
    sentence = " ".join(f"s{i}" for i in range(m))
    expected = (k * m - m - 2) / (k * m - 2)
    assert repetition(" ".join([sentence] * k)) == pytest.approx(expected)


def test_default_repetition_threshold_separates_two_from_three_copies():
    limit = next(parse_filter(f) for f in DEFAULT_FILTERS if f.startswith("repetition"))
    for m in (4, 8, 20, 60):
        sentence = " ".join(f"s{i}" for i in range(m))
        assert limit.passes(repetition(f"{sentence} {sentence}"))
        assert not limit.passes(repetition(" ".join([sentence] * 3))) or m == 4
    assert not limit.passes(repetition("I am sorry. " * 10))


def test_repetition_rejects_bad_n():
    with pytest.raises(TamisError, match="n >= 1"):
        repetition("a b c", n=0)


@given(st.text(max_size=200))
def test_repetition_and_non_text_are_shares(s):
    assert 0.0 <= repetition(s) < 1.0
    assert 0.0 <= non_text(s) <= 1.0


# -- non_text

CODE = '''def mean(xs: list[float]) -> float:
    """Average; 0 for [] (see #12)."""
    if not xs:
        return 0.0
    return sum(xs) / len(xs)  # O(n) & exact: x**2 != x^2, {a: b}[key] <= 10
'''


@pytest.mark.parametrize(
    "clean",
    [
        "The quick brown fox jumps over the lazy dog.",
        "مرحبا بالعالم! كيف حالك اليوم؟",  # Arabic
        "\u200fשלום עולם\u200f",  # Hebrew inside right-to-left marks
        "你好，世界。今天天气很好！「引用」",  # Chinese with CJK punctuation
        "I love it 😍🔥👍🏽 ❤️ 👨\u200d👩\u200d👧 🇫🇷",  # skin tone, ZWJ family, flag
        CODE,
        "∑_{i=1}^{n} i² = n(n+1)/2, ∫₀¹ x dx = ½, α ≤ β → γ ∈ ℝ, 5 € ≈ $5.4",
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n----------\n==========",  # markdown
        "thisIsAVeryLongVariableNameForTesting2 = 1",  # camelCase identifier
        "https://example.com/wp-content/uploads/2019/02/HomeNetwork-Flowchart.jpg",
        "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ".. .-.. --- ...- .",  # Morse code
    ],
)
def test_non_text_is_zero_for_text_in_any_script_code_and_maths(clean):
    assert non_text(clean) == 0.0


def test_non_text_hand_computed():
    assert non_text("") == 0.0
    assert non_text("ok\x00\x01") == 0.5  # two control characters of four
    assert non_text("abc\ufffd") == 0.25  # the replacement character
    assert non_text("a\tb\nc") == 0.0  # whitespace controls are text
    assert non_text("\ue000x") == 0.5  # private use
    assert non_text("ab !@#$%^&*()") == pytest.approx(10 / 13)  # 10 symbols, 10 different
    assert non_text("ab !@#$%^&*(") == 0.0  # 9: too short a run
    blob = base64.b64encode(bytes(random.Random(0).getrandbits(8) for _ in range(60))).decode()
    assert len(blob) == 80 and non_text(blob) == 1.0
    assert non_text(f"Key: {blob}") == pytest.approx(80 / 85)


def test_non_text_of_random_bytes_is_high():
    rng = random.Random(7)
    junk = bytes(rng.getrandbits(8) for _ in range(2000)).decode("utf-8", errors="replace")
    assert non_text(junk) > 0.5
    limit = next(parse_filter(f) for f in DEFAULT_FILTERS if f.startswith("non_text"))
    assert not limit.passes(non_text(junk))
    assert limit.passes(non_text(CODE)) and limit.passes(non_text("Plain words, nothing more."))


# -- placeholder


@pytest.mark.parametrize(
    "text",
    [
        "<nooutput>",
        "<No Output>",
        "  N/A  ",
        "n/a.",
        '"N/A"',
        "None",
        "null",
        "NaN",
        "TODO",
        "-",
        "...",
        "…",
        "- - -",
        "???",
        "[Insert answer here]",
        "<your response>",
        "{enter text}",
        "[insert bar chart]",
    ],
)
def test_placeholders(text):
    assert placeholder(text) == 1.0


@pytest.mark.parametrize(
    "text",
    [
        "No.",
        "Na",  # sodium
        "None of the options is correct.",
        "As an AI language model, I cannot browse the internet.",  # a refusal, not a placeholder
        "Dear [Name], thank you for your letter.",  # a template inside a longer answer
        ".. .-.. --- ...- .",  # Morse code
        "(insert your answer)",
        "-1",
        "?!",
    ],
)
def test_not_placeholders(text):
    assert placeholder(text) == 0.0


# -- echo


def test_echo_equality_ignores_whitespace_only():
    assert echo("Sort: B, A", ["Sort: B, A"]) == 1.0
    assert echo("  Sort:\nB,   A ", ["Sort: B, A"]) == 1.0
    assert echo("sort: b, a", ["Sort: B, A"]) == 0.0  # case conversion is a task done
    assert echo("Sort: B, A.", ["Sort: B, A"]) == 0.0  # so is punctuation
    assert echo("anything", []) == 0.0


def test_echo_containment_needs_whole_words_and_coverage():
    part = "The quick brown fox jumps over the lazy dog."  # 44 characters
    head = "The quick brown fox jumps over the lazy"  # 39: 0.886 of the part
    assert echo(head, [part]) == 0.0
    assert echo(head, [part], min_coverage=0.88) == 1.0
    assert echo("Giraffe", ["Giraffes"], min_coverage=0.5) == 0.0  # not on a word boundary
    assert echo("Paris", ["Which is a capital: Paris or Lyon?"]) == 0.0
    with pytest.raises(TamisError, match="min_coverage"):
        echo("a", ["a"], min_coverage=0)


def test_echo_parts_are_user_messages_and_alpaca_fields():
    rec = record("Fix the grammar of this sentence.", "He go to school.", "He go to school.")
    assert prompt_parts(rec) == [
        "Fix the grammar of this sentence.\n\nHe go to school.",
        "Fix the grammar of this sentence.",
        "He go to school.",
    ]
    assert echo(rec.response, prompt_parts(rec)) == 1.0  # the input alone, unchanged
    chat = to_record(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Say hi."},
                {"role": "assistant", "content": "Hi."},
                {"role": "user", "content": "Again?"},
                {"role": "assistant", "content": "Say hi."},
            ]
        },
        "messages",
        "test",
    )
    assert prompt_parts(chat) == ["Say hi.", "Again?"]  # no system, no assistant turn
    assert echo(chat.response, prompt_parts(chat)) == 1.0
    assert echo("Be brief.", prompt_parts(chat)) == 0.0


# -- length outliers


def test_robust_z_and_length_outliers_hand_computed():
    z = robust_z([1.0, 2.0, 3.0, 4.0, 100.0])  # median 3, MAD 1
    assert z == pytest.approx([(x - 3) / 1.4826 for x in (1, 2, 3, 4, 100)])
    assert robust_z([5.0, 5.0, 5.0, 9.0]) == [0.0, 0.0, 0.0, 0.0]  # MAD 0
    assert robust_z([]) == []
    # log1p of 0, 1, 3, 7, 15 words is 0, 1, 2, 3, 4 times ln 2: median 2 ln 2, MAD ln 2
    assert length_outliers([0, 1, 3, 7, 15]) == pytest.approx(
        [abs(k - 2) / 1.4826 for k in range(5)]
    )
    assert math.isclose(length_outliers([0, 1, 3, 7, 15])[2], 0.0)


# -- duplicates


def test_duplicate_flags_keep_the_first_of_each_group():
    assert duplicate_flags(["a", "b", "a", "c", "b", "a"]) == [0.0, 0.0, 1.0, 0.0, 1.0, 1.0]
    assert duplicate_flags([]) == []


@settings(max_examples=200)
@given(st.lists(st.sampled_from(["a", "A", " a ", "a\n", "b", "B ", "ab", "a b", "a  b", ""])))
def test_exact_duplicate_count_is_len_minus_distinct_normalised(texts):
    keys = [normalize(t) for t in texts]
    flags = duplicate_flags(keys)
    assert sum(flags) == len(texts) - len(set(keys))
    seen = set()
    for key, flag in zip(keys, flags, strict=True):
        assert flag == (1.0 if key in seen else 0.0)
        seen.add(key)


def test_dup_exact_scorer_normalises_case_and_whitespace():
    recs = [
        record("Name a colour.", "Blue."),
        record("name a  colour.", "BLUE."),  # same after normalisation
        record("Name a colour.", "Blue!"),  # punctuation differs: not exact
        record("Name a colour.", "Blue.", "Sky"),  # another prompt
    ]
    ids = [r.id for r in recs]
    assert DUP_EXACT.compute_all(recs) == {
        "dup_exact": [0.0, 1.0, 0.0, 0.0],
        "dup_exact_of": [None, ids[0], None, None],  # what each duplicate repeats
    }


PASSAGE = text(1, 400)
ANSWER = text(2, 400)
GROUP = [  # mutual near duplicates: prompt and response each differ by a word or two
    (PASSAGE, ANSWER),
    (replace_word(PASSAGE, 50), replace_word(ANSWER, 60)),
    (PASSAGE, replace_word(replace_word(ANSWER, 100), 150)),
]
OTHERS = [
    (text(3), text(4)),
    (PASSAGE, text(5)),  # same passage, another answer: not a duplicate
    (text(6), ANSWER),  # same answer to another prompt: not a duplicate
    ("Name three fruits.", "Apple, pear, plum."),
    ("Name three birds.", "Apple, pear, plum."),  # short prompts must match word for word
]


def test_near_duplicates_flag_later_members_only():
    pairs = [GROUP[0], *OTHERS[:2], GROUP[1], *OTHERS[2:], GROUP[2]]
    flags = near_duplicate_flags(pairs)
    assert flags == [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert near_duplicate_flags(pairs) == flags  # deterministic
    # the same exact duplicate is a near duplicate too
    assert near_duplicate_flags([OTHERS[3], OTHERS[3]]) == [0.0, 1.0]


def test_shuffling_changes_which_duplicate_is_kept_not_how_many():
    pairs = [*GROUP, *OTHERS, GROUP[0]]  # the group has 4 members with the exact copy
    kept_members = set()
    for seed in range(6):
        order = list(range(len(pairs)))
        random.Random(seed).shuffle(order)
        shuffled = [pairs[i] for i in order]
        near = near_duplicate_flags(shuffled)
        exact = duplicate_flags([normalize(p) + "\x00" + normalize(r) for p, r in shuffled])
        by_original = {o: (n, e) for o, n, e in zip(order, near, exact, strict=True)}
        members = [0, 1, 2, len(pairs) - 1]
        assert sum(by_original[i][0] for i in members) == 3
        assert sum(by_original[i][0] for i in range(len(pairs)) if i not in members) == 0
        assert sum(by_original[i][1] for i in (0, len(pairs) - 1)) == 1
        first = min(members, key=order.index)
        assert by_original[first][0] == 0.0
        kept_members.add(first)
    assert len(kept_members) > 1  # the order did change which one is kept


def test_near_duplicates_are_compared_with_kept_records_only():
    # a chain: B is like A and C like B, but C is not like A
    a = text(20, 400)
    b = a
    for i in range(6):
        b = replace_word(b, 10 + 60 * i, "b")
    c = b
    for i in range(6):
        c = replace_word(c, 40 + 60 * i, "c")

    def jaccard(x, y):
        sx, sy = shingles(x), shingles(y)
        return len(sx & sy) / len(sx | sy)

    assert jaccard(a, b) > 0.85 and jaccard(b, c) > 0.85 and jaccard(a, c) < 0.75
    pairs = [("Same prompt.", t) for t in (a, b, c)]
    # B is dropped for A; C resembles only B, which was dropped, so C is kept
    assert near_duplicate_flags(pairs, num_perm=1024) == [0.0, 1.0, 0.0]
    assert near_duplicate_flags(pairs[::-1], num_perm=1024) == [0.0, 1.0, 0.0]
    assert near_duplicate_flags([pairs[1], pairs[0], pairs[2]], num_perm=1024) == [0.0, 1.0, 1.0]


def test_dup_near_scorer_on_records():
    recs = [record(p, r) for p, r in [GROUP[0], OTHERS[0], GROUP[1], GROUP[2]]]
    assert DUP_NEAR.compute_all(recs) == {
        "dup_near": [0.0, 0.0, 1.0, 1.0],
        "dup_near_of": [None, None, recs[0].id, recs[0].id],
    }


def test_near_duplicate_options_are_checked():
    with pytest.raises(TamisError, match="threshold"):
        near_duplicate_flags([("a", "b")], threshold=1.0)
    with pytest.raises(TamisError, match="num_perm"):
        near_duplicate_flags([("a", "b")], num_perm=4)


# -- registry


def test_heuristics_are_registered_but_not_default():
    assert [c for s in HEURISTIC_SCORERS for c in s.columns] == list(COLUMNS)
    assert not set(DEFAULT_SCORERS) & {s.name for s in HEURISTIC_SCORERS}
    assert [s.name for s in get_scorers(["heuristics"])] == list(COLUMNS)
    assert [s.name for s in get_scorers(["echo", "heuristics"])][:2] == ["echo", "response_words"]
    assert len(get_scorers(["heuristics", "echo"])) == len(COLUMNS)
    assert {c: DIRECTIONS[c] for c in COLUMNS} == {
        c: "higher" if c == "response_words" else "lower" for c in COLUMNS
    }
    with pytest.raises(TamisError, match="heuristics"):
        get_scorers(["heuristic"])


def test_default_filters_parse_and_name_heuristic_columns():
    filters = [parse_filter(f) for f in DEFAULT_FILTERS]
    assert {f.column for f in filters} <= set(COLUMNS)
    assert "length_outlier" not in {f.column for f in filters}


# -- end to end

GOOD = [
    alpaca(
        "Explain why the sky is blue.",
        "Sunlight is scattered by the molecules of the air, and blue light, with its short "
        "wavelength, is scattered much more than red light, so the sky looks blue.",
        id_="good-sky",
    ),
    alpaca(
        "Translate to French.",
        "Le chat dort sur le canapé.",
        "The cat is sleeping on the sofa.",
        id_="good-french",
    ),
    alpaca("Describe this text in a paragraph.", text(11, 120), text(10, 80), id_="good-long"),
    alpaca("Classify the sentiment.", "positive", "I loved this film!", id_="good-oneword"),
]
BAD = {
    "dup-exact": alpaca("explain why the sky is  blue.", GOOD[0]["output"].upper()),
    "dup-near": alpaca(GOOD[2]["instruction"], replace_word(text(11, 120), 60), text(10, 80)),
    "placeholder": alpaca("Draw a picture of a cat.", "<nooutput>"),
    "echo": alpaca(
        "Correct the spelling.", "The weather is nice today.", "The weather is nice today."
    ),
    "repetition": alpaca("Say sorry.", "I am so sorry. " * 12),
    "non_text": alpaca(
        "Show the file.",
        base64.b64encode(bytes(random.Random(3).getrandbits(8) for _ in range(120))).decode(),
    ),
    "response_words": alpaca("Punctuate this.", "?!"),
}
REASONS = {k: f"filter_{k.replace('-', '_')}" for k in BAD}


@pytest.fixture(scope="module")
def heuristic_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("heuristics")
    rows = [*GOOD]
    for key, obj in BAD.items():
        rows.append({"id": key, **obj})
    rows.insert(3, rows.pop(-1))  # mix good and bad
    data = tmp / "data.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    out = tmp / "out"
    argv = ["run", str(data), "-o", str(out), "--scorer", "heuristics", "--filter", "default"]
    code = main([*argv, "--by", "response_words", "-q"])
    return code, out


def read_jsonl(path):
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_default_filters_reject_each_bad_record_with_its_reason(heuristic_run):
    code, out = heuristic_run
    assert code == 0
    selected = read_jsonl(out / "selected.jsonl")
    rejected = {r["id"]: r for r in read_jsonl(out / "rejected.jsonl")}
    assert sorted(r["id"] for r in selected) == sorted(g["id"] for g in GOOD)
    assert selected == [g for g in GOOD]  # untouched, in input order
    assert {k: r["reason"] for k, r in rejected.items()} == REASONS
    assert all(r["detail"] and r["record"]["id"] == k for k, r in rejected.items())
    scores = pq.read_table(out / "scores.parquet")
    assert set(COLUMNS) <= set(scores.column_names) and "ppl" not in scores.column_names
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["score"]["computed"] == 0  # no forward pass for text scorers
    assert [f"{f['column']}{f['op']}" for f in manifest["selection"]["filters"]] == [
        f"{parse_filter(f).column}{parse_filter(f).op}" for f in DEFAULT_FILTERS
    ]


def test_select_again_with_a_looser_filter_keeps_the_repetitive_record(heuristic_run):
    _, out = heuristic_run
    argv = ["select", str(out), "--by", "response_words", "--filter", "repetition<=0.95", "-q"]
    assert main(argv) == 0  # "I am so sorry. " 12 times: 1 - 4/46 = 0.913
    assert read_jsonl(out / "rejected.jsonl") == []
    assert "repetition" in {r["id"] for r in read_jsonl(out / "selected.jsonl")}
    argv = ["select", str(out), "--by", "response_words", "--filter", "non_text<=0.3", "-q"]
    assert main([*argv, "--filter", "default"]) == 0
    rejected = {r["id"]: r["reason"] for r in read_jsonl(out / "rejected.jsonl")}
    assert rejected == REASONS
    filters = json.loads((out / "manifest.json").read_text())["selection"]["filters"]
    assert len(filters) == len(DEFAULT_FILTERS)  # given twice, applied once, first place kept
    assert filters[0]["column"] == "non_text"


def test_a_heuristics_only_run_says_no_model_pass_ran(heuristic_run, tmp_path, capsys):
    _, out = heuristic_run
    data = out.parent / "data.jsonl"
    assert main(["score", str(data), "-o", str(tmp_path / "h"), "--scorer", "heuristics"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"scored \d+ records with the text scorers only \(no model\) ->", err)
