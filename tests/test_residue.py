"""The residue rules (tamis.scorers.residue) on hand-made responses: what they flag, and the
answers they must leave alone because the prompt asked for them."""

import pytest

from tamis.scorers.residue import boilerplate, markup, template_leak


@pytest.mark.parametrize(
    ("response", "prompt", "expected"),
    [
        ("<p>Paris is the capital.</p>", "Name the capital of France.", 1.0),
        ('Tom said \\"hi\\" to me.', "Write a sentence with a quote.", 1.0),
        ("Fish &amp; chips.", "Name a British dish.", 1.0),
        ("<p>Hello</p>", "Write an HTML paragraph saying hello.", 0.0),
        ("```\nprint('a\\nb')\n```", "Print two lines.", 0.0),
        ("If a < b and b > c, nothing follows.", "Explain transitivity.", 0.0),
        ("Paris is the capital of France.", "Name the capital of France.", 0.0),
    ],
)
def test_markup(response, prompt, expected):
    assert markup(response, prompt) == expected


@pytest.mark.parametrize(
    ("response", "prompt", "expected"),
    [
        ("Paris.\n\n### Instruction:\nName a river.", "Name a capital.", 1.0),
        ("Paris.<|im_end|>\n<|im_start|>user\nAnd Spain?", "Name a capital.", 1.0),
        ("Paris. [INST] Name a river. [/INST]", "Name a capital.", 1.0),
        ("User: hi\nAgent: hello", "Write a two-line dialogue.", 0.0),
        ("It reads ### Response: then the answer.", "What follows ### Response:?", 0.0),
    ],
)
def test_template_leak(response, prompt, expected):
    assert template_leak(response, prompt) == expected


@pytest.mark.parametrize(
    ("response", "prompt", "expected"),
    [
        ("Paris.\nPlease enable JavaScript to view the comments.", "Capital of France?", 1.0),
        ("This website uses cookies to improve your experience.\nParis.", "Capital?", 1.0),
        ("Paris.\nTerms of Use | Privacy Policy | Contact Us", "Capital of France?", 1.0),
        ("Lorem ipsum dolor sit amet.", "Write a haiku.", 1.0),
        # a topic, not boilerplate: JavaScript named as a language
        ("Java, Python and JavaScript.", "Name three programming languages.", 0.0),
        # the prompt asks for the policy, so the policy's words are the answer
        ("Our privacy policy explains what we collect.", "Write a privacy policy.", 0.0),
        ("Enable JavaScript in the browser's settings.", "How do I turn on JavaScript?", 0.0),
        ("The cookies are baked at 180 degrees.", "How do I bake cookies?", 0.0),
    ],
)
def test_boilerplate(response, prompt, expected):
    assert boilerplate(response, prompt) == expected
