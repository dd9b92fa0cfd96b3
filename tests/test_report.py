"""report.html: built from real run and clear folders (the bundled model on a few records) and an
experiment folder, opened in headless Chromium (Debian's package, driven by Playwright): no
console error, nothing from the data runs, the plots and tables are there, sorting and search
work. Plus the HTML escaping and the folder reading by hand."""

import base64
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import DEMO

from tamis.base.errors import TamisError
from tamis.cli import main
from tamis.data.outputs import read_scores
from tamis.report.build import write_report, write_report_after_job
from tamis.report.data import Curation, Item, _outcomes, cuts
from tamis.report.html import SCRIPT, Column, Table, esc, page, render_table

SCRIPT_TAG = "<script>window.__pwned=1</script>"
IMG_TAG = '<img src=x onerror="window.__pwned=1">'
BAD_ID = 'x"><svg onload="window.__pwned=3">'
CATEGORY = "<b>cat</b>"
BAD_LINE = '{"instruction": "<script>window.__pwned=2</script>", broken\n'


def demo_rows(n):
    with DEMO.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [r for r in rows if 60 <= len(r["output"]) <= 300][:n]


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """`tamis run` on 7 demo records, one with markup in its response, one with markup in its
    id, a category with markup, and a malformed line (--skip-bad)."""
    rows = demo_rows(7)
    rows[0]["output"] = f"Use {SCRIPT_TAG} and {IMG_TAG} as text."
    rows[1]["id"] = BAD_ID
    rows[2]["category"] = CATEGORY
    tmp = tmp_path_factory.mktemp("report_run")
    data = tmp / "data.jsonl"
    lines = [json.dumps(r) + "\n" for r in rows]
    data.write_text("".join(lines[:3]) + BAD_LINE + "".join(lines[3:]), encoding="utf-8")
    out = tmp / "out"
    args = ["run", str(data), "-o", str(out), "--keep", "0.5", "--skip-bad", "--by", "ppl", "-q"]
    assert main(args) == 0
    return out


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium from Debian; failing, not skipping, when it is missing."""
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed: run 'make test' (it installs the test extra)")
    if chromium is None:
        pytest.fail("Chromium is not installed: run 'make test' (it installs Debian's chromium)")
    with sync_playwright() as p:
        # --no-sandbox: Chromium's sandbox refuses to start as root (CI and containers).
        b = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def open_report(browser, path: Path):
    """The page at ``path`` and the list its console errors and non-local requests go to."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "request",
        lambda r: None if r.url.startswith(("file:", "data:")) else problems.append(r.url),
    )
    page.goto(path.as_uri())
    return page, problems


def screenshot(page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    print(f"screenshot: {path}")


def column_values(page, table_id: str, title: str) -> list[float]:
    return page.evaluate(
        """([id, title]) => {
            const table = document.getElementById(id);
            const i = [...table.tHead.rows[0].cells].findIndex(c => c.textContent === title);
            return [...table.tBodies[0].rows].map(r => Number(r.cells[i].dataset.sort));
        }""",
        [table_id, title],
    )


@pytest.mark.model
def test_run_report_in_chromium(run_folder, browser):
    report = run_folder / "report.html"
    assert report.is_file(), "tamis run writes report.html"
    page, problems = open_report(browser, report)
    assert problems == []
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img").count() == 0  # the injected <img> is text, not an element
    text = page.locator("body").inner_text()
    for shown in (SCRIPT_TAG, IMG_TAG, BAD_ID, CATEGORY, "window.__pwned=2"):
        assert shown in text
    assert page.locator("#categories b").count() == 0
    summary = page.locator("#summary").inner_text()
    assert "data.jsonl" in summary and "smollm2-135m" in summary
    assert re.search(r"records in\s+8", summary) and re.search(r"kept\s+3", summary)
    assert "ranked_out" in summary and "bad_json" in summary
    # a histogram per score, the selection cut drawn on ppl's
    # (a column without a single value, such as junk with too few records and no flag, has none)
    rows, columns = read_scores(run_folder / "scores.parquet")
    valued = [c for c in columns if any(r[c] is not None for r in rows)]
    assert len(valued) >= 7 and page.locator("#histograms figure svg").count() == len(valued)
    assert page.locator('#hist-ppl svg g[id^="cut-ppl"]').count() == 1
    # the scatter: one plot shown, another chosen from the list
    shown = page.locator("#scatter figure:not([hidden])")
    assert shown.count() == 1 and shown.get_attribute("id") == "scatter-ifd-ppl"
    assert shown.locator('svg g[id^="points-"]').count() == 2  # kept and dropped
    page.select_option("#scatter select", "scatter-ce-ppl")
    assert page.locator("#scatter figure:not([hidden])").get_attribute("id") == "scatter-ce-ppl"
    # the examples tables: every scored record is among the top and bottom 10
    assert page.locator("#examples table").count() == len(valued)  # one per score
    assert page.locator("#examples-ppl tbody tr").count() == 7
    # sorting: by ppl, up then down
    page.click("#examples-ppl th:text-is('ppl')")
    values = column_values(page, "examples-ppl", "ppl")
    assert values == sorted(values)
    page.click("#examples-ppl th:text-is('ppl')")
    assert column_values(page, "examples-ppl", "ppl") == sorted(values, reverse=True)
    # search: only the record with the markup in its response
    page.fill("input[data-table='examples-ppl']", "pwned=1")
    visible = page.locator("#examples-ppl tbody tr:not([hidden])")
    assert visible.count() == 1 and SCRIPT_TAG in visible.inner_text()
    assert page.locator("#examples-ppl-count").inner_text() == "1 of 7 rows"
    page.fill("input[data-table='examples-ppl']", "")
    assert page.locator("#examples-ppl tbody tr:not([hidden])").count() == 7
    # every dropped record can be found: as junk (with its signal) or in the table of drops
    rejected = [json.loads(line) for line in (run_folder / "rejected.jsonl").open()]
    dropped = [r for r in rejected if r["reason"] not in ("bad_json",)]
    junk = [r for r in dropped if r["reason"].startswith("junk_")]
    assert dropped and page.locator("#dropped-table tbody tr").count() == len(dropped) - len(junk)
    assert page.locator("#junk-table tbody tr").count() == len(junk)
    listed = page.locator("#dropped").inner_text() + page.locator("body").inner_text()
    assert all(str(r["id"]) in listed for r in dropped)
    assert problems == [] and page.evaluate("window.__pwned") is None
    screenshot(page, run_folder.parent / "report.png")


@pytest.mark.model
def test_select_rewrites_the_report_with_its_cuts(run_folder, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(run_folder, out)
    assert main(["select", str(out), "--keep", "2", "--by", "ifd", "-q"]) == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    # the ranking cut and the default IFD limit of --by ifd
    assert 'id="cut-ifd-0"' in html and 'id="cut-ifd-1"' in html
    assert "drop ifd above 1" in html


@pytest.mark.model
def test_clear_report_shows_the_corrections(browser, tmp_path, write_jsonl):
    data = write_jsonl(demo_rows(3))
    out = tmp_path / "out"
    args = ["clear", str(data), "-o", str(out), "--keep", "2", "--samples", "1", "-q"]
    args += ["--max-new-tokens", "8", "--correct-max-new-tokens", "16"]
    assert main(args) == 0
    corrections = [json.loads(x) for x in (out / "corrections.jsonl").read_text().splitlines()]
    assert len(corrections) == 1
    page, problems = open_report(browser, out / "report.html")
    assert problems == []
    assert page.locator("#corrections-table tbody tr").count() == 1
    heads = page.locator("#corrections-table th").all_inner_texts()
    assert heads.index("original") + 1 == heads.index("replacement")
    # the replacement is on screen without scrolling sideways (1280 px wide)
    replacement = page.locator("#corrections-table th:text-is('replacement')").bounding_box()
    assert replacement["x"] + replacement["width"] <= 1280
    assert {"confidence", "candidate_confidence", "preference"} <= set(heads)
    text = page.locator("#corrections").inner_text()
    for c in corrections:
        assert c["original"].split("\n")[0][:40] in text
    assert page.locator('#hist-confidence svg g[id^="cut-confidence"]').count() == 1
    # every record CLEAR dropped is listed with its reason
    rejected = [json.loads(x) for x in (out / "rejected.jsonl").read_text().splitlines()]
    dropped = page.locator("#dropped-table tbody tr")
    assert dropped.count() == len(rejected)
    listed = page.locator("#dropped").inner_text() if rejected else ""
    assert all(r["id"] in listed and r["reason"] in listed for r in rejected)
    screenshot(page, tmp_path / "report.png")


@pytest.fixture()
def experiment_folder(tmp_path):
    """An experiment folder as tamis experiment leaves it, with made-up numbers (training real
    arms takes minutes; tests/test_experiment.py does that)."""
    from tamis.data.outputs import write_scores
    from tamis.engines.experiment import ExperimentConfig
    from tamis.engines.experiment_results import summarise

    cfg = ExperimentConfig(pool=str(tmp_path / "pool.jsonl"), budget=0.5, seeds=[0, 1])
    runs = []
    for k, arm in enumerate(["full", "top-ppl", "random"]):
        for seed in (0, 1):
            curve = [(step, 3.0 - 0.1 * step - 0.2 * k + 0.05 * seed) for step in range(1, 9)]
            log = tmp_path / "arms" / arm / f"seed{seed}" / "train" / "train_log.jsonl"
            log.parent.mkdir(parents=True)
            log.write_text("".join(json.dumps({"step": s, "loss": v}) + "\n" for s, v in curve))
            runs.append({"arm": arm, "seed": seed, "records": 10 if k == 0 else 5,
                         "train_tokens": 1000, "train_wall_s": 3.0, "loss": 2.0 - 0.1 * k,
                         "perplexity": 7.0, "rouge_l": None, "exact_match": None,
                         "curve": curve, "noisy_records": None})  # fmt: skip
    (tmp_path / "results.json").write_text(json.dumps(summarise(cfg, runs, 42.0)))
    rows = [{"index": i, "id": str(i), "status": "ok", "detail": "", "truncated": False,
             "ppl": 1.5 + i} for i in range(10)]  # fmt: skip
    write_scores(tmp_path / "scores" / "scores.parquet", rows, ["ppl"])
    return tmp_path


@pytest.mark.model
def test_train_and_eval_reports_in_chromium(browser, tmp_path, write_jsonl):
    rows = [r for r in demo_rows(12) if len(r["output"]) < 200]
    data, held = write_jsonl(rows[:6], "train.jsonl"), write_jsonl(rows[6:9], "held.jsonl")
    out = tmp_path / "train"
    args = ["train", str(data), "-o", str(out), "--model", "smollm2-135m", "--batch-size", "2"]
    args += ["--max-tokens", "256", "--eval-data", str(held), "--eval-steps", "1", "-q"]
    assert main(args) == 0
    page, problems = open_report(browser, out / "report.html")
    assert problems == []
    summary = page.locator("#summary").inner_text()
    assert "smollm2-135m" in summary and re.search(r"optimizer steps\s+3", summary)
    assert re.search(r"held-out records\s+3", summary)
    # the training curve and the held-out curve, and a row per step and per evaluation
    assert page.locator('#curves svg g[id^="curve-"]').count() == 2
    assert page.locator("#steps-table tbody tr").count() == 3
    assert page.locator("#held-out-table tbody tr").count() == 4  # steps 0, 1, 2, 3
    screenshot(page, tmp_path / "train.png")
    ev = tmp_path / "eval"
    args = ["eval", str(held), "--model", str(out / "model"), "-o", str(ev), "--max-tokens", "256"]
    assert main([*args, "--max-new-tokens", "8", "-q"]) == 0
    page, problems = open_report(browser, ev / "report.html")
    assert problems == []
    assert re.search(r"loss\s+\d", page.locator("#summary").inner_text())
    assert page.locator("#records-table tbody tr").count() == 3
    heads = page.locator("#records-table th").all_inner_texts()
    assert {"id", "ce", "rouge l", "answer"} <= set(heads)


def test_experiment_report(browser, experiment_folder):
    assert main(["report", str(experiment_folder)]) == 0
    page, problems = open_report(browser, experiment_folder / "report.html")
    assert problems == []
    arms = page.locator("#results-table tbody tr td:first-child").all_inner_texts()
    assert arms == ["full", "top-ppl", "random"]
    assert page.locator("#runs-table tbody tr").count() == 6
    assert page.locator('#curves svg g[id^="curve-"]').count() == 6  # one line per run
    # the pool's ppl with the top-ppl arm's cut: the 5 lowest of 1.5 .. 10.5
    assert page.locator('#hist-ppl svg g[id^="cut-ppl"]').count() == 1
    assert "cut: top 5 (5.5)" in page.locator("#hist-ppl figcaption").inner_text()
    page.click("#results-table th:text-is('loss mean')")
    values = column_values(page, "results-table", "loss mean")
    assert values == sorted(values)
    screenshot(page, experiment_folder / "report.png")


# --- without a browser -------------------------------------------------------------------------


def test_escaping_covers_text_and_attributes():
    assert esc('<a href="x">\'&') == "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;"
    table = Table(
        'id"><script>',
        [Column("t"), Column("n", "number"), Column("o", "outcome"), Column("l", "long")],
        [["</td><script>alert(1)</script>", 1.5, '"><img src=x onerror=1>', "<b>x</b>"]],
    )
    out = render_table(table)
    assert "<script" not in out and "<img" not in out and "<b>" not in out
    assert "&lt;/td&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert 'data-sort="1.5"' in out


def test_the_page_allows_exactly_its_own_script():
    html = page("t <x>", "<p>body</p>")
    assert html.count("<script") == 1 and "<title>t &lt;x&gt;</title>" in html
    body = re.search(r"<script>(.*)</script>", html, re.S).group(1)
    assert body == SCRIPT
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html).group(1)
    assert f"script-src &#x27;sha256-{digest}&#x27;;" in csp
    assert "default-src &#x27;none&#x27;" in csp and "http" not in csp


def row(index, rid, status="ok"):
    return {"index": index, "id": rid, "status": status}


def test_rejected_lines_are_matched_to_rows_in_order():
    rows = [row(0, "a"), row(1, "b"), row(2, "a", "duplicate_id"), row(3, "c")]
    rejected = [{"id": "a", "reason": "duplicate_id"}, {"id": "c", "reason": "ranked_out"}]
    # the kept "a" is not mistaken for its later duplicate
    got = _outcomes(rows, rejected, Path("x"))
    assert got == [
        ("kept", ""),
        ("kept", ""),
        ("dropped", "duplicate_id"),
        ("dropped", "ranked_out"),
    ]
    with pytest.raises(TamisError, match="does not match scores.parquet"):
        _outcomes(rows, [{"id": "zzz", "reason": "ranked_out"}], Path("x"))


def test_cuts_are_the_last_kept_value_and_the_thresholds():
    items = [
        Item(i, str(i), "ok", outcome, reason, {"ppl": v, "repetition": 0.1})
        for i, (v, outcome, reason) in enumerate(
            [(2.0, "kept", ""), (3.0, "kept", ""), (5.0, "dropped", "ranked_out"),
             (90.0, "dropped", "above_max")]
        )
    ]  # fmt: skip
    sel = {"by": "ppl", "direction": "lowest", "keep": 2, "min": None, "max": 50.0,
           "filters": [{"column": "repetition", "op": "<=", "value": 0.6}]}  # fmt: skip
    found = cuts(Curation("run", Path("x"), {}, ["ppl", "repetition"], items, sel))
    assert found["ppl"] == [(3.0, "cut: keep the lowest 2 (3)"), (50.0, "max 50")]
    assert found["repetition"] == [(0.6, "filter repetition<=0.6")]


def test_a_folder_that_is_not_tamis_output_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(tmp_path) in err and "not a tamis output folder" in err
    assert "give the -o folder of tamis run" in err
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_a_failing_report_does_not_fail_the_job(tmp_path, capsys, monkeypatch):
    import tamis.report.build

    def broken(folder):
        raise RuntimeError("plotting went wrong")

    monkeypatch.setattr(tamis.report.build, "write_report", broken)
    assert write_report_after_job(tmp_path) is None
    err = capsys.readouterr().err
    assert "report.html not written (RuntimeError: plotting went wrong)" in err
    assert f"tamis report {tmp_path}" in err


@pytest.mark.model
def test_scatter_pairs_are_checked(run_folder, tmp_path):
    with pytest.raises(TamisError, match="no score 'ppx'.*choose from: ce, ppl"):
        write_report(run_folder, tmp_path / "r.html", [("ppx", "ppl")])
    html = write_report(run_folder, tmp_path / "r.html", [("ce", "ifd")]).read_text()
    assert 'id="scatter-ce-ifd"' in html and 'id="scatter-ifd-ppl"' not in html


def test_the_summary_names_each_models_template_and_the_system_prompt_it_added():
    from tamis.report.build import _templates

    prompt = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    small = {"name": "smollm2-135m", "template": "chat", "system_prompt": prompt}
    large = {"name": "gemma3-270m", "template": "alpaca", "system_prompt": None}
    said = _templates({}, [small, large])
    assert (
        said == f"smollm2-135m: chat (with the system prompt its chat template adds: {prompt!r})"
        "; gemma3-270m: alpaca"
    )
    assert _templates({}, [large]) == "alpaca"
    old = {"score": {"config": {"template": "chat"}}}  # a manifest written before this
    assert _templates(old, [{"name": "smollm2-135m"}]) == "chat"


def test_ensemble_columns_are_labelled_as_ranks_and_clusters_drawn_as_ids():
    from tamis.report.build import column_label
    from tamis.report.data import Curation
    from tamis.report.plots import histogram

    config = {"ensemble": ["smollm2-135m", "gemma3-270m"], "combine": "rank-mean"}
    columns = ["ppl", "ppl__smollm2_135m", "ppl__gemma3_270m", "ppl_disagreement", "cluster"]
    cur = Curation("score", Path("."), {"score": {"config": config}}, columns, [], None)
    assert column_label(cur, "ppl") == "ppl (mean percentile rank over 2 models)"
    assert column_label(cur, "ppl__smollm2_135m") == "ppl__smollm2_135m"  # a model's own values
    assert column_label(cur, "cluster") == "cluster"
    # cluster ids 0..3: one bar per id (4), where a quantity gets 40 bins
    ids = histogram("cluster", {"kept": [0, 0, 1, 3]}, categorical=True)
    binned = histogram("cluster", {"kept": [0, 0, 1, 3]})
    assert ids.count('id="patch_') - 4 == binned.count('id="patch_') - 40
