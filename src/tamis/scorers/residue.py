"""Residue of the pipeline that made the data: markup, template markers, web boilerplate and
refusals in a response. Text scorers, no model; each 1.0 when found, else 0.0 (lower is better).

- ``markup``: HTML or serialisation residue that the prompt did not ask for: an HTML tag
  (``<p>``, ``</div>``, ``<br>``, ``<li>``; a known tag name, so ``a < b`` and ``<name>`` are not
  tags), an HTML entity (``&amp;``, ``&quot;``, ``&#39;``, ``&nbsp;``), or a literal escape
  sequence (the two characters ``\\n``, ``\\t``, ``\\"`` or ``\\'``) in a response without a code
  block. It is not residue when the prompt itself holds markup or escapes, or asks about HTML,
  XML, code or a program (``Write an HTML page``): there the response's tags are the answer.
  Scraped pages (ShareGPT's HTML-to-markdown clean-up) and double-escaped exports (Alpaca-cleaned's
  "extraneous escape characters") leave these.
- ``template_leak``: a chat or instruction template's marker inside the response:
  ``### Instruction``, ``### Input``, ``### Response`` (Alpaca), ``<|im_start|>``,
  ``<|im_end|>``, ``<|endoftext|>`` (ChatML, GPT), ``[INST]``, ``[/INST]``, ``<s>``, ``</s>``
  (Llama 2), unless the prompt has one too; or a chat turn: a line opening with a user's label
  (``Human:``, ``User:``, ``Instruction:``) and a later line opening with an assistant's
  (``Assistant:``, ``AI:``, ``GPT:``, ``Output:``, ``Response:``), unless the prompt asks for
  turns (it names a dialogue, conversation, chat, script, interview, role-play, transcript,
  turns, an exchange, a customer or an assistant, or instructions, prompts, GPT or a language
  model). A generator that
  did not stop writes the next example after its answer. One role name alone is no marker:
  written dialogues and labelled lists use them, and ``Q:`` / ``A:`` tells jokes. On the whole
  of Alpaca 52k and Dolly 15k the chat-turn rule flags no record.
- ``boilerplate``: a line of web boilerplate, by the line rules of C4 (Raffel et al. 2020; the
  rules FineWeb's C4 filter and datatrove reuse), narrowed to the banner and footer shapes: a
  warning that JavaScript should be enabled (C4 drops every line naming JavaScript, but in
  instruction data it is a topic), a site policy (``terms of use``, ``privacy policy``,
  ``cookie policy``, ``use of cookies``, ``this website uses cookies``, ``we use cookies``) or
  ``lorem ipsum`` placeholder text. It is not boilerplate when the prompt uses the same words
  (``Write a privacy policy``, a JavaScript question): there the line is the answer. On real
  data it flags 9 of Alpaca 52k's records (registration forms and account set-ups that name
  their terms of use or privacy policy) and none of Dolly's.
- ``refusal``: a refusal or an AI disclaimer in place of the answer, the defect that the ShareGPT
  and WizardLM "unfiltered" clean-ups remove from model-written data: the response speaks as an
  AI (``as an AI``, ``as a (large) language model``, ``I am an AI``, ``beyond my capabilities``)
  anywhere, or its first sentence declines: an apology (``I'm sorry``, ``I apologize``,
  ``sorry``, ``I'm afraid``) followed by ``I can't``, ``I cannot``, ``I am unable to``, ``I'm
  not able to``; or one of those, maybe after ``Unfortunately``, followed by a task verb (``do``,
  ``help``, ``assist``, ``provide``, ``answer``, ``create``, ``generate``, ``play``, ...; not
  ``I can't believe``); or ``I do not have access`` / ``the ability``. It is not a refusal when
  the user's messages are about AI, language models, chatbots or assistants (a system prompt
  that names "a helpful AI assistant" does not count), or ask to refuse, decline,
  apologise or reject (``Write a polite reply declining the invitation``). On real data it flags
  6 of Alpaca 52k's records (5 real refusals: "I cannot set up a reminder", "I am not able to
  generate a logo") and 11 of Dolly 15k's (human-written AI disclaimers: "As a Large Language
  Model (LLM), I don't have feelings", and two answers to trick questions that open with
  "Unfortunately, I can't answer that question").

Measured on the whole of Alpaca 52k and Dolly 15k (the cost on real data): see
``docs/guide.md#junk``.
"""

from __future__ import annotations

import re

from tamis.data.records import Record
from tamis.scorers.base import TextScorer

_TAGS = (
    "p|br|div|span|li|ul|ol|a|b|i|em|strong|h[1-6]|table|tr|td|th|tbody|thead|img|hr|pre|code|"
    "blockquote|section|article|header|footer|nav|body|html|head|title|script|style|font|center|"
    "small|sup|sub|u|s|label|input|form|button|iframe|meta|link"
)
_TAG = re.compile(rf"</?(?:{_TAGS})(?:\s+[^<>]*)?/?>", re.IGNORECASE)
_ENTITY = re.compile(r"&(?:[a-z]{2,8}|#\d{2,5}|#x[0-9a-f]{2,4});", re.IGNORECASE)
_ESCAPE = re.compile(r"\\[nt](?![A-Za-z])|\\[\"']")  # not LaTeX's \times, \newline
_CODE_PROMPT = re.compile(
    r"\b(html|xml|css|markup|tag|tags|code|program|script|function|regex|json|string|escape|"
    r"python|java|javascript|c\+\+|sql|latex|markdown|web ?page|website|form|react|component|"
    r"equation|formula)\b",
    re.IGNORECASE,
)
_LEAK = re.compile(
    r"###\s*(?:instruction|input|response)\b|<\|(?:im_start|im_end|endoftext)\|>|\[/?INST\]|</?s>",
    re.IGNORECASE,
)
# A chat turn written into the response: a line opening with a user's label, then one opening with
# an assistant's (the next example of a Human/Assistant or Instruction/Output format).
_USER_TURN = re.compile(r"^[ \t#*]*(?:human|user|instruction)[ \t]*:", re.IGNORECASE | re.MULTILINE)
_ASSISTANT_TURN = re.compile(
    r"^[ \t#*]*(?:assistant|ai|gpt|output|response)[ \t]*:", re.IGNORECASE | re.MULTILINE
)
# A prompt that asks for turns: a dialogue, a script, or instructions for a model.
_ASKS_TURNS = re.compile(
    r"\b(?:dialog|conversation|chat|script|interview|role[- ]?play|transcript|turns|customer|"
    r"exchange|assistant|instruction|prompt|gpt|language model)",
    re.IGNORECASE,
)
# C4's line rules, narrowed to the banner and footer shapes (a line that names JavaScript or
# cookies in passing is an answer): (pattern, the prompt words that make such a line an answer).
_BOILERPLATE = (
    (
        re.compile(
            r"\b(?:please )?(?:enable|turn on|activate) javascript\b|"
            r"\bjavascript (?:is )?(?:required|disabled|not enabled|must be enabled)\b|"
            r"\bjavascript in your browser\b",
            re.IGNORECASE,
        ),
        re.compile(r"\bjavascript\b", re.IGNORECASE),
    ),
    (
        re.compile(
            r"\b(?:terms of use|privacy policy|cookie policy|use of cookies|"
            r"(?:this|our) (?:site|website) uses cookies|we use cookies)\b",
            re.IGNORECASE,
        ),
        re.compile(r"\b(?:terms|privacy|policy|policies|cookies?)\b", re.IGNORECASE),
    ),
    (re.compile(r"\blorem ipsum\b", re.IGNORECASE), re.compile(r"\blorem\b", re.IGNORECASE)),
)

_AS_AI = re.compile(
    r"\bas an? (?:ai|artificial intelligence|(?:large )?language model)\b|"
    r"\bi(?:'m| am) (?:just |only |merely )?an? "
    r"(?:ai|artificial intelligence|(?:large )?language model|virtual assistant|chatbot)\b|"
    r"\bbeyond my (?:capabilities|abilities)\b",
    re.IGNORECASE,
)
_NOT_ABLE = r"i(?: am|'m)? (?:can't|cannot|can not|unable to|not able to|won't be able to)"
_SORRY = re.compile(
    r"^\W*(?:(?:i'm|i am) (?:sorry|afraid)|i apologi[sz]e|sorry)\b[^.!?]*?\b" + _NOT_ABLE + r"\b",
    re.IGNORECASE,
)
# What a model declines to do; "I can't believe it!" and "I can't stand waiting" are answers.
_TASK_VERB = (
    r"(?:do|help|assist|provide|complete|answer|perform|fulfill?|comply|create|generate|produce|"
    r"draw|design|play|set up|access|browse|see|view|open|display|show|give|share|offer|process|"
    r"execute|carry out|respond|search|look up|find|predict|express|have)"
)
_CANNOT = re.compile(
    r"^\W*(?:unfortunately,?\s*)?" + _NOT_ABLE + r" (?:\w+ )?" + _TASK_VERB + r"\b|"
    r"\bi (?:do not|don't) have (?:access|the ability)\b",
    re.IGNORECASE,
)
_ABOUT_AI_OR_REFUSING = re.compile(
    r"\b(?:ai|a\.i\.|artificial intelligence|language models?|chatbots?|(?:virtual )?assistants?|"
    r"refus\w*|declin\w*|apologi\w*|sorry|reject\w*|regret\w*)\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")


def markup(response: str, prompt: str) -> float:
    """1.0 when ``response`` holds markup or escape residue the prompt did not ask for (see the
    module docstring), else 0.0.

    >>> markup("<p>Paris is the capital.</p>", "Name the capital of France.")
    1.0
    >>> markup("<p>Hello</p>", "Write an HTML paragraph saying hello.")
    0.0
    """
    if "```" in response or _CODE_PROMPT.search(prompt):
        return 0.0
    if _TAG.search(prompt) or _ENTITY.search(prompt) or _ESCAPE.search(prompt):
        return 0.0
    found = _TAG.search(response) or _ENTITY.search(response) or _ESCAPE.search(response)
    return 1.0 if found else 0.0


def template_leak(response: str, prompt: str) -> float:
    """1.0 when ``response`` holds a template marker that ``prompt`` does not, else 0.0.

    >>> template_leak("Paris.\\n\\n### Instruction:\\nName a river.", "Name a capital.")
    1.0
    """
    if _LEAK.search(response) and not _LEAK.search(prompt):
        return 1.0
    return 1.0 if chat_turn(response) and not _ASKS_TURNS.search(prompt) else 0.0


def chat_turn(text: str) -> bool:
    """A line opening with a user's label (``Human:``, ``User:``, ``Instruction:``) followed by a
    line opening with an assistant's (``Assistant:``, ``AI:``, ``GPT:``, ``Output:``,
    ``Response:``)."""
    user = _USER_TURN.search(text)
    return bool(user and _ASSISTANT_TURN.search(text, user.end()))


def boilerplate(response: str, prompt: str) -> float:
    """1.0 when a line of ``response`` matches one of C4's boilerplate line rules and ``prompt``
    does not use the same words (see the module docstring), else 0.0.

    >>> boilerplate("Paris.\\nPlease enable JavaScript to view the comments.", "Capital of France?")
    1.0
    >>> boilerplate("Our privacy policy explains what we collect.", "Write a privacy policy.")
    0.0
    """
    for line_rule, prompt_rule in _BOILERPLATE:
        if line_rule.search(response) and not prompt_rule.search(prompt):
            return 1.0
    return 0.0


def refusal(response: str, prompt: str) -> float:
    """1.0 when ``response`` refuses the task or speaks as an AI and ``prompt`` neither is about
    AI nor asks for a refusal (see the module docstring), else 0.0.

    >>> refusal("I'm sorry, but as an AI language model, I cannot do that.", "Book me a flight.")
    1.0
    >>> refusal("I can't believe it!", "Write a sentence that expresses surprise.")
    0.0
    """
    if _ABOUT_AI_OR_REFUSING.search(prompt):
        return 0.0
    first = _SENTENCE_END.split(response.strip(), maxsplit=1)[0]
    if _AS_AI.search(response) or _SORRY.match(first) or _CANNOT.search(first):
        return 1.0
    return 0.0


def prompt_text(rec: Record, system: bool = True) -> str:
    """Every prompt message's text, joined; without the system messages for ``system=False``."""
    return "\n".join(m.content for m in rec.prompt if system or m.role != "system")


def _all(column: str, fn, system: bool = True):
    def compute_all(records: list[Record]) -> dict[str, list[float]]:
        return {column: [fn(r.response, prompt_text(r, system)) for r in records]}

    return compute_all


MARKUP = TextScorer("markup", ("markup",), "lower", _all("markup", markup))
TEMPLATE_LEAK = TextScorer(
    "template_leak", ("template_leak",), "lower", _all("template_leak", template_leak)
)
BOILERPLATE = TextScorer("boilerplate", ("boilerplate",), "lower", _all("boilerplate", boilerplate))
# A system prompt that names "a helpful AI assistant" says nothing about what the user asked.
REFUSAL = TextScorer("refusal", ("refusal",), "lower", _all("refusal", refusal, system=False))
RESIDUE_SCORERS = (MARKUP, TEMPLATE_LEAK, BOILERPLATE, REFUSAL)
