"""Small HTML building blocks: an escaped, self-contained page with a table style and no external resources."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from pathlib import Path

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; } td.text { text-align: left; }
tr.fail td { background: #fff0f0; } tr.ok td { background: #f0fff0; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figcaption { font-size: 0.85em; color: #555; }
video { background: #000; }
.note { color: #666; font-size: 0.9em; }
"""


def escape(value: object) -> str:
    """``value`` as text safe inside HTML."""
    return html.escape(str(value), quote=True)


def page(title: str, body: str) -> str:
    """A complete HTML document titled ``title`` around ``body`` (already HTML)."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body>\n<h1>{escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], row_classes: Sequence[str] | None = None
) -> str:
    """A table; ``rows`` hold HTML cells (escape text with :func:`escape`), ``row_classes`` one class per row."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(body) + "\n</tbody></table>"


def link(href: str, text: object) -> str:
    """An ``<a>`` to the relative path ``href``."""
    return f'<a href="{escape(href)}">{escape(text)}</a>'


def video(src: str, caption: str) -> str:
    """A captioned, looping ``<video>`` of the relative file ``src``."""
    return (
        f'<figure><video src="{escape(src)}" controls muted loop preload="metadata" width="256"></video>'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def write_page(path: Path, title: str, body: str) -> Path:
    """Write :func:`page` to ``path`` (parents created); return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page(title, body), encoding="utf-8")
    return path
