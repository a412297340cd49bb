"""Text out of documents, fast and offline, keeping the heading each passage sits under.

Light parsers per type (pypdf, python-docx, openpyxl, python-pptx, beautifulsoup4, markdown-it-py, csv,
json); any other text as text; `unstructured` for other types when it is installed and works offline.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Section:
    """A run of text under one heading path (e.g. ["Guide", "Install"])."""

    text: str
    headings: list[str] = field(default_factory=list)
    page: int | None = None


class _SectionBuilder:
    """Text collected under the current heading path; a heading closes the running section."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self._path: list[tuple[int, str]] = []
        self._buffer: list[str] = []

    def heading(self, level: int, title: str) -> None:
        self.flush()
        self._path = [(lvl, h) for lvl, h in self._path if lvl < level] + [(level, title)]

    def text(self, line: str) -> None:
        self._buffer.append(line)

    @property
    def headings(self) -> list[str]:
        return [h for _, h in self._path]

    def flush(self) -> list[Section]:
        body = "\n".join(self._buffer).strip()
        if body:
            self.sections.append(Section(body, self.headings))
        self._buffer.clear()
        return self.sections


class UnsupportedDocument(ValueError):
    pass


class NotIndexable(UnsupportedDocument):
    """A file that is kept but has no text to index (a binary type no loader reads)."""


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030", "utf-16"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def load_text(data: bytes) -> list[Section]:
    return [Section(_decode(data))]


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def load_markdown(data: bytes) -> list[Section]:
    """Sections by heading; code blocks stay whole (a '#' in them is not a heading)."""
    from markdown_it import MarkdownIt

    text = _decode(data)
    tokens = MarkdownIt("commonmark").parse(text)
    heading_lines: dict[int, tuple[int, str]] = {}
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.map:
            heading_lines[token.map[0]] = (int(token.tag[1]), tokens[i + 1].content)
    builder = _SectionBuilder()
    for number, line in enumerate(text.splitlines()):
        if number in heading_lines:
            builder.heading(*heading_lines[number])
        else:
            builder.text(line)
    return builder.flush()


def load_html(data: bytes) -> list[Section]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode(data), "html.parser")
    for tag in soup(["script", "style", "noscript", "nav", "footer"]):
        tag.decompose()
    builder = _SectionBuilder()
    body = soup.body or soup
    for element in body.find_all(
        ["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "td", "th", "blockquote"]
    ):
        if element.find_parent(["p", "li", "pre", "td", "th", "blockquote"]) is not None:
            continue  # counted with its parent
        text = element.get_text(" ", strip=True)
        if not text:
            continue
        if element.name and element.name[0] == "h" and element.name[1:].isdigit():
            builder.heading(int(element.name[1:]), text)
        else:
            builder.text(text)
    sections = builder.flush()
    if not sections:  # a page without block elements
        text = body.get_text("\n", strip=True)
        sections = [Section(text)] if text else []
    return sections


def load_pdf(data: bytes) -> list[Section]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    return [
        Section(text, page=n)
        for n, page in enumerate(reader.pages, 1)
        if (text := (page.extract_text() or "").strip())
    ]


def load_docx(data: bytes) -> list[Section]:
    import docx

    _unpacks_within_limit(data)
    document = docx.Document(io.BytesIO(data))
    builder = _SectionBuilder()
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        match = re.match(r"Heading (\d)", style)
        level = int(match.group(1)) if match else (0 if style == "Title" else None)
        if level is not None:
            builder.heading(level, text)
        else:
            builder.text(text)
    sections = builder.flush()
    for table in document.tables:
        rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in table.rows]
        if rows:
            sections.append(Section("\n".join(rows), builder.headings))
    return sections


def load_csv(data: bytes) -> list[Section]:
    """One line of text a row, `column: value`, so each row can be found on its own."""
    text = _decode(data)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    lines = ["; ".join(f"{h}: {v}" for h, v in zip(header, row, strict=False) if v) for row in body]
    return [Section("\n\n".join(line for line in lines if line))]


def load_json(data: bytes) -> list[Section]:
    """Leaves as `path: value` lines; an array of records gives one paragraph a record."""
    try:
        value = json.loads(_decode(data))
    except json.JSONDecodeError as exc:
        raise UnsupportedDocument(f"invalid JSON: {exc}") from None
    paragraphs: list[str] = []

    def leaves(node: object, prefix: str) -> list[str]:
        if isinstance(node, dict):
            return [
                line for k, v in node.items() for line in leaves(v, f"{prefix}.{k}" if prefix else str(k))
            ]
        if isinstance(node, list):
            return [line for i, v in enumerate(node) for line in leaves(v, f"{prefix}[{i}]")]
        return [f"{prefix}: {node}"]

    records = value if isinstance(value, list) else [value]
    for record in records:
        paragraphs.append("\n".join(leaves(record, "")))
    return [Section("\n\n".join(p for p in paragraphs if p))]


# Office files are zip archives: what they unpack to is checked before a parser opens them.
MAX_UNPACKED = 256 << 20


def _unpacks_within_limit(data: bytes) -> None:
    """Refuses a zip bomb: an archive that would unpack beyond MAX_UNPACKED (or is no archive)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise UnsupportedDocument("not a valid Office document (not a zip archive)") from None
    if total > MAX_UNPACKED:
        raise UnsupportedDocument(f"unpacks to {total >> 20} MB, over the {MAX_UNPACKED >> 20} MB limit")


def load_xlsx(data: bytes) -> list[Section]:
    """One section per sheet: its rows as tab-separated lines, under the sheet's name."""
    from openpyxl import load_workbook

    _unpacks_within_limit(data)
    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        sections = []
        for sheet in book.worksheets:
            rows = (
                "\t".join("" if v is None else str(v) for v in row)
                for row in sheet.iter_rows(values_only=True)
            )
            text = "\n".join(r for r in rows if r.strip())
            if text:
                sections.append(Section(text, [sheet.title]))
        return sections
    finally:
        book.close()


def load_pptx(data: bytes) -> list[Section]:
    """One section per slide, under its title, with the text of every shape and the speaker notes."""
    from pptx import Presentation

    _unpacks_within_limit(data)
    sections = []
    for number, slide in enumerate(Presentation(io.BytesIO(data)).slides, 1):
        title = slide.shapes.title.text.strip() if slide.shapes.title is not None else ""
        texts = [
            shape.text_frame.text.strip()
            for shape in slide.shapes
            if shape.has_text_frame and shape != slide.shapes.title and shape.text_frame.text.strip()
        ]
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame.text.strip():
            texts.append(slide.notes_slide.notes_text_frame.text.strip())
        if texts or title:
            sections.append(Section("\n".join(texts) or title, [title or f"Slide {number}"], page=number))
    return sections


def looks_like_text(data: bytes) -> bool:
    """Text of any extension (code, logs, YAML, XML...): no NUL byte, and it decodes in its first 8 KiB."""
    head = data[:8192]
    if b"\0" in head:
        return False
    for encoding in ("utf-8", "gb18030"):
        try:
            head.decode(encoding)
            return True
        except UnicodeDecodeError as exc:
            if exc.start >= len(head) - 4:  # a character cut at the 8 KiB boundary
                return True
    return False


def load_other(path: Path) -> list[Section]:
    """A type no loader names: text is read as text; anything else through `unstructured` if installed."""
    data = path.read_bytes()
    if looks_like_text(data):
        return load_text(data)
    try:
        from unstructured.partition.auto import partition
    except ImportError:
        raise NotIndexable(
            f"{path.suffix or 'this'} files are stored but not indexed: not text, and no loader reads them "
            "(the [unstructured] extra reads more types)"
        ) from None
    elements = partition(filename=str(path))
    return [Section(str(element)) for element in elements if str(element).strip()]


LOADERS: dict[str, Callable[[bytes], list[Section]]] = {
    ".txt": load_text, ".text": load_text, ".log": load_text,
    ".md": load_markdown, ".markdown": load_markdown,
    ".html": load_html, ".htm": load_html,
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".csv": load_csv, ".tsv": load_csv,
    ".json": load_json,
    ".xlsx": load_xlsx,
    ".pptx": load_pptx,
}  # fmt: skip


def load(path: Path) -> list[Section]:
    """Sections of the document at `path` (blocking: call it in a worker thread)."""
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        return load_other(path)
    try:
        return loader(path.read_bytes())
    except UnsupportedDocument:
        raise
    except Exception as exc:  # a broken file must fail its own indexing only
        raise UnsupportedDocument(f"could not read {path.name}: {exc.__class__.__name__}: {exc}") from None
