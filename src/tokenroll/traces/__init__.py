"""Execution traces in Meta CWM's format: ground truth, text and token ids, parsing, scoring.

>>> from tokenroll.traces import Tracer, frames_to_text
>>> with Tracer() as tracer:
...     trace = tracer.trace_call("def f(x):\\n    return x * 2", "f(3)")
>>> trace.return_value
'6'
"""

from tokenroll.traces.cruxeval import (
    OutputScore,
    check_program,
    load_generations,
    pass_at_k,
    score_output_predictions,
)
from tokenroll.traces.format import (
    frames_to_ids,
    frames_to_text,
    ids_to_text,
    text_to_ids,
)
from tokenroll.traces.frames import (
    UNCHANGED,
    Event,
    Frame,
    Outcome,
    ParsedTrace,
    Special,
    Trace,
)
from tokenroll.traces.ground_truth import TraceError, Tracer
from tokenroll.traces.parser import parse_trace, parse_trace_ids
from tokenroll.traces.prompts import (
    build_context,
    cruxeval_call,
    full_trace_completion,
    full_trace_prompt,
    parse_single_step,
    prompt_ids,
    prompt_text,
    resolve_states,
    single_step_completion,
    single_step_prompt,
)
from tokenroll.traces.scoring import (
    EXTRA_METRICS,
    TABLE9_METRICS,
    GenerationSample,
    SampleResult,
    ScoreReport,
    TraceScore,
    score_generations,
    score_trace,
    token_statistics,
)
from tokenroll.traces.tasks import (
    TaskFileError,
    TraceTask,
    load_cruxeval,
    load_humaneval,
    load_jsonl_tasks,
)
from tokenroll.traces.vocab import TraceVocab, VocabMode

__all__ = [
    "EXTRA_METRICS", "TABLE9_METRICS", "UNCHANGED", "Event", "Frame", "GenerationSample",
    "Outcome", "OutputScore", "ParsedTrace", "SampleResult", "ScoreReport", "Special",
    "TaskFileError", "Trace", "TraceError", "TraceScore", "TraceTask", "Tracer",
    "build_context", "check_program", "cruxeval_call", "frames_to_ids", "frames_to_text",
    "full_trace_completion", "full_trace_prompt", "ids_to_text", "load_cruxeval",
    "load_generations", "load_humaneval", "load_jsonl_tasks", "parse_single_step",
    "parse_trace", "parse_trace_ids", "pass_at_k", "prompt_ids", "prompt_text",
    "resolve_states", "score_generations", "score_output_predictions", "score_trace",
    "single_step_completion", "single_step_prompt", "text_to_ids", "token_statistics",
    "TraceVocab", "VocabMode",
]
