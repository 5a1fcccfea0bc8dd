"""`tokenroll view RUN_DIR`: one self-contained HTML page of a run, PNG figures, or a local server."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_PORT = 8765


def register(subparsers: argparse._SubParsersAction) -> None:
    help_text = "write a run's trajectory viewer: one HTML file that needs no network"
    parser = subparsers.add_parser("view", help=help_text, description=help_text)
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR",
                        help="run directory with results.jsonl (metadata.json and vocab.json optional)")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="where to write the page (default: RUN_DIR/view.html)")
    parser.add_argument("--png", type=Path, metavar="DIR",
                        help="also write the run page, its figures and trajectory pages as PNG files "
                             "(needs Chromium and the [viewer] extra)")
    parser.add_argument("--trajectory", action="append", metavar="ID", default=None,
                        help="trajectory to export with --png (repeatable; default: the first one)")
    parser.add_argument("--colour-by", default="role", metavar="MODE",
                        help="tape colouring of the exported trajectory pages (default: role)")
    parser.add_argument("--serve", action="store_true", help="serve the page on 127.0.0.1 until Ctrl-C")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port for --serve (default: {DEFAULT_PORT}; 0 picks a free one)")
    parser.set_defaults(run=run)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from tokenroll.viewer.colours import MODES
    from tokenroll.viewer.page import write_page
    from tokenroll.viewer.rundir import RunDirError, load_run

    if args.colour_by not in MODES:
        return _fail(f"--colour-by must be one of {', '.join(MODES)}, got {args.colour_by!r}")
    try:
        run_dir = load_run(args.run_dir)
    except RunDirError as exc:
        return _fail(str(exc))
    try:
        output = write_page(run_dir, args.output)
    except OSError as exc:
        return _fail(f"cannot write {exc.filename or args.output}: {exc.strerror}")
    print(f"wrote {output} ({len(run_dir.trajectories)} trajectories)")

    if args.png is not None:
        code = _export(args, run_dir, output)
        if code:
            return code
    if args.serve:
        from tokenroll.viewer.serve import serve

        try:
            serve(output, args.port, announce=lambda url: print(f"serving {output} at {url} (Ctrl-C to stop)", flush=True))
        except OSError as exc:
            return _fail(f"cannot serve on 127.0.0.1:{args.port}: {exc.strerror}")
    return 0


def _export(args: argparse.Namespace, run_dir, output: Path) -> int:
    from tokenroll.viewer.browser import BrowserUnavailable, export_pngs

    index_of = {t.id: i for i, t in enumerate(run_dir.trajectories)}
    wanted = args.trajectory if args.trajectory else [t.id for t in run_dir.trajectories[:1]]
    unknown = [w for w in wanted if w not in index_of]
    if unknown:
        return _fail(f"no trajectory {unknown[0]!r} in {run_dir.path}")
    try:
        written = export_pngs(output, args.png, [(index_of[w], w) for w in wanted], args.colour_by)
    except BrowserUnavailable as exc:
        return _fail(str(exc))
    print(f"wrote {len(written)} PNG files to {args.png}")
    return 0
