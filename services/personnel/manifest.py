"""Declaration of the personnel service (执法主体、人员、证件、培训)."""
from services.kernel.manifest import (DEPT_USER, SUPERVISOR, Aggregate, Command, Param, Query,
                                      ServiceManifest)
from services.kernel.packing import PACKED_FIELDS
from services.personnel.domain import PersonnelSettings

DEPT = Param("dept", description="部门编码（6位行政区划代码-部门简称）", max_length=40)
PAGE = (Param("limit", "integer", minimum=1, maximum=500, default=50, description="每页条数"),
        Param("offset", "integer", minimum=0, maximum=1_000_000, default=0, description="跳过条数"))

MANIFEST = ServiceManifest(
    name="personnel",
    title="执法人员与证件",
    service="services.personnel.service:PersonnelService",
    metrics_port=9101,
    order=10,
    aggregates=(
        # the snapshot packed with the facts; what list_officers / get_credential filter on lifted
        # beside it (kernel/packing.py)
        Aggregate("officer", "officers", ("officer.*", "credential.*", "training.*"), "执法人员（证件、培训）",
                  packed=PACKED_FIELDS + ("snapshot",),
                  lifted=("snapshot.status", "snapshot.name", "snapshot.credential_numbers")),
        Aggregate("agency", "agencies", ("agency.*",), "执法主体"),
    ),
    # an officer's facts on one queue: batched together, no two workers racing for one officer
    consumes=(("gateway", "agency.*"), ("gateway", ("officer.*", "credential.*", "training.*"))),
    publishes=("officer.changed", "finding.raised", "finding.resolved"),
    settings=PersonnelSettings,
    settings_section="personnel",
    findings="list_findings",
    queries=(
        Query("list_officers", "list_officers", "/officers", "执法人员列表", paged=True,
              params=(DEPT, Param("status", enum=("active", "inactive", "left"), description="状态"),
                      Param("q", description="姓名包含", max_length=50), *PAGE)),
        Query("get_officer", "get_officer", "/officers/{officer_id}", "执法人员详情（证件、培训、发现、事实）",
              params=(Param("officer_id", in_="path", required=True, max_length=64),), scope="result",
              not_found="执法人员不存在"),
        Query("get_credential", "get_credential", "/credentials/{number}", "执法证件详情",
              params=(Param("number", in_="path", required=True, max_length=64),), scope="result",
              not_found="执法证件不存在"),
        Query("verify_officer", "verify_officer", "/officers/{officer_id}/verify", "核验执法资格（某时、某领域）",
              params=(Param("officer_id", in_="path", required=True, max_length=64),
                      Param("area", required=True, max_length=64, description="执法领域"),
                      Param("at", "date-time", description="时间（默认现在）"),
                      Param("region", max_length=40, description="区域")), scope="result",
              not_found="执法人员不存在"),
    ),
    commands=(
        Command("change_credential", "change_credential", "/officers/{officer_id}/credentials/{number}/{action}",
                "暂扣 / 恢复 / 收回 / 注销 / 备案执法证件",
                params=(Param("officer_id", in_="path", required=True, max_length=64),
                        Param("number", in_="path", required=True, max_length=64),
                        Param("action", in_="path", required=True,
                              enum=("suspend", "restore", "revoke", "cancel", "file")),
                        Param("at", "date-time", in_="body", required=True),
                        Param("reason", in_="body", max_length=500)),
                roles=frozenset({SUPERVISOR, DEPT_USER})),
    ),
)
