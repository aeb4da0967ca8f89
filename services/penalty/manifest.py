"""Declaration of the penalty case service (行政处罚案件)."""
from services.kernel.manifest import Aggregate, Command, Param, Query, ServiceManifest
from services.kernel.packing import PACKED_FIELDS
from services.penalty.domain.settings import PenaltySettings

CASE_ID = Param("case_id", in_="path", required=True, max_length=64, description="案件编号")

MANIFEST = ServiceManifest(
    name="penalty",
    title="行政处罚案件",
    service="services.penalty.service:PenaltyService",
    metrics_port=9103,
    order=30,
    # the snapshot (~250 nested fields) packed with the facts: no query reads it in the database
    # (the case list, counters and indexes are side collections); kernel/packing.py
    aggregates=(Aggregate("case", "cases", ("case.*",), "行政处罚案件", packed=PACKED_FIELDS + ("snapshot",),
                          partitioned=True),),  # a case's id is its case_id: each partition's sweep judges its own
    consumes=(("gateway", "case.*"), ("personnel", "officer.changed"), ("registry", "item.changed")),
    partition_key="payload.case_id",  # PARTITIONS: each process owns the cases hashed to it (kernel/partitions.py)
    publishes=("finding.raised", "finding.resolved", "case.changed"),  # case.changed: for handover
    settings=PenaltySettings,
    settings_section="penalty",
    findings="list_findings",
    queries=(
        Query("list_cases", "list_cases", "/cases", "案件列表", paged=True, personal=("party",),
              params=(Param("dept", max_length=40, description="部门编码"),
                      Param("stage", max_length=40, description="案件阶段"),
                      Param("overdue", "boolean", description="是否有超期发现"),
                      Param("limit", "integer", minimum=1, maximum=500, default=50),
                      Param("offset", "integer", minimum=0, maximum=1_000_000, default=0))),
        Query("case_figures", "case_figures", "/case-figures", "案件统计：按部门、阶段、是否超期的计数（计数器，不扫描案件）",
              params=(Param("dept", max_length=40, description="部门编码"),)),
        Query("get_case", "get_case", "/cases/{case_id}", "案件详情（全流程记录、发现、事实）",
              params=(CASE_ID,), scope="result", personal=("party",), not_found="案件不存在"),
        Query("case_commands", "case_commands", "/case-commands",
              "网上办案操作及其参数（类型、必填、可选值、格式、中文名称，取自据以校验的契约）", scope="none"),
    ),
    commands=(
        Command("act", "act", "/cases/{case_id}/commands/{command}", "网上办案：执行一个办案操作",
                params=(CASE_ID, Param("command", in_="path", required=True, max_length=40),
                        Param("params", "object", in_="body", description="操作参数（JSON 对象）")),
                personal=True),
    ),
)
