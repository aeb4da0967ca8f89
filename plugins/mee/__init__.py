"""生态环境 (ecology and environment) department plugin: departments whose code ends in '-sthj'.

Crime thresholds for 污染环境罪 (《刑法》第三百三十八条) follow the "严重污染环境" circumstances of
《最高人民法院、最高人民检察院关于办理环境污染刑事案件适用法律若干问题的解释》(法释〔2023〕7号)
that a case file can measure. The department's procedural numbers are the national defaults, so
this plugin adds no settings.
"""
from __future__ import annotations

from typing import Any

from plugins.hookspecs import hookimpl

DEPT_SUFFIX = "-sthj"
LAW_338 = "《中华人民共和国刑法》第三百三十八条"

# The administrative legal basis whose facts can reach the crime (any item citing it, whatever its
# code): 《固体废物污染环境防治法》第112条 (危险废物), 《水污染防治法》第83条 and
# 《大气污染防治法》第99条 (超标排放、逃避监管排放).
_WASTE_ITEMS = [{"law": "《中华人民共和国固体废物污染环境防治法》", "article": "第一百一十二条"}]
_DISCHARGE_ITEMS = [{"law": "《中华人民共和国水污染防治法》", "article": "第八十三条"},
                    {"law": "《中华人民共和国大气污染防治法》", "article": "第九十九条"}]

CRIME_THRESHOLDS: tuple[dict[str, Any], ...] = (
    {
        "id": "MEE-CRIME-338-HAZARDOUS-WASTE",
        "bases": _WASTE_ITEMS,
        "measure": "hazardous_waste_tons",
        "threshold": 3,
        "unit": "吨",
        "law": LAW_338,
        "name": "污染环境罪（非法排放、倾倒、处置危险废物三吨以上）",
    },
    {
        "id": "MEE-CRIME-338-HEAVY-METAL",
        "bases": _DISCHARGE_ITEMS,
        "measure": "heavy_metal_exceedance_multiple",
        "threshold": 3,
        "unit": "倍",
        "law": LAW_338,
        "name": "污染环境罪（含铅、汞、镉、铬、砷、铊、锑的污染物超过排放标准三倍以上）",
    },
    {
        "id": "MEE-CRIME-338-OTHER-METAL",
        "bases": _DISCHARGE_ITEMS,
        "measure": "other_metal_exceedance_multiple",
        "threshold": 10,
        "unit": "倍",
        "law": LAW_338,
        "name": "污染环境罪（含镍、铜、锌、银、钒、锰、钴的污染物超过排放标准十倍以上）",
    },
    {
        "id": "MEE-CRIME-338-LOSS",
        "bases": _WASTE_ITEMS + _DISCHARGE_ITEMS,
        "measure": "loss_or_illegal_gains",
        "threshold": 300_000,
        "unit": "元",
        "law": LAW_338,
        "name": "污染环境罪（违法所得或者致使公私财产损失三十万元以上）",
    },
    {
        "id": "MEE-CRIME-338-WATER-SUPPLY",
        "bases": _WASTE_ITEMS + _DISCHARGE_ITEMS,
        "measure": "drinking_water_interruption_hours",
        "threshold": 12,
        "unit": "小时",
        "law": LAW_338,
        "name": "污染环境罪（致使乡镇集中式饮用水水源取水中断十二小时以上）",
    },
)


@hookimpl
def zhifa_crime_thresholds(dept):
    if not dept.endswith(DEPT_SUFFIX):
        return []
    return [{**t, "bases": [dict(b) for b in t["bases"]]} for t in CRIME_THRESHOLDS]
