"""Tapes of the sample run: token counts, step spans, markers, colours and tooltips, exactly."""

import pytest

from tests.viewer.runs import ADVANTAGES, CUT
from tokenroll.viewer import colours
from tokenroll.viewer.tapes import (
    StepSpan,
    Tape,
    advantage_scale,
    build_tapes,
    runs,
    tape_payload,
    token_colour,
    tooltip,
)


def spans(tape: Tape) -> list[tuple[int, int, int, int]]:
    return [(s.step, s.start, s.completion_start, s.end) for s in tape.spans]


def test_multi_turn_tapes_follow_the_training_samples(by_id):
    trajectory = by_id("multi")
    s0, s1, s2 = trajectory.steps
    tapes = build_tapes(trajectory)
    samples = trajectory.to_samples()
    assert [len(t) for t in tapes] == [len(s.token_ids) for s in samples] == [231, 284]
    assert [t.token_ids for t in tapes] == [s.token_ids for s in samples]
    # Step 1 extends step 0 (bridged), then was cut: step 2 starts a new sample.
    assert spans(tapes[0]) == [(0, 0, 183, 208), (1, 208, 227, 231)]
    assert spans(tapes[1]) == [(2, 0, 282, 284)]
    assert (len(s0.prompt_ids), len(s0.completion_ids), len(s1.prompt_ids), len(s1.completion_ids)) == (183, 25, 227, CUT)
    assert len(s2.prompt_ids) == 282
    assert tapes[0].is_truncated and not tapes[1].is_truncated
    assert tapes[0].completion == [183 <= i < 208 or 227 <= i < 231 for i in range(231)]
    assert tapes[0].loss_mask == samples[0].loss_mask
    assert tapes[0].step_of == [0] * 208 + [1] * 23


def test_markers_show_bridged_re_rendered_and_truncated_turns(by_id):
    first, second = build_tapes(by_id("multi"))
    assert [(m.position, m.kind, m.label) for m in first.markers()] == [
        (0, "step", "step 0 · first turn"),
        (208, "bridge", "step 1 · bridged"),
        (231, "truncated", "✂ truncated (length)"),
    ]
    assert [(m.position, m.kind, m.label) for m in second.markers()] == [(0, "render", "step 2 · re-rendered: length")]
    assert first.title == "sample 0 · steps 0–1 · 231 tokens · truncated"
    assert second.title == "sample 1 · step 2 · 284 tokens"


def test_step_labels():
    assert StepSpan(3, 0, 0, 0, built="bridge", drift=2).label == "step 3 · bridged · drift 2 tokens"
    assert StepSpan(3, 0, 0, 0, built="bridge", drift=0).label == "step 3 · bridged"
    assert StepSpan(1, 0, 0, 0, built="render", reason="prefix_mismatch").label == "step 1 · re-rendered: prefix_mismatch"
    assert StepSpan(0, 0, 0, 0, built="chat", text_only=True).label == "step 0 · chat · text only"
    assert StepSpan(4, 0, 0, 0).label == "step 4"


def test_logprobs_and_advantages_only_on_completion_tokens(by_id):
    trajectory = by_id("multi")
    first, second = build_tapes(trajectory)
    s0, _s1, _ = trajectory.steps
    assert first.logprobs[:183] == [None] * 183
    assert first.logprobs[183:208] == s0.completion_logprobs
    assert first.logprobs[208:227] == [None] * 19
    assert first.logprobs[227:] == [-0.125, -0.25, -0.375, -0.5]
    assert first.advantages[183:208] == [ADVANTAGES[0]] * 25
    assert first.advantages[227:] == [ADVANTAGES[1]] * CUT
    assert second.advantages[282:] == [ADVANTAGES[2]] * 2
    assert advantage_scale([first, second]) == 0.5


def test_loss_mask_colours(by_id):
    tape = build_tapes(by_id("multi"))[0]
    assert [token_colour(tape, i, "loss", 0.5) for i in (0, 182, 183, 207, 208, 227)] == [
        colours.FALSE, colours.FALSE, colours.TRUE, colours.TRUE, colours.FALSE, colours.TRUE,
    ]


def test_colour_by_every_column(by_id):
    tape = build_tapes(by_id("multi"))[0]
    tool_token = 216  # the tool result "3": message 2, content
    assert tape.roles == ["user", "assistant", "tool", "assistant"]
    assert token_colour(tape, 0, "role", 0.5) == colours.SCAFFOLD
    assert token_colour(tape, tool_token, "role", 0.5) == colours.ROLE_COLOURS["tool"]
    assert token_colour(tape, 183, "role", 0.5) == colours.ROLE_COLOURS["assistant"]
    assert token_colour(tape, tool_token, "message", 0.5) == colours.MESSAGE_PALETTE[2]
    assert token_colour(tape, 0, "message", 0.5) == colours.SCAFFOLD
    assert token_colour(tape, tool_token, "sampled", 0.5) == colours.FALSE
    assert token_colour(tape, tool_token, "content", 0.5) == colours.TRUE
    assert token_colour(tape, 0, "content", 0.5) == colours.FALSE
    assert token_colour(tape, 183, "advantage", 0.5) == "rgb(5, 113, 176)"  # +0.5 at scale 0.5: POSITIVE
    assert token_colour(tape, 227, "advantage", 0.5) == "rgb(225, 124, 140)"  # -0.25: halfway to NEGATIVE
    assert token_colour(tape, 0, "advantage", 0.5) == colours.NO_VALUE
    # t = 0.05 from #fcfbfd to #54278f: 252-8.4, 251-10.6, 253-5.5
    assert token_colour(tape, 230, "logprob", 0.5) == colours.logprob_colour(-0.5) == "rgb(244, 240, 248)"
    with pytest.raises(ValueError, match="unknown colouring mode 'rainbow'"):
        token_colour(tape, 0, "rainbow", 0.5)


def test_tooltips_show_id_text_message_role_logprob_and_advantage(by_id, sample_run):
    tape = build_tapes(by_id("multi"))[0]
    vocab = sample_run.vocab
    assert tooltip(tape, 0, vocab) == (
        "token 0 · id 151644\ntext: <|im_start|> (special)\nmessage: scaffolding\nrole: —\n"
        "step: 0 (prompt)\nsampled: no · content: no · loss: no\nlogprob: —\nadvantage: —"
    )
    assert tooltip(tape, 216, vocab) == (
        "token 216 · id 18\ntext: 3\nmessage: 2\nrole: tool (add)\n"
        "step: 1 (prompt)\nsampled: no · content: yes · loss: no\nlogprob: —\nadvantage: —"
    )
    assert tooltip(tape, 230, vocab) == (
        "token 230 · id 606\ntext: name\nmessage: 3\nrole: assistant\n"
        "step: 1 (completion)\nsampled: yes · content: yes · loss: yes\nlogprob: -0.5000\nadvantage: -0.2500"
    )
    assert tooltip(tape, 4, vocab).splitlines()[1] == "text: ·are"
    assert tooltip(tape, 2, vocab).splitlines()[1] == "text: ↵"
    assert tooltip(tape, 0, None).splitlines()[1] == "text: #151644"


def test_a_raw_token_sample_has_no_attribution_but_knows_its_completion(by_id, sample_run):
    trajectory = by_id("trace")
    (tape,) = build_tapes(trajectory)
    n_prompt = len(trajectory.steps[0].prompt_ids)
    assert (len(tape), n_prompt) == (19, 10)
    assert not tape.attributed and tape.title == "sample 0 · step 0 · 19 tokens · no prompt attribution"
    assert token_colour(tape, 0, "role", 1.0) == colours.UNKNOWN
    assert token_colour(tape, n_prompt, "role", 1.0) == colours.ROLE_COLOURS["assistant"]
    assert token_colour(tape, n_prompt, "message", 1.0) == colours.UNKNOWN
    assert token_colour(tape, n_prompt, "sampled", 1.0) == colours.UNKNOWN
    assert token_colour(tape, n_prompt, "loss", 1.0) == colours.TRUE
    assert tooltip(tape, 12, sample_run.vocab) == (
        "token 12 · id 6763\ntext: frame\nmessage: —\nrole: assistant\n"
        "step: 0 (completion)\nsampled: — · content: — · loss: yes\nlogprob: -1.5000\nadvantage: +1.0000"
    )


def test_a_text_only_chat_step_gives_an_empty_tape(by_id):
    (tape,) = build_tapes(by_id("chat"))
    assert len(tape) == 0
    assert [(m.position, m.label) for m in tape.markers()] == [(0, "step 0 · chat · text only")]


def test_runs_encode_booleans_as_numbers():
    assert runs([True, True, False]) == [1, 2, 0, 1]
    assert runs([0.5, 0.5, None, None, -1]) == [0.5, 2, None, 2, -1, 1]
    assert runs([]) == []


def test_payload_keeps_values_of_completion_tokens_only(by_id):
    tape = build_tapes(by_id("multi"))[0]
    payload = tape_payload(tape)
    assert len(payload["ids"]) == 231
    assert payload["loss"] == [0, 183, 1, 25, 0, 19, 1, 4]
    assert payload["lp"] == tape.logprobs[183:208] + tape.logprobs[227:231]
    assert payload["adv"] == [0.5, 25, -0.25, 4]
    assert payload["spans"] == [[0, 0, 183, 208], [1, 208, 227, 231]]
    assert payload["marks"][1] == [208, "bridge", "step 1 · bridged"]
    assert payload["roles"] == ["user", "assistant", "tool", "assistant"]
    assert payload["tools"] == [None, None, "add", None]
