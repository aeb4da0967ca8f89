"""Declaration of the criminal-justice handover service (行政执法与刑事司法衔接, 两法衔接).

Two aggregates: the handover (one per suspected crime, its steps reported by the department, the
police and the procuratorate — each only its own, see domain.py) and the penalty case as penalty
publishes it (`case.changed`), on which 以罚代刑 is judged.

Department isolation: a handover belongs to every party it involves (`parties`: the department,
each police unit it was addressed to, the procuratorates copied or asked), so the police and the
procuratorate users of the API (department users with codes like `511322-ga`, `511322-jcy`) see
the handovers addressed to them, and a department sees its own.
"""
from services.handover.domain import RULE_IDS, STATUS_LABELS, STEPS, HandoverSettings
from services.kernel.manifest import (AUDITOR, DEPT_USER, SUPERVISOR, Aggregate, Command, Param, Query,
                                      ServiceManifest)

PARTY = Param("dept", description="当事机关编码（行政执法机关、公安机关 -ga、检察院 -jcy）", max_length=40)
PAGE = (Param("limit", "integer", minimum=1, maximum=500, default=50, description="每页条数"),
        Param("offset", "integer", minimum=0, maximum=1_000_000, default=0, description="跳过条数"))
HANDOVER_ID = Param("handover_id", in_="path", required=True, max_length=64, description="移送案件编号")
STEP_NAMES = tuple(t.split(".", 1)[1] for t in STEPS)

MANIFEST = ServiceManifest(
    name="handover",
    title="行刑衔接（涉嫌犯罪案件移送）",
    service="services.handover.service:HandoverService",
    metrics_port=9105,
    order=40,
    aggregates=(
        Aggregate("handover", "handovers", ("handover.*",), "移送涉嫌犯罪案件（含反向移送）",
                  dept_field="snapshot.parties"),
        Aggregate("case", "penalty_cases", ("case.changed",), "行政处罚案件摘要（以罚代刑核查）"),
    ),
    consumes=(("gateway", "handover.*"), ("penalty", "case.changed")),
    publishes=("finding.raised", "finding.resolved"),
    settings=HandoverSettings,
    settings_section="handover",
    findings="list_findings",
    rules=RULE_IDS,
    queries=(
        Query("list_handovers", "list_handovers", "/handovers", "移送涉嫌犯罪案件列表（部门、公安、检察院各见与己有关的）",
              paged=True,
              params=(PARTY, Param("status", enum=tuple(STATUS_LABELS), description="状态"),
                      Param("case_id", max_length=64, description="行政处罚案件编号"),
                      Param("origin", enum=("department", "reverse"), description="来源：移送 / 反向移送"), *PAGE)),
        Query("get_handover", "get_handover", "/handovers/{handover_id}",
              "移送案件详情（各环节及报送机关、时间，期限，发现，事实）", params=(HANDOVER_ID,), scope="result",
              not_found="移送案件不存在"),
        Query("handover_counters", "handover_counters", "/handover-counters", "移送案件统计（按当事机关、状态）",
              params=(PARTY,), roles=frozenset({SUPERVISOR, DEPT_USER, AUDITOR})),
    ),
    commands=(
        Command("record_step", "record_step", "/handovers/{handover_id}/steps/{step}",
                "报送一个移送环节（只能报送本机关的环节：行政执法机关、受移送的公安机关、受抄送或建议的检察院）",
                params=(HANDOVER_ID, Param("step", in_="path", required=True, enum=STEP_NAMES, description="环节"),
                        Param("at", "date-time", in_="body", description="发生时间（默认现在）"),
                        Param("params", "object", in_="body", description="环节内容（与事件契约的 payload 相同，不含 handover_id）")),
                roles=frozenset({DEPT_USER})),
        Command("render_letter", "render_letter", "/handovers/{handover_id}/letter",
                "制作涉嫌犯罪案件移送书（含抄送人民检察院），由文书服务取号、生成并存档（仅移送机关）",
                params=(HANDOVER_ID,
                        Param("facts", "object", in_="body", description="其余文书字段（机关名称、当事人、案由、其他材料等）"),
                        Param("request_id", in_="body", max_length=64, pattern=r"[A-Za-z0-9_-]{8,64}",
                              description="请求编号（重试时不重复取号）")),
                roles=frozenset({DEPT_USER}), personal=True),
    ),
)
