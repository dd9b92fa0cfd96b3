"""The nine corruption kinds of tamis.data.noise_kinds, each on hand-made examples. Pure Python."""

import html
import random
import re
from collections import Counter

from test_noise import alpaca

from tamis.data import noise_kinds
from tamis.data.noise import (
    corrupt,
)

# The defects of real instruction data (tamis.data.noise_kinds), each on hand-made examples.

ANSWER = "Paris is the capital of France. It lies on the Seine.\nIt has 2 million people."
BIRDS = "Robin and sparrow are birds."
SUM = "The sum of them is 5."
RECORDS = [
    {"instruction": "Name the capital of France.", "input": "", "output": ANSWER},
    {"instruction": "List two birds.", "input": "", "output": BIRDS},
    {"instruction": "Add 2 and 3.", "input": "2, 3", "output": SUM},
]
OTHERS = [("List two birds.", BIRDS), ("Add 2 and 3.", SUM)]


def one(kind, records=RECORDS, seed=0):
    """The corrupted text of the first record under ``kind`` (``empty`` for records ``kind``
    cannot corrupt), and all labels; every record corrupted."""
    _, labels = corrupt(records, 1.0, seed, [kind] * len(records) + ["empty"])
    assert labels[0]["kind"] == kind
    return labels[0]["corrupted"], labels


def test_new_kinds_deterministic_and_records_without_a_prompt():
    records = alpaca(60)
    assert corrupt(records, 0.5, 9) == corrupt(records, 0.5, 9)
    bare = [{"output": r["output"]} for r in records]
    _, labels = corrupt(bare, 1.0, 9)
    kinds = Counter(label["kind"] for label in labels)
    assert "copy_prompt" not in kinds and "runon" not in kinds and len(kinds) == 12
    refusals = [label["corrupted"] for label in labels if label["kind"] == "refusal"]
    assert refusals and all(text in noise_kinds.REFUSALS for text in refusals)


def test_prompt_fields_of_dolly_and_prompt_completion_records():
    dolly = [
        {"instruction": "Who wrote it?", "context": "A book.", "response": "An author did."},
        {"instruction": "Say yes.", "context": "", "response": "Yes, I say it."},
    ]
    _, labels = corrupt(dolly, 1.0, 0, "copy_prompt")
    assert labels[0]["corrupted"] in ("Who wrote it?", "A book.", "Who wrote it?\n\nA book.")
    assert labels[1]["corrupted"] == "Say yes."
    pairs = [{"prompt": "Q one?", "completion": "A one."}, {"question": "Q 2?", "output": "A."}]
    assert corrupt(pairs[:1], 1.0, 0, "copy_prompt")[0][0]["completion"] == "Q one?"
    assert corrupt(pairs[1:], 1.0, 0, "copy_prompt")[0][0]["output"] == "Q 2?"


def looped(text):
    """``(kept words, unit, copies)``: the shortest unit of words that ends ``text`` four or more
    times in a row, how many times, and the words before the last copies; None when none does."""
    words = text.split()
    for p in range(1, len(words) // 4 + 1):
        unit = words[-p:]
        copies = 1
        while words[len(words) - (copies + 1) * p : len(words) - copies * p] == unit:
            copies += 1
        if copies >= 4:
            return words[: len(words) - (copies - 1) * p], unit, copies
    return None


def test_loop_repeats_a_sentence_or_a_phrase():
    from tamis.scorers.heuristics import repetition

    forms = set()
    for seed in range(16):
        text, _ = one("loop", seed=seed)
        kept, unit, copies = looped(text)
        assert copies >= 4 and kept == ANSWER.split()[: len(kept)], text
        assert repetition(text) >= 0.6, text
        if " ".join(kept) == " ".join(unit) == "Paris is the capital of France.":  # sentence loop
            forms.add("sentence")
            assert text.count("Paris is the capital of France.") == copies <= 9
        else:  # the phrase loop: 3-6 words after 30-70% of the 16 words, 5-15 more times
            forms.add("phrase")
            assert 3 <= len(unit) <= 6 and 5 <= len(kept) <= 11 and 6 <= copies <= 16
            assert text.startswith(" ".join(ANSWER.split("\n")[0].split()[:5]))
    assert forms == {"sentence", "phrase"}
    # The unit: a first line without a sentence end; a first sentence of three words or more.
    for original, unit, sep in [
        ("Ingredients for the cake:\n- 2 eggs\n- flour", "Ingredients for the cake:", "\n"),
        ("Yes. The answer is four, not five.", "Yes. The answer is four, not five.", " "),
    ]:
        sentence_loops = {sep.join([unit] * n) for n in range(4, 10)}
        texts = {one("loop", [{"output": original}], seed)[0] for seed in range(8)}
        assert texts & sentence_loops and all(looped(t) for t in texts)
    assert noise_kinds.loop("Too short", random.Random(0), 4) is None


def test_copy_prompt_gives_the_prompt_back():
    text, labels = one("copy_prompt")
    assert text == "Name the capital of France."
    for seed in range(6):
        _, labels = one("copy_prompt", seed=seed)
        assert labels[2]["corrupted"] in ("Add 2 and 3.", "2, 3", "Add 2 and 3.\n\n2, 3")
    echo = [{"instruction": "Say hi.", "output": "Say hi."}, {"instruction": "Q?", "output": "A."}]
    _, labels = corrupt(echo, 1.0, 0, ["copy_prompt", "empty"])
    assert labels[0]["kind"] == "empty" and labels[1]["kind"] == "copy_prompt"


def test_refusal_is_a_filled_template():
    assert noise_kinds.task_of("Name the capital of France.") == "name the capital of France"
    assert noise_kinds.task_of("NASA: when was it founded?") == "NASA: when was it founded"
    long = "Write a very long and detailed story about a dragon who lives in a cave."
    assert (
        noise_kinds.task_of(long) == "write a very long and detailed story about a dragon who lives"
    )
    filled = {t.format(task="name the capital of France") for t in noise_kinds.REFUSALS}
    seen = set()
    for seed in range(30):
        text, _ = one("refusal", seed=seed)
        assert text in filled
        seen.add(text)
    assert any("name the capital of France" in text for text in seen) and len(seen) >= 6


def test_runon_continues_into_another_records_example():
    for seed in range(8):
        text, _ = one("runon", seed=seed)
        assert text.startswith(ANSWER)
        tails = {t.format(i=i, r=r) for t in noise_kinds.RUNONS for i, r in OTHERS}
        assert text[len(ANSWER) :] in tails
    lone = [{"output": "Answer one."}, {"instruction": "Q?", "output": "Answer two."}]
    _, labels = corrupt(lone, 1.0, 0, ["runon", "empty"])
    assert [label["kind"] for label in labels] == ["empty", "empty"]  # no other instruction


def test_merge_appends_another_records_response():
    for seed in range(8):
        text, _ = one("merge", seed=seed)
        assert text in {ANSWER + sep + r for sep in ("\n\n", " ") for _, r in OTHERS}


def unescape(text):
    """Both decodings of :func:`noise_kinds.escapes`'s styles."""
    codes = {"n": "\n", "t": "\t"}
    backslash = re.sub(r"\\(.)", lambda m: codes.get(m.group(1), m.group(1)), text, flags=re.S)
    return backslash, html.unescape(text.replace("<br>", "\n"))


def test_escapes_decode_back_to_the_original():
    original = ANSWER + ' "Yes," she said \\ & <b>it\'s</b>.\tEnd.'
    records = [{"instruction": "Say it.", "output": original}]
    styles = set()
    for seed in range(8):
        text, _ = one("escapes", records, seed)
        assert text != original and original in unescape(text)
        styles.add("html" if "&quot;" in text else "backslash")
        if "&quot;" not in text:
            assert "\\n" in text and "\\t" in text and '\\"' in text and "\\\\" in text
    assert styles == {"html", "backslash"}
    assert noise_kinds.escapes("One line only.\nTwo.", random.Random(0)) is None
    assert noise_kinds.escapes("Say 'hi'", random.Random(0)) in ("Say \\'hi\\'", "Say &#39;hi&#39;")


def test_markup_strips_back_to_the_words():
    listed = "Tips:\n1. Eat well. Daily.\n2. Sleep\n\nAlso:\n- Walk\n* Smile"
    records = [{"output": ANSWER}, {"output": listed}]
    for seed in range(6):
        _, labels = corrupt(records, 1.0, seed, "markup")
        for label in labels:
            text = label["corrupted"]
            stripped = re.sub(r"<[^>]+>", " ", text.replace("&nbsp;", " "))
            no_markers = re.sub(r"(?m)^\s*(?:[-*]|\d+[.)])\s+", "", label["original"])
            assert stripped.split() == no_markers.split()
            assert text.startswith(("<p>", "<div class="))
        assert "<ol><li>Eat well." in labels[1]["corrupted"]
        assert "<ul><li>Walk</li><li>Smile</li></ul>" in labels[1]["corrupted"]
    texts = [corrupt(records, 1.0, seed, "markup")[1][0]["corrupted"] for seed in range(12)]
    assert any("France.&nbsp;It" in t for t in texts) and any("<div" in t for t in texts)
    texts = {noise_kinds.markup("One.  Two.", random.Random(seed)) for seed in range(12)}
    no_div = {re.sub(r'^<div class="[^"]+">(.*)</div>$', r"\1", t) for t in texts}
    assert no_div == {"<p>One.&nbsp; Two.</p>", "<p>One.  Two.</p>"}  # Dolly's two spaces


def one_edit(a, b):
    """Whether ``b`` is ``a`` with one typo of :func:`noise_kinds._edit`."""
    if len(b) == len(a) - 1:
        return any(a[:i] + a[i + 1 :] == b for i in range(len(a)))
    if len(b) == len(a) + 1:
        return any(a[: i + 1] + a[i] + a[i + 1 :] == b for i in range(len(a)))
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    if len(diff) == 2:
        i, j = diff
        return j == i + 1 and a[i] == b[j] and a[j] == b[i]
    if len(diff) != 1:
        return False
    x, y = a[diff[0]], b[diff[0]]
    return x.isupper() == y.isupper() and y.lower() in noise_kinds._NEIGHBOURS[x.lower()]


def test_typos_edit_some_words_once():
    long = " ".join([ANSWER] * 3)  # 33 words of three letters or more
    for seed in range(10):
        text, _ = one("typos", [{"output": long}], seed)
        before, after = long.split(), text.split()
        assert len(before) == len(after) and text.count("\n") == long.count("\n")
        changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
        assert 3 <= len(changed) <= round(0.2 * 33)
        assert all(one_edit(a, b) for a, b in changed), changed
    short = "It is a dog or a cat."
    text, _ = one("typos", [{"output": short}])
    changed = [(a, b) for a, b in zip(short.split(), text.split(), strict=True) if a != b]
    assert len(changed) == 1 and changed[0][0] in ("dog", "cat.") and one_edit(*changed[0])
    assert noise_kinds.typos("It is a cat", random.Random(0), 4) is None  # one word to edit


def test_boilerplate_adds_lines_around_the_intact_answer():
    where = set()
    for seed in range(10):
        text, _ = one("boilerplate", seed=seed)
        if text.startswith(ANSWER + "\n"):
            extra, where = text[len(ANSWER) + 1 :], where | {"after"}
        else:
            assert text.endswith("\n" + ANSWER)
            extra, where = text[: -len(ANSWER) - 1], where | {"before"}
        lines = extra.split("\n")
        assert 1 <= len(lines) <= 3 and len(set(lines)) == len(lines)
        assert all(line in noise_kinds.BOILERPLATE for line in lines)
    assert where == {"before", "after"}
