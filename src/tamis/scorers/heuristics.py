"""Heuristic filters every curation pipeline carries: text-only scorers, no model, no forward pass.

One scorer per column, named after it (``--scorer echo``); ``--scorer heuristics`` computes all
of them, with ``dup_exact`` and ``dup_near`` from :mod:`tamis.scorers.dedup`. Like every scorer
they never drop: ``--filter`` does, with reason ``filter_<column>``.

======================  ===================================================================  =======
column                  definition                                                           better
======================  ===================================================================  =======
``response_words``      number of words in the response (:func:`words`)                      higher
``echo``                1.0 when the response repeats a prompt part (:func:`echo`)           lower
``placeholder``         1.0 for a placeholder response (:func:`placeholder`)                 lower
``repetition``          share of word 3-grams repeating an earlier one (:func:`repetition`)  lower
``length_outlier``      abs robust z of log(1 + response_words) (:func:`length_outliers`)    lower
``non_text``            share of characters that are junk (:func:`non_text`)                 lower
======================  ===================================================================  =======

**Words.** NFKC-normalised and casefolded text, split into: each Chinese character and each
Japanese kana on its own (these scripts are written without spaces), each emoji and pictographic
symbol on its own (U+2600-27BF, U+2B00-2BFF, U+1F000-1FAFF: a one-emoji answer is not empty), and
maximal runs of letters (any script), combining marks, digits and underscores (``str.isalnum`` or
Unicode category M, so Arabic vowel marks and Devanagari vowel signs stay inside their word).
Punctuation, other symbols and whitespace separate words: ``"don't stop-now!"`` has 4 words (don,
t, stop, now). Thai, Lao, Khmer and Myanmar runs count as one word each.

:data:`DEFAULT_FILTERS` are the recommended ``--filter`` expressions (``--filter default``).
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Sequence

import numpy as np

from tamis.base.errors import TamisError
from tamis.data.records import Record
from tamis.scorers.base import TextScorer

ECHO_COVERAGE = 0.9
DEFAULT_FILTERS: tuple[str, ...] = (
    "response_words>=1",
    "placeholder==0",
    "echo==0",
    "repetition<=0.6",
    "non_text<=0.3",
    "dup_exact==0",
    "dup_near==0",
)
"""The recommended ``--filter`` expressions, applied in this order (the first one a record fails
is its drop reason). Thresholds and what they cost, measured on Alpaca 52k (51,969 readable
records) and Dolly 15k (14,993): together they drop 149 and 57 records (0.3% and 0.4%).

- ``response_words>=1``: a response without a single word (letters, digits, CJK or emoji) is bare
  punctuation, a broken generation. One word is kept: 2,345 Alpaca answers are one word
  (``positive``, ``4``), right for classification and short QA. Cost: 6 Alpaca answers, mostly
  legitimate (Morse code, an ASCII-art box, ``:-)``).
- ``placeholder==0``: drops 67 Alpaca records (``<nooutput>``, ``<noinput>``, ``no output``,
  ``n/a``, ``[insert bar chart]`` ...), one of them a real answer (``None.``); none in Dolly.
- ``echo==0``: drops 67 Alpaca and 41 Dolly records whose answer is the input or the passage
  unchanged (see :func:`echo` for why equality is case- and punctuation-sensitive).
- ``repetition<=0.6``: ``k`` copies of an ``m``-word sentence score ``(km - m - 2) / (km - 2)``:
  under 0.5 for two copies, 0.6 or more for three (``m >= 4``), towards 1 for a model stuck in a
  loop; 0.6 sits between with a margin on both sides. Natural answers score far lower (99.9% of
  Alpaca and Dolly <= 0.42); the 12 + 6 above 0.6 are small-vocabulary answers (lists of labels,
  one-hot vectors, musical notes, HTML tables), the cost of catching loops.
- ``non_text<=0.3``: text in any script, code and maths score 0 or nearly (the most in Alpaca and
  Dolly apart from one: 0.18, an e-mail regex); binary junk, mojibake and base64 blobs score 0.5
  to 1. Drops one Alpaca answer, a markdown image link whose URL is a long random token.
- ``dup_exact==0``, ``dup_near==0``: keep the first of each group by input order. Alpaca has no
  duplicates by either; Dolly 1 exact and 10 near duplicates (re-submissions with small edits).

``length_outlier`` is not a default: very short and very long answers are often right (one-word
labels, essays), and its scale depends on the dataset's mix, so no threshold holds across
datasets (Alpaca's largest is 2.5, Dolly's 3.9). Inspect with ``--by length_outlier
--keep-highest``, or set one per dataset, e.g. ``length_outlier<=3.5`` (Iglewicz and Hoaglin's cut
for robust z-scores).
"""

_ONE_CHAR_WORDS = (  # Chinese characters, Japanese kana, emoji: one word per character
    (0x2600, 0x27BF),
    (0x2B00, 0x2BFF),
    (0x3040, 0x30FF),
    (0x31F0, 0x31FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0xFF66, 0xFF9F),
    (0x1F000, 0x1FAFF),
    (0x20000, 0x323AF),
)


def _char_class(ranges: Sequence[tuple[int, int]]) -> str:
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )


@functools.cache
def _word_re() -> re.Pattern[str]:
    # Python's \w leaves out combining marks (Mn, Mc), which would split Arabic and Indic words
    # into letters; the marks are added from the Unicode database once (about 0.1 s).
    marks: list[tuple[int, int]] = []
    for cp in range(0x110000):
        if unicodedata.category(chr(cp))[0] == "M":
            if marks and marks[-1][1] == cp - 1:
                marks[-1] = (marks[-1][0], cp)
            else:
                marks.append((cp, cp))
    single = _char_class(_ONE_CHAR_WORDS)
    return re.compile(f"[{single}]|(?:[^\\W{single}]|[{_char_class(marks)}])+")


def normalize(text: str) -> str:
    """NFKC, casefold, and every run of whitespace as one space, stripped at both ends.

    >>> normalize("  Hello\\n\\tWORLD ")
    'hello world'
    """
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def words(text: str) -> list[str]:
    """The words of ``text``, NFKC-normalised and casefolded (see the module docstring).

    >>> words("Don't stop-now! 你好 مَرْحَبًا")
    ['don', 't', 'stop', 'now', '你', '好', 'مَرْحَبًا']
    """
    return _word_re().findall(unicodedata.normalize("NFKC", text).casefold())


def repetition(text: str, n: int = 3) -> float:
    """Duplicate word n-gram fraction: the share of the word n-grams of ``text`` that equal an
    earlier n-gram, ``1 - distinct / total`` over the ``len(words) - n + 1`` n-grams; 0.0 when
    there are fewer than ``n`` words. In [0, 1); lower is better.

    Gopher's repetition filters (Rae et al. 2021) count duplicate n-grams too, weighted by
    characters; here every n-gram counts once.

    >>> repetition("a b c a b c")  # abc, bca, cab, abc: one of four repeats
    0.25
    """
    if n < 1:
        raise TamisError(f"repetition n={n}: n-grams need n >= 1")
    w = words(text)
    grams = [tuple(w[i : i + n]) for i in range(len(w) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def squash(text: str) -> str:
    """NFKC with every run of whitespace as one space, stripped; case and punctuation kept.

    >>> squash(" Hello,\\n  World ")
    'Hello, World'
    """
    return " ".join(unicodedata.normalize("NFKC", text).split())


def echo(response: str, prompt_parts: Sequence[str], min_coverage: float = ECHO_COVERAGE) -> float:
    """1.0 when the response repeats a prompt part, else 0.0; lower is better.

    With ``R = squash(response)`` and ``P = squash(part)`` (whitespace normalised, case and
    punctuation kept), the response echoes ``part`` when ``R`` is not empty, occurs in ``P`` on
    whitespace boundaries (``" R "`` in ``" P "``), and covers at least ``min_coverage`` of it
    (``len(R) >= min_coverage * len(P)``, characters; 0.9 by default). Equality is the case
    ``R == P``; the rest is "the part, less a few words at either end".

    Why case and punctuation count, and why 90%: in Alpaca and Dolly, a response differing from
    the input only in case or punctuation is the task done (convert to upper case, fix the
    punctuation: 25 records differ from an input in case only), and a response covering half to
    90% of a part is mostly a correct extraction or deletion (pick one of two sentences, delete a
    word). Equality flags 107 of their 67k records, nearly all genuine echoes: a Dolly answer that
    copies its reference passage, an Alpaca "sort these" answer that returns the input unchanged.

    >>> echo("Sort: B, A", ["Sort: B, A"]), echo("sort: b, a", ["Sort: B, A"])
    (1.0, 0.0)
    >>> echo("Paris", ["Which is a capital: Paris or Lyon?"])
    0.0
    """
    if not 0 < min_coverage <= 1:
        raise TamisError(f"echo min_coverage={min_coverage}: give a share in (0, 1]")
    r = squash(response)
    if not r:
        return 0.0
    for part in prompt_parts:
        p = squash(part)
        if p and len(r) >= min_coverage * len(p) and f" {r} " in f" {p} ":
            return 1.0
    return 0.0


PLACEHOLDERS = frozenset(
    {
        "<nooutput>",
        "<no output>",
        "nooutput",
        "no output",
        "<noinput>",
        "noinput",
        "no input",
        "n/a",
        "n.a",
        "none",
        "null",
        "nil",
        "nan",
        "undefined",
        "todo",
        "tbd",
        "tba",
        "placeholder",
        "<placeholder>",
        "<empty>",
        "[empty]",
        "your answer here",
        "answer here",
        "insert answer here",
        "lorem ipsum",
    }
)
_FILLER = re.compile(r"^([\-\u2010-\u2015_.?*])(?: ?\1)*$")  # one filler character, repeated
_TEMPLATE = re.compile(
    r"^[\[<{]\s*(?:insert|your|enter|add|put|fill|type|write|paste|provide|answer|output)\b"
    r"[^\]>}]*[\]>}]$"
)


def placeholder(text: str) -> float:
    """1.0 when the whole response is a placeholder, else 0.0; lower is better.

    The response is normalised (:func:`normalize`), then surrounding quotes and backticks and
    trailing full stops are stripped. It is a placeholder when it then is

    - one of :data:`PLACEHOLDERS`: ``<nooutput>``, ``<no output>``, ``nooutput``, ``no output``,
      ``<noinput>``, ``noinput``, ``no input``, ``n/a``, ``n.a``, ``none``, ``null``, ``nil``,
      ``nan``, ``undefined``, ``todo``, ``tbd``, ``tba``, ``placeholder``, ``<placeholder>``,
      ``<empty>``, ``[empty]``, ``your answer here``, ``answer here``, ``insert answer here``,
      ``lorem ipsum`` (Alpaca marks unanswerable tasks ``<nooutput>``; ``nan`` and ``none`` are
      what a null becomes when a table is written out as text);
    - one filler character, repeated: a dash, ``_``, ``.``, ``?`` or ``*`` (``-``, ``...``, ``…``,
      ``???``, ``- - -``; not Morse code, which mixes dots and dashes);
    - one bracketed template, ``[...]``, ``<...>`` or ``{...}``, starting with insert,
      your, enter, add, put, fill, type, write, paste, provide, answer or output
      (``[insert answer here]``, ``<your response>``).

    A template *inside* a longer response (``Dear [Name], ...``) is not a placeholder, and neither
    is a refusal ("As an AI language model I cannot ..."): that is a different defect. ``None`` is
    also a real answer now and then ("Which of 4, 6, 8 are prime?"); such records are rare.

    >>> placeholder("N/A."), placeholder("[Insert your answer here]"), placeholder("No.")
    (1.0, 1.0, 0.0)
    """
    t = normalize(text).strip("\"'`\u2018\u2019\u201c\u201d ")
    if t.rstrip(". ") in PLACEHOLDERS or _FILLER.match(t) or _TEMPLATE.match(t):
        return 1.0
    return 0.0


_BLOB = re.compile(r"[A-Za-z0-9+/=]{32,}")
_BLOB_CHANGE_RATE = 0.45
_SYMBOL_RUN = re.compile(r"[!-/:-@\[-`{-~]{10,}")  # ASCII punctuation and symbols, no space
_JUNK_CATEGORIES = frozenset({"Cc", "Cs", "Co", "Cn"})


def non_text(text: str) -> float:
    """The share of the characters of ``text`` that are junk: ``junk / len(text)``, 0.0 for an
    empty string; lower is better. A character is junk (each counted once) when it is

    - a control character other than whitespace, a surrogate, a private-use or an unassigned code
      point (Unicode categories Cc, Cs, Co, Cn), or U+FFFD, the replacement character that
      undecodable bytes become;
    - inside a blob: a run of 32 or more characters from the base64 alphabet
      (``A-Z a-z 0-9 + / =``) holding an upper-case letter, a lower-case letter and a digit, where
      at least 45% of neighbouring characters change kind (upper, lower, digit, other). Random
      base64 changes kind at about 64% (over 99% of 32-character runs reach 45%); camelCase
      identifiers (``thisIsAVeryLongName2``: 41%) and URL paths (``uploads/2019/HomeNetwork``)
      stay below;
    - inside a run of 10 or more ASCII punctuation and symbol characters, no space between, with at
      least 4 different ones (``!@#$%^&*()``).

    Everything else is text: letters, digits and combining marks of every script (Arabic, Chinese,
    Devanagari ...), whitespace, all Unicode punctuation, and symbols (maths such as ``∑ ≤ ∫``,
    currency, emoji, and the format characters that join emoji sequences and order right-to-left
    text). Code and maths are therefore text: their operators are ASCII symbols in short runs,
    their identifiers letters; so are markdown rules and tables (``-----``, ``|---|---|``: fewer
    than 4 different symbols) and lower-case hex hashes.

    >>> non_text("ok\\x00\\x01")
    0.5
    """
    if not text:
        return 0.0
    junk = np.zeros(len(text), dtype=bool)
    for i, ch in enumerate(text):
        if ch == "\ufffd" or (unicodedata.category(ch) in _JUNK_CATEGORIES and not ch.isspace()):
            junk[i] = True
    for m in _BLOB.finditer(text):
        if _is_blob(m.group()):
            junk[m.start() : m.end()] = True
    for m in _SYMBOL_RUN.finditer(text):
        if len(set(m.group())) >= 4:
            junk[m.start() : m.end()] = True
    return float(junk.sum()) / len(text)


def _is_blob(run: str) -> bool:
    kinds = [
        "u" if c.isupper() else "l" if c.islower() else "d" if c.isdigit() else "s" for c in run
    ]
    if not {"u", "l", "d"} <= set(kinds):
        return False
    changes = sum(a != b for a, b in zip(kinds, kinds[1:], strict=False))
    return changes >= _BLOB_CHANGE_RATE * (len(run) - 1)


def robust_z(values: Sequence[float]) -> list[float]:
    """Robust z-scores: ``(x - median) / (1.4826 * MAD)`` with ``MAD = median(|x - median|)``;
    all 0.0 when MAD is 0 (half the values or more are equal) or there are no values. 1.4826 makes
    the MAD estimate the standard deviation of normal data.

    >>> [round(z, 3) for z in robust_z([1.0, 2.0, 3.0, 4.0, 100.0])]  # median 3, MAD 1
    [-1.349, -0.674, 0.0, 0.674, 65.426]
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return []
    med = np.median(x)
    mad = float(np.median(np.abs(x - med)))
    if mad == 0:
        return [0.0] * len(x)
    return ((x - med) / (1.4826 * mad)).tolist()


def length_outliers(n_words: Sequence[int]) -> list[float]:
    """``|robust_z(log(1 + n_words))|`` per record; lower is better (0 at the median length).

    The log makes lengths comparable by ratio (twice the median is as far as half of it), so the
    long tail of essays does not swamp the scale.
    """
    return [abs(z) for z in robust_z([math.log1p(n) for n in n_words])]


def prompt_parts(rec: Record) -> list[str]:
    """The texts a response may echo: every user message, and for Alpaca records the instruction
    and the input on their own (the user message joins them)."""
    parts = [m.content for m in rec.prompt if m.role == "user"]
    if rec.alpaca_fields:
        parts.extend(p for p in rec.alpaca_fields if p.strip())
    return parts


def _per_record(column: str, fn):
    def compute_all(records: list[Record]) -> dict[str, list[float]]:
        return {column: [float(fn(r)) for r in records]}

    return compute_all


def _length_outlier_all(records: list[Record]) -> dict[str, list[float]]:
    return {"length_outlier": length_outliers([len(words(r.response)) for r in records])}


RESPONSE_WORDS = TextScorer(
    "response_words",
    ("response_words",),
    "higher",
    _per_record("response_words", lambda r: len(words(r.response))),
)
ECHO = TextScorer(
    "echo", ("echo",), "lower", _per_record("echo", lambda r: echo(r.response, prompt_parts(r)))
)
PLACEHOLDER = TextScorer(
    "placeholder",
    ("placeholder",),
    "lower",
    _per_record("placeholder", lambda r: placeholder(r.response)),
)
REPETITION = TextScorer(
    "repetition",
    ("repetition",),
    "lower",
    _per_record("repetition", lambda r: repetition(r.response)),
)
LENGTH_OUTLIER = TextScorer("length_outlier", ("length_outlier",), "lower", _length_outlier_all)
NON_TEXT = TextScorer(
    "non_text", ("non_text",), "lower", _per_record("non_text", lambda r: non_text(r.response))
)
TEXT_SCORERS = (RESPONSE_WORDS, ECHO, PLACEHOLDER, REPETITION, LENGTH_OUTLIER, NON_TEXT)
