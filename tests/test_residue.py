"""The residue rules (tamis.scorers.residue) on hand-made responses: what they flag, and the
answers they must leave alone because the prompt asked for them."""

import pytest

from tamis.data.records import Message, Record
from tamis.scorers.residue import REFUSAL, boilerplate, markup, refusal, template_leak


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
        ("Paris.\n\nHuman: Name a river.\n\nAssistant: The Seine.", "Name a capital.", 1.0),
        ("Paris.\n\nInstruction: Name a river.\nOutput: The Seine.", "Name a capital.", 1.0),
        ("User: Hi!\nAssistant: Hello, how can I help?", "Write a chat between two people.", 0.0),
        ("Instruction: list colours\nOutput: red, blue", "Write an instruction for GPT.", 0.0),
        ("Q: What did the fish say?\nA: Dam!", "Tell me a joke.", 0.0),
        ("Assistant: hi\nUser: bye", "Name a capital.", 0.0),  # an answer before any question
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


@pytest.mark.parametrize(
    ("response", "prompt", "expected"),
    [
        ("As an AI language model, I am unable to book flights.", "Book me a flight.", 1.0),
        ("I apologize, but I am unable to assist with that request.", "Summarise this.", 1.0),
        ("Sorry, I can't play the song on the keyboard.", "Play Despacito.", 1.0),
        ("I cannot set up a reminder for 8 am.", "Set up a reminder for 8 am.", 1.0),
        ("Paris. As a large language model, I have no favourite city.", "Best city?", 1.0),
        ("Unfortunately, I don't have access to the internet.", "Today's weather?", 1.0),
        # answers, not refusals: emotion, a sentence the task asked for, a later "cannot"
        ("I can't believe it!", "Write a sentence that expresses surprise.", 0.0),
        ("I can't stand being late.", "Write a sentence about punctuality.", 0.0),
        ("Water boils at 100 C. It cannot boil lower at sea level.", "When does water boil?", 0.0),
        # the prompt asks for a refusal, or is about AI: the words are the answer
        ("I'm sorry, but I cannot attend the dinner.", "Write a note declining a dinner.", 0.0),
        ("As an AI model, a chatbot answers questions.", "What does an AI chatbot do?", 0.0),
    ],
)
def test_refusal(response, prompt, expected):
    assert refusal(response, prompt) == expected


def test_a_system_prompt_naming_an_ai_assistant_does_not_excuse_a_refusal():
    record = Record(
        id="r",
        prompt=[
            Message("system", "You are a helpful AI assistant."),
            Message("user", "Book me a flight to Paris."),
        ],
        response="I'm sorry, but as an AI language model, I cannot book flights.",
        raw={},
    )
    assert REFUSAL.compute_all([record]) == {"refusal": [1.0]}
