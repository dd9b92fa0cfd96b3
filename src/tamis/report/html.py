"""The HTML of ``report.html``: escaping, tables, and the page with its one script and its
Content-Security-Policy.

Safety rests on two layers. Every string from the data goes through :func:`esc` (``html.escape``
with quotes), so it is shown as text; the page embeds no data inside its script. And the CSP lets
only the page's own script run (by its sha256 hash): an attribute handler such as ``onerror``,
even if one slipped through, is refused by the browser, and nothing is fetched from the network
(``default-src 'none'``, images only as ``data:`` URIs).
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Sorting, search and the plot chooser. Plain DOM calls, text only through textContent: no data
# is ever parsed as HTML here.
SCRIPT = """
(function () {
  "use strict";
  function key(row, i) {
    var cell = row.cells[i];
    var v = cell.getAttribute("data-sort");
    return v === null ? cell.textContent.trim().toLowerCase() : v;
  }
  function compare(a, b, numeric) {
    if (numeric) {
      var x = a === "" ? NaN : Number(a), y = b === "" ? NaN : Number(b);
      if (isNaN(x) || isNaN(y)) { return isNaN(x) - isNaN(y); }
      return x - y;
    }
    return a < b ? -1 : a > b ? 1 : 0;
  }
  function sortBy(table, th, i) {
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var numeric = th.getAttribute("data-type") === "number";
    Array.prototype.forEach.call(th.parentNode.cells, function (h) {
      h.setAttribute("aria-sort", "none");
    });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r, s) {
      var a = key(r, i), b = key(s, i);
      var missing = (a === "") - (b === "");
      if (numeric && missing) { return missing; }
      var c = compare(a, b, numeric);
      return ascending ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.tabIndex = 0;
      th.addEventListener("click", function () { sortBy(table, th, i); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(table, th, i); }
      });
    });
  });
  document.querySelectorAll("input.search").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-table"));
    var count = document.getElementById(input.getAttribute("data-count"));
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase(), shown = 0, rows = table.tBodies[0].rows;
      Array.prototype.forEach.call(rows, function (r) {
        var hit = q === "" || r.textContent.toLowerCase().indexOf(q) >= 0;
        r.hidden = !hit;
        shown += hit ? 1 : 0;
      });
      count.textContent = shown + " of " + rows.length + " rows";
    });
  });
  document.querySelectorAll("select.plot-choice").forEach(function (select) {
    var group = document.getElementById(select.getAttribute("data-group"));
    select.addEventListener("change", function () {
      Array.prototype.forEach.call(group.children, function (fig) {
        fig.hidden = fig.id !== select.value;
      });
    });
  });
})();
"""

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1400px;
       padding: 0 1.5em 3em; color: #1b1b1b; }
h1 { font-size: 1.5em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .5em 0; }
div.scroll { overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 3px 7px; vertical-align: top; text-align: left; }
th { background: #f3f3f3; }
table.sortable th { cursor: pointer; user-select: none; white-space: nowrap; }
table.sortable th[aria-sort="ascending"]::after { content: " \\25B2"; }
table.sortable th[aria-sort="descending"]::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
div.text { white-space: pre-wrap; overflow-wrap: anywhere; max-height: 11em; overflow: auto;
           min-width: 18em; max-width: 38em; }
#corrections-table div.text { max-width: 26em; }
.kept { color: #1a7f37; } .dropped { color: #b42318; } .corrected { color: #8250df; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; } figure svg { max-width: 100%; height: auto; }
figcaption, .note { color: #555; font-size: .9em; }
input.search { margin: .3em 0; padding: 3px 6px; width: 22em; }
details { margin: .6em 0; } summary { cursor: pointer; font-weight: 600; }
"""

MAX_TEXT = 2000  # characters of a prompt or response shown in a table cell


def esc(value: Any) -> str:
    """``value`` as HTML text: ``&``, ``<``, ``>`` and both quotes escaped, so any string is safe
    both between tags and inside a double-quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def html_id(*parts: str) -> str:
    """A safe element id made from ``parts`` (letters, digits, ``_`` and ``-`` only)."""
    return "-".join(re.sub(r"[^A-Za-z0-9_-]", "_", p) for p in parts)


def fmt_number(value: Any) -> str:
    """A score as shown: 4 significant digits; empty for missing or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def clip(text: str | None, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters, a cut marked with its full length."""
    text = text or ""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} [... {len(text) - limit} more characters]"


@dataclass
class Column:
    """A table column: ``kind`` is ``text`` (sorted as text), ``number`` (sorted by value),
    ``long`` (a prompt or response: shown in a scrolling box) or ``outcome`` (kept/dropped)."""

    title: str
    kind: str = "text"


@dataclass
class Table:
    """A sortable table; with ``search`` it gets a search box that filters its rows."""

    id: str
    columns: list[Column]
    rows: list[Sequence[Any]] = field(default_factory=list)
    search: bool = True
    caption: str = ""


def _cell(value: Any, kind: str) -> str:
    if kind == "number":
        sort = "" if fmt_number(value) == "" else repr(float(value))
        return f'<td class="num" data-sort="{esc(sort)}">{esc(fmt_number(value))}</td>'
    if kind == "long":
        return f'<td><div class="text">{esc(clip(value))}</div></td>'
    if kind == "outcome":
        return f'<td class="{esc(html_id(str(value)))}">{esc(value)}</td>'
    return f"<td>{esc(value)}</td>"


def render_table(table: Table) -> str:
    """The table's HTML: every cell escaped, numbers carrying their exact value for sorting."""
    head = "".join(
        f'<th scope="col" aria-sort="none" data-type="{"number" if c.kind == "number" else "text"}"'
        f">{esc(c.title)}</th>"
        for c in table.columns
    )
    body = "\n".join(
        "<tr>" + "".join(_cell(v, c.kind) for v, c in zip(row, cols, strict=True)) + "</tr>"
        for cols, row in ((table.columns, r) for r in table.rows)
    )
    parts = []
    if table.caption:
        parts.append(f'<p class="note">{esc(table.caption)}</p>')
    if table.search:
        count = f"{table.id}-count"
        parts.append(
            f'<input class="search" type="search" placeholder="search these rows" '
            f'aria-label="search the table" data-table="{esc(table.id)}" '
            f'data-count="{esc(count)}"> <span class="note" id="{esc(count)}">'
            f"{len(table.rows)} of {len(table.rows)} rows</span>"
        )
    parts.append(
        f'<div class="scroll"><table class="sortable" id="{esc(table.id)}"><thead><tr>{head}'
        f"</tr></thead><tbody>\n{body}\n</tbody></table></div>"
    )
    return "\n".join(parts)


def key_values(pairs: Iterable[tuple[str, Any]]) -> str:
    """A two-column table of settings or facts, values escaped."""
    rows = "".join(
        f'<tr><th scope="row">{esc(k)}</th><td>{esc(fmt_number(v))}</td></tr>' for k, v in pairs
    )
    return f'<table class="facts">{rows}</table>'


def figure(svg: str, caption: str, fig_id: str = "", hidden: bool = False) -> str:
    """An SVG drawn by matplotlib (trusted markup: its text is drawn as paths, its comments
    escaped by matplotlib) with an escaped caption."""
    attrs = f' id="{esc(fig_id)}"' if fig_id else ""
    attrs += " hidden" if hidden else ""
    return f"<figure{attrs}>{svg}<figcaption>{esc(caption)}</figcaption></figure>"


def chooser(group_id: str, label: str, figures: list[tuple[str, str, str, str]]) -> str:
    """Several figures, one shown at a time, picked from a drop-down.

    ``figures``: ``(id, option title, svg, caption)``; the first one is shown."""
    options = "".join(f'<option value="{esc(i)}">{esc(t)}</option>' for i, t, _, _ in figures)
    shown = "".join(figure(svg, cap, i, hidden=k > 0) for k, (i, _, svg, cap) in enumerate(figures))
    return (
        f'<label>{esc(label)} <select class="plot-choice" data-group="{esc(group_id)}">'
        f'{options}</select></label><div id="{esc(group_id)}">{shown}</div>'
    )


def script_hash() -> str:
    """The CSP source that allows exactly :data:`SCRIPT`."""
    digest = hashlib.sha256(SCRIPT.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def page(title: str, body: str) -> str:
    """The whole document: no external resource, only :data:`SCRIPT` may run."""
    csp = (
        f"default-src 'none'; script-src {script_hash()}; style-src 'unsafe-inline'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style></head>\n<body>\n"
        f"<h1>{esc(title)}</h1>\n{body}\n<script>{SCRIPT}</script>\n</body></html>\n"
    )
