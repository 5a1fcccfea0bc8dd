"""The verifiers side of `bench/runner.py`; run with the python of the bench's verifiers virtualenv.

It builds verifiers 0.3.1's legacy `SingleTurnEnv` over the shared rows (`_runner_workload`),
with a one-function rubric (exact match of the last number), and times whole evaluations by
verifiers' own loop, `Environment.evaluate`, at each concurrency, against the stub server
(started in this process, or at `--url`). It prints one JSON line per concurrency:
{"side": "verifiers", "concurrency": c, "rollouts": n, "seconds": s, "rollouts_per_second": r,
 "cpu_seconds": this process's CPU time (the in-process stub included), "mean_reward": m}.

Concurrency is counted in rollouts, as `vf-eval --max-concurrent` counts it: with
`rollouts_per_example` k > 1, verifiers scores rollouts in groups of k and its semaphore holds
groups, so `max_concurrent` gets ceil(c / k) groups, the conversion `vf-eval` itself makes
(verifiers.legacy.utils.eval_utils.run_evaluation).

    .../bin/python bench/_verifiers_side.py --rollouts 2000 --rollouts-per-example 4 --concurrency 64,256
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import time

import _runner_workload as workload
import _stub_llm
import verifiers as vf
from datasets import Dataset
from datasets.utils.logging import disable_progress_bar
from openai import AsyncOpenAI
from verifiers.legacy.utils.client_utils import setup_openai_client as vf_setup_openai_client


def build_env(rows: list[dict[str, str]]) -> vf.SingleTurnEnv:
    """The legacy single-turn environment over `rows`, with an exact-match reward."""
    parser = vf.Parser()

    def exact_match(completion, answer, **kwargs) -> float:
        return workload.exact_match(parser.parse_answer(completion) or "", answer)

    rubric = vf.Rubric(funcs=[exact_match], weights=[1.0], parser=parser)
    return vf.SingleTurnEnv(
        eval_dataset=Dataset.from_list(rows),
        system_prompt=workload.SYSTEM_PROMPT,
        parser=parser,
        rubric=rubric,
    )


def make_client(base_url: str, kind: str) -> vf.OpenAIChatCompletionsClient:
    """verifiers' chat client around an AsyncOpenAI client pointing at the stub.

    "openai" (the default): `AsyncOpenAI` on its own defaults (an httpx2 client in openai 3.x,
    at most 100 idle connections kept). "vf-config": the client `setup_openai_client` builds from
    a `ClientConfig`, as `vf-eval` does: an httpx 0.28 client keeping up to 28,000 connections
    alive; it measured 1.5 to 2 times slower here, so the default gives verifiers its better
    figure. Both connection pools poll every idle connection's socket for each request, which
    is much of verifiers' cost per rollout against a fast server, and more at 256 connections.
    """
    if kind == "vf-config":
        openai_client = vf_setup_openai_client(
            vf.ClientConfig(api_base_url=f"{base_url}/v1", max_retries=0)
        )
    else:
        # No retries: the stub never fails, and a retry would hide a failed request.
        openai_client = AsyncOpenAI(api_key="EMPTY", base_url=f"{base_url}/v1", max_retries=0)
    return vf.OpenAIChatCompletionsClient(openai_client)


async def evaluate(
    env: vf.SingleTurnEnv,
    base_url: str,
    concurrency: int,
    rollouts_per_example: int,
    client_kind: str,
) -> tuple[float, float, list]:
    """Wall and CPU seconds of one whole evaluation, its client made inside it as a fresh run
    makes one, and its outputs."""
    start, cpu = time.perf_counter(), time.process_time()
    client = make_client(base_url, client_kind)
    try:
        results = await env.evaluate(
            client=client,
            model=workload.MODEL,
            sampling_args={"max_tokens": workload.MAX_TOKENS, "temperature": workload.TEMPERATURE},
            num_examples=-1,
            rollouts_per_example=rollouts_per_example,
            max_concurrent=math.ceil(concurrency / rollouts_per_example),
            # No progress bar: drawing it is not what is measured.
            on_start=lambda *a: None,
            on_progress=lambda *a: None,
        )
    finally:
        await client.close()
    return time.perf_counter() - start, time.process_time() - cpu, results["outputs"]


def check(outputs: list, rows: list[dict[str, str]], rollouts_per_example: int) -> float:
    """The mean reward, after checking that every rollout ran and was scored without error."""
    expected = len(rows) * rollouts_per_example
    if len(outputs) != expected:
        raise SystemExit(f"verifiers returned {len(outputs)} rollouts, expected {expected}")
    errors = [o.get("error") for o in outputs if o.get("error")]
    if errors:
        raise SystemExit(f"{len(errors)} verifiers rollouts failed, first: {errors[0]}")
    rewards = [o.get("reward") for o in outputs]
    if any(r is None for r in rewards):
        raise SystemExit("verifiers left some rollouts unscored")
    return sum(rewards) / len(rewards)


async def run(args: argparse.Namespace) -> None:
    rows = workload.make_rows(math.ceil(args.rollouts / args.rollouts_per_example))
    env = build_env(rows)
    runner = None
    base_url = args.url
    if base_url is None:
        runner, port = await _stub_llm.start()
        base_url = f"http://127.0.0.1:{port}"
    try:
        # Warm-up, untimed: the first evaluation pays for lazy imports and first-use setup.
        warm_rows = min(len(rows), 64)
        warm_env = build_env(rows[:warm_rows])
        await evaluate(warm_env, base_url, 64, args.rollouts_per_example, args.client)
        for concurrency in args.concurrency:
            seconds, cpu, outputs = await evaluate(
                env, base_url, concurrency, args.rollouts_per_example, args.client
            )
            mean_reward = check(outputs, rows, args.rollouts_per_example)
            n = len(outputs)
            line = {
                "side": "verifiers",
                "concurrency": concurrency,
                "rollouts": n,
                "seconds": round(seconds, 4),
                "rollouts_per_second": round(n / seconds, 1),
                "cpu_seconds": round(cpu, 4),
                "mean_reward": mean_reward,
            }
            print(json.dumps(line), flush=True)
    finally:
        if runner is not None:
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=2000)
    parser.add_argument("--rollouts-per-example", type=int, default=4)
    parser.add_argument("--concurrency", default="64,256", help="comma-separated, in rollouts")
    parser.add_argument(
        "--url", help="the stub server's base URL; default: start one in this process"
    )
    parser.add_argument(
        "--client", choices=("openai", "vf-config"), default="openai", help="see make_client"
    )
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    # verifiers logs at INFO per evaluation; keep stdout for the JSON lines alone.
    logging.basicConfig(level=logging.WARNING)
    disable_progress_bar()  # datasets' bars for Dataset.map
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
