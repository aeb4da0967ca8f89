"""Documents (文书) rendering: the shipped GB/T 9704 DOCX templates, filling them, and the PDFs
LibreOffice makes of them (text checked with pdftotext, fonts with pdffonts, the picture of page 1
with pdftoppm). Needs the `docs` bootstrap step (LibreOffice, Noto CJK, poppler-utils)."""
from __future__ import annotations

import io
import re
import shutil
import subprocess
import zipfile

import docx
import pytest

from plugins.builtin.documents import TEMPLATES, DocumentError, MissingFieldError, template_fields
from services.documents.layout import build_template, jinja, split_template, to_bytes
from services.documents.render import TEMPLATES_DIR, docx_to_pdf, fill_docx, template_variables

AGENCY = "营山县市场监督管理局"
NUMBER = "营市监罚〔2025〕15号"


def docx_text(data: bytes) -> str:
    d = docx.Document(io.BytesIO(data))
    parts = [p.text for p in d.paragraphs]
    parts += [c.text for t in d.tables for row in t.rows for c in row.cells]
    return "\n".join(parts)


def sample_fields(kind: str) -> dict:
    fields = {n: f"样例{n}" for n in template_fields(TEMPLATES[kind])}
    fields.update(agency_name=AGENCY, doc_number=NUMBER, issued_on="2025年3月5日", party_name="营山县某某食品有限公司")
    return fields


def test_shipped_templates_are_the_generated_ones():
    from scripts.make_templates import main

    assert main(["--check"]) == 0, "run .venv/bin/python scripts/make_templates.py"


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_each_docx_template_has_exactly_the_fields_of_its_text(kind):
    data = (TEMPLATES_DIR / f"{kind}.docx").read_bytes()
    assert template_variables(data) == set(template_fields(TEMPLATES[kind]))


def test_the_seven_required_kinds_are_shipped():
    titles = {TEMPLATES[p.stem]["title"] for p in TEMPLATES_DIR.glob("*.docx") if p.stem in TEMPLATES}
    assert {"行政处罚决定书", "立案审批表", "行政处罚告知书", "送达回证", "涉嫌犯罪案件移送书", "行政执法监督通知书",
            "检查通知书"} <= titles


def test_layout_follows_gbt_9704():
    d = build_template(TEMPLATES["penalty_decision"]["title"], TEMPLATES["penalty_decision"]["body"])
    section = d.sections[0]
    assert (round(section.top_margin.mm), round(section.bottom_margin.mm), round(section.left_margin.mm),
            round(section.right_margin.mm)) == (37, 35, 28, 26)
    xml = d.element.xml
    assert 'w:eastAsia="仿宋_GB2312"' in xml and 'w:eastAsia="方正小标宋简体"' in xml
    assert 'w:color="E60012"' in xml  # the red separator line under the number
    sizes = {p.text: p.runs[0].font.size.pt for p in d.paragraphs if p.runs}
    assert sizes["行政处罚决定书"] == 22 and sizes["{{ doc_number }}"] == 16
    assert '<w:instrText xml:space="preserve">PAGE</w:instrText>' in d.sections[0].footer._element.xml


def test_split_template_refuses_a_template_without_the_standard_head():
    with pytest.raises(ValueError):
        split_template("某文书", "没有版头的正文")
    assert jinja("当事人：{party_name}") == "当事人：{{ party_name }}"


def test_fill_reports_every_missing_field_by_its_chinese_name():
    data = (TEMPLATES_DIR / "service_receipt.docx").read_bytes()
    fields = sample_fields("service_receipt")
    del fields["recipient"]
    fields["witness"] = ""
    with pytest.raises(MissingFieldError) as err:
        fill_docx(data, fields, "送达回证")
    assert err.value.missing == ("recipient", "witness")
    assert "受送达人（recipient）" in str(err.value) and "见证人（witness）" in str(err.value)


def test_values_are_escaped_and_line_breaks_kept():
    data = (TEMPLATES_DIR / "supervision_notice.docx").read_bytes()
    fields = sample_fields("supervision_notice")
    fields.update(dept_name="A&B<公司>", problems="一、未按期立案；\n二、罚款超出裁量阶次。")
    out = fill_docx(data, fields, "行政执法监督通知书")
    text = docx_text(out)
    assert "A&B<公司>：" in text
    xml = zipfile.ZipFile(io.BytesIO(out)).read("word/document.xml").decode()
    assert "一、未按期立案；</w:t><w:br/>" in xml.replace('<w:t xml:space="preserve">', "<w:t>")


def test_filling_is_reproducible():
    data = (TEMPLATES_DIR / "penalty_notice.docx").read_bytes()
    assert fill_docx(data, sample_fields("penalty_notice")) == fill_docx(data, sample_fields("penalty_notice"))


def test_a_broken_template_is_a_clear_error():
    d = build_template("测试文书", "{agency_name}\n测试文书\n{doc_number}\n\n正文\n")
    d.add_paragraph("{{ party_name ")
    with pytest.raises(DocumentError, match="占位符格式错误"):
        fill_docx(to_bytes(d), {"agency_name": "x", "doc_number": "y"})
    with pytest.raises(DocumentError, match="不是有效的 DOCX"):
        fill_docx(b"not a zip", {})


# ---- PDF --------------------------------------------------------------------------------------

def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} missing: run scripts/bootstrap.sh docs"
    return path


def red_and_dark_pixels(ppm: bytes) -> tuple[int, int]:
    """Count red (版头) and dark (text) pixels of a binary PPM (P6) picture."""
    m = re.match(rb"P6\s+(\d+)\s+(\d+)\s+(\d+)\s", ppm)
    assert m, "not a P6 picture"
    pixels = ppm[m.end():]
    red = dark = 0
    for i in range(0, len(pixels) - 2, 3):
        r, g, b = pixels[i], pixels[i + 1], pixels[i + 2]
        if r > 180 and g < 90 and b < 90:
            red += 1
        elif max(r, g, b) < 128:
            dark += 1
    return red, dark


@pytest.fixture(scope="module")
def pdfs():
    out = {}
    for kind in sorted(TEMPLATES):
        data = fill_docx((TEMPLATES_DIR / f"{kind}.docx").read_bytes(), sample_fields(kind), TEMPLATES[kind]["title"])
        out[kind] = docx_to_pdf(data)
    return out


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_pdf_shows_the_chinese_text(kind, pdfs, tmp_path):
    pdf = tmp_path / f"{kind}.pdf"
    pdf.write_bytes(pdfs[kind])
    text = subprocess.run([_tool("pdftotext"), "-layout", str(pdf), "-"], capture_output=True, check=True).stdout.decode()
    flat = re.sub(r"\s+", "", text)
    assert AGENCY in flat and TEMPLATES[kind]["title"] in flat and NUMBER in flat
    if "party_name" in template_fields(TEMPLATES[kind]):
        assert "营山县某某食品有限公司" in flat
    assert "{{" not in flat and "样例" in flat


@pytest.mark.parametrize("kind", ["penalty_decision", "service_receipt"])
def test_pdf_embeds_cjk_fonts_and_page_one_looks_like_a_document(kind, pdfs, tmp_path):
    pdf = tmp_path / f"{kind}.pdf"
    pdf.write_bytes(pdfs[kind])
    fonts = subprocess.run([_tool("pdffonts"), str(pdf)], capture_output=True, check=True).stdout.decode().splitlines()[2:]
    assert fonts and all(" yes " in line for line in fonts), fonts  # every font embedded
    assert any("NotoSerifCJK" in line for line in fonts), fonts
    subprocess.run([_tool("pdftoppm"), "-r", "60", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True)
    (picture,) = tmp_path.glob("page*.ppm")
    red, dark = red_and_dark_pixels(picture.read_bytes())
    assert red > 200, "the red 版头 (agency name and separator line) is missing"
    assert dark > 2000, "page 1 has almost no text"


def test_pdf_conversions_can_run_side_by_side():
    import concurrent.futures

    data = fill_docx((TEMPLATES_DIR / "inspection_notice.docx").read_bytes(), sample_fields("inspection_notice"))
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: docx_to_pdf(data, slots=2), range(3)))
    assert all(r.startswith(b"%PDF") for r in results)
