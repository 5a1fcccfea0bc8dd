"""`cruxeval-trace`: CWM full-trace prediction on CRUXEval, scored by the trace scorer.

Raw token mode, no chat template. The prompt is CWM's full-trace prompt (`full_trace_prompt`:
BOS, the code with its `main` wrapper, and main's seeded CALL frame) and the model writes
every later frame, then `<|end_of_text|>`. When the policy's tokenizer has CWM's trace
tokens they go in and are read back by id; otherwise by text (`tokenroll.traces.vocab`), so
any model runs here, though only a trace model scores. `vocab="ids"|"text"` forces a mode.

The completion is scored as `tokenroll trace score` scores a generation: `score_trace`
against the ground truth without its seeded frame, and pass@1 by CRUXEval's own check run in
the tracer's sandbox. Every `TraceScore` rate is a metric; `pass_at_1` is what pass@k counts.

Reward: the mean of `state_exact_match` and `action_exact_match` (CWM's Table 9 definitions).
Both are aligned by position over every reference frame, so the reward is dense yet reaches 1
only when every frame's locals, source line and return value are right, and a missing or
extra frame costs every frame after it. pass@1 is not the reward: the output alone can be
written as one RETURN frame, which would pay the model for not tracing.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tokenroll.core.trajectory import Trajectory
from tokenroll.envs.base import Environment, Policy
from tokenroll.envs.builtin._traces import GroundTruth, move_trace, state_metric, task_rows
from tokenroll.envs.completion import CompletionEnv
from tokenroll.envs.datasets import DatasetSource
from tokenroll.envs.rubrics import Rubric
from tokenroll.traces.ground_truth import Tracer
from tokenroll.traces.prompts import full_trace_prompt
from tokenroll.traces.scoring import (
    EXTRA_METRICS,
    TABLE9_METRICS,
    SampleResult,
    ScoreReport,
    TraceScore,
    score_trace,
)
from tokenroll.traces.vocab import TraceVocab, VocabMode

METRICS = (*TABLE9_METRICS, *EXTRA_METRICS)
REWARD_WEIGHTS = {"state_exact_match": 0.5, "action_exact_match": 0.5}
DEFAULT_MAX_TOKENS = 4096
"""Covers 99.4% of CRUXEval's true traces in Llama 3 tokens (median 219, longest 28k) and,
with prompts under 200 tokens, fits an 8k context such as the embedded model's."""


class CruxEvalTraceEnv(CompletionEnv):
    """Full-trace prediction: one raw completion per task, every trace metric, reward as above."""

    name = "cruxeval-trace"
    pass_metric = "pass_at_1"

    def __init__(
        self,
        dataset: DatasetSource | None = None,
        *,
        vocab: str = "auto",
        tracer: Tracer | None = None,
        workers: int = 2,
        **options: Any,
    ) -> None:
        options.setdefault("rubric", Rubric([state_metric(name, "score") for name in METRICS],
                                            weights=[REWARD_WEIGHTS.get(name, 0.0) for name in METRICS]))
        options.setdefault("sampling", {"max_tokens": DEFAULT_MAX_TOKENS})
        super().__init__(task_rows() if dataset is None else dataset, **options)
        if vocab not in ("auto", *VocabMode):
            raise ValueError(f"vocab must be auto, ids or text, got {vocab!r}")
        self.vocab = vocab
        self.ground_truth = GroundTruth(tracer, workers=workers)
        self._vocabs: weakref.WeakKeyDictionary[Any, TraceVocab] = weakref.WeakKeyDictionary()

    def vocabulary(self, policy: Policy) -> TraceVocab:
        """The trace vocabulary of the policy's tokenizer."""
        tokenizer = policy.renderer.tokenizer
        found = self._vocabs.get(tokenizer)
        if found is None:
            found = self._vocabs[tokenizer] = TraceVocab.of(tokenizer, self.vocab)
        return found

    def prompt_ids(self, row: Mapping[str, Any], policy: Policy) -> list[int]:
        return self.vocabulary(policy).encode(full_trace_prompt(row["code"], row["call"]))

    def stop_token_ids(self, row: Mapping[str, Any], policy: Policy) -> Sequence[int]:
        return self.vocabulary(policy).stop_token_ids

    async def parse(self, completion_ids: list[int], row: Mapping[str, Any], policy: Policy) -> dict[str, Any]:
        parsed = self.vocabulary(policy).parse(completion_ids)
        trace = await self.ground_truth.trace(row["code"], row["call"])
        reference = trace.frames[1:]  # the seeded CALL frame of main is part of the prompt
        score = score_trace(reference, parsed)
        expected = row.get("expected_output") or trace.return_value
        score.pass_at_1 = await self.ground_truth.check_output(row["code"], expected, score.predicted_output)
        return {
            "score": asdict(score),
            "problems": parsed.problems,
            "trace": {
                "reference": [frame.to_dict() for frame in reference],
                "predicted": [frame.to_dict() for frame in parsed.frames],
                "metrics": {name: getattr(score, name) for name in METRICS},
            },
        }

    async def rollout(self, policy: Policy, row: Mapping[str, Any]) -> Trajectory:
        trajectory = await super().rollout(policy, row)
        vocab = None if policy.renderer is None else self._vocabs.get(policy.renderer.tokenizer)
        if vocab is not None:
            trajectory.extras["vocab"] = vocab.mode.value
        move_trace(trajectory)
        return trajectory

    def summarize(self, trajectories: Sequence[Trajectory]) -> dict[str, Any]:
        """Every trace metric over the run, in percent, macro-averaged as `tokenroll trace score`."""
        results = []
        for trajectory in trajectories:
            score = trajectory.extras.get("state", {}).get("score")
            results.append(SampleResult(trajectory.id, None if score is None else TraceScore(**score)))
        return ScoreReport(results).summary()

    def config(self) -> dict[str, Any]:
        modes = sorted({vocab.mode.value for vocab in self._vocabs.values()})
        return {**super().config(), "vocab": self.vocab, "vocab_modes": modes}

    def close(self) -> None:
        """Stop the sandbox workers the ground truth started."""
        self.ground_truth.close()


def cruxeval_trace(*, path: str | Path | None = None, **args: Any) -> Environment:
    """The `cruxeval-trace` environment on CRUXEval (or on a JSONL file of tasks in its layout)."""
    return CruxEvalTraceEnv(task_rows(path), **args)
