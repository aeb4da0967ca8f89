"""Declaration of the item registry (执法事项清单、裁量基准、四张清单)."""
from services.kernel.manifest import Aggregate, Param, Query, ServiceManifest
from services.registry.domain import RegistrySettings

AT = Param("at", description="时间点：YYYY-MM-DD 或带时区的 ISO 8601（默认现在）", max_length=40)
DEPT = Param("dept", required=True, description="部门编码", max_length=40)
CODE = Param("code", in_="path", required=True, max_length=64, description="事项编码")

MANIFEST = ServiceManifest(
    name="registry",
    title="执法事项与裁量基准",
    service="services.registry.service:RegistryService",
    metrics_port=9102,
    order=20,
    aggregates=(Aggregate("item", "items", ("item.*", "standard.*"), "执法事项（版本、裁量基准）",
                          dept_field="snapshot.depts"),),
    # an item's versions and its discretion standards on one queue (one handler): none races another
    consumes=(("gateway", ("item.*", "standard.*")), ("gateway", "leniency_list.*")),
    publishes=("item.changed", "finding.raised", "finding.resolved"),
    settings=RegistrySettings,
    settings_section="registry",
    findings="list_findings",
    queries=(
        Query("list_items", "items_of_dept", "/items", "部门在某时持有的执法事项", params=(DEPT, AT)),
        Query("get_item", "get_item", "/items/{code}", "执法事项详情（版本、裁量基准、发现、事实）",
              params=(CODE,), scope="result", not_found="执法事项不存在"),
        Query("get_tier_range", "tier_range", "/items/{code}/tier-range", "裁量阶次的罚款范围",
              params=(CODE, Param("tier", required=True, max_length=40, description="阶次编号或名称"), AT),
              scope="none", not_found="裁量阶次不存在"),
        Query("list_public_items", "publication_view", "/public/items", "事前公开：部门执法事项与免罚清单",
              params=(DEPT, AT), scope="none", public=True),
    ),
)
