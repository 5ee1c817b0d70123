"""A tiny document model rendered twice: self-contained HTML (PNG as base64) and Markdown."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sharewise.reporting import plots
from sharewise.training.io import atomic_write

_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;"
        "text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
        "pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:85%}img{max-width:100%}"
        "table.sortable th{cursor:pointer}table.sortable th:hover{background:#e4e4e4}")
# Click a header of a sortable table to sort by that column (numbers by value, "-" last); again to reverse.
_SORT_JS = ("document.querySelectorAll('table.sortable').forEach(function(t){t.querySelectorAll('th')"
            ".forEach(function(th,i){th.onclick=function(){var rows=Array.from(t.rows).slice(1),"
            "d=th.dataset.d=th.dataset.d==='1'?'-1':'1';function v(r){var c=r.cells[i].textContent,"
            "n=parseFloat(c);return isNaN(n)?c:n}rows.sort(function(a,b){var x=v(a),y=v(b);"
            "if(typeof x!==typeof y)return typeof x==='number'?-1:1;return (x<y?-1:x>y?1:0)*d});"
            "rows.forEach(function(r){t.tBodies[0].appendChild(r)})}})});")


@dataclass
class Document:
    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("h", (level, text)))

    def para(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, header: list[str], rows: list[list[str]], sortable: bool = False) -> None:
        """``sortable``: in HTML, clicking a header sorts the rows by that column."""
        self.blocks.append(("table", (header, rows, sortable)))

    def markdown_table(self, text: str) -> None:
        """A Markdown pipe table (plus notes) as produced by ``compare.markdown_table``."""
        self.blocks.append(("md", text))

    def pre(self, text: str, lang: str = "", summary: str | None = None) -> None:
        self.blocks.append(("pre", (text, lang, summary)))

    def figure(self, name: str, fig: Any, caption: str) -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        plots.plt.close(fig)
        self.blocks.append(("fig", (name, buf.getvalue(), caption)))

    # -- rendering --------------------------------------------------------------------------
    def to_html(self) -> str:
        e = html.escape
        out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(self.title)}</title>"
               f"<style>{_CSS}</style></head><body><h1>{e(self.title)}</h1>"]
        for kind, data in self.blocks:
            if kind == "h":
                out.append(f"<h{data[0]}>{e(data[1])}</h{data[0]}>")
            elif kind == "p":
                out.append(f"<p>{e(data)}</p>")
            elif kind == "table":
                header, rows, sortable = data
                cls = " class='sortable'" if sortable else ""
                out.append(f"<table{cls}><tbody><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
                out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
                out.append("</tbody></table>")
            elif kind == "md":
                out.append(_md_table_to_html(data))
            elif kind == "pre":
                text, _, summary = data
                block = f"<pre>{e(text)}</pre>"
                out.append(f"<details><summary>{e(summary)}</summary>{block}</details>" if summary else block)
            elif kind == "fig":
                name, png, caption = data
                b64 = base64.b64encode(png).decode()
                out.append(f"<figure><img alt='{e(name)}' src='data:image/png;base64,{b64}'>"
                           f"<figcaption>{e(caption)}</figcaption></figure>")
        if any(kind == "table" and data[2] for kind, data in self.blocks):
            out.append(f"<script>{_SORT_JS}</script>")
        out.append("</body></html>\n")
        return "\n".join(out)

    def to_markdown(self, assets: Path, assets_rel: str) -> str:
        """Markdown with figures written as PNG files under ``assets`` (linked relatively)."""
        out = [f"# {self.title}", ""]
        for kind, data in self.blocks:
            if kind == "h":
                out += ["#" * data[0] + " " + data[1], ""]
            elif kind == "p":
                out += [data, ""]
            elif kind == "table":
                header, rows, _ = data
                out.append("| " + " | ".join(header) + " |")
                out.append("|" + "---|" * len(header))
                out += ["| " + " | ".join(row) + " |" for row in rows]
                out.append("")
            elif kind == "md":
                out += [data.rstrip("\n"), ""]
            elif kind == "pre":
                text, lang, summary = data
                if summary:
                    out.append(f"{summary}:")
                out += [f"```{lang}", text.rstrip("\n"), "```", ""]
            elif kind == "fig":
                name, png, caption = data
                atomic_write(assets / f"{name}.png", lambda fh, png=png: fh.write(png))
                out += [f"![{caption}]({assets_rel}/{name}.png)", ""]
        return "\n".join(out)


def _md_table_to_html(text: str) -> str:
    e = html.escape
    out, in_table = [], False
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if all(set(c) <= {"-", ":"} for c in cells):
                continue
            tag = "td" if in_table else "th"
            if not in_table:
                out.append("<table>")
                in_table = True
            out.append("<tr>" + "".join(f"<{tag}>{e(c)}</{tag}>" for c in cells) + "</tr>")
        else:
            if in_table:
                out.append("</table>")
                in_table = False
            if line.strip():
                out.append(f"<p>{e(line)}</p>")
    if in_table:
        out.append("</table>")
    return "\n".join(out)
