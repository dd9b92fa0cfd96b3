"""``loop_copies``: a phrase repeated back to back (a greedy loop), on hand-made responses."""

from tamis.scorers.junk import LOOP_COPIES, junk_scores
from tamis.scorers.loops import loop_copies

LONG = (
    "Plastic bags take hundreds of years to break down. They clog drains, harm wildlife and "
    "end up in the sea, where turtles mistake them for jellyfish. Many cities now charge for "
    "them, and the number of bags used has fallen sharply since."
)


def test_a_loop_at_the_end_of_a_long_response_counts_its_copies():
    # the loop is a fifth of the words: the duplicate n-gram share stays far below 0.6
    looped = LONG + " and the number of bags used" + " has fallen sharply" * 6
    assert loop_copies(looped) == 6.0  # the first "has fallen sharply" is followed by "since"
    sentence = "The silvery canvas of the night."
    assert loop_copies(" ".join([sentence] * 5)) == 5.0
    assert loop_copies("\n".join([sentence] * 4)) == LOOP_COPIES


def test_clean_text_and_three_copies_stay_at_one_or_below_the_cut():
    assert loop_copies(LONG) == 1.0
    assert loop_copies("") == 1.0
    assert loop_copies("yes yes") == 1.0
    three = "Location, location, location. Buy where people want to live."
    assert loop_copies(three) < LOOP_COPIES


def test_phrases_without_a_real_word_do_not_count():
    assert loop_copies("Fa la la la la, la la la la. Fa la la la la, la la la la.") == 1.0
    assert loop_copies("2 x 2 x 2 x 2 x 2 x 3") == 1.0
    assert loop_copies("[1, 0, 1, 0, 1, 0, 1, 0, 1, 0]") == 1.0


def test_the_prompts_own_labels_and_requested_repeats_do_not_count():
    labels = "'odd', 'even', 'odd', 'even', 'odd', 'even', 'odd', 'even', 'odd', 'even'"
    assert loop_copies(labels) == 5.0
    assert loop_copies(labels, "Classify 1 to 10 as 'odd' or 'even'.") == 1.0
    chorus = "Shake it, shake it, shake it, shake it, shake it off tonight"
    assert loop_copies(chorus) == 5.0
    assert loop_copies(chorus, "Write the chorus of a dance song.") == 1.0


def test_fenced_code_is_left_out():
    code = "```python\n" + "layer = Dense(128, activation='relu')\n" * 5 + "```"
    assert loop_copies("Four equal layers:\n" + code) == 1.0
    assert loop_copies("layer dense relu " * 5) == 5.0  # the same words as prose


def test_junk_fires_looping_with_the_copies_in_the_detail():
    rows = [
        {"index": i, "id": f"r{i}", "status": "ok", "loop_copies": 1.0, "repetition": 0.05}
        for i in range(3)
    ]
    rows.append({"index": 3, "id": "loop", "status": "ok", "loop_copies": 7.0, "repetition": 0.2})
    got = junk_scores(rows)
    # no signal computed on a clean row that has only text flags: junk None, not junk
    assert [v.junk is not None and v.junk > 0 for v in got] == [False, False, False, True]
    assert got[3].signal == "looping"
    assert got[3].detail == "loop_copies=7 >= 4 (repeats a phrase back to back)"
