"""The corruptions :mod:`tamis.noise` added to its first five: defects found in real instruction
data. Each is a pure function of the record's texts, the dataset's texts and a seeded generator;
each returns the corrupted response, or None when it does not apply to the record.

- ``loop``: a model stuck in a loop (Holtzman et al. 2020, "The Curious Case of Neural Text
  Degeneration"; the repetition filters of Gopher, data-juicer and NeMo Curator). Either the
  first sentence (or line, or 12 words) followed by 3-8 more copies of it, or the response cut
  after 30-70% of its words followed by 5-15 copies of its last 3-6 words. Needs ``MIN_WORDS``.
- ``copy_prompt``: the response is the prompt given back: the instruction, the input, or both
  (Alpaca holds dozens of outputs equal to their input). Needs an instruction.
- ``refusal``: a refusal or AI disclaimer in place of the answer, the defect the ShareGPT and
  WizardLM "unfiltered" clean-ups remove (:data:`REFUSALS`, some naming the task).
- ``runon``: the generator did not stop: the response runs on into a leaked next example, another
  record's instruction and response under a chat or Alpaca template's markers (:data:`RUNONS`).
  Needs instructions.
- ``merge``: two answers merged into one (the Alpaca-cleaned project's "merged instructions"):
  the response followed by another record's response.
- ``escapes``: serialisation residue (Alpaca-cleaned: "extraneous escape and control
  characters"): newlines as the two characters ``\\n`` and quotes backslash-escaped, or HTML
  entities (``&quot;``, ``&#39;``, ``&amp;``, ``<br>``). Needs two characters to escape.
- ``markup``: HTML residue of a scraped page: paragraphs in ``<p>``, list lines in ``<li>``,
  the whole in a ``<div>``, ``&nbsp;`` after some sentences.
- ``typos``: keyboard or OCR noise: 10-20% of the words of three or more letters get one edit
  (a letter dropped, doubled, swapped with the next, or replaced by a keyboard neighbour).
- ``boilerplate``: one to three lines of web boilerplate (:data:`BOILERPLATE`; the line filters
  of C4, Gopher and FineWeb) before or after the response.
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
DIVS = ("content", "answer", "post-body", "entry-content")
_KEYS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]+")


def task_of(instruction: str) -> str:
    """The instruction as a task for a refusal: first letter lower-cased, final punctuation
    stripped, at most 12 words."""
    words = instruction.strip().split()[:12]
    text = " ".join(words).rstrip(".?!:;,")
    return text[:1].lower() + text[1:]


def loop(text: str, rng: random.Random, min_words: int) -> str | None:
    words = text.split()
    if len(words) < min_words:
        return None
    if rng.random() < 0.5:
        first = _SENTENCE.match(text.lstrip())
        line = text.strip().split("\n")[0].strip()
        unit = first.group().strip() if first else line if line != text.strip() else None
        unit = unit or " ".join(words[:12])
        sep = "\n" if "\n" in text.strip() else " "
        return sep.join([unit] * (1 + rng.randint(3, 8)))
    cut = max(3, round(len(words) * rng.uniform(0.3, 0.7)))
    n = min(rng.randint(3, 6), cut)
    tail = words[cut - n : cut]
    return " ".join(words[:cut] + tail * rng.randint(5, 15))


def copy_prompt(instruction: str | None, given: str | None, rng: random.Random) -> str | None:
    if not instruction:
        return None
    if given:
        return rng.choice([instruction, given, f"{instruction}\n\n{given}"])
    return instruction


def refusal(instruction: str | None, rng: random.Random) -> str:
    options = [t for t in REFUSALS if instruction or "{task}" not in t]
    template = rng.choice(options)
    return template.format(task=task_of(instruction)) if "{task}" in template else template


def runon(text: str, other_instruction: str, other_response: str, rng: random.Random) -> str:
    return text + rng.choice(RUNONS).format(i=other_instruction, r=other_response)


def merge(text: str, other: str, rng: random.Random) -> str:
    return text + rng.choice(["\n\n", " "]) + other


def escapes(text: str, rng: random.Random) -> str | None:
    styles = ["backslash", "html"]
    rng.shuffle(styles)
    for style in styles:
        if style == "backslash":
            changed = sum(text.count(c) for c in "\n\t\"'")
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
    if not re.search(r"\w", text):
        return None
    blocks = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.split("\n")
        items = [re.match(r"^\s*(?:[-*]|\d+[.)])\s+(.*)$", line) for line in lines]
        if len(lines) > 1 and all(items):
            tag = "ol" if re.match(r"^\s*\d", lines[0]) else "ul"
            inner = "".join(f"<li>{m.group(1)}</li>" for m in items)
            blocks.append(f"<{tag}>{inner}</{tag}>")
        else:
            blocks.append("<p>" + "<br>".join(lines) + "</p>")
    html = "".join(blocks)
    html = re.sub(
        r"([.!?]) (?=\S)", lambda m: m.group(1) + (" &nbsp;" if rng.random() < 0.5 else " "), html
    )
    if rng.random() < 0.5:
        html = f'<div class="{rng.choice(DIVS)}">{html}</div>'
    return html


def typos(text: str, rng: random.Random, min_words: int) -> str | None:
    spans = [m for m in re.finditer(r"[A-Za-z]{3,}", text)]
    if len(text.split()) < min_words or len(spans) < 2:
        return None
    k = max(1, round(len(spans) * rng.uniform(0.10, 0.20)))
    chosen = sorted(rng.sample(range(len(spans)), k))
    out, last = [], 0
    for j in chosen:
        m = spans[j]
        out.append(text[last : m.start()] + _edit(m.group(), rng))
        last = m.end()
    return "".join(out) + text[last:]


def _edit(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word))
    op = rng.choice(("drop", "double", "swap", "neighbour"))
    if op == "drop":
        return word[:i] + word[i + 1 :]
    if op == "double":
        return word[: i + 1] + word[i] + word[i + 1 :]
    if op == "swap" and i < len(word) - 1 and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    c = word[i].lower()
    row = next(r for r in _KEYS if c in r)
    j = row.index(c)
    near = [row[x] for x in (j - 1, j + 1) if 0 <= x < len(row)]
    new = rng.choice(near)
    return word[:i] + (new.upper() if word[i].isupper() else new) + word[i + 1 :]


def boilerplate(text: str, rng: random.Random) -> str:
    lines = "\n".join(rng.sample(BOILERPLATE, rng.randint(1, 3)))
    return f"{lines}\n{text}" if rng.random() < 0.5 else f"{text}\n{lines}"
