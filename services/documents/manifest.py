"""Declaration of the documents service (文书)."""
from services.documents.domain import SUBJECT_TYPES, DocumentsSettings
from services.kernel.manifest import ACTORS, READERS, Command, Param, Query, ServiceManifest

DOC_ID = Param("doc_id", in_="path", required=True, max_length=64, pattern=r"[A-Za-z0-9_-]{8,64}", description="文书编号")
PAGE = (Param("limit", "integer", minimum=1, maximum=500, default=50, description="每页条数"),
        Param("offset", "integer", minimum=0, maximum=1_000_000, default=0, description="跳过条数"))

MANIFEST = ServiceManifest(
    name="documents",
    title="执法文书",
    service="services.documents.service:DocumentsService",
    metrics_port=9107,
    order=60,
    settings=DocumentsSettings,
    settings_section="documents",
    queries=(
        Query("list_documents", "list_documents", "/documents",
              "文书列表（按部门：本部门制作的和发给本部门的；按对象：案件 / 移送 / 监督案件）",
              paged=True, personal=("facts",),
              params=(Param("dept", max_length=40, description="部门编码"),
                      Param("subject_type", enum=SUBJECT_TYPES, description="对象类型"),
                      Param("subject_id", max_length=64, description="对象编号（案件编号等）"),
                      Param("kind", max_length=64, description="文书类型"), *PAGE)),
        Query("get_document", "get_document", "/documents/{doc_id}", "文书详情（文号、据以制作的事实、法律依据与裁量阶次、文件哈希）",
              params=(DOC_ID,), scope="result", personal=("facts", "fields"), not_found="文书不存在"),
        Query("document_kinds", "document_kinds", "/document-kinds", "本部门可制作的文书类型及其字段",
              params=(Param("dept", required=True, max_length=40, description="部门编码"),)),
    ),
    commands=(
        Command("render_document", "render", "/documents", "制作文书：取文号、生成 DOCX 和 PDF 并存档",
                params=(Param("kind", in_="body", required=True, max_length=64, description="文书类型"),
                        Param("subject_type", in_="body", required=True, enum=SUBJECT_TYPES, description="对象类型"),
                        Param("subject_id", in_="body", required=True, max_length=64, description="对象编号"),
                        Param("facts", "object", in_="body", required=True, description="文书字段（字段名: 值）"),
                        Param("request_id", in_="body", max_length=64, pattern=r"[A-Za-z0-9_-]{8,64}",
                              description="请求编号（重试时不重复取号）"),
                        Param("addressee", in_="body", max_length=40, pattern=r"\d{6}-[a-z][a-z0-9]{1,15}",
                              description="受文部门（仅司法局制作的监督案件文书；默认为案件的全部被监督部门）")),
                roles=ACTORS, personal=True),
    ),
    extra={"download": {"roles": READERS, "formats": ("docx", "pdf")}},
)
