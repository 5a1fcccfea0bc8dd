"""Engines for environment tests: one that fails, one that never answers, one that records a real one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from tokenroll.engines.base import Engine, EngineError, Generation, SamplingParams


@dataclass
class RaisingEngine(Engine):
    """Raises `error` on every request."""

    error: EngineError
    model: str = "raising"

    async def generate(self, prompt_ids: Sequence[int], sampling: SamplingParams) -> Generation:
        raise self.error


@dataclass
class StalledEngine(Engine):
    """Never answers (until cancelled)."""

    model: str = "stalled"

    async def generate(self, prompt_ids: Sequence[int], sampling: SamplingParams) -> Generation:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


@dataclass
class RecordingEngine(Engine):
    """Passes requests to `inner` and keeps every prompt and generation it returned."""

    inner: Engine
    model: str = "recording"
    prompts: list[list[int]] = field(default_factory=list)
    samplings: list[SamplingParams] = field(default_factory=list)
    generations: list[Generation] = field(default_factory=list)

    async def generate(self, prompt_ids: Sequence[int], sampling: SamplingParams) -> Generation:
        generation = await self.inner.generate(prompt_ids, sampling)
        # Appended together, after the answer: concurrent requests keep the three lists aligned.
        self.prompts.append(list(prompt_ids))
        self.samplings.append(sampling)
        self.generations.append(generation)
        return generation

    def by_seed(self) -> dict[int | None, tuple[list[int], Generation]]:
        """Each request's prompt and generation, keyed by its sampling seed."""
        return {s.seed: (p, g) for p, s, g in zip(self.prompts, self.samplings, self.generations)}

    async def aclose(self) -> None:
        await self.inner.aclose()
