"""Engine benchmarks: (a) orchestration overhead against a stub that answers at once; (b) real vLLM.

Run from the repository root:  python bench/engine.py [--rollouts 2000] [--concurrency 64,256] [--repeat 3]

(b) with --vllm URL (e.g. from `scripts/vllm-tier --serve`): a multi-turn workload against real
vLLM through the token path and through the chat endpoint.

(a) N concurrent rollouts, single-turn and 8-turn, each turn one `VLLMEngine.generate` call
(`/v1/completions` with a token-id prompt); a turn's prompt is the previous prompt, the
completion and a few new tokens, as a stitched tool turn would be. The same workload is
run by a bare aiohttp loop (the same JSON in and out, no engine layer) against the same
server in the same run, in alternating passes (best of `--repeat` each); the ratio
(tokenroll turns/s over bare turns/s) is the cost of tokenroll's layer, and so is the
client process's CPU time per turn (steadier than wall time on a shared machine). The stub server runs
in its own process, so client and server do not share one event loop (on 2 cores they
still share the CPU: the numbers are for both sides together).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import orjson
from aiohttp import web

from tokenroll.engines import SamplingParams
from tokenroll.engines.vllm import VLLMEngine

MODEL = "bench-stub"
PROMPT_TOKENS = 512
COMPLETION_IDS = list(range(1000, 1032))  # 32 sampled tokens per turn
COMPLETION_LOGPROBS = [-0.5] * len(COMPLETION_IDS)
NEW_TOKENS_PER_TURN = [7, 8, 9, 10, 11]  # a tool result's few tokens
SAMPLING = SamplingParams(max_tokens=len(COMPLETION_IDS), temperature=1.0)


# --- the stub server (its own process) ----------------------------------------------------


def _serve(
    port_out: multiprocessing.connection.Connection, seconds: float, completion_ids: list[int] = COMPLETION_IDS
) -> None:
    """Answer `/v1/completions` like vLLM with `return_token_ids`, at once, for `seconds` at most."""
    logprobs = {"token_logprobs": [-0.5] * len(completion_ids), "tokens": [f"t{i}" for i in completion_ids]}

    async def completions(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        answer = {
            "id": "cmpl",
            "object": "text_completion",
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "text": "x",
                    "logprobs": logprobs,
                    "finish_reason": "stop",
                    "prompt_token_ids": body["prompt"],
                    "token_ids": completion_ids,
                }
            ],
            "usage": {
                "prompt_tokens": len(body["prompt"]),
                "completion_tokens": len(completion_ids),
            },
        }
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/completions", completions)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
        await site.start()
        port_out.send(runner.addresses[0][1])
        await asyncio.sleep(seconds)  # bounded: the parent terminates it sooner
        await runner.cleanup()

    asyncio.run(main())


# --- the two clients ----------------------------------------------------------------------


async def _tokenroll_rollout(engine: VLLMEngine, turns: int, rollout: int) -> None:
    prompt = [rollout % 50_000] * PROMPT_TOKENS
    for _ in range(turns):
        generation = await engine.generate(prompt, SAMPLING)
        prompt = generation.prompt_ids + generation.completion_ids + NEW_TOKENS_PER_TURN


async def _bare_rollout(session: aiohttp.ClientSession, url: str, turns: int, rollout: int) -> None:
    """The same requests with nothing but aiohttp and orjson: the floor to compare with."""
    prompt = [rollout % 50_000] * PROMPT_TOKENS
    for _ in range(turns):
        payload = {
            "model": MODEL,
            "prompt": prompt,
            "max_tokens": SAMPLING.max_tokens,
            "temperature": 1.0,
            "top_p": 1.0,
            "logprobs": 0,
            "return_token_ids": True,
            "skip_special_tokens": False,
            "stream": False,
        }
        async with session.post(
            url, data=orjson.dumps(payload), headers={"Content-Type": "application/json"}
        ) as r:
            choice = orjson.loads(await r.read())["choices"][0]
        prompt = choice["prompt_token_ids"] + choice["token_ids"] + NEW_TOKENS_PER_TURN


async def _run_pool(
    concurrency: int, rollouts: int, one: Callable[[int], Awaitable[None]]
) -> Timing:
    """Wall and client-CPU seconds to run `rollouts` rollouts with at most `concurrency` in flight."""
    next_rollout = iter(range(rollouts))

    async def worker() -> None:
        for rollout in next_rollout:
            await one(rollout)

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


@dataclass(slots=True)
class Timing:
    wall: float = float("inf")
    cpu: float = float("inf")
    """CPU seconds of this (the client) process only: the server runs in another."""

    def best(self, other: Timing) -> Timing:
        return Timing(min(self.wall, other.wall), min(self.cpu, other.cpu))


async def _measure(
    base_url: str, concurrency: int, rollouts: int, turns: int, repeat: int
) -> tuple[Timing, Timing, int]:
    """Best tokenroll and bare timings of `repeat` alternating passes, and tokenroll's retries.

    Passes alternate so that load from other processes on the machine hits both sides alike.
    """
    url = base_url + "/v1/completions"
    ours, bare = Timing(), Timing()
    async with (
        VLLMEngine(
            base_url, MODEL, tokens_endpoint="completions", max_connections=concurrency
        ) as engine,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session,
    ):
        # Warm-up: open the connections of both pools.
        await _run_pool(concurrency, concurrency, lambda r: _tokenroll_rollout(engine, 1, r))
        await _run_pool(concurrency, concurrency, lambda r: _bare_rollout(session, url, 1, r))
        for _ in range(repeat):
            ours = ours.best(
                await _run_pool(
                    concurrency, rollouts, lambda r: _tokenroll_rollout(engine, turns, r)
                )
            )
            bare = bare.best(
                await _run_pool(
                    concurrency, rollouts, lambda r: _bare_rollout(session, url, turns, r)
                )
            )
        return ours, bare, engine.stats.retries


def bench_orchestration(rollouts: int, concurrencies: list[int], repeat: int) -> None:
    """Part (a): rollouts/s, turns/s and client CPU per turn, for tokenroll and a bare aiohttp loop."""
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(child, 600.0), daemon=True)
    server.start()
    try:
        base_url = f"http://127.0.0.1:{parent.recv()}"
        print(
            f"stub server in its own process; prompt {PROMPT_TOKENS} ids, {len(COMPLETION_IDS)} sampled per turn"
        )
        print(
            f"{'turns':>5} {'conc':>5} {'rollouts':>8} | {'rollouts/s':>10} {'turns/s':>8} {'bare':>8} {'ratio':>5} "
            f"| client CPU us/turn: {'ours':>5} {'bare':>5}"
        )
        for turns in (1, 8):
            n = rollouts if turns == 1 else max(1, rollouts // turns)
            for concurrency in concurrencies:
                ours, bare, retries = asyncio.run(_measure(base_url, concurrency, n, turns, repeat))
                note = f"  ({retries} retries)" if retries else ""
                print(
                    f"{turns:>5} {concurrency:>5} {n:>8} | {n / ours.wall:>10.0f} {n * turns / ours.wall:>8.0f} "
                    f"{n * turns / bare.wall:>8.0f} {bare.wall / ours.wall:>5.2f} "
                    f"| {'':>19} {ours.cpu / (n * turns) * 1e6:>5.0f} {bare.cpu / (n * turns) * 1e6:>5.0f}{note}"
                )
    finally:
        server.terminate()
        server.join(5)


def bench_sampler(rollouts: int, concurrencies: list[int]) -> None:
    """Whole 8-turn tool loops through `TurnSampler`: prompt built by the renderer's bridge each
    turn, completion parsed into a tool call, a tool result appended, against the same stub."""
    from tests.assets import tokenizer_dir
    from tests.render.harness import TOOLS, assistant, call, user
    from tokenroll.render import load_renderer
    from tokenroll.sampling import BridgeStats, run_tool_loop

    renderer = load_renderer(tokenizer_dir("qwen2.5"))
    question = [user("Add the numbers one call at a time.")]
    turn = renderer.render(question + [assistant("", calls=[call("add", {"a": 1, "b": 2}, "c1")])], TOOLS)
    completion = [t for t, m, s in zip(turn.token_ids, turn.message_indices, turn.sampled_mask) if m == 1 and s]
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(child, 600.0, completion), daemon=True)
    server.start()
    try:
        base_url = f"http://127.0.0.1:{parent.recv()}"
        print(f"\nTurnSampler tool loops (qwen2.5 renderer, bridge every turn; completion {len(completion)} ids)")
        print(f"{'turns':>5} {'conc':>5} {'rollouts':>8} | {'rollouts/s':>10} {'turns/s':>8} | bridged/attempts")
        for concurrency in concurrencies:
            n = max(concurrency, rollouts // 8)

            async def run() -> tuple[float, BridgeStats]:
                stats = BridgeStats()
                sampling = SamplingParams(max_tokens=64)
                async with VLLMEngine(base_url, MODEL, tokens_endpoint="completions", max_connections=concurrency) as engine:
                    next_rollout = iter(range(n))

                    async def worker() -> None:
                        for _ in next_rollout:
                            await run_tool_loop(engine, renderer, question, turns=8, tools=TOOLS, sampling=sampling, stats=stats)

                    start, cpu = time.perf_counter(), time.process_time()
                    await asyncio.gather(*(worker() for _ in range(concurrency)))
                    return time.perf_counter() - start, time.process_time() - cpu, stats

            wall, cpu, stats = asyncio.run(run())
            print(
                f"{8:>5} {concurrency:>5} {n:>8} | {n / wall:>10.0f} {n * 8 / wall:>8.0f} | "
                f"{stats.bridge_successes}/{stats.bridge_attempts}   client CPU {cpu / (n * 8) * 1e6:.0f} us/turn"
            )
    finally:
        server.terminate()
        server.join(5)


def bench_vllm(base_url: str, rollouts: int = 16, turns: int = 8, concurrency: int = 8) -> None:
    """Part (b): the same multi-turn conversation workload against a real vLLM server, through
    tokenroll's token path (`/v1/completions` with stitched token prompts) and through vLLM's chat
    endpoint (messages re-templated by the server every turn): time per turn, prompt tokens sent,
    and prompt tokens the server computed (its prefix-cache misses, from `/metrics`)."""
    import urllib.request

    from tokenroll.render import load_renderer
    from tokenroll.sampling import BridgeStats, TurnSampler

    def metrics() -> dict[str, float]:
        text = urllib.request.urlopen(base_url + "/metrics", timeout=30).read().decode()
        totals: dict[str, float] = {}
        for line in text.splitlines():
            for name in ("vllm:prompt_tokens_total", "vllm:prefix_cache_hits_total", "vllm:prefix_cache_queries_total"):
                if line.startswith(name):
                    totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
        return totals

    models = orjson.loads(urllib.request.urlopen(base_url + "/v1/models", timeout=30).read())["data"][0]
    model, renderer = models["id"], load_renderer(models["root"])
    sampling = SamplingParams(max_tokens=48, temperature=0.0)

    async def workload(mode: str) -> tuple[float, int, BridgeStats]:
        stats = BridgeStats()
        sent = 0
        async with VLLMEngine(base_url, model) as engine:
            next_rollout = iter(range(rollouts))

            async def worker() -> None:
                nonlocal sent
                for rollout in next_rollout:
                    sampler = TurnSampler(
                        engine, renderer if mode == "tokens" else None, mode="renderer" if mode == "tokens" else "chat",
                        sampling=sampling, stats=stats,
                    )
                    conversation = [{"role": "user", "content": f"In one sentence each, name colour number {rollout}."}]
                    for turn in range(turns):
                        step = await sampler.step(conversation)
                        sent += len(step.prompt_ids)
                        conversation = [*conversation, step.completion_message, {"role": "user", "content": f"And number {turn + 2}?"}]

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - start, sent, stats

    print(f"\nreal vLLM at {base_url} ({model}): {rollouts} rollouts x {turns} turns, concurrency {concurrency}")
    print(f"{'path':<24} {'ms/turn':>8} {'prompt tokens sent':>19} {'computed by server':>19}  stitched")
    # Passes alternate (twice each, best kept) so neither path profits from a cache the other warmed.
    best: dict[str, tuple[float, int, str, BridgeStats]] = {}
    for mode in ("tokens", "chat", "chat", "tokens"):
        before = metrics()
        wall, sent, stats = asyncio.run(workload(mode))
        after = metrics()
        prompt = after.get("vllm:prompt_tokens_total", 0) - before.get("vllm:prompt_tokens_total", 0)
        hits = after.get("vllm:prefix_cache_hits_total", 0) - before.get("vllm:prefix_cache_hits_total", 0)
        computed = f"{prompt - hits:.0f}" if "vllm:prefix_cache_hits_total" in after else "n/a"
        if mode not in best or wall < best[mode][0]:
            best[mode] = (wall, sent, computed, stats)
    for mode, label in (("tokens", "token path (bridge)"), ("chat", "chat endpoint")):
        wall, sent, computed, stats = best[mode]
        stitched = f"{stats.bridge_successes}/{stats.bridge_attempts}" if mode == "tokens" else "-"
        print(f"{label:<24} {wall * 1e3 / (rollouts * turns):>8.1f} {sent:>19} {computed:>19}  {stitched}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rollouts", type=int, default=2000, help="single-turn rollouts (8-turn: this / 8)"
    )
    parser.add_argument(
        "--concurrency", default="64,256", help="comma-separated concurrency levels"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="alternating passes; the best of each side is kept"
    )
    parser.add_argument("--vllm", metavar="URL", help="run part (b) against this vLLM server instead of (a)")
    args = parser.parse_args()
    if args.vllm:
        bench_vllm(args.vllm)
        return
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    bench_orchestration(args.rollouts, concurrencies, args.repeat)
    bench_sampler(args.rollouts, concurrencies)


if __name__ == "__main__":
    main()
