"""The corruptions :mod:`tamis.data.noise` added to its first five: defects found in real
instruction data. Each is a pure function of the record's texts, another record's texts and a
generator seeded per ``(seed, index, kind)``; each returns the corrupted response, or None when it
does not apply to the record.

- ``loop``: a model stuck in a loop (Holtzman et al. 2020, "The Curious Case of Neural Text
  Degeneration"; the repetition filters of Gopher, data-juicer and NeMo Curator). Either the
  response up to the end of its first sentence (of three words or more; else its first line, else
  its first 12 words) followed by 3-8 more copies of that sentence, one per line when the response
  has several lines; or the response cut after 30-70% of its words followed by 5-15 more copies
  of its last 3-6 words. Applies to responses of ``MIN_WORDS`` words or more.
- ``copy_prompt``: the response is the prompt given back: the instruction, or, when the record has
  an input, the input or the instruction and the input (Alpaca holds dozens of outputs equal to
  their input). Applies to records with an instruction whose copy differs from the response.
- ``refusal``: a refusal or AI disclaimer in place of the answer ("As an AI language model", "I'm
  sorry, but I cannot"), the defect the ShareGPT and WizardLM "unfiltered" clean-ups remove
  (:data:`REFUSALS`; the ones naming the task only for records with an instruction). Applies to
  every record.
- ``runon``: the generator did not stop: the response runs on into a leaked next example, another
  record's instruction and response under a chat or Alpaca template's markers (:data:`RUNONS`).
  Applies to records with an instruction when another record has a different instruction and
  response.
- ``merge``: two answers merged into one (the Alpaca-cleaned project's "merged instructions"):
  the response, a blank line or a space, and another record's response. Applies when another
  record's response differs.
- ``escapes``: serialisation residue (Alpaca-cleaned: "extraneous escape and control
  characters"): newlines and tabs as the two characters ``\\n`` and ``\\t`` and quotes
  backslash-escaped, or HTML entities (``&amp;``, ``&quot;``, ``&#39;``, ``&lt;``, ``&gt;``, and
  ``<br>`` for a newline). Applies when the style changes two characters or more.
- ``markup``: HTML residue of a scraped page (the ShareGPT clean-up turns HTML into markdown):
  paragraphs in ``<p>``, list lines in ``<li>`` inside ``<ul>`` or ``<ol>``, maybe the whole in a
  ``<div>``, ``&nbsp;`` for some spaces after a sentence. Applies to responses with a word.
- ``typos``: keyboard or OCR noise: 10-20% (at least one) of the words of three letters or more
  get one edit each: a letter dropped, doubled, swapped with its neighbour in the word, or
  replaced by a neighbouring key, case kept. Applies to responses of ``MIN_WORDS`` words or more
  with two such words.
- ``boilerplate``: one to three lines of web boilerplate (:data:`BOILERPLATE`; the cookie,
  JavaScript, "terms of use" and "lorem ipsum" line filters of C4, Gopher and FineWeb) on their
  own lines before or after the response. Applies to every record.
"""

from __future__ import annotations

import random
import re

REFUSALS: tuple[str, ...] = (
    "I'm sorry, but as an AI language model, I cannot {task}.",
    "As an AI language model, I am unable to {task}.",
    "I apologize, but I am unable to assist with that request.",
    "As an AI, I do not have personal opinions or feelings, so I cannot answer this question.",
    "Unfortunately, I don't have access to the internet, so I can't provide that information.",
    "I'm sorry, I cannot {task} because I do not have enough information.",
    "As a language model, I don't have the ability to {task}.",
    "I'm not able to help with that. Is there anything else I can do for you?",
    "Sorry, I can't complete this task.",
    "I am an AI assistant and cannot browse the web or access real-time data.",
    "I'm afraid I can't do that. Please consult a qualified professional.",
    "This request goes beyond my capabilities as an AI model.",
)
RUNONS: tuple[str, ...] = (
    "\n\n### Instruction:\n{i}\n\n### Response:\n{r}",
    "\n\nHuman: {i}\n\nAssistant: {r}",
    "\n\nUser: {i}\nAssistant: {r}",
    "<|im_end|>\n<|im_start|>user\n{i}<|im_end|>\n<|im_start|>assistant\n{r}",
    "\n\nInstruction: {i}\nOutput: {r}",
    "\n\n[INST] {i} [/INST] {r}",
)
BOILERPLATE: tuple[str, ...] = (
    "Click here to subscribe to our newsletter!",
    "Copyright © 2021. All rights reserved.",
    "This website uses cookies to improve your experience.",
    "Share this: Facebook | Twitter | LinkedIn",
    "Posted by admin | 3 comments",
    "Read more »",
    "Please enable JavaScript to view the comments.",
    "Terms of Use | Privacy Policy | Contact Us",
    "Skip to main content",
    "Sign up for free to continue reading.",
    "Related posts:",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
)
DIVS: tuple[str, ...] = ("content", "answer", "post-body", "entry-content")
LOOP_UNIT_WORDS = 3  # a shorter first sentence ("Yes.", "1.") is not what a model loops on
_KEYS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS = {
    c: "".join(row[x] for x in (j - 1, j + 1) if 0 <= x < len(row))
    for row in _KEYS
    for j, c in enumerate(row)
}
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")
_LIST_LINE = re.compile(r"^\s*(?:[-*]|\d+[.)])\s+(.*)$")
_LETTER = re.compile(r"[A-Za-z]")


def task_of(instruction: str) -> str:
    """The instruction as the task a refusal names: at most 12 words on one line, final
    punctuation stripped, first letter lower-cased unless the first word is "I" or an acronym.

    >>> task_of("Name the capital of France.")
    'name the capital of France'
    """
    words = instruction.split()[:12]
    text = " ".join(words).rstrip(".?!:;,")
    first = words[0] if words else ""
    if first == "I" or first.startswith("I'") or first[1:2].isupper():
        return text
    return text[:1].lower() + text[1:]


def loop(text: str, rng: random.Random, min_words: int) -> str | None:
    """A degenerate repetition: a sentence loop or a phrase loop, chosen by ``rng``.

    Sentence loop: the response up to the end of its first sentence of :data:`LOOP_UNIT_WORDS`
    words or more (else its first line, else its first 12 words), then 3-8 more copies of that
    sentence joined by a newline when the response has several lines, else by a space. Phrase
    loop: the response cut after 30-70% of its words, then 5-15 more copies of its last 3-6
    words. Both end with a unit repeated four times or more, as greedy decoding does.
    """
    body = text.strip()
    ends = [m.end() for m in re.finditer(r"\S+", body)]
    if len(ends) < min_words:
        return None
    if rng.random() < 0.5:
        unit = _first_unit(body)
        sep = "\n" if "\n" in body else " "
        return sep.join([unit] * (1 + rng.randint(3, 8)))
    cut = max(3, round(len(ends) * rng.uniform(0.3, 0.7)))
    tail = body[: ends[cut - 1]].split()[-rng.randint(3, 6) :]
    return body[: ends[cut - 1]] + (" " + " ".join(tail)) * rng.randint(5, 15)


def _first_unit(body: str) -> str:
    """What a sentence loop repeats: the first sentence of :data:`LOOP_UNIT_WORDS` words or more
    on the first line, else that line when it has as many words, else the first 12 words."""
    line = body.split("\n", 1)[0].strip()
    for m in _SENTENCE_END.finditer(line):
        if len(line[: m.end()].split()) >= LOOP_UNIT_WORDS:
            return line[: m.end()]
    if line != body and len(line.split()) >= LOOP_UNIT_WORDS:
        return line
    return " ".join(body.split()[:12])


def copy_prompt(
    response: str, instruction: str | None, given: str | None, rng: random.Random
) -> str | None:
    """The prompt as the response: the instruction, or with an input (``given``) one of the
    instruction, the input, or both joined by a blank line; only copies that differ from
    ``response`` are drawn (a record whose answer is already its prompt is not corrupted by it)."""
    if not instruction:
        return None
    copies = [instruction, given, f"{instruction}\n\n{given}"] if given else [instruction]
    copies = [c for c in copies if c != response]
    return rng.choice(copies) if copies else None


def refusal(instruction: str | None, rng: random.Random) -> str:
    """A template of :data:`REFUSALS`, its ``{task}`` filled by :func:`task_of`; the templates
    that name a task are drawn only when the record has an instruction to name."""
    task = task_of(instruction) if instruction else ""
    template = rng.choice([t for t in REFUSALS if task or "{task}" not in t])
    return template.format(task=task)


def runon(text: str, other_instruction: str, other_response: str, rng: random.Random) -> str:
    """The response, then another record's instruction and response in one of :data:`RUNONS`'s
    template styles: the example a generator that missed its stop token writes next."""
    return text + rng.choice(RUNONS).format(i=other_instruction, r=other_response)


def merge(text: str, other: str, rng: random.Random) -> str:
    """The response, a blank line or a space, and another record's response: two answers that
    a careless merge of examples made one."""
    return text + rng.choice(["\n\n", " "]) + other


def escapes(text: str, rng: random.Random) -> str | None:
    """The response serialised once too often: backslash escapes (``\\`` doubled first so that the
    result decodes back, then newline, tab, ``"`` and ``'``) or HTML entities (``&`` first, then
    ``"``, ``'``, ``<``, ``>``, and ``<br>`` for a newline). ``rng`` picks the style tried first;
    the other is tried when the first would change fewer than two characters."""
    styles = ["backslash", "html"]
    rng.shuffle(styles)
    for style in styles:
        if style == "backslash":
            changed = sum(text.count(c) for c in "\\\n\t\"'")
            out = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
            out = out.replace('"', '\\"').replace("'", "\\'")
        else:
            changed = sum(text.count(c) for c in "&\"'<>\n")
            out = text.replace("&", "&amp;").replace('"', "&quot;").replace("'", "&#39;")
            out = out.replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br>")
        if changed >= 2:
            return out
    return None


def markup(text: str, rng: random.Random) -> str | None:
    """The response as the HTML of a scraped page: each blank-line separated block's list lines
    (``-``, ``*`` or ``1.``) as ``<li>`` in a ``<ul>`` or ``<ol>`` and its other lines as a
    ``<p>`` (lines joined by ``<br>``); the first space after a sentence end becomes ``&nbsp;``
    with probability 1/2; half the time the whole sits in a ``<div class>`` of :data:`DIVS`. The
    text between the tags is the response's, list markers aside."""
    if not re.search(r"\w", text):
        return None
    parts = []
    for block in re.split(r"\n\s*\n", text.strip()):
        runs: list[tuple[bool, list[str]]] = []  # (is a list, lines), consecutive lines grouped
        for line in block.split("\n"):
            item = _LIST_LINE.match(line)
            if runs and runs[-1][0] == bool(item):
                runs[-1][1].append(line)
            else:
                runs.append((bool(item), [line]))
        for is_list, lines in runs:
            if is_list:
                tag = "ol" if lines[0].lstrip()[:1].isdigit() else "ul"
                items = "".join(f"<li>{_LIST_LINE.match(x).group(1)}</li>" for x in lines)
                parts.append(f"<{tag}>{items}</{tag}>")
            else:
                parts.append("<p>" + "<br>".join(x.strip() for x in lines) + "</p>")
    # The first space after a sentence end; Dolly's two spaces become "&nbsp; ".
    html = re.sub(
        r"(?<=[.!?]) (?= *\S)", lambda m: "&nbsp;" if rng.random() < 0.5 else " ", "".join(parts)
    )
    if rng.random() < 0.5:
        html = f'<div class="{rng.choice(DIVS)}">{html}</div>'
    return html


def typos(text: str, rng: random.Random, min_words: int) -> str | None:
    """Keyboard or OCR noise: ``round`` of 10-20% of the whitespace-separated words with three
    ASCII letters or more (at least one word) get one edit each (see :func:`_edit`); everything
    else, whitespace included, is kept."""
    words = list(re.finditer(r"\S+", text))
    eligible = [m for m in words if len(_LETTER.findall(m.group())) >= 3]
    if len(words) < min_words or len(eligible) < 2:
        return None
    k = max(1, round(len(eligible) * rng.uniform(0.10, 0.20)))
    chosen = sorted(rng.sample(range(len(eligible)), k))
    out, last = [], 0
    for j in chosen:
        m = eligible[j]
        out.append(text[last : m.start()] + _edit(m.group(), rng))
        last = m.end()
    return "".join(out) + text[last:]


def _edit(word: str, rng: random.Random) -> str:
    """``word`` with one typing error at a letter drawn by ``rng``: the letter dropped, doubled,
    swapped with the next letter (or the one before at the end), or replaced by a neighbouring key
    in its QWERTY row, upper-case when it was. Always differs from ``word``. A swap of two equal
    letters would change nothing, so it replaces a letter instead."""
    letters = [m.start() for m in _LETTER.finditer(word)]
    i = rng.choice(letters)
    op = rng.choice(("drop", "double", "swap", "neighbour"))
    if op == "drop":
        return word[:i] + word[i + 1 :]
    if op == "double":
        return word[: i + 1] + word[i] + word[i + 1 :]
    if op == "swap":
        a = i if i + 1 in letters else i - 1 if i - 1 in letters else None
        if a is not None and word[a] != word[a + 1]:
            return word[:a] + word[a + 1] + word[a] + word[a + 2 :]
    new = rng.choice(_NEIGHBOURS[word[i].lower()])
    return word[:i] + (new.upper() if word[i].isupper() else new) + word[i + 1 :]


def boilerplate(text: str, rng: random.Random) -> str:
    """One to three distinct lines of :data:`BOILERPLATE` on their own lines, before or after the
    response (``rng``); the response itself is kept whole."""
    lines = "\n".join(rng.sample(BOILERPLATE, rng.randint(1, 3)))
    return f"{lines}\n{text}" if rng.random() < 0.5 else f"{text}\n{lines}"
