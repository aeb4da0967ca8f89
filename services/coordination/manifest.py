"""Declaration of the coordination service (司法局协调监督): findings inbox, supervision cases.

Besides the ingress facts declared in `consumes`, the service consumes `finding.raised` /
`finding.resolved` of every declared service that keeps findings (its own included); those
handlers are generated from the declarations when the service class is created
(services/coordination/service.py), so a service declared later feeds the inbox with no change here.
"""
from services.coordination.domain.inbox import STATES
from services.coordination.domain.settings import DOC_KINDS, CoordinationSettings
from services.coordination.domain.supervision import KINDS, ORIGINS, RULES
from services.kernel.manifest import (AUDITOR, DEPT_USER, SUPERVISOR, Aggregate, Command, Param, Query,
                                      ServiceManifest)

DEPT = Param("dept", description="部门编码（6位行政区划代码-部门简称）", max_length=40)
PAGE = (Param("limit", "integer", minimum=1, maximum=500, default=50, description="每页条数"),
        Param("offset", "integer", minimum=0, maximum=1_000_000, default=0, description="跳过条数"))
KEY = Param("finding_key", in_="path", required=True, max_length=240, description="监督发现编号（规则:对象类型:对象编号）")
CASE = Param("case_id", in_="path", required=True, max_length=64, description="监督案件编号")
DAY = "date"
ACTOR_NOTE = Param("note", in_="body", max_length=500, description="备注")
BUREAU = frozenset({SUPERVISOR})
DEPARTMENT = frozenset({DEPT_USER})
READERS = frozenset({SUPERVISOR, DEPT_USER, AUDITOR})

MANIFEST = ServiceManifest(
    name="coordination",
    title="协调监督（监督发现、监督案件）",
    service="services.coordination.service:CoordinationService",
    metrics_port=9106,
    order=60,
    aggregates=(
        Aggregate("inbox", "inbox", ("finding.*", "inbox.*"), "监督发现收件箱（按发现编号）"),
        Aggregate("case", "supervision_cases", ("supervision.*",), "监督案件", dept_field="snapshot.depts"),
    ),
    consumes=(("gateway", "inbox.*"), ("gateway", "supervision.*")),
    publishes=("finding.raised", "finding.resolved"),
    settings=CoordinationSettings,
    settings_section="coordination",
    findings="list_findings",
    rules=RULES,
    queries=(
        Query("list_inbox", "list_inbox", "/inbox", "监督发现收件箱（处理流程：待处理、已阅、已交办、不予处理、已合并、已消除）",
              paged=True, roles=frozenset({SUPERVISOR, AUDITOR}),
              params=(DEPT, Param("state", enum=STATES, description="处理状态"),
                      Param("rule_id", max_length=64, description="规则编号"),
                      Param("severity", enum=("info", "warning", "serious", "critical"), description="严重程度"),
                      Param("escalated", "boolean", description="是否已升级"),
                      Param("assignee", max_length=64, description="承办人"), *PAGE)),
        Query("get_inbox_entry", "get_inbox_entry", "/inbox/{finding_key}", "监督发现详情（处理记录、重复发现、事实）",
              params=(KEY,), scope="result", roles=frozenset({SUPERVISOR, AUDITOR}), not_found="监督发现不存在"),
        Query("inbox_counters", "inbox_counters", "/inbox-counters", "监督发现统计（按部门、规则、严重程度、状态）",
              params=(DEPT,), roles=READERS),
        Query("list_supervision_cases", "list_supervision_cases", "/supervision-cases", "监督案件列表（部门只见本部门）",
              paged=True, params=(DEPT, Param("status", enum=("open", "closed"), description="案件状态"),
                                  Param("kind", enum=KINDS, description="监督方式"), *PAGE)),
        Query("get_supervision_case", "get_supervision_case", "/supervision-cases/{case_id}",
              "监督案件详情（文书、答复、整改、核查；部门只见本部门部分）", params=(CASE, DEPT),
              not_found="监督案件不存在"),
    ),
    commands=(
        Command("acknowledge_finding", "acknowledge_finding", "/inbox/{finding_key}/acknowledge", "监督发现标记已阅",
                params=(KEY, ACTOR_NOTE), roles=BUREAU),
        Command("assign_finding", "assign_finding", "/inbox/{finding_key}/assign", "交办监督发现（再次交办即改派）",
                params=(KEY, Param("assignee", in_="body", required=True, max_length=64, description="承办人"),
                        ACTOR_NOTE), roles=BUREAU),
        Command("dismiss_finding", "dismiss_finding", "/inbox/{finding_key}/dismiss", "监督发现不予处理（须说明理由）",
                params=(KEY, Param("reason", in_="body", required=True, max_length=500, description="理由")),
                roles=BUREAU),
        Command("merge_finding", "merge_finding", "/inbox/{finding_key}/merge", "合并重复的监督发现",
                params=(KEY, Param("into", in_="body", required=True, max_length=240, description="保留的发现编号")),
                roles=BUREAU),
        Command("open_supervision_case", "open_supervision_case", "/supervision-cases", "立监督案件（日常/重点/专项）",
                params=(Param("kind", in_="body", required=True, enum=KINDS, description="监督方式"),
                        Param("origin", in_="body", required=True, enum=ORIGINS, description="案件来源"),
                        Param("depts", "array", in_="body", required=True, description="被监督部门"),
                        Param("title", in_="body", required=True, max_length=200, description="案件名称"),
                        Param("origin_refs", "array", in_="body", description="来源编号（监督发现/投诉）"),
                        Param("checklist", "array", in_="body", description="检查清单（专项监督必填）"),
                        Param("opened_on", DAY, in_="body", description="立案日期（默认今天）")),
                roles=BUREAU),
        Command("issue_supervision_document", "issue_supervision_document", "/supervision-cases/{case_id}/documents",
                "制发监督通知书/意见书/决定书",
                params=(CASE, Param("target", in_="body", required=True, max_length=40, description="受文部门"),
                        Param("doc_kind", in_="body", required=True, enum=DOC_KINDS, description="文书种类"),
                        Param("doc_no", in_="body", required=True, max_length=200, description="文号"),
                        Param("issued_on", DAY, in_="body", description="发文日期（默认今天）"),
                        Param("reply_due", DAY, in_="body", description="答复期限（默认按文书种类计算）"),
                        Param("rectification_required", "boolean", in_="body", default=False, description="是否要求整改"),
                        Param("rectification_due", DAY, in_="body", description="整改期限（默认按设置计算）"),
                        Param("summary", in_="body", max_length=2000, description="主要内容")),
                roles=BUREAU),
        Command("reply_supervision_case", "reply_supervision_case", "/supervision-cases/{case_id}/reply",
                "部门答复监督文书（只能答复本部门的案件）",
                params=(CASE, Param("content", in_="body", required=True, max_length=2000, description="答复内容"),
                        Param("replied_on", DAY, in_="body", description="答复日期（默认今天）"),
                        Param("rectification_plan", in_="body", max_length=2000, description="整改计划")),
                roles=DEPARTMENT),
        Command("report_rectification", "report_rectification", "/supervision-cases/{case_id}/rectification",
                "部门报告整改完成（只能报告本部门的整改）",
                params=(CASE, Param("content", in_="body", required=True, max_length=2000, description="整改情况"),
                        Param("rectified_on", DAY, in_="body", description="整改完成日期（默认今天）")),
                roles=DEPARTMENT),
        Command("verify_supervision_case", "verify_supervision_case", "/supervision-cases/{case_id}/verify",
                "核查部门答复与整改（未通过须给出新的整改期限）",
                params=(CASE, Param("target", in_="body", required=True, max_length=40, description="被核查部门"),
                        Param("passed", "boolean", in_="body", required=True, description="是否通过"),
                        Param("comment", in_="body", max_length=2000, description="核查意见"),
                        Param("new_rectification_due", DAY, in_="body", description="新的整改期限"),
                        Param("verified_on", DAY, in_="body", description="核查日期（默认今天）")),
                roles=BUREAU),
        Command("close_supervision_case", "close_supervision_case", "/supervision-cases/{case_id}/close",
                "监督案件办结",
                params=(CASE, Param("conclusion", in_="body", required=True, max_length=2000, description="办结结论"),
                        Param("closed_on", DAY, in_="body", description="办结日期（默认今天）")),
                roles=BUREAU),
    ),
)
