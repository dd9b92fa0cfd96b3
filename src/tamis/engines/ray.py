"""The Ray engine: the model steps of ``tamis score``, ``tamis run`` and ``tamis clear``, sharded
over a cluster.

The driver reads and checks the input exactly as the local engine does (formats, ids, bad
records, duplicates), so both engines see the same records. It cuts them into shards of
``shard_records`` in input order and skips every shard whose output is already complete. Ray Data
sends the other shards through ``map_batches`` to a pool of actors, each holding one loaded model;
an actor scores its shard with :func:`tamis.scorers.score.score_dataset`, the local engine's step,
and returns the score rows. The driver writes each shard as it arrives (``shards/NNNNN.parquet``,
then ``NNNNN.json`` naming its digest), so a killed run loses at most the shards in flight. At the
end the shards are joined in input order into the one ``scores.parquet`` the local engine writes.

``tamis clear`` runs two sharded steps (``task``): ``confidence`` over every record (shards under
``shards/confidence/``, each row with its sampled responses), then, after the driver has
selected, ``correct`` over the records the filter dropped (``shards/correct/``). Each actor runs
the local engine's functions (:func:`tamis.clear.confidence.fill_confidence`,
:func:`tamis.clear.confidence.auto_correct`), whose generations are seeded per prompt and sample, so
the outcome does not depend on how records are sharded or batched.

A shard is complete when its ``.json`` names the digest of this shard's records and settings and
its Parquet file holds exactly the shard's input positions. Ray restarts an actor that dies and
retries its shard; results are keyed by shard, so a retried shard cannot be counted twice.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tamis.base.errors import TamisError
from tamis.base.files import write_json
from tamis.data.readers import Dataset
from tamis.scorers.score import SUMMED_STATS as SCORE_STATS
from tamis.scorers.score import ScoreResult, _bad_rows

ENGINES = ("local", "ray")
SHARD_DIR = "shards"
# The actors' counts the driver adds up, per task.
SUMMED_STATS = {
    "score": SCORE_STATS,
    "confidence": ("records",),
    "correct": ("records",),
}


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide: ``address`` of a running cluster (None: start a local one),
    ``actors`` in the pool, CPUs and GPUs per actor, and records per shard."""

    address: str | None = None
    actors: int = 1
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    shard_records: int = 1000

    def check(self) -> None:
        if self.actors < 1:
            raise TamisError(f"--actors {self.actors}: must be at least 1")
        if self.cpus_per_actor <= 0 or self.gpus_per_actor < 0:
            raise TamisError("--cpus-per-actor must be above 0 and --gpus-per-actor at least 0")
        if self.shard_records < 1:
            raise TamisError(f"--shard-records {self.shard_records}: must be at least 1")


@dataclass(frozen=True)
class ShardSpec:
    """What every actor needs to score a shard as the local engine would."""

    model: str
    device: str
    precision: str
    template: str
    max_tokens: int
    batch_size: int
    scorers: tuple[str, ...]  # model scorers only; text scorers run on the driver
    format: str
    task: str = "score"  # or CLEAR's "confidence" and "correct"
    clear: dict[str, Any] = field(default_factory=dict)  # ClearConfig's fields, for CLEAR
    fields: tuple = ()  # the input's field mapping (Dataset.fields)


def shard_payloads(data: Dataset, size: int, extra: dict[int, list] | None = None) -> list[str]:
    """The records of ``data`` in shards of ``size``, each as JSON ``[[index, where, raw]...]``;
    ``extra[index]`` (when given) is appended to each record's item."""
    items = [[r.index, r.where, r.raw, *(extra or {}).get(r.index, ())] for r in data.records]
    return [
        json.dumps(items[i : i + size], ensure_ascii=False, default=str)
        for i in range(0, len(items), size)
    ]


def shard_digest(spec: ShardSpec, payload: str) -> str:
    described = asdict(spec)
    if not described["fields"]:
        del described["fields"]  # shards of runs without a mapping keep their earlier digest
    text = json.dumps(described, sort_keys=True) + "\n" + payload
    return hashlib.sha256(text.encode()).hexdigest()


class ShardScorer:
    """A Ray Data actor: loads the model once (and, for CLEAR, the embedder), then runs its
    ``task`` on whole shards."""

    def __init__(self, spec: dict[str, Any], threads: int):
        import tempfile

        import torch

        from tamis.model.loading import load_model
        from tamis.scorers import get_scorers

        torch.set_num_threads(max(1, threads))
        self.spec = ShardSpec(**spec)
        self.lm = load_model(self.spec.model, self.spec.device, self.spec.precision)
        self.scorers = get_scorers(list(self.spec.scorers))
        self.embedder = None
        if self.spec.task != "score":
            from tamis.model.embed import load_embedder

            self.embedder = load_embedder(self.spec.device)
        # Opened per shard: Ray Data may call the actor from another thread than __init__'s.
        self.cache_path = Path(tempfile.mkdtemp(prefix="tamis-ray-")) / "nll.sqlite"

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        from tamis.engines.manifest import model_info

        out: dict[str, list] = {"shard": [], "rows": [], "info": []}
        for shard, payload in zip(batch["shard"], batch["payload"], strict=True):
            rows, template, stats = self.run(payload)
            info = {**model_info(self.lm, template), "stats": stats}
            out["shard"].append(int(shard))
            out["rows"].append(json.dumps(rows, allow_nan=True))
            out["info"].append(json.dumps(info))
        return out

    def run(self, payload: str) -> tuple[list[dict], str, dict]:
        from tamis.data.records import mapped, to_record
        from tamis.model.cache import ScoreCache

        items = json.loads(payload)
        records = []
        for index, where, raw, *_ in items:
            record = to_record(mapped(raw, self.spec.fields), self.spec.format, where)
            record.index, record.raw = index, raw
            records.append(record)
        data = Dataset(Path(items[0][1]) if items else Path("."), self.spec.format, records)
        with ScoreCache(self.cache_path) as cache:
            if self.spec.task == "score":
                return self.score(data, cache)
            return self.clear(data, items, cache)

    def score(self, data: Dataset, cache) -> tuple[list[dict], str, dict]:
        from tamis.scorers.score import score_dataset

        result = score_dataset(
            data, self.lm, self.scorers, cache, self.spec.template, self.spec.max_tokens,
            self.spec.batch_size, progress=False,
        )  # fmt: skip
        return result.rows, result.template, result.stats

    def clear(self, data: Dataset, items: list, cache) -> tuple[list[dict], str, dict]:
        from tamis.clear.confidence import ClearConfig, auto_correct, fill_confidence
        from tamis.model.render import resolve_template
        from tamis.scorers.score import encode_dataset

        cfg, spec = ClearConfig(**self.spec.clear), self.spec
        template = resolve_template(spec.template, self.lm.tokenizer)
        encoded, by_index = encode_dataset(data, self.lm.tokenizer, template, spec.max_tokens)
        recs = {r.index: r for r in data.records}
        order = sorted(encoded)
        if spec.task == "confidence":
            samples = fill_confidence(
                self.lm, recs, encoded, by_index, cache, cfg, self.embedder, spec.batch_size,
                progress=False,
            )  # fmt: skip
            rows = [{**by_index[i], "samples": samples.get(i)} for i in sorted(by_index)]
            return rows, template, {"records": len(order)}
        extra = {item[0]: item[3:] for item in items}  # [confidence, samples]
        if len(order) != len(items):
            raise RuntimeError("internal error: a record to correct no longer encodes")
        corrections = auto_correct(
            self.lm, [recs[i] for i in order], [encoded[i] for i in order],
            [extra[i][0] for i in order], [extra[i][1] for i in order], cache, cfg,
            self.embedder, spec.batch_size, progress=False,
        )  # fmt: skip
        return [asdict(c) for c in corrections], template, {"records": len(order)}


def score_on_ray(
    data: Dataset, spec: ShardSpec, opts: RayOptions, out_dir: Path, progress: bool
) -> tuple[dict[int, dict], str, dict, dict]:
    """Score ``data`` on Ray: ``({index: row} of model scores, template, model info, stats)``.
    Complete shards under ``out_dir/shards`` are reused; the rest are scored and written.
    ``stats`` adds up the actors' counts; ``forward_s`` is summed over actors (CPU-side time),
    ``ray_s`` is the wall time of the Ray part."""
    payloads = shard_payloads(data, opts.shard_records)
    shards, info, stats = run_sharded(spec, opts, payloads, out_dir / SHARD_DIR, progress)
    rows = {r["index"]: r for shard_rows in shards for r in shard_rows}
    template = info.pop("template")
    return rows, template, info, stats


def run_sharded(
    spec: ShardSpec,
    opts: RayOptions,
    payloads: list[str],
    folder: Path,
    progress: bool,
    label: str = "scoring on ray",
) -> tuple[list[list[dict]], dict, dict]:
    """Run ``spec.task`` on every shard (``payloads``, from :func:`shard_payloads`) on Ray:
    ``(each shard's rows in shard order, model info with the template, stats)``. Complete shards
    in ``folder`` are reused; the others are run and written there as they arrive."""
    opts.check()
    if spec.task not in SUMMED_STATS:
        raise ValueError(f"unknown shard task {spec.task!r}")
    folder.mkdir(parents=True, exist_ok=True)
    digests = [shard_digest(spec, p) for p in payloads]
    shards: list[list[dict] | None] = [None] * len(payloads)
    info: dict[str, Any] = {}
    todo = []
    for shard, payload in enumerate(payloads):
        done = read_shard(folder, shard, digests[shard], payload)
        if done is None:
            todo.append(shard)
        else:
            shards[shard] = done[0]
            info = info or done[1]
    stats: dict[str, Any] = {"shards": len(payloads), "shards_reused": len(payloads) - len(todo)}
    summed = SUMMED_STATS[spec.task]
    stats.update(dict.fromkeys(summed, 0))
    if todo:
        t0 = time.perf_counter()
        for shard, shard_rows, shard_info in _run_shards(
            spec, opts, todo, payloads, digests, folder, progress, label
        ):
            shards[shard] = shard_rows
            info = shard_info
            for k in summed:
                stats[k] += shard_info["stats"].get(k, 0)
        stats["ray_s"] = time.perf_counter() - t0
        stats["records_per_s"] = sum(len(json.loads(payloads[s])) for s in todo) / stats["ray_s"]
    info = {k: v for k, v in info.items() if k != "stats"}
    return [s or [] for s in shards], info, stats


def _run_shards(spec, opts, todo, payloads, digests, folder, progress, label) -> list:
    import ray

    from tamis.scorers.score import progress_bar

    _init_ray(opts.address)
    items = [{"shard": s, "payload": payloads[s]} for s in todo]
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.execution_options.verbose_progress = False
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    # A fixed pool; Ray Data restarts a dead actor and retries its shard (max_restarts and
    # max_task_retries default to -1 for actor pools).
    scored = ds.map_batches(
        ShardScorer,
        fn_constructor_kwargs={"spec": asdict(spec), "threads": int(opts.cpus_per_actor)},
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=min(opts.actors, len(items))),
        num_cpus=opts.cpus_per_actor,
        num_gpus=opts.gpus_per_actor or None,
    )
    sizes = {s: len(json.loads(payloads[s])) for s in todo}
    bar = progress_bar(sum(sizes.values()), progress, label)
    bar.unit = "rec"
    results, seen = [], set()
    try:
        for row in _rows(scored, folder):
            shard = int(row["shard"])
            if shard in seen:  # a retried shard whose first result also arrived
                continue
            seen.add(shard)
            shard_rows, info = json.loads(row["rows"]), json.loads(row["info"])
            write_shard(folder, shard, digests[shard], shard_rows, info, spec.task)
            results.append((shard, shard_rows, info))
            bar.update(sizes[shard])
    finally:
        bar.close()
    missing = sorted(set(todo) - seen)
    if missing:
        raise TamisError(f"{folder}: shards {missing} came back empty; re-run to score them")
    return results


def _rows(scored, folder: Path):
    """The actors' results as they come; a shard that fails for good becomes one clear error."""
    try:
        yield from scored.iter_rows()
    except Exception as e:  # Ray wraps the actor's exception; its last line names the cause
        cause = str(e).strip().splitlines()
        raise TamisError(
            f"scoring on Ray failed ({cause[-1] if cause else type(e).__name__}); the shards "
            f"finished so far are kept in {folder}: fix the cause and re-run"
        ) from None


def _init_ray(address: str | None) -> None:
    try:
        import ray
    except ImportError:
        raise TamisError(
            "--engine ray needs Ray: pip install 'tamis[ray]' (or 'ray[data]')"
        ) from None
    if ray.is_initialized():
        return
    import logging

    # Ray Data's INFO lines would bury tamis' own progress bar; failures still arrive as
    # exceptions.
    import ray.data  # noqa: F401  (configures its loggers on import; quieted below)

    logging.getLogger("ray.data").setLevel(logging.ERROR)
    kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": "ERROR"}
    if address:
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError) as e:
            raise TamisError(
                f"--address {address}: cannot connect to a Ray cluster ({e}); start one with "
                "'ray start --head' or leave --address out for a local one"
            ) from None
    else:
        try:
            ray.init(include_dashboard=False, **kwargs)
        except Exception as e:  # Ray raises its own system errors when a service fails to start
            raise TamisError(
                f"could not start a local Ray instance ({type(e).__name__}: {e}); check "
                "'ray status' and /tmp/ray/session_latest/logs, or pass --address"
            ) from None


def write_shard(
    folder: Path, shard: int, digest: str, rows: list[dict], info: dict, task: str = "score"
) -> None:
    """The shard's rows as Parquet, then its ``.json`` (the mark that the shard is complete).
    Score shards have the ``scores.parquet`` schema; CLEAR's keep their rows' own fields."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tamis.base.files import atomic_open
    from tamis.data.outputs import write_scores

    path = folder / f"{shard:05d}.parquet"
    if task == "score":
        columns = [c for c in rows[0] if c not in ("index", "id", "status", "detail", "truncated")]
        write_scores(path, rows, columns)
    else:
        with atomic_open(path, "wb") as f:
            pq.write_table(pa.Table.from_pylist(rows), f)
    write_json(folder / f"{shard:05d}.json", {"digest": digest, "rows": len(rows), "info": info})


def read_shard(folder: Path, shard: int, digest: str, payload: str):
    """``(rows, info)`` of a complete shard, else None (absent, another digest, or damaged)."""
    import pyarrow.parquet as pq

    mark, table = folder / f"{shard:05d}.json", folder / f"{shard:05d}.parquet"
    try:
        meta = json.loads(mark.read_text())
        if meta.get("digest") != digest:
            return None
        rows = pq.read_table(table).to_pylist()
    except (OSError, ValueError):  # pyarrow's errors are ValueError or OSError
        return None
    expected = [item[0] for item in json.loads(payload)]
    if [r["index"] for r in rows] != expected or len(rows) != meta.get("rows"):
        return None
    return rows, meta["info"]


def ray_result(data: Dataset, text_scorers, model_columns, scored, template, stats):
    """The :class:`ScoreResult` the local engine would give, from the shards' rows."""
    by_index = _bad_rows(data)
    for index, row in scored.items():
        by_index[index] = row
    for scorer in text_scorers:
        for column, values in scorer.compute_all(data.records).items():
            for rec, value in zip(data.records, values, strict=True):
                by_index[rec.index][column] = value
    columns = [*model_columns, *(c for s in text_scorers for c in s.columns)]
    rows = [by_index[i] for i in sorted(by_index)]
    for row in rows:
        for c in columns:
            row.setdefault(c, None)
    return ScoreResult(rows, columns, template, stats)
