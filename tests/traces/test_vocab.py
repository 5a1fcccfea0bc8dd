"""Trace vocabularies: trace tokens by the tokenizer's own ids, or as plain text."""

from __future__ import annotations

import pytest

from tokenroll.traces.format import frames_to_text, pieces_to_ids, text_to_pieces
from tokenroll.traces.frames import Event, Frame, Special
from tokenroll.traces.prompts import full_trace_prompt, prompt_text
from tokenroll.traces.vocab import TraceVocab, VocabMode

FRAMES = [Frame(Event.LINE, "    return f(1)\n", state={}),
          Frame(Event.RETURN, "    return f(1)\n", value="1")]


class ByteTokenizer:
    """Bytes as ids; `added` strings (a control token, or trace tokens) get ids from 1000 up."""

    def __init__(self, added: list[str], special: list[str] = ()):
        self.ids = {text: 1000 + i for i, text in enumerate(added)}
        self.special_ids = frozenset(self.ids[text] for text in special)
        self.special_tokens = {"eos_token": "<eos>"} if "<eos>" in self.ids else {}

    def has_token(self, token):
        return token in self.ids

    def token_id(self, token):
        return self.ids[token]

    def encode(self, text):
        return list(text.encode())

    def decode(self, ids, skip_special_tokens=False):
        names = {i: text for text, i in self.ids.items()}
        out, run = [], []
        for i in [*ids, None]:
            if i is None or i in names:
                out.append(bytes(run).decode())
                run = []
                if i is not None:
                    out.append(names[i])
            else:
                run.append(i)
        return "".join(out)


def test_id_mode_uses_the_tokenizers_own_ids():
    # Trace tokens in reverse order from id 1000: none where CWM has them.
    tokenizer = ByteTokenizer([token.text for token in reversed(Special)])
    vocab = TraceVocab.of(tokenizer)
    assert vocab.mode is VocabMode.IDS
    assert vocab.special_ids[Special.FRAME_SEP] == 1007 and vocab.stop_token_ids == (1008,)
    prompt = vocab.encode(full_trace_prompt("def f(x):\n    return x", "f(1)"))
    assert prompt[:2] == [1009, 1000] and prompt[-1] == 1007
    ids = pieces_to_ids(text_to_pieces(frames_to_text(FRAMES)), tokenizer.encode, vocab.special_ids)
    assert ids[-2:] == [1007, 1008]
    assert vocab.text(ids) == frames_to_text(FRAMES)
    parsed = vocab.parse(ids)
    assert parsed.well_formed and [(f.event, f.source, f.state, f.value) for f in parsed.frames] == [
        (f.event, f.source, f.state, f.value) for f in FRAMES]


def test_text_mode_writes_and_reads_the_token_strings():
    tokenizer = ByteTokenizer(["<eos>", "<|end_of_text|>"], special=["<eos>", "<|end_of_text|>"])
    vocab = TraceVocab.of(tokenizer)
    assert vocab.mode is VocabMode.TEXT and vocab.stop_token_ids == (1000,)
    pieces = full_trace_prompt("def f(x):\n    return x", "f(1)")
    assert vocab.encode(pieces) == list(prompt_text(pieces).encode())
    text = frames_to_text(FRAMES)
    # The EOS that stopped generation is not part of the trace...
    assert vocab.text([*text.encode(), 1000]) == text
    assert vocab.parse([*text.encode(), 1000]).well_formed
    # ...but a trace token that is the tokenizer's own special token is.
    ended = frames_to_text(FRAMES, end=False).encode()
    assert vocab.parse([*ended, 1001]).well_formed


def test_modes_can_be_forced():
    cwm = ByteTokenizer([token.text for token in Special])
    assert TraceVocab.of(cwm, "text").mode is VocabMode.TEXT
    with pytest.raises(ValueError, match=r"lacks CWM's trace tokens <\|begin_of_text\|>, "):
        TraceVocab.of(ByteTokenizer([]), "ids")
    with pytest.raises(ValueError, match="must be auto, ids or text"):
        TraceVocab.of(cwm, "bytes")
