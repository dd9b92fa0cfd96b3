"""tamis: curate instruction-tuning data for large language models with small language models.

In a notebook, :func:`score` and :func:`curate` take your table (a DataFrame, a
``datasets.Dataset``, a list of dicts, a path) and give it back with scores, or curated::

    import tamis

    result = tamis.curate(df, keep=0.5)  # result.selected, result.rejected, result.scores

The lower-level API takes objects; the ``tamis`` command looks things up by name::

    from tamis import read_dataset, load_model, score_dataset, select, Selection, ScoreCache
    from tamis.scorers import get_scorers

    data = read_dataset("data.jsonl")
    lm = load_model("smollm2-135m")
    with ScoreCache("nll.sqlite") as cache:
        result = score_dataset(data, lm, get_scorers(["ppl", "ifd"]), cache)
    decisions = select(result.rows, Selection(by="ppl", keep=0.5))
"""

from tamis.base.errors import BadRecord, TamisError  # noqa: E402
from tamis.base.version import __version__  # noqa: E402, F401
from tamis.data.readers import Dataset, read_dataset  # noqa: E402
from tamis.data.records import Message, Record  # noqa: E402
from tamis.engines.api import Curation, curate, score  # noqa: E402
from tamis.model.cache import ScoreCache  # noqa: E402
from tamis.model.loading import load_model  # noqa: E402
from tamis.model.render import Encoded, encode  # noqa: E402
from tamis.scorers.score import ScoreResult, score_dataset  # noqa: E402
from tamis.select.selection import Decision, Selection, select  # noqa: E402

__all__ = [
    "BadRecord",
    "Curation",
    "Dataset",
    "Decision",
    "Encoded",
    "Message",
    "Record",
    "ScoreCache",
    "ScoreResult",
    "Selection",
    "TamisError",
    "curate",
    "encode",
    "load_model",
    "read_dataset",
    "score",
    "score_dataset",
    "select",
]
