"""The options that several jobs share, defined once: how the input is read, how the model
reads records, and where the work runs. Each job's configuration adds its own fields to these
(:class:`~tamis.engines.jobs.ScoreConfig`, :class:`~tamis.engines.clear_job.ClearJob`,
:class:`~tamis.engines.train_job.TrainJob`, :class:`~tamis.engines.predict_loss.PredictLossConfig`);
a job may give a field another default (``tamis train`` fine-tunes the larger target model)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tamis.engines.ray import RayOptions
from tamis.scorers.score import DEFAULT_MAX_TOKENS


@dataclass
class InputOptions:
    """How DATA is read: ``format`` (None: detected from the first record) and ``skip_bad``
    (a malformed record goes to ``rejected.jsonl`` with its reason instead of stopping)."""

    format: str | None = None
    skip_bad: bool = False
    # (field, column) pairs: a field tamis reads taken from a column of another name
    fields: tuple[tuple[str, str], ...] = ()


@dataclass
class ModelOptions(InputOptions):
    """How a model reads each record: the prompt ``template`` (``auto``: the model's chat
    template if it has one, else alpaca), the context limit ``max_tokens``, the ``device``."""

    template: str = "auto"
    max_tokens: int = DEFAULT_MAX_TOKENS
    device: str = "cpu"


@dataclass
class ScoringOptions(ModelOptions):
    """Scoring passes: records per forward pass, and the score cache file (None:
    ``OUT/cache/nll.sqlite``)."""

    batch_size: int = 8
    cache: str | None = None


@dataclass
class EngineOptions:
    """Where the work runs: ``local`` (this process) or ``ray`` (shards over Ray actors)."""

    engine: str = "local"
    ray: RayOptions = field(default_factory=RayOptions)
