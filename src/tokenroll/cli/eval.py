"""`tokenroll eval`: run an environment against a model and save token-exact results.

With no engine options it runs on the embedded local engine (SmolLM2-135M-Instruct on
CPU). `--resume DIR` reads the run's settings back from `DIR/metadata.json` and runs
exactly the rollouts that are missing or errored; options given again override them.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

_ENGINES = ("local", "vllm", "sglang", "openai")
_MODES = ("renderer", "template", "chat")
_SAMPLING_FLAGS = ("max_tokens", "temperature", "top_p", "seed")
_LIMIT_FLAGS = ("max_turns", "max_seq_len", "max_sampled_tokens", "timeout")


def register(subparsers: argparse._SubParsersAction) -> None:
    help_text = "run an environment against a model and save token-exact results"
    parser = subparsers.add_parser("eval", help=help_text, description=help_text)
    parser.add_argument("env", nargs="?", metavar="ENV",
                        help="a built-in name (cruxeval-output, cruxeval-trace, trace-step, tool-calc, jsonl), "
                             "module:object, file.py:object, or an installed environment package")
    parser.add_argument("-a", "--env-args", metavar="JSON", help='arguments for the environment, e.g. \'{"path": "qa.jsonl"}\'')
    engine = parser.add_argument_group("model and engine")
    engine.add_argument("-m", "--model", help="model name (served name for HTTP engines; a folder or .gguf for local)")
    engine.add_argument("--base-url", help="an OpenAI-compatible server, e.g. http://localhost:8000 (default engine: vllm)")
    engine.add_argument("--engine", choices=_ENGINES, help="engine kind (default: local, or vllm with --base-url)")
    engine.add_argument("--tokenizer", metavar="PATH",
                        help="folder with tokenizer.json for prompts (default: the model folder, or the model's "
                             "Hugging Face tokenizer)")
    engine.add_argument("--mode", choices=_MODES, help="how prompts are built (default: renderer)")
    engine.add_argument("--api-key-var", metavar="NAME", help="environment variable holding the API key")
    run = parser.add_argument_group("run")
    run.add_argument("-n", "--num-examples", type=int, help="examples to run, from the first (default 5; -1: all)")
    run.add_argument("-r", "--rollouts-per-example", type=int, help="rollouts per example (default 3)")
    run.add_argument("-c", "--concurrency", type=int, help="rollouts in flight at once (default 32)")
    run.add_argument("--out", type=Path, metavar="DIR", help="run directory (default runs/ENV-TIMESTAMP)")
    run.add_argument("--resume", type=Path, metavar="DIR", help="finish the run in DIR: missing and errored rollouts only")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    sampling = parser.add_argument_group("sampling and limits (default: the environment's)")
    sampling.add_argument("--max-tokens", type=int, help="sampled tokens per turn")
    sampling.add_argument("--temperature", type=float)
    sampling.add_argument("--top-p", type=float)
    sampling.add_argument("--seed", type=int, help="base seed; each rollout gets its own from it")
    sampling.add_argument("--max-turns", type=int, help="model calls per rollout")
    sampling.add_argument("--max-seq-len", type=int, help="tokens of prompt and completion per turn")
    sampling.add_argument("--max-sampled-tokens", type=int, help="sampled tokens per rollout")
    sampling.add_argument("--timeout", type=float, help="wall-clock seconds per rollout")
    parser.set_defaults(run=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from tokenroll.engines.base import EngineError
    from tokenroll.envs.datasets import DatasetError
    from tokenroll.envs.registry import EnvironmentNotFoundError
    from tokenroll.runner.rundir import RunDirError

    try:
        settings = _settings(args)
        return asyncio.run(_run(settings, progress=not args.no_progress))
    except (EnvironmentNotFoundError, DatasetError, RunDirError, EngineError, ImportError, OSError, TypeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: results written so far are kept; finish with --resume", file=sys.stderr)
        return 130


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The run's settings: those saved in the run being resumed, then the options given."""
    saved: dict[str, Any] = {}
    if args.resume is not None:
        from tokenroll.runner.rundir import RunDir

        metadata = RunDir(args.resume).read_metadata()
        saved = metadata.get("cli") or {}
        if not saved:
            raise ValueError(f"{args.resume}/metadata.json has no 'cli' settings to resume from")
    elif args.env is None:
        raise ValueError("name an environment (ENV) or give --resume DIR")
    given = {
        "env": args.env,
        "env_args": None if args.env_args is None else _json_object(args.env_args, "--env-args"),
        "model": args.model,
        "base_url": args.base_url,
        "engine": args.engine,
        "tokenizer": args.tokenizer,
        "mode": args.mode,
        "api_key_var": args.api_key_var,
        "num_examples": args.num_examples,
        "rollouts_per_example": args.rollouts_per_example,
        "concurrency": args.concurrency,
        **{name: getattr(args, name) for name in (*_SAMPLING_FLAGS, *_LIMIT_FLAGS)},
    }
    settings = {**saved, **{k: v for k, v in given.items() if v is not None}}
    settings.setdefault("env_args", {})
    if settings.get("engine") is None:
        settings["engine"] = "vllm" if settings.get("base_url") else "local"
    if settings["engine"] != "local" and not settings.get("base_url"):
        raise ValueError(f"--engine {settings['engine']} needs --base-url")
    if settings["engine"] != "local" and not settings.get("model"):
        raise ValueError("-m MODEL is needed with --base-url (the name the server serves)")
    if settings.get("num_examples") == -1:
        settings["num_examples"] = None
    settings["out"] = args.resume or args.out or _default_out(settings["env"])
    settings["resume"] = args.resume is not None
    return settings


async def _run(settings: dict[str, Any], *, progress: bool) -> int:
    from tokenroll.envs.base import Policy
    from tokenroll.envs.registry import load_environment
    from tokenroll.runner.run import EvalConfig, evaluate
    from tokenroll.runner.summary import summary_table

    env = load_environment(settings["env"], **settings["env_args"])
    engine, renderer, engine_info = await _engine(settings)
    try:
        policy = Policy(engine, renderer, mode=settings.get("mode") or "renderer")
        config = EvalConfig(
            num_examples=settings["num_examples"] if "num_examples" in settings else 5,
            rollouts_per_example=settings.get("rollouts_per_example") or 3,
            concurrency=settings.get("concurrency") or 32,
            sampling={name: settings.get(name) for name in _SAMPLING_FLAGS},
            limits={name: settings.get(name) for name in _LIMIT_FLAGS},
        )
        cli = {k: v for k, v in settings.items() if k not in ("out", "resume")}
        describe = {
            "environment": {"name": settings["env"], "args": settings["env_args"]},
            "model": engine_info["model"],
            "engine": engine_info,
            "cli": cli,
        }
        result = await evaluate(env, policy, config, run_dir=settings["out"], resume=settings["resume"],
                                progress=progress, describe=describe)
    finally:
        await engine.aclose()
    print(summary_table(result.metadata))
    print(f"results: {result.run_dir}")
    return 0


async def _engine(settings: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    """The engine, the renderer for its prompts (None in chat mode without a tokenizer), and their description."""
    from tokenroll.render import load_renderer

    kind = settings["engine"]
    if kind == "local":
        from tokenroll.engines.local import DEFAULT_MODEL, LocalEngine

        model = settings.get("model") or DEFAULT_MODEL
        engine = await asyncio.to_thread(LocalEngine, model)
        tokenizer = settings.get("tokenizer") or engine.tokenizer
        return engine, load_renderer(tokenizer), {"kind": "local", "model": model}
    from tokenroll.engines import connect

    model = settings["model"]
    api_key = os.environ.get(settings["api_key_var"]) if settings.get("api_key_var") else None
    engine = connect(settings["base_url"], model, kind, **({"api_key": api_key} if api_key else {}))
    tokenizer = _tokenizer_source(settings)
    renderer = None
    if tokenizer is not None:
        renderer = load_renderer(tokenizer)
    elif (settings.get("mode") or "renderer") != "chat":
        raise ValueError(
            f"no tokenizer for {model!r}: give --tokenizer FOLDER (with tokenizer.json), or --mode chat"
        )
    info = {"kind": kind, "model": model, "base_url": settings["base_url"]}
    if isinstance(tokenizer, (str, Path)):
        info["tokenizer"] = str(tokenizer)
    return engine, renderer, info


def _tokenizer_source(settings: dict[str, Any]) -> Any:
    """A tokenizer folder, a loaded Hugging Face tokenizer, or None when none can be found."""
    if settings.get("tokenizer"):
        return settings["tokenizer"]
    model = settings["model"]
    if (Path(model) / "tokenizer.json").is_file():
        return model
    try:
        from transformers import AutoTokenizer
    except ImportError:
        return None
    try:
        return AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError):
        return None


def _json_object(text: str, option: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{option} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{option} must be a JSON object, got {type(value).__name__}")
    return value


def _default_out(env: str) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = "".join(c if c.isalnum() or c in "-_." else "-" for c in env.rsplit(":", 1)[-1].rsplit("/", 1)[-1])
    return Path("runs") / f"{name}-{stamp}"
