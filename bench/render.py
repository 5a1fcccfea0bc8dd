"""Render throughput against `apply_chat_template` and the `renderers` package, and bridge cost.

Run from the repository root:  python bench/render.py [--repeat 5] [--families qwen3,llama3]

For each family with a real tokenizer in the shared assets, the same corpus (the test
corpus plus 8-, 32- and 128-turn conversations) is rendered to token ids by
`apply_chat_template(tokenize=True)`, by tokenroll (cold: encoding caches emptied before
every pass; warm: caches kept, as in a run where prompts repeat) and by `renderers` where
it has the family. Then, at 8, 32 and 128 turns, the cost of building the next turn's
prompt with `bridge` is compared with re-rendering the whole history. Times are the best
of `--repeat` passes; the ratios are what to read, since these machines are shared.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.assets import tokenizer_dir  # noqa: E402
from tests.render.harness import CORPUS, TOOLS, assistant, call, system, tool, user  # noqa: E402
from tokenroll.render import load_renderer  # noqa: E402

# family -> (asset folder, template kwargs for both sides, renderers config class name or None)
FAMILIES: dict[str, tuple[str, dict, str | None]] = {
    "qwen3": ("qwen3", {}, "Qwen3RendererConfig"),
    "qwen2.5": ("qwen2.5", {}, None),
    "smollm2": ("smollm2", {}, None),
    "llama3": ("llama-3.2", {"date_string": "26 Jul 2024"}, "Llama3RendererConfig"),
    "deepseek-v3": ("deepseek-v3", {}, "DeepSeekV3RendererConfig"),
    "gpt-oss": ("gpt-oss", {}, "GptOssRendererConfig"),
    "mistral-nemo": ("mistral-nemo", {}, None),
    "gemma3": ("gemma-3", {}, None),
}


def long_chat(turns: int) -> list[dict]:
    messages = [system("You are a careful assistant. Answer in full sentences.")]
    for turn in range(turns):
        messages.append(user(f"Question {turn}: explain why {turn} + {turn} equals {2 * turn}, briefly."))
        messages.append(assistant(f"Adding {turn} to itself doubles it, so the sum is {2 * turn}. " * 2))
    return messages


def tool_loop(turns: int) -> list[dict]:
    messages = [user("Add the numbers from 0 to 200 one call at a time, then report the total.")]
    for turn in range(turns):
        messages.append(assistant(f"Adding {turn}.", calls=[call("add", {"a": turn * (turn - 1) // 2, "b": turn}, f"call_{turn}")]))
        messages.append(tool(str(turn * (turn + 1) // 2), f"call_{turn}"))
    messages.append(assistant(f"The total is {turns * (turns - 1) // 2}."))
    return messages


def corpus() -> list[tuple[list[dict], list[dict] | None]]:
    cases = [(c.messages, c.tools) for c in CORPUS if "lookalike" not in c.features and c.name != "none-content"]
    for turns in (8, 32, 128):
        cases.append((long_chat(turns), None))
        cases.append((tool_loop(turns), TOOLS))
    return cases


def best_of(repeat: int, run: Callable[[], object], before: Callable[[], object] = lambda: None) -> float:
    best = float("inf")
    for _ in range(repeat):
        before()
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def supported(render_one, cases):
    """The cases a renderer or template accepts (templates refuse some conversations)."""
    kept = []
    for messages, tools in cases:
        try:
            render_one(messages, tools)
            kept.append((messages, tools))
        except Exception:
            pass
    return kept


def bench_family(family: str, repeat: int) -> dict | None:
    folder, kwargs, renderers_config = FAMILIES[family]
    try:
        path = tokenizer_dir(folder)
    except BaseException:  # pytest.skip outside pytest: the asset folder is absent
        print(f"{family}: no tokenizer assets, skipped")
        return None
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(path))
    ours = load_renderer(path)

    def hf_one(messages, tools):
        return hf.apply_chat_template(messages, tools=tools, tokenize=True, return_dict=False, **kwargs)

    def ours_one(messages, tools):
        return ours.render(messages, tools, **kwargs).token_ids

    cases = supported(hf_one, supported(ours_one, corpus()))
    mismatches = sum(hf_one(m, t) != ours_one(m, t) for m, t in cases)
    row = {"family": ours.family, "cases": len(cases), "mismatches": mismatches}
    row["hf"] = best_of(repeat, lambda: [hf_one(m, t) for m, t in cases])
    row["cold"] = best_of(repeat, lambda: [ours_one(m, t) for m, t in cases], ours.tokenizer.clear_caches)
    row["warm"] = best_of(repeat, lambda: [ours_one(m, t) for m, t in cases])
    row["renderers"] = None
    if renderers_config:
        try:
            import renderers

            theirs = renderers.create_renderer(hf, getattr(renderers, renderers_config)())
            theirs_cases = supported(lambda m, t: theirs.render(m, tools=t), cases)
            if len(theirs_cases) == len(cases):
                row["renderers"] = best_of(repeat, lambda: [theirs.render(m, tools=t) for m, t in cases])
            else:
                row["renderers_note"] = f"renderers refused {len(cases) - len(theirs_cases)} cases"
        except ImportError:
            row["renderers_note"] = "renderers not installed (pip install -e '.[bench]')"
        except Exception as exc:  # a family renderers cannot build with this tokenizer
            row["renderers_note"] = f"renderers failed: {type(exc).__name__}: {exc}"[:120]
    row["bridge"] = bench_bridge(ours, kwargs, repeat)
    return row


def bench_bridge(ours, kwargs: dict, repeat: int) -> dict[int, tuple[float, float, float]]:
    """Per history length: seconds to bridge, and to re-render the whole history warm and cold."""
    results = {}
    for turns in (8, 32, 128):
        # A tool result after a tool call; where the family cannot bridge that, a user turn.
        for messages, tools in ((tool_loop(turns), TOOLS), (long_chat(turns)[1:], None)):
            history, reply, new = messages[:-3], messages[-3], [messages[-2]]
            try:
                prompt = ours.render(history, tools, add_generation_prompt=True, **kwargs)
                full = ours.render(history + [reply], tools, **kwargs)
            except Exception:
                continue
            completion = [t for t, i, s in zip(full.token_ids, full.message_indices, full.sampled_mask) if i == len(history) and s]
            if ours.bridge(prompt.token_ids, completion, new, tools, prev_attribution=prompt, **kwargs) is not None:
                break
        else:
            continue
        bridge_time = best_of(repeat * 4, lambda: ours.bridge(prompt.token_ids, completion, new, tools, prev_attribution=prompt, **kwargs))
        conversation = history + [reply, new[0]]
        warm = best_of(repeat, lambda: ours.render(conversation, tools, add_generation_prompt=True, **kwargs))
        cold = best_of(
            repeat,
            lambda: ours.render(conversation, tools, add_generation_prompt=True, **kwargs),
            ours.tokenizer.clear_caches,
        )
        results[turns] = (bridge_time, warm, cold)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--families", default=",".join(FAMILIES))
    args = parser.parse_args()
    rows = [row for family in args.families.split(",") if (row := bench_family(family, args.repeat))]

    print("\nFull renders of the corpus (ms per pass; ratio = other / tokenroll, higher is faster for tokenroll)")
    print(f"{'family':<13}{'cases':>6}{'mismatch':>9}{'apply_chat':>11}{'ours cold':>10}{'ours warm':>10}{'renderers':>10}"
          f"{'hf/cold':>9}{'hf/warm':>9}{'rend/cold':>10}{'rend/warm':>10}")
    for row in rows:
        rend = row["renderers"]
        cold, warm = row["cold"], row["warm"]
        cells = [
            f"{row['family']:<13}{row['cases']:>6}{row['mismatches']:>9}",
            f"{row['hf'] * 1e3:>11.1f}{cold * 1e3:>10.1f}{warm * 1e3:>10.1f}",
            f"{rend * 1e3:>10.1f}" if rend else f"{'-':>10}",
            f"{row['hf'] / cold:>9.2f}{row['hf'] / warm:>9.2f}",
            f"{rend / cold:>10.2f}{rend / warm:>10.2f}" if rend else f"{'-':>10}{'-':>10}",
            f"   ({row['renderers_note']})" if row.get("renderers_note") else "",
        ]
        print("".join(cells))
    print("\nNext-turn prompt: bridge vs full re-render (microseconds; percent = bridge / re-render, warm and cold)")
    print(f"{'family':<13}" + "".join(f"{f'{n} turns':>34}" for n in (8, 32, 128)))
    for row in rows:
        cells = []
        for turns in (8, 32, 128):
            if turns in row["bridge"]:
                bridge_time, warm, cold = row["bridge"][turns]
                cells.append(
                    f"{bridge_time * 1e6:.0f}/{warm * 1e6:.0f}/{cold * 1e6:.0f} = "
                    f"{100 * bridge_time / warm:.1f}%/{100 * bridge_time / cold:.1f}%"
                )
            else:
                cells.append("bridge refused")
        print(f"{row['family']:<13}" + "".join(f"{c:>34}" for c in cells))


if __name__ == "__main__":
    main()
