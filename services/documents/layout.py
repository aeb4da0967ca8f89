"""GB/T 9704-2012 page layout for document templates (文书模板), built with python-docx.

`build_template(title, body)` turns one plain-text template of `plugins/builtin/documents.py`
(`str.format` fields) into a DOCX template for docxtpl (Jinja `{{ field }}` placeholders) that a
clerk can open and edit in Word or WPS. The layout follows GB/T 9704-2012 《党政机关公文格式》:

- A4, margins top 37 mm, bottom 35 mm, left 28 mm, right 26 mm (text block 156 × 225 mm);
- 版头: the issuing agency (发文机关标志) centred in red 小标宋, then the document number (文号)
  centred in 3号仿宋, then the red separator line (版头中的分隔线);
- 标题: 2号 (22 pt) 小标宋, centred;
- 正文: 3号 (16 pt) 仿宋_GB2312, first line indented two characters, fixed line spacing 28.95 pt
  (22 lines of 28 characters a page);
- 落款 and 成文日期 right-aligned, four characters from the right margin; page number 4号 宋体
  "— 1 —" at the foot.

Forms (立案审批表, 送达回证) are laid out as a two-column table of label and value.

Fonts are named as the standard names them (仿宋_GB2312, 方正小标宋简体, 黑体, 宋体), so Word/WPS on
a clerk's machine uses the official fonts; on a Debian server LibreOffice resolves these names
through fontconfig to Noto CJK (services/documents/fonts.conf, see docs/documents.md).
"""
from __future__ import annotations

import io
import re

from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, RGBColor

# GB/T 9704 font roles -> the font names written into the DOCX
FANGSONG = "仿宋_GB2312"      # 正文, 文号, 落款
XIAOBIAOSONG = "方正小标宋简体"  # 发文机关标志, 标题
HEITI = "黑体"                 # 一级标题, form labels
SONGTI = "宋体"                # 页码
RED = RGBColor(0xE6, 0x00, 0x12)  # 版头 red (GB/T 9704 7.2.2: 红色)

BODY_PT, TITLE_PT, AGENCY_PT, PAGE_NO_PT = 16, 22, 26, 14
LINE_PT = 28.95

_FIELD = re.compile(r"\{(\w+)\}")
SEAL_SUFFIX = "\n\n{agency_name}（印章）\n{issued_on}\n"


def jinja(text: str) -> str:
    """`{field}` (str.format) -> `{{ field }}` (docxtpl/Jinja); literal text stays as it is."""
    return _FIELD.sub(lambda m: "{{ " + m.group(1) + " }}", text)


def _fonts(run, name: str, size: float, bold: bool = False, color: RGBColor | None = None) -> None:
    run.font.name = name
    run.font.size = Pt(size)
    run.font.bold = bold
    if color is not None:
        run.font.color.rgb = color
    rpr = run._element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.insert(0, fonts)
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(attr), name)


def _spacing(paragraph, line_pt: float = LINE_PT) -> None:
    fmt = paragraph.paragraph_format
    fmt.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    fmt.line_spacing = Pt(line_pt)
    fmt.space_before = Pt(0)
    fmt.space_after = Pt(0)


def _para(doc_or_cell, text: str = "", *, font: str = FANGSONG, size: float = BODY_PT, bold: bool = False,
          align=None, indent_chars: float = 0, right_chars: float = 0, color: RGBColor | None = None,
          line_pt: float = LINE_PT):
    p = doc_or_cell.add_paragraph()
    _spacing(p, line_pt)
    if align is not None:
        p.alignment = align
    if indent_chars:
        p.paragraph_format.first_line_indent = Pt(size * indent_chars)
    if right_chars:
        p.paragraph_format.right_indent = Pt(size * right_chars)
    if text:
        _fonts(p.add_run(text), font, size, bold, color)
    return p


def _red_rule(paragraph) -> None:
    """The 版头 separator: a red line under the paragraph (bottom border)."""
    ppr = paragraph._p.get_or_add_pPr()
    borders = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for key, value in (("w:val", "single"), ("w:sz", "12"), ("w:space", "4"), ("w:color", "E60012")):
        bottom.set(qn(key), value)
    borders.append(bottom)
    ppr.append(borders)


def _page_number_footer(section) -> None:
    """"— PAGE —" in 4号 宋体, centred (GB/T 9704 7.5)."""
    p = section.footer.paragraphs[0]
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _fonts(p.add_run("— "), SONGTI, PAGE_NO_PT)
    run = p.add_run()
    _fonts(run, SONGTI, PAGE_NO_PT)
    for kind, text in (("begin", None), (None, "PAGE"), ("end", None)):
        if kind:
            el = OxmlElement("w:fldChar")
            el.set(qn("w:fldCharType"), kind)
        else:
            el = OxmlElement("w:instrText")
            el.set(qn("xml:space"), "preserve")
            el.text = text
        run._element.append(el)
    _fonts(p.add_run(" —"), SONGTI, PAGE_NO_PT)


def _base_document():
    doc = Document()
    section = doc.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(37), Mm(35)
    section.left_margin, section.right_margin = Mm(28), Mm(26)
    section.footer_distance = Mm(20)
    normal = doc.styles["Normal"]
    normal.font.name = FANGSONG
    normal.font.size = Pt(BODY_PT)
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), FANGSONG)
    # the default template's first empty paragraph would push everything down one line
    for p in list(doc.paragraphs):
        p._element.getparent().remove(p._element)
    _page_number_footer(section)
    return doc


def split_template(title: str, body: str) -> tuple[list[str], bool]:
    """The content lines of a plain-text template without its head (agency, title, number) and
    seal tail, and whether it ends with the seal (落款 + 成文日期)."""
    head = f"{{agency_name}}\n{title}\n{{doc_number}}\n\n"
    if not body.startswith(head):
        raise ValueError(f"template {title!r} does not start with the agency / title / number head")
    content = body[len(head):]
    sealed = content.endswith(SEAL_SUFFIX)
    if sealed:
        content = content[: -len(SEAL_SUFFIX)]
    return content.rstrip("\n").split("\n"), sealed


def _head(doc, title: str) -> None:
    """版头 (the agency in red, the 文号, the red separator) and the title."""
    _para(doc, "{{ agency_name }}", font=XIAOBIAOSONG, size=AGENCY_PT, align=WD_ALIGN_PARAGRAPH.CENTER,
          color=RED, line_pt=AGENCY_PT * 1.6)
    _para(doc)
    number = _para(doc, "{{ doc_number }}", align=WD_ALIGN_PARAGRAPH.CENTER)
    _red_rule(number)
    _para(doc)
    _para(doc, title, font=XIAOBIAOSONG, size=TITLE_PT, align=WD_ALIGN_PARAGRAPH.CENTER, line_pt=TITLE_PT * 1.6)


def build_template(title: str, body: str):
    """A python-docx Document: the GB/T 9704 template of one plain-text template."""
    lines, sealed = split_template(title, body)
    doc = _base_document()
    _head(doc, title)
    _para(doc)
    if sealed:
        for line in lines:
            _body_line(doc, line)
        _para(doc)
        _para(doc, "{{ agency_name }}（印章）", align=WD_ALIGN_PARAGRAPH.RIGHT, right_chars=4)
        _para(doc, "{{ issued_on }}", align=WD_ALIGN_PARAGRAPH.RIGHT, right_chars=4)
    else:
        _form_table(doc, [line for line in lines if line.strip()])
    return doc


def _body_line(doc, line: str) -> None:
    text = line.strip()
    if not text:
        _para(doc)
        return
    # 主送机关 / 当事人 salutation ("{party_name}：") and contact lines stay flush left
    flush = (text.endswith("：") and text.startswith("{")) or text.startswith("联系人") or text.startswith("地址")
    lead = len(line) - len(line.lstrip(" "))
    # a continuation line (e.g. the 2nd attachment under "附件：") stands under the text it continues
    _para(doc, jinja(text), indent_chars=0 if flush else (5 if lead > 4 else 2))


def _form_table(doc, lines: list[str]) -> None:
    table = doc.add_table(rows=0, cols=2)
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    for column, width in zip(table.columns, (Mm(52), Mm(104))):
        column.width = width  # the grid widths: what LibreOffice and WPS lay out by
    for line in lines:
        label, sep, value = line.partition("：")
        if not sep:
            label, value = "", line
        cells = table.add_row().cells
        cells[0].width, cells[1].width = Mm(52), Mm(104)
        for cell, text, font in ((cells[0], label, HEITI), (cells[1], jinja(value.strip()), FANGSONG)):
            p = cell.paragraphs[0]
            _spacing(p)
            _fonts(p.add_run(text), font, BODY_PT - 2 if font == FANGSONG else BODY_PT - 2)


def to_bytes(doc) -> bytes:
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


# ---- report documents (月报 / 季报) ------------------------------------------------------------------

TABLE_PT = 12          # 小四 in tables of figures
TABLE_HEAD_PT = 10.5   # 五号 黑体 column heads
SUMMARY_COLUMNS = (("项目", 60), ("本期", 28), ("上期", 28), ("增减", 40))
DEPT_COLUMNS = (("部门", 48), ("立案", 14), ("处罚决定", 20), ("检查", 14), ("联合检查率", 24), ("移送", 14),
                ("新增发现", 22))


def _cell(cell, text: str, font: str = FANGSONG, size: float = TABLE_PT, align=WD_ALIGN_PARAGRAPH.CENTER) -> None:
    p = cell.paragraphs[0]
    _spacing(p, size * 1.5)
    p.alignment = align
    if text:
        _fonts(p.add_run(text), font, size)


def _loop_table(doc, columns, items: str, var: str, names: tuple[str, ...]) -> None:
    """A table of figures: a header row, then one row per item of `items` (docxtpl `{%tr for %}`)."""
    table = doc.add_table(rows=0, cols=len(columns))
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    widths = [Mm(w) for _, w in columns]
    for column, width in zip(table.columns, widths):
        column.width = width

    def row(texts, font=FANGSONG, first_left=False, size=TABLE_PT):
        cells = table.add_row().cells
        for i, (cell, text) in enumerate(zip(cells, texts)):
            cell.width = widths[i]
            _cell(cell, text, font, size,
                  align=WD_ALIGN_PARAGRAPH.LEFT if first_left and i == 0 else WD_ALIGN_PARAGRAPH.CENTER)

    row([label for label, _ in columns], HEITI, size=TABLE_HEAD_PT)
    row([f"{{%tr for {var} in {items} %}}"] + [""] * (len(columns) - 1))
    row(["{{ " + f"{var}.{name}" + " }}" for name in names], first_left=True)
    row(["{%tr endfor %}"] + [""] * (len(columns) - 1))


def build_report_template(title: str):
    """The GB/T 9704 template of a report (月报/季报): 版头 with 文号, the report's title, the period,
    a summary paragraph, the table of headline figures (this period, the previous, the change),
    the table per department, notes, 落款 and 成文日期. `title` is the kind's title (for the clerk:
    the printed title is the field `report_title`, e.g. 2026年10月行政执法工作月报)."""
    doc = _base_document()
    doc.core_properties.title = title
    _head(doc, "{{ report_title }}")
    _para(doc, "（{{ period_text }}）", align=WD_ALIGN_PARAGRAPH.CENTER)
    _para(doc)
    _para(doc, "{{ summary }}", indent_chars=2)
    _para(doc, "一、主要数据", font=HEITI, indent_chars=2)
    _loop_table(doc, SUMMARY_COLUMNS, "rows", "r", ("label", "now", "before", "change"))
    _para(doc, "二、分部门情况", font=HEITI, indent_chars=2)
    _loop_table(doc, DEPT_COLUMNS, "dept_rows", "d",
                ("dept", "filed", "decided", "inspections", "joint_rate", "transferred", "findings"))
    _para(doc, "三、说明", font=HEITI, indent_chars=2)
    _para(doc, "{{ notes }}", indent_chars=2)
    _para(doc)
    _para(doc, "{{ agency_name }}", align=WD_ALIGN_PARAGRAPH.RIGHT, right_chars=4)
    _para(doc, "{{ issued_on }}", align=WD_ALIGN_PARAGRAPH.RIGHT, right_chars=4)
    return doc
