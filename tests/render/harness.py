"""Shared checks for every renderer family: parity with Hugging Face, attribution, bridge, round trip.

A family's test module builds its renderer and the matching `transformers` tokenizer, then
runs these checks over `CORPUS` and over hypothesis-generated conversations. Where the
Hugging Face template refuses a conversation (`raise_exception`), the renderer must refuse
it too, with a RenderError.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jinja2
from hypothesis import strategies as st

from tests.assets import tokenizer_dir
from tests.render.glm_tokenizer import glm_hf_tokenizer
from tokenroll.core.attribution import SCAFFOLD, RenderedTokens
from tokenroll.render import RenderError, Renderer

# --- building blocks ------------------------------------------------------------------------

ADD_TOOL = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two numbers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web; returns the top result's text.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "What to look for"}},
            "required": ["query"],
        },
    },
}
TOOLS = [ADD_TOOL, SEARCH_TOOL]


def call(name: str, arguments: dict[str, Any], call_id: str) -> dict[str, Any]:
    """An OpenAI-style tool call with object arguments (what Hugging Face templates expect)."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def system(text: str) -> dict[str, Any]:
    return {"role": "system", "content": text}


def user(text: str | None) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(text: str | None, reasoning: str | None = None, calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = calls
    return message


def tool(text: str, call_id: str, name: str | None = None) -> dict[str, Any]:
    message = {"role": "tool", "content": text, "tool_call_id": call_id}
    if name is not None:
        message["name"] = name
    return message


@dataclass
class Case:
    """One conversation of the corpus, with what it exercises."""

    name: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    features: set[str] = field(default_factory=set)

    def __repr__(self) -> str:
        return self.name


def _long_conversation(turns: int, *, with_system: bool) -> list[dict[str, Any]]:
    messages = [system("You are a patient tutor.")] if with_system else []
    for turn in range(turns):
        messages.append(user(f"Question {turn}: what is {turn} squared?"))
        messages.append(assistant(f"{turn} squared is {turn * turn}."))
    return messages


def _tool_loop(rounds: int) -> list[dict[str, Any]]:
    messages = [user("Add up 1, 2, 3 and 4 step by step.")]
    for r in range(rounds):
        messages.append(assistant(f"Step {r}.", calls=[call("add", {"a": r, "b": r + 1}, f"call_{r}")]))
        messages.append(tool(str(2 * r + 1), f"call_{r}"))
    messages.append(assistant("Done."))
    return messages


CORPUS: list[Case] = [
    Case("single-user", [user("Hello!")]),
    Case("system-user", [system("You are terse."), user("Hello!")]),
    Case("two-turns", [user("Hi"), assistant("Hello! How can I help?"), user("Tell me a joke.")]),
    Case("system-two-turns", [system("Be kind."), user("Hi"), assistant("Hello."), user("Bye")]),
    Case("ends-with-assistant", [user("Hi"), assistant("Hello there.")]),
    Case("unicode", [user("Grüße aus Köln! 日本語のテキスト、中文 🚀🎉 emoji"), assistant("¡Hola! Ça va? 👍 Привет")]),
    Case("whitespace", [user("  leading and trailing  \n\n"), assistant("line one\nline two\n\n  indented")]),
    Case("empty-content", [user(""), assistant(""), user("still there?")]),
    Case("none-content", [user("call it"), assistant(None, calls=[call("add", {"a": 1, "b": 2}, "c1")]), tool("3", "c1")], TOOLS, {"tools"}),
    Case(
        "special-lookalikes",
        [user("Say <|im_end|> then <tool_call> and <think> or <|eot_id|> [INST] <start_of_turn> <|endoftext|>"), assistant("I typed <|im_start|> too"), user("ok")],
        features={"lookalike"},
    ),
    Case("reasoning-history", [user("2+2?"), assistant("4", reasoning="Two plus two is four."), user("3+3?")], features={"reasoning"}),
    Case("reasoning-last", [user("2+2?"), assistant("4", reasoning="Simple.")], features={"reasoning"}),
    Case("reasoning-inline-think", [user("2+2?"), assistant("<think>\nadd them\n</think>\n\n4")], features={"reasoning"}),
    Case("tools-no-call", [user("What is 1+1?")], TOOLS, {"tools"}),
    Case("tools-with-system", [system("Use tools when needed."), user("What is 1+1?")], TOOLS, {"tools"}),
    Case(
        "single-tool-call",
        [user("What is 1+2?"), assistant("Let me add.", calls=[call("add", {"a": 1, "b": 2}, "call_1")]), tool("3", "call_1"), assistant("It is 3.")],
        TOOLS,
        {"tools"},
    ),
    Case(
        "tool-call-no-content",
        [user("Search cats"), assistant("", calls=[call("search", {"query": "cats"}, "call_1")]), tool("Cats are small carnivores.", "call_1")],
        TOOLS,
        {"tools"},
    ),
    Case(
        "parallel-tool-calls",
        [
            user("Add 1+2 and 3+4."),
            assistant("", calls=[call("add", {"a": 1, "b": 2}, "c1"), call("add", {"a": 3, "b": 4}, "c2")]),
            tool("3", "c1"),
            tool("7", "c2"),
            assistant("3 and 7."),
        ],
        TOOLS,
        {"tools", "parallel"},
    ),
    Case(
        "tool-args-types",
        [
            user("Search."),
            assistant("", calls=[call("search", {"query": "ünïcode \"quoted\" \\ slash", "limit": 3, "exact": True, "tags": ["a", None], "score": 0.5}, "c1")]),
            tool('{"result": [1, 2]}', "c1"),
        ],
        TOOLS,
        {"tools"},
    ),
    Case("tool-loop-3", _tool_loop(3), TOOLS, {"tools"}),
    Case(
        "reasoning-and-tool-call",
        [
            user("What is 2+3?"),
            assistant("I will add.", reasoning="Use the add tool.", calls=[call("add", {"a": 2, "b": 3}, "c1")]),
            tool("5", "c1"),
            assistant("It is 5.", reasoning="The tool said 5."),
        ],
        TOOLS,
        {"tools", "reasoning"},
    ),
    Case("consecutive-users", [user("First."), user("Second."), assistant("Both read.")]),
    Case("system-mid-conversation", [user("Hi"), assistant("Hello."), system("Now answer in French."), user("Bye")]),
    Case(
        "tool-result-json-and-name",
        [
            user("Search for quotes."),
            assistant("", calls=[call("search", {"query": 'say "hi"\n'}, "c1")]),
            tool('{"results": ["a \\ b", "c\nd", "<tag>"], "count": 2}', "c1", name="search"),
            assistant("Found two."),
        ],
        TOOLS,
        {"tools"},
    ),
    Case("long-8", _long_conversation(8, with_system=True)),
    Case("long-32", _long_conversation(32, with_system=False)),
    Case("long-64", _long_conversation(64, with_system=True)),
]

# --- the Hugging Face reference ----------------------------------------------------------


# Families with no tokenizer files in the shared assets: their tokenizer is built at test time.
BUILT_TOKENIZERS: dict[str, Callable[[], Any]] = {
    "glm-4.6": lambda: glm_hf_tokenizer("glm-4.6"),
    "glm-4.7": lambda: glm_hf_tokenizer("glm-4.7"),
}


@functools.cache
def hf_tokenizer(family: str, template: str | None = None):
    """The `transformers` tokenizer of a family's shared folder (skips when the folder is absent).

    `template` names another chat template file in the folder to use instead of the config's.
    """
    if family in BUILT_TOKENIZERS:
        return BUILT_TOKENIZERS[family]()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir(family)))
    if template is not None:
        tokenizer.chat_template = (tokenizer_dir(family) / template).read_text(encoding="utf-8")
    return tokenizer


def pin_template_date(hf, date: str) -> None:
    """Make `strftime_now` in this tokenizer's chat template return `date` (YYYY-MM-DD) instead of today.

    Transformers compiles each template once (cached) with `strftime_now` as a Jinja global;
    the override goes on that compiled template only, so other templates keep the real clock.
    """
    from transformers.utils.chat_template_utils import _compile_jinja_template

    pinned = datetime.strptime(date, "%Y-%m-%d")
    _compile_jinja_template(hf.chat_template).globals["strftime_now"] = pinned.strftime


@functools.cache
def renderer_at(folder: str) -> Renderer:
    """The renderer `load_renderer` picks for a shared folder, loaded once per test session."""
    from tokenroll.render import load_renderer

    return load_renderer(tokenizer_dir(folder))


class TemplateRefused(Exception):
    """The Hugging Face template raised for this conversation."""


def _with_empty_content(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    fixed = copy.deepcopy(messages)
    for message in fixed:
        if message.get("content") is None:
            message["content"] = ""
    return fixed


def _arguments_as_text(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool-call arguments as JSON text (OpenAI's shape), for templates that concatenate them as strings."""
    fixed = copy.deepcopy(messages)
    for message in fixed:
        for tool_call in message.get("tool_calls") or []:
            arguments = tool_call["function"]["arguments"]
            if not isinstance(arguments, str):
                tool_call["function"]["arguments"] = json.dumps(arguments, ensure_ascii=False)
    return fixed


def _render_text(hf, messages, tools, add_generation_prompt, *, arguments_as_text: bool, keep_none: bool, **kwargs) -> str:
    """The template's text. `keep_none` renders as transformers 4 did, without dropping None-valued keys
    (transformers 5 drops them, which breaks templates that test `content is none`)."""
    if arguments_as_text:
        messages = _arguments_as_text(messages)
    if not keep_none:
        return hf.apply_chat_template(messages, tools=tools, add_generation_prompt=add_generation_prompt, tokenize=False, **kwargs)
    from transformers.utils.chat_template_utils import render_jinja_template

    rendered, _ = render_jinja_template(
        conversations=[messages],
        tools=tools,
        chat_template=hf.chat_template,
        add_generation_prompt=add_generation_prompt,
        **{**hf.special_tokens_map, **kwargs},
    )
    return rendered[0]


def reference_ids(hf, messages, tools=None, add_generation_prompt=False, *, arguments_as_text=False, keep_none=False, **kwargs) -> list[int]:
    """`apply_chat_template(..., tokenize=True)`; None content is retried as "" when the template cannot use None."""
    def apply(msgs):
        if arguments_as_text or keep_none:
            # What apply_chat_template does with tokenize=True: the rendered text, without adding special tokens.
            text = _render_text(hf, msgs, tools, add_generation_prompt, arguments_as_text=arguments_as_text, keep_none=keep_none, **kwargs)
            return list(hf.encode(text, add_special_tokens=False))
        return list(hf.apply_chat_template(msgs, tools=tools, add_generation_prompt=add_generation_prompt, tokenize=True, return_dict=False, **kwargs))

    try:
        try:
            return apply(copy.deepcopy(messages))
        except (TypeError, jinja2.UndefinedError):
            return apply(_with_empty_content(messages))
    except jinja2.TemplateError as exc:
        raise TemplateRefused(str(exc)) from None


def reference_text(hf, messages, tools=None, add_generation_prompt=False, *, arguments_as_text=False, keep_none=False, **kwargs) -> str:
    def apply(msgs):
        return _render_text(hf, msgs, tools, add_generation_prompt, arguments_as_text=arguments_as_text, keep_none=keep_none, **kwargs)

    try:
        return apply(copy.deepcopy(messages))
    except (TypeError, jinja2.UndefinedError):
        return apply(_with_empty_content(messages))


def check_parity(
    renderer: Renderer, hf, messages, tools=None, add_generation_prompt=False, *, arguments_as_text=False, keep_none=False, **kwargs
) -> RenderedTokens | None:
    """Ours equals Hugging Face's ids; with special-looking text, the text equals and bodies stay text.

    Returns our rendering, or None when both refused the conversation. `arguments_as_text` and
    `keep_none` shape the reference's input for templates that need it (see `reference_ids`).
    """
    reference = {"arguments_as_text": arguments_as_text, "keep_none": keep_none}
    try:
        expected = reference_ids(hf, messages, tools, add_generation_prompt, **reference, **kwargs)
    except TemplateRefused:
        try:
            renderer.render(messages, tools, add_generation_prompt, **kwargs)
        except RenderError:
            return None
        raise AssertionError("the Hugging Face template refused this conversation but the renderer did not")
    rendered = renderer.render(messages, tools, add_generation_prompt, **kwargs)
    if _has_lookalikes(renderer, messages):
        assert hf.decode(rendered.token_ids) == reference_text(hf, messages, tools, add_generation_prompt, **reference, **kwargs)
        added = set(renderer.tokenizer.markup_tokens.values())
        for position, token in enumerate(rendered.token_ids):
            if rendered.is_content[position] and not rendered.sampled_mask[position]:
                assert token not in added, f"body token {position} is the added token {token}"
    else:
        assert rendered.token_ids == expected, _first_difference(hf, rendered.token_ids, expected)
    return rendered


def _has_lookalikes(renderer: Renderer, messages) -> bool:
    texts = []
    for message in messages:
        texts += [message.get("content") or "", message.get("reasoning_content") or ""]
    return any(token in text for text in texts for token in renderer.tokenizer.markup_tokens)


def _first_difference(hf, ours: list[int], expected: list[int]) -> str:
    n = next((i for i, (a, b) in enumerate(zip(ours, expected)) if a != b), min(len(ours), len(expected)))
    return (
        f"first difference at token {n} (lengths {len(ours)} vs {len(expected)}):\n"
        f"ours     {hf.decode(ours[max(0, n - 8): n + 8])!r}\nexpected {hf.decode(expected[max(0, n - 8): n + 8])!r}"
    )


# --- attribution ------------------------------------------------------------------------------


def message_text(message: dict[str, Any]) -> str:
    return message.get("content") or ""


def check_attribution(
    renderer: Renderer,
    messages: list[dict[str, Any]],
    rendered: RenderedTokens,
    *,
    bodies_verbatim: Callable[[dict], bool] = lambda m: True,
    body_text: Callable[[dict], str] = message_text,
) -> None:
    """Every token's owner is right: bodies decode to their text, sampled tokens are the assistant turns.

    `body_text` is a non-assistant body as the template writes it (e.g. JSON-quoted tool results).
    """
    decode = renderer.tokenizer.decode
    stops = set(renderer.stop_token_ids)
    assert rendered.message_roles == [m["role"] for m in messages]
    for index, message in enumerate(messages):
        positions = [i for i, m in enumerate(rendered.message_indices) if m == index]
        if not positions:
            continue  # the template leaves this message out (gpt-oss: a later system message); ids are checked by parity
        if message["role"] == "assistant":
            sampled = [i for i in positions if rendered.sampled_mask[i]]
            if not sampled:
                continue
            assert sampled == list(range(sampled[0], sampled[-1] + 1)), f"message {index}: sampled tokens are not contiguous"
            assert all(rendered.is_content[i] for i in sampled)
            assert rendered.token_ids[sampled[-1]] in stops or not _closes_with_stop(renderer), f"message {index} does not end on a stop token"
        elif bodies_verbatim(message):
            body = decode([rendered.token_ids[i] for i in positions if rendered.is_content[i]])
            text = body_text(message)
            # A token may straddle the body's edge and the template's whitespace; it belongs to one side.
            assert body == text or body.strip() == text.strip(), f"message {index} body: {body!r} != {text!r}"
    for position, owner in enumerate(rendered.message_indices):
        if rendered.sampled_mask[position]:
            assert owner != SCAFFOLD and messages[owner]["role"] == "assistant", f"token {position} sampled outside an assistant turn"
    tool_bodies = [rendered.token_ids[i] for i, m in enumerate(rendered.content_mask_for_roles({"tool"})) if m]
    tool_messages = [m for m in messages if m["role"] == "tool"]
    tool_texts = [body_text(m) for m in tool_messages]
    if all(t == t.strip() for t in tool_texts) and all(bodies_verbatim(m) for m in tool_messages):
        assert decode(tool_bodies).replace("\n", "") == "".join(tool_texts).replace("\n", "")


def _closes_with_stop(renderer: Renderer) -> bool:
    return getattr(renderer, "assistant_turn_ends_with_stop", True)


# --- round trip -----------------------------------------------------------------------------


def check_round_trip(
    renderer: Renderer, messages: list[dict[str, Any]], tools=None, *, view: Callable[[dict], dict] = lambda m: m
) -> None:
    """Each assistant turn, rendered where it was sampled (last), parses back into the same message.

    `view` is what the template keeps of an assistant message (e.g. it drops content beside tool calls).
    """
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        message = view(message)
        rendered = renderer.render(messages[: index + 1], tools)
        sampled = [rendered.token_ids[i] for i, m in enumerate(rendered.message_indices) if m == index and rendered.sampled_mask[i]]
        if not sampled:
            continue
        parsed = renderer.parse_completion(sampled, tools=tools)
        assert parsed.content == (message.get("content") or ""), f"message {index} content"
        assert (parsed.reasoning_content or None) == (message.get("reasoning_content") or None), f"message {index} reasoning"
        expected_calls = [(c["function"]["name"], c["function"]["arguments"]) for c in message.get("tool_calls") or []]
        got_calls = [(c.name, c.arguments) for c in parsed.tool_calls]
        assert got_calls == expected_calls, f"message {index} tool calls"
        assert all(c.status == "ok" for c in parsed.tool_calls)


# --- bridge --------------------------------------------------------------------------------


def split_points(messages: list[dict[str, Any]]) -> list[int]:
    """Indices k where messages[k] is an assistant turn followed by tool/user messages only up to the next assistant."""
    points = []
    for k, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        following = messages[k + 1 :]
        new = []
        for m in following:
            if m["role"] == "assistant":
                break
            new.append(m)
        if new and all(m["role"] in ("tool", "user") for m in new):
            points.append(k)
    return points


def check_bridge(renderer: Renderer, messages: list[dict[str, Any]], k: int, tools=None, *, expect_equal: bool | None = None, **kwargs) -> RenderedTokens | None:
    """Bridge after assistant k: verbatim prefix; equal to a full re-render where that re-render keeps the prefix."""
    history, new = messages[:k], []
    for m in messages[k + 1 :]:
        if m["role"] == "assistant":
            break
        new.append(m)
    prompt = renderer.render(history, tools, add_generation_prompt=True, **kwargs)
    full_turn = renderer.render(messages[: k + 1], tools, **kwargs)
    completion = [full_turn.token_ids[i] for i, m in enumerate(full_turn.message_indices) if m == k and full_turn.sampled_mask[i]]
    full = renderer.render(messages[: k + 1] + new, tools, add_generation_prompt=True, **kwargs)
    stops = renderer.stop_token_ids
    if not (completion and completion[-1] in stops):
        # The turn closes with the next message's marker (GLM): the model sampled it, so take it from there.
        in_context = [full.token_ids[i] for i, m in enumerate(full.message_indices) if m == k and full.sampled_mask[i]]
        if in_context and in_context[-1] in stops:
            completion.append(in_context[-1])
    bridged = renderer.bridge(prompt.token_ids, completion, new, tools, prev_attribution=prompt, **kwargs)
    if bridged is None:
        return None
    n = len(prompt.token_ids) + len(completion)
    assert bridged.token_ids[:n] == prompt.token_ids + completion
    changed = [i for i, (a, b) in enumerate(zip(bridged.message_indices, prompt.message_indices)) if a != b]
    # Only the generation prompt may change hands: from scaffolding to the assistant it opened.
    assert changed == list(range(len(prompt.token_ids) - len(changed), len(prompt.token_ids)))
    assert all(prompt.message_indices[i] == SCAFFOLD and bridged.message_indices[i] == k for i in changed)
    assert bridged.sampled_mask[: len(prompt.token_ids)] == prompt.sampled_mask
    assert bridged.sampled_mask[len(prompt.token_ids) : n] == [True] * len(completion)
    prefix_stable = full.token_ids[:n] == prompt.token_ids + completion
    if expect_equal is not None:
        assert prefix_stable == expect_equal, "prefix stability differs from what the family documents"
    if prefix_stable:
        assert bridged.token_ids == full.token_ids
        assert bridged.message_indices == full.message_indices
        assert bridged.sampled_mask == full.sampled_mask
        assert bridged.is_content == full.is_content
        assert bridged.message_roles == full.message_roles
    return bridged


# --- generated conversations ---------------------------------------------------------------

_PIECES = list("abcdefghij XYZ .,!?:;'\"-_/\\{}[]()<>|0123456789\n\t") + ["é", "ß", "日本", "中文", "🚀", "👍🏽", "  ", "\n\n", "word", " the"]
_TEXT = st.lists(st.sampled_from(_PIECES), min_size=1, max_size=16).map("".join).filter(lambda s: s.strip() == s and s)


@st.composite
def conversations(
    draw, *, tools: bool = True, reasoning: bool = True, tool_role: bool = True, alternate: bool = False,
    parallel: bool = True, none_content: bool = False,
):
    """A conversation: optional system, then user turns answered by assistants that may call tools.

    `parallel`: an assistant may make two calls; `none_content`: a calling assistant's content may be None.
    """
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append(system(draw(_TEXT)))
    for turn in range(draw(st.integers(1, 4))):
        messages.append(user(draw(_TEXT)))
        if tools and tool_role and draw(st.integers(0, 2)) == 0:
            n_calls = draw(st.integers(1, 2 if parallel else 1))
            calls = [call("add", {"a": draw(st.integers(0, 99)), "b": draw(st.integers(0, 99))}, f"c{turn}_{i}") for i in range(n_calls)]
            contents = ["", "Let me compute."] + ([None] if none_content else [])
            messages.append(assistant(draw(st.sampled_from(contents)), calls=calls))
            for i, c in enumerate(calls):
                messages.append(tool(draw(_TEXT), c["id"]))
        if draw(st.booleans()) or alternate:
            r = draw(_TEXT) if reasoning and draw(st.booleans()) else None
            messages.append(assistant(draw(_TEXT), reasoning=r))
    return messages
