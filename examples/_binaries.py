"""PDF and DOCX writers shared by the example builders (fpdf2, python-docx)."""

from __future__ import annotations

import datetime
from pathlib import Path


def build_pdf(
    path: Path,
    title: str,
    pages: list[list[tuple[str, str]]],
    *,
    company: str,
    author: str,
    date: datetime.datetime,
) -> None:
    """Pages of (kind, text) blocks, kind h1 | h2 | h3 | li | p; every page's footer names the company."""
    try:
        from fpdf import FPDF
    except ImportError as exc:  # fpdf2 is not a project dependency
        if path.exists():
            print(
                f"note: fpdf2 is not installed; keeping the committed {path.name} (pip install fpdf2 to rebuild)"
            )
            return
        raise SystemExit(
            f"fpdf2 is needed to build {path.name} (pip install fpdf2), or use --check-only"
        ) from exc

    class ExamplePDF(FPDF):
        def footer(self) -> None:  # small running footer on every page
            self.set_y(-15)
            self.set_font("Helvetica", "I", 8)
            self.cell(0, 5, f"{company} - {title} - page {self.page_no()}", align="C")

    pdf = ExamplePDF(format="A4")
    pdf.set_title(title)
    pdf.set_author(author)
    pdf.set_creator("examples/_binaries.py")
    pdf.set_creation_date(date)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.set_margins(20, 20, 20)
    width = pdf.w - pdf.l_margin - pdf.r_margin
    for blocks in pages:
        pdf.add_page()
        for kind, text in blocks:
            if kind == "h1":
                pdf.set_font("Helvetica", "B", 18)
                pdf.multi_cell(width, 9, text, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(4)
            elif kind == "h2":
                pdf.ln(2)
                pdf.set_font("Helvetica", "B", 14)
                pdf.multi_cell(width, 8, text, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(1)
            elif kind == "h3":
                pdf.set_font("Helvetica", "B", 12)
                pdf.multi_cell(width, 7, text, new_x="LMARGIN", new_y="NEXT")
            elif kind == "li":
                pdf.set_font("Helvetica", "", 11)
                pdf.set_x(pdf.l_margin + 5)
                pdf.multi_cell(width - 5, 6, "- " + text, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(1)
            else:
                pdf.set_font("Helvetica", "", 11)
                pdf.multi_cell(width, 6, text, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(2)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))


def build_docx(path: Path, blocks: list, title: str, *, author: str, date: datetime.datetime) -> None:
    """Blocks of (kind, content), kind h1 | h2 | h3 | table (rows, the first bold) | p."""
    import docx

    doc = docx.Document()
    doc.core_properties.title = title
    doc.core_properties.author = author
    for kind, content in blocks:
        if kind == "h1":
            doc.add_heading(content, level=1)
        elif kind == "h2":
            doc.add_heading(content, level=2)
        elif kind == "h3":
            doc.add_heading(content, level=3)
        elif kind == "table":
            table = doc.add_table(rows=len(content), cols=len(content[0]))
            table.style = "Table Grid"
            for r, row in enumerate(content):
                for c, value in enumerate(row):
                    table.cell(r, c).text = value
                    if r == 0:
                        for run in table.cell(r, c).paragraphs[0].runs:
                            run.bold = True
        else:
            doc.add_paragraph(content)
    doc.core_properties.created = date  # fixed timestamps keep the output stable
    doc.core_properties.modified = date
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(str(path))
