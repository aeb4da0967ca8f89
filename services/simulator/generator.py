"""County simulator (县域模拟器): one realistic year of a county's enforcement facts, with breaches.

`simulate(config)` is pure and deterministic: the same `CountyConfig` (seed included) yields the
same envelopes, event ids and ground truth — no wall clock, no I/O. Randomness comes from one
`random.Random(seed)` and a seeded `Faker('zh_CN')`; event ids are derived from the seed.

What a year holds (time ordered, every envelope valid against `contracts.catalog.Catalog()`):
- agencies (执法主体), officers and auxiliaries, credentials issued in earlier years and during the
  year (some by a State Council department and filed with the county), suspensions, restorations,
  revocations, cancellations, renewals, people leaving or standing down, training records;
- enforcement items with legal basis (some delegated to townships and evaluated), amendments,
  a repeal, discretion standards with five tiers, leniency lists;
- penalty cases with realistic stage timings counted in China's working days (filing, acts,
  testing, notice, hearing, legal review, collective discussion, decision, service, publication,
  major-penalty filing, payment, execution, closing, archiving), crime handovers, revoked
  decisions, and on-the-spot (simple procedure) warnings.

Breaches are injected on purpose, one per subject, and each is written down as an `Expectation`
(rule, subject, department, from when) beside the stream. Everything else is generated clean
under every rule, with margins: the truth is what the generator intended, not what an engine says.
The numbers (deadlines, thresholds) come from the jurisdiction preset and the department plugins'
data, so a changed number moves the generator and the rules together.
"""
from __future__ import annotations

import functools
import hashlib
import random
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Callable, Iterable, Mapping

from faker import Faker

from plugins import samr
from plugins.builtin.presets import PRESETS
from services.common.workdays import WorkdayCalendar
from services.common.crime import threshold_applies
from services.penalty.domain.settings import PenaltySettings
from services.personnel.domain import PersonnelSettings
from services.registry.domain import RegistrySettings

from services.common.chinatime import CST  # noqa: E402  (China time, shared by every domain)


class GenerationError(Exception):
    """The configuration cannot be simulated as asked (e.g. too few officers to staff a case)."""


# ---------------------------------------------------------------------------------------------
# Check characters: 统一社会信用代码 (GB 32100-2015, with the GB 11714 organisation code inside)
# and the 18-digit resident identity number (GB 11643, ISO 7064 MOD 11-2).

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
RESIDENT_ID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))  # 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2


def uscc_check_char(body: str) -> str:
    """The 18th character of a unified social credit code from its first 17 (GB 32100-2015)."""
    if len(body) != 17 or any(c not in USCC_CHARS for c in body):
        raise ValueError(f"统一社会信用代码本体应为 17 位且只含 {USCC_CHARS}：{body!r}")
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(body, USCC_WEIGHTS))
    return USCC_CHARS[(31 - total % 31) % 31]


def org_code_check_char(body: str) -> str:
    """The 9th character of an organisation code (组织机构代码, GB 11714) from its first 8."""
    if len(body) != 8 or not body.isalnum() or not body.isascii():
        raise ValueError(f"组织机构代码本体应为 8 位数字或大写字母：{body!r}")
    total = sum(int(c, 36) * w for c, w in zip(body.upper(), ORG_CODE_WEIGHTS))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def is_valid_uscc(code: str) -> bool:
    """Both check characters of a unified social credit code are right."""
    if not isinstance(code, str) or len(code) != 18 or any(c not in USCC_CHARS for c in code):
        return False
    org = code[8:17]
    return uscc_check_char(code[:17]) == code[17] and org_code_check_char(org[:8]) == org[8]


def resident_id_check_char(body: str) -> str:
    """The 18th character of a resident identity number (ISO 7064 MOD 11-2)."""
    if len(body) != 17 or not body.isdigit():
        raise ValueError(f"身份证号码本体应为 17 位数字：{body!r}")
    total = sum(int(c) * w for c, w in zip(body, RESIDENT_ID_WEIGHTS))
    return "10X98765432"[total % 11]


def is_valid_resident_id(number: str) -> bool:
    """Well-formed: 17 digits with a real birth date, and the right check character."""
    if not isinstance(number, str) or len(number) != 18 or not number[:17].isdigit():
        return False
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return resident_id_check_char(number[:17]) == number[17]


def make_uscc(rng: random.Random, region: str, entity: str = "91") -> str:
    """A well-formed unified social credit code: 91 = 工商登记的企业, 92 = 个体工商户."""
    letters = [c for c in USCC_CHARS if c.isalpha() and c != "X"]
    if rng.random() < 0.6:  # codes issued since 2015 usually start their organisation part with "MA"
        body = "MA" + "".join(rng.choice("0123456789" + "".join(letters)) for _ in range(6))
    else:
        body = "".join(rng.choice("0123456789") for _ in range(8))
    org = body + org_code_check_char(body)
    head = f"{entity}{region}{org}"
    return head + uscc_check_char(head)


def make_resident_id(rng: random.Random, region: str, birth: date, male: bool) -> str:
    """A well-formed 18-digit resident identity number (odd 17th digit for men)."""
    seq = rng.randrange(0, 100) * 10 + rng.choice((1, 3, 5, 7, 9) if male else (0, 2, 4, 6, 8))
    body = f"{region}{birth:%Y%m%d}{seq:03d}"
    return body + resident_id_check_char(body)


# ---------------------------------------------------------------------------------------------
# Counties, departments and their enforcement items (real laws and articles).

@dataclass(frozen=True)
class County:
    region: str
    province: str
    abbr: str              # province abbreviation on credentials (川, 鲁 …)
    city: str
    name: str
    short: str             # first character used in document numbers (营市监罚〔2025〕1号)
    townships: tuple[tuple[str, str], ...]  # (name, dept code suffix)
    roads: tuple[str, ...]

    @property
    def justice_bureau(self) -> str:
        return f"{self.name}司法局"

    def township_dept(self, code: str) -> str:
        return f"{self.region}-{code}"


COUNTIES: dict[str, County] = {
    "511322": County("511322", "四川省", "川", "南充市", "营山县", "营",
                     (("朗池镇", "lcz"), ("骆市镇", "lsz"), ("回龙镇", "hlz"), ("双河镇", "shz"),
                      ("老林镇", "llz"), ("小桥镇", "xqz"), ("绿水镇", "lvsz"), ("星火镇", "xhz")),
                     ("朗池大道", "城南大道", "安固路", "翠屏路", "滨河路", "光明路", "红旗路", "西街")),
    "370322": County("370322", "山东省", "鲁", "淄博市", "高青县", "高",
                     (("田镇街道", "tzjd"), ("芦湖街道", "lhjd"), ("青城镇", "qcz"), ("高城镇", "gcz"),
                      ("黑里寨镇", "hlzz"), ("唐坊镇", "tfz"), ("常家镇", "cjz"), ("花沟镇", "hgz")),
                     ("青城路", "黄河路", "高苑路", "芦湖路", "大寨路", "唐坊路", "北海路", "惠民路")),
    "420222": County("420222", "湖北省", "鄂", "黄石市", "阳新县", "阳",
                     (("兴国镇", "xgz"), ("富池镇", "fcz"), ("黄颡口镇", "hskz"), ("韦源口镇", "wykz"),
                      ("太子镇", "tzz"), ("大王镇", "dwz"), ("陶港镇", "tgz"), ("白沙镇", "bsz")),
                     ("兴国大道", "桃花泉路", "城东大道", "儒学路", "北门路", "莲花湖路", "宝塔路", "富川路")),
}

PROVINCES = {
    "11": ("北京市", "京"), "12": ("天津市", "津"), "13": ("河北省", "冀"), "14": ("山西省", "晋"),
    "15": ("内蒙古自治区", "蒙"), "21": ("辽宁省", "辽"), "22": ("吉林省", "吉"), "23": ("黑龙江省", "黑"),
    "31": ("上海市", "沪"), "32": ("江苏省", "苏"), "33": ("浙江省", "浙"), "34": ("安徽省", "皖"),
    "35": ("福建省", "闽"), "36": ("江西省", "赣"), "37": ("山东省", "鲁"), "41": ("河南省", "豫"),
    "42": ("湖北省", "鄂"), "43": ("湖南省", "湘"), "44": ("广东省", "粤"), "45": ("广西壮族自治区", "桂"),
    "46": ("海南省", "琼"), "50": ("重庆市", "渝"), "51": ("四川省", "川"), "52": ("贵州省", "贵"),
    "53": ("云南省", "云"), "54": ("西藏自治区", "藏"), "61": ("陕西省", "陕"), "62": ("甘肃省", "甘"),
    "63": ("青海省", "青"), "64": ("宁夏回族自治区", "宁"), "65": ("新疆维吾尔自治区", "新"),
}


def county_for(region: str, fake: Faker) -> County:
    """A known county, or a plausible one built for any other 6-digit region code."""
    if region in COUNTIES:
        return COUNTIES[region]
    if len(region) != 6 or not region.isdigit() or region[:2] not in PROVINCES:
        raise GenerationError(f"行政区划代码应为 6 位且省级代码有效：{region!r}")
    province, abbr = PROVINCES[region[:2]]
    base = fake.city_name()
    townships = tuple((f"{fake.city_name()}镇", f"zhen{i:02d}") for i in range(1, 9))
    roads = tuple(dict.fromkeys(fake.street_name() for _ in range(12)))[:8]
    return County(region, province, abbr, f"{fake.city_name()}市", f"{base}县", base[0], townships, roads)


@dataclass(frozen=True)
class ItemDef:
    """One enforcement item of a department's list; `limit` = (min, max, max_only) in yuan."""

    suffix: str
    name: str
    category: str
    basis: tuple[tuple[str, str], ...]
    limit: tuple[float, float, bool] | None = None
    act_code: str = ""
    act: str = ""                      # the illegal act, for summaries (经营超过保质期的食品)
    parties: tuple[str, ...] = ("org",)
    industries: tuple[str, ...] = ()
    on_spot: bool = False              # fit for on-the-spot warnings (当场处罚)
    seizure: bool = False              # a seizure (查封扣押) is a plausible act
    testing: bool = False              # sampling and testing (抽样检验) is plausible
    delegated: bool = False            # delegated to townships (赋权乡镇)
    mid_year: bool = False             # published in May, in force from Jun 1, standard from Jul 1


@dataclass(frozen=True)
class DeptProfile:
    short: str
    title: str                  # str.format(county=..., city=...)
    abbr: str                   # in document numbers: 营{abbr}罚〔2025〕1号
    area: str                   # 执法领域 on credentials
    agency_basis: tuple[str, ...]
    unit_title: str             # the 综合执法大队 an unconfirmed agency is
    items: tuple[ItemDef, ...]
    state_council_issuer: str | None = None
    state_council_share: float = 0.0


FOOD = ("食品", "副食", "超市", "餐饮管理", "商贸")
SCJG_ITEMS = (
    ItemDef("spaqf-124", "对生产经营超过保质期、致病性微生物等超过食品安全标准限量的食品等行为的行政处罚", "penalty",
            (("《中华人民共和国食品安全法》", "第一百二十四条第一款"),), (50_000, 100_000, False),
            "FOOD-SUBSTANDARD-SALE", "经营超过保质期或者不符合食品安全标准的食品", ("org", "person"), FOOD,
            seizure=True, testing=True),
    ItemDef("spaqf-126", "对食品经营者未按规定建立并遵守进货查验记录制度等行为的行政处罚", "penalty",
            (("《中华人民共和国食品安全法》", "第一百二十六条第一款第（三）项"),), (5_000, 50_000, False),
            "FOOD-RECORDS-MISSING", "未按规定建立并遵守进货查验记录制度", ("org", "person"), FOOD, delegated=True),
    ItemDef("spaqf-122", "对未取得食品生产经营许可从事食品生产经营活动的行政处罚", "penalty",
            (("《中华人民共和国食品安全法》", "第一百二十二条第一款"),), (50_000, 100_000, False),
            "FOOD-NO-LICENCE", "未取得食品经营许可从事食品经营活动", ("org", "person"), FOOD, seizure=True),
    ItemDef("spaqf-132", "对未按要求进行食品贮存、运输和装卸的行政处罚", "penalty",
            (("《中华人民共和国食品安全法》", "第一百三十二条"),), (10_000, 50_000, False),
            "FOOD-STORAGE", "未按要求贮存食品", ("org",), FOOD),
    ItemDef("tzsbaqf-084", "对使用未取得许可生产、未经检验或者检验不合格的特种设备的行政处罚", "penalty",
            (("《中华人民共和国特种设备安全法》", "第八十四条第（一）项"),), (30_000, 300_000, False),
            "SPECIAL-EQUIPMENT-UNINSPECTED", "使用未经定期检验的特种设备", ("org",),
            ("物业管理", "机械制造", "商贸", "酒店管理"), seizure=True),
    ItemDef("fbzdjzf-020", "对经营者进行虚假或者引人误解的商业宣传的行政处罚", "penalty",
            (("《中华人民共和国反不正当竞争法》", "第二十条第一款"),), (200_000, 1_000_000, False),
            "FALSE-PROMOTION", "对商品的功能、质量作虚假的商业宣传", ("org",), ("商贸", "保健品", "电子商务")),
    ItemDef("dzswf-076", "对电子商务经营者未在首页显著位置公示营业执照信息等行为的行政处罚", "penalty",
            (("《中华人民共和国电子商务法》", "第七十六条第一款第（一）项"),), (0, 10_000, True),
            "ECOMMERCE-LICENCE-NOT-SHOWN", "未在网店首页显著位置公示营业执照信息", ("org", "person"),
            ("电子商务", "商贸"), mid_year=True),
    ItemDef("wzwzccbf-013", "对从事无照经营的行政处罚", "penalty",
            (("《无证无照经营查处办法》", "第十三条"),), (0, 10_000, True),
            "UNLICENSED-BUSINESS", "未依法取得营业执照从事经营活动", ("person",), ("副食", "五金"), on_spot=True),
    ItemDef("spaqf-110-cf", "对有证据证明不符合食品安全标准或者有证据证明存在安全隐患的食品的查封、扣押", "coercion",
            (("《中华人民共和国食品安全法》", "第一百一十条第（四）项"),)),
    ItemDef("spaqf-110-jc", "对食品生产经营活动的监督检查", "inspection",
            (("《中华人民共和国食品安全法》", "第一百一十条"),)),
    ItemDef("gjsclsbz-001", "对工业产品生产许可证的核发", "licensing",
            (("《中华人民共和国工业产品生产许可证管理条例》", "第五条"),)),
)
STHJ_ITEMS = (
    ItemDef("dqwrf-099", "对超过大气污染物排放标准或者超过重点大气污染物排放总量控制指标排放大气污染物的行政处罚", "penalty",
            (("《中华人民共和国大气污染防治法》", "第九十九条第（二）项"),), (100_000, 1_000_000, False),
            "AIR-EMISSION-EXCEEDED", "超过大气污染物排放标准排放大气污染物", ("org",), ("化工", "建材", "陶瓷", "铸造"),
            testing=True),
    ItemDef("dqwrf-108", "对产生含挥发性有机物废气的生产和服务活动未在密闭空间或者设备中进行的行政处罚", "penalty",
            (("《中华人民共和国大气污染防治法》", "第一百零八条第（一）项"),), (20_000, 200_000, False),
            "VOC-NOT-ENCLOSED", "喷涂作业未在密闭空间中进行", ("org",), ("汽车维修", "家具制造", "印刷")),
    ItemDef("swrf-083", "对超过水污染物排放标准或者超过重点水污染物排放总量控制指标排放水污染物的行政处罚", "penalty",
            (("《中华人民共和国水污染防治法》", "第八十三条第（二）项"),), (100_000, 1_000_000, False),
            "WATER-DISCHARGE-EXCEEDED", "超过水污染物排放标准排放水污染物", ("org",), ("食品加工", "养殖", "化工"),
            testing=True),
    ItemDef("swrf-082", "对未按照规定对所排放的水污染物自行监测或者未保存原始监测记录的行政处罚", "penalty",
            (("《中华人民共和国水污染防治法》", "第八十二条第（一）项"),), (20_000, 200_000, False),
            "WATER-SELF-MONITORING", "未按照规定对所排放的水污染物自行监测", ("org",), ("食品加工", "养殖", "酿造")),
    ItemDef("gtfwf-112", "对未按照规定设置危险废物识别标志、未按照国家有关规定贮存利用处置危险废物等行为的行政处罚",
            "penalty", (("《中华人民共和国固体废物污染环境防治法》", "第一百一十二条第一款"),), (100_000, 1_000_000, False),
            "HAZARDOUS-WASTE-MISHANDLED", "未按照国家有关规定贮存危险废物", ("org",), ("汽车维修", "化工", "电镀"),
            seizure=True),
    ItemDef("zswrfzf-075", "对无排污许可证或者超过噪声排放标准排放工业噪声的行政处罚", "penalty",
            (("《中华人民共和国噪声污染防治法》", "第七十五条"),), (20_000, 200_000, False),
            "INDUSTRIAL-NOISE", "超过噪声排放标准排放工业噪声", ("org",), ("建材", "机械加工", "木材加工"), mid_year=True),
    ItemDef("jsxmhbgltl-023", "对需要配套建设的环境保护设施未建成、未经验收或者验收不合格即投入生产或者使用的行政处罚",
            "penalty", (("《建设项目环境保护管理条例》", "第二十三条第一款"),), (200_000, 1_000_000, False),
            "ENV-FACILITY-NOT-ACCEPTED", "环境保护设施未经验收即投入生产", ("org",), ("建材", "化工", "新材料")),
    ItemDef("hjbhf-025-cf", "对违法排放污染物造成或者可能造成严重污染的设施、设备的查封、扣押", "coercion",
            (("《中华人民共和国环境保护法》", "第二十五条"),)),
    ItemDef("hjbhf-024-jc", "对排放污染物的企业事业单位和其他生产经营者的现场检查", "inspection",
            (("《中华人民共和国环境保护法》", "第二十四条"),)),
)
CGJ_ITEMS = (
    ItemDef("dqwrf-118", "对排放油烟的餐饮服务业经营者未安装油烟净化设施、不正常使用油烟净化设施等行为的行政处罚",
            "penalty", (("《中华人民共和国大气污染防治法》", "第一百一十八条第一款"),), (5_000, 50_000, False),
            "RESTAURANT-FUMES", "未安装油烟净化设施排放油烟", ("org", "person"), ("餐饮", "火锅", "烧烤"),
            delegated=True),
    ItemDef("dqwrf-115", "对施工单位未采取有效防尘降尘措施的行政处罚", "penalty",
            (("《中华人民共和国大气污染防治法》", "第一百一十五条第一款第（一）项"),), (10_000, 100_000, False),
            "CONSTRUCTION-DUST", "施工工地未采取有效防尘降尘措施", ("org",), ("建筑工程", "市政工程", "房地产开发")),
    ItemDef("csdlgltl-042", "对擅自占用或者挖掘城市道路等行为的行政处罚", "penalty",
            (("《城市道路管理条例》", "第四十二条"),), (0, 20_000, True),
            "ROAD-OCCUPIED", "擅自占用城市道路经营", ("person", "org"), ("餐饮", "水果", "五金"), on_spot=True,
            delegated=True),
    ItemDef("csjzljglgd-026", "对随意倾倒、抛撒或者堆放建筑垃圾的行政处罚", "penalty",
            (("《城市建筑垃圾管理规定》", "第二十六条"),), (5_000, 50_000, False),
            "CONSTRUCTION-WASTE-DUMPING", "随意倾倒建筑垃圾", ("org",), ("渣土运输", "建筑工程", "装饰工程")),
    ItemDef("cshljglbf-042", "对随意倾倒、抛洒、堆放城市生活垃圾的行政处罚", "penalty",
            (("《城市生活垃圾管理办法》", "第四十二条"),), (5_000, 50_000, False),
            "HOUSEHOLD-WASTE-DUMPING", "随意倾倒城市生活垃圾", ("org",), ("物业管理", "餐饮", "农贸市场管理")),
    ItemDef("czpshwsclt-050", "对排水户未取得污水排入排水管网许可证向城镇排水设施排放污水的行政处罚", "penalty",
            (("《城镇排水与污水处理条例》", "第五十条第一款"),), (0, 500_000, True),
            "SEWAGE-NO-PERMIT", "未取得污水排入排水管网许可证排放污水", ("org",), ("洗车", "餐饮", "食品加工"),
            mid_year=True),
    ItemDef("cxghf-068-cf", "对违法建设的强制拆除", "coercion",
            (("《中华人民共和国城乡规划法》", "第六十八条"),)),
    ItemDef("csdlgltl-jc", "对城市道路占用、挖掘的监督检查", "inspection",
            (("《城市道路管理条例》", "第三十一条"),)),
)
WJJ_ITEMS = (
    ItemDef("ggcswsgltlss-035", "对未依法取得公共场所卫生许可证擅自营业的行政处罚", "penalty",
            (("《公共场所卫生管理条例实施细则》", "第三十五条第一款"),), (500, 5_000, False),
            "PUBLIC-PLACE-NO-PERMIT", "未依法取得公共场所卫生许可证擅自营业", ("org", "person"),
            ("美容美发", "洗浴", "宾馆"), on_spot=True),
    ItemDef("ggcswsgltlss-036", "对公共场所经营者未按照规定对顾客用品用具进行清洗、消毒、保洁的行政处罚", "penalty",
            (("《公共场所卫生管理条例实施细则》", "第三十六条第（四）项"),), (2_000, 20_000, False),
            "PUBLIC-PLACE-HYGIENE", "未按照规定对顾客用品用具进行清洗、消毒", ("org", "person"),
            ("美容美发", "洗浴", "宾馆", "游泳馆")),
    ItemDef("crbfzf-073", "对饮用水供水单位供应的饮用水不符合国家卫生标准和卫生规范的行政处罚", "penalty",
            (("《中华人民共和国传染病防治法》", "第七十三条第（一）项"),), (0, 50_000, True),
            "DRINKING-WATER-SUBSTANDARD", "供应的饮用水不符合国家卫生标准", ("org",), ("自来水", "供水"), testing=True),
    ItemDef("fszlglgd-038", "对医疗机构未取得放射诊疗许可从事放射诊疗工作的行政处罚", "penalty",
            (("《放射诊疗管理规定》", "第三十八条第（一）项"),), (0, 10_000, True),
            "RADIOLOGY-NO-PERMIT", "未取得放射诊疗许可从事放射诊疗工作", ("org",), ("口腔门诊部", "医院", "诊所")),
    ItemDef("zybfzf-071", "对用人单位未按照规定及时、如实向卫生行政部门申报产生职业病危害的项目的行政处罚", "penalty",
            (("《中华人民共和国职业病防治法》", "第七十一条第（一）项"),), (50_000, 100_000, False),
            "OCCUPATIONAL-HAZARD-UNDECLARED", "未按照规定申报职业病危害项目", ("org",), ("家具制造", "石材加工", "铸造"),
            mid_year=True),
    ItemDef("ggcswsgltl-jc", "对公共场所卫生的监督检查", "inspection",
            (("《公共场所卫生管理条例》", "第十条"),)),
)
JTJ_ITEMS = (
    ItemDef("glaqbhtl-064", "对车辆违法超限运输的行政处罚", "penalty",
            (("《公路安全保护条例》", "第六十四条"),), (0, 30_000, True),
            "OVERLOAD-TRANSPORT", "车货总质量超过限定标准行驶公路", ("org", "person"), ("货运", "物流", "砂石运输"),
            on_spot=True),
    ItemDef("dlystl-063", "对未取得道路运输经营许可擅自从事道路客运经营的行政处罚", "penalty",
            (("《中华人民共和国道路运输条例》", "第六十三条"),), (10_000, 100_000, False),
            "PASSENGER-NO-PERMIT", "未取得道路运输经营许可擅自从事道路客运经营", ("person", "org"),
            ("客运", "旅游客运", "汽车租赁"), mid_year=True),
    ItemDef("whpaqgltl-086", "对危险化学品道路运输企业未配备安全防护措施、驾驶人员或者押运人员未取得从业资格上岗作业等行为的行政处罚",
            "penalty", (("《危险化学品安全管理条例》", "第八十六条第（二）项"),), (50_000, 100_000, False),
            "HAZCHEM-NO-PROTECTION", "运输危险化学品未采取相应的安全防护措施", ("org",), ("危险货物运输", "化工物流"),
            seizure=True),
    ItemDef("glf-069-jc", "对公路及公路用地范围内遵守公路法律法规情况的监督检查", "inspection",
            (("《中华人民共和国公路法》", "第六十九条"),)),
)

DEPARTMENTS: dict[str, DeptProfile] = {
    "scjg": DeptProfile("scjg", "{county}市场监督管理局", "市监", "market",
                        ("《中华人民共和国行政处罚法》第十七条", "《市场监督管理行政处罚程序规定》第二条"),
                        "{county}市场监管综合行政执法大队", SCJG_ITEMS),
    "sthj": DeptProfile("sthj", "{city}生态环境局{county}分局", "环", "environment",
                        ("《中华人民共和国环境保护法》第十条", "《中华人民共和国行政处罚法》第十七条"),
                        "{county}生态环境保护综合行政执法大队", STHJ_ITEMS,
                        state_council_issuer="生态环境部", state_council_share=0.5),
    "cgj": DeptProfile("cgj", "{county}综合行政执法局", "综执", "urban",
                       ("《中华人民共和国行政处罚法》第十八条", "《城市管理执法办法》第八条"),
                       "{county}城市管理综合执法大队", CGJ_ITEMS),
    "wjj": DeptProfile("wjj", "{county}卫生健康局", "卫健", "health",
                       ("《中华人民共和国基本医疗卫生与健康促进法》第七条", "《中华人民共和国行政处罚法》第十七条"),
                       "{county}卫生健康综合监督执法大队", WJJ_ITEMS),
    "jtj": DeptProfile("jtj", "{county}交通运输局", "交运", "transport",
                       ("《中华人民共和国公路法》第八条", "《中华人民共和国行政处罚法》第十七条"),
                       "{county}交通运输综合行政执法大队", JTJ_ITEMS),
}
TIER_IDS = ("lightest", "lighter", "normal", "heavier", "heaviest")
TIER_NAMES = ("从轻", "较轻", "一般", "较重", "严重")
TIER_CONDITIONS = (
    "初次违法，违法行为持续时间短、涉案金额小，主动消除或者减轻违法行为危害后果",
    "违法情节较轻，积极配合调查，如实陈述违法事实并主动提供证据材料",
    "违法情节一般，未造成明显危害后果",
    "违法情节较重，拒不配合调查或者一年内因同类违法行为受过行政处罚",
    "违法情节严重，造成较大社会影响或者人身、财产损害",
)
TIER_SPLITS = (0.0, 0.15, 0.35, 0.6, 0.8, 1.0)

# ---------------------------------------------------------------------------------------------
# Configuration

# Rules the simulator can inject. "PEN-FILING-LATE" stands for the department's filing limit:
# every rule that enforces it for the department is expected (see `filing_rules`).
CASE_RULES = (
    "PEN-CRIME-NO-HANDOVER", "PEN-FILING-LATE", "PEN-OFFICER-CREDENTIAL", "PEN-HEARING-NOT-NOTIFIED",
    "PEN-LEGAL-REVIEW-MISSING", "PEN-COLLECTIVE-MISSING", "PEN-HEARING-WINDOW", "PEN-MAJOR-NOT-FILED",
    "PEN-FINE-OUT-OF-TIER", "PEN-WITHDRAWAL-LATE", "PEN-DECISION-OVERDUE", "PEN-SERVICE-LATE",
    "PEN-PUBLICATION-LATE", "PEN-PAYMENT-OVERDUE", "PEN-OFFICERS-MIN", "PEN-AV-MISSING",
)
# Breaches that must stay clear of a major penalty (which would need review, discussion and filing).
NONMAJOR_RULES = ("PEN-COLLECTIVE-MISSING", "PEN-HEARING-WINDOW", "PEN-HEARING-NOT-NOTIFIED", "PEN-LEGAL-REVIEW-MISSING")
PERSONNEL_RULES = ("PER-CRED-UNFILED", "PER-TRAIN-HOURS", "PER-CRED-HOLDER-INACTIVE", "PER-AUX-CREDENTIAL",
                   "PER-AGENCY-UNCONFIRMED")
REGISTRY_RULES = ("REG-STANDARD-MISSING", "REG-NO-LEGAL-BASIS", "REG-DELEGATED-NOT-EVALUATED")
INJECTABLE_RULES = CASE_RULES + PERSONNEL_RULES + REGISTRY_RULES

# Share of the eligible subjects that break the rule (cases of the department, officers, items).
DEFAULT_BREACH_RATES: dict[str, float] = {
    "PEN-CRIME-NO-HANDOVER": 0.01, "PEN-FILING-LATE": 0.03, "PEN-OFFICER-CREDENTIAL": 0.01,
    "PEN-HEARING-NOT-NOTIFIED": 0.01, "PEN-LEGAL-REVIEW-MISSING": 0.01, "PEN-COLLECTIVE-MISSING": 0.01,
    "PEN-HEARING-WINDOW": 0.01, "PEN-MAJOR-NOT-FILED": 0.01, "PEN-FINE-OUT-OF-TIER": 0.02,
    "PEN-WITHDRAWAL-LATE": 0.005, "PEN-DECISION-OVERDUE": 0.02, "PEN-SERVICE-LATE": 0.02,
    "PEN-PUBLICATION-LATE": 0.02, "PEN-PAYMENT-OVERDUE": 0.03, "PEN-OFFICERS-MIN": 0.015, "PEN-AV-MISSING": 0.01,
    "PER-CRED-UNFILED": 0.05, "PER-TRAIN-HOURS": 0.06, "PER-CRED-HOLDER-INACTIVE": 0.3, "PER-AUX-CREDENTIAL": 0.05,
    "PER-AGENCY-UNCONFIRMED": 0.25,
    "REG-STANDARD-MISSING": 0.04, "REG-NO-LEGAL-BASIS": 0.25, "REG-DELEGATED-NOT-EVALUATED": 0.25,
}
DEMO_BREACH_RATES: dict[str, float] = {
    "PEN-DECISION-OVERDUE": 0.01, "PEN-OFFICER-CREDENTIAL": 0.01, "PEN-PAYMENT-OVERDUE": 0.01,
    "PEN-SERVICE-LATE": 0.01, "PER-CRED-UNFILED": 0.01, "PER-TRAIN-HOURS": 0.01, "REG-STANDARD-MISSING": 0.01,
}


@dataclass(frozen=True)
class DeptSpec:
    """How big one department is in the simulation."""

    short: str                  # a key of DEPARTMENTS (scjg, sthj, cgj, wjj, jtj)
    officers: int               # 执法人员
    auxiliaries: int = 0        # 辅助人员
    cases: int = 0              # normal-procedure cases
    on_spot: int = 0            # simple-procedure (当场处罚) warnings
    items: int | None = None    # publish the first N items of the department's list (None = all)


@dataclass(frozen=True)
class CountyConfig:
    seed: int = 1
    region: str = "511322"
    year: int = 2025
    departments: tuple[DeptSpec, ...] = ()
    breach_rates: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_BREACH_RATES))
    min_breaches: int = 1       # a rule with a positive rate breaks at least this often (when eligible)
    preset: str = "seed001"
    tag: str = ""               # tells apart the ids of several simulations in one suite (bench)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["breach_rates"] = dict(self.breach_rates)
        return out


SCALES: dict[str, dict[str, Any]] = {
    "demo": {"departments": (DeptSpec("scjg", 6, 1, 5, 1, items=6), DeptSpec("sthj", 6, 1, 4, 0, items=5)),
             "breach_rates": DEMO_BREACH_RATES},
    "small": {"departments": (DeptSpec("scjg", 9, 2, 26, 3), DeptSpec("sthj", 8, 1, 12),
                              DeptSpec("cgj", 8, 2, 12, 4), DeptSpec("wjj", 6, 1, 8, 2), DeptSpec("jtj", 6, 1, 8, 2))},
    "year": {"departments": (DeptSpec("scjg", 48, 6, 220, 30), DeptSpec("sthj", 22, 3, 70),
                             DeptSpec("cgj", 40, 12, 160, 120), DeptSpec("wjj", 18, 2, 60, 10))},
}


def county_config(scale: str = "small", seed: int = 1, **overrides: Any) -> CountyConfig:
    """The configuration of a named scale ('demo', 'small', 'year'), with overrides by field."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    values = {**SCALES[scale], "seed": seed, **overrides}
    if "breach_rates" in values:
        values["breach_rates"] = dict(values["breach_rates"])
    return CountyConfig(**values)


def dept_code(region: str, short: str) -> str:
    return f"{region}-{short}"


def _merged_preset(name: str) -> dict[str, dict]:
    if name not in PRESETS:
        raise GenerationError(f"未知的辖区预设“{name}”")
    out: dict[str, dict] = {}
    for preset in ("national", name):
        for section, values in PRESETS[preset].items():
            out.setdefault(section, {}).update(values)
    return out


def personnel_settings(preset: str) -> PersonnelSettings:
    return PersonnelSettings.from_mapping(**_merged_preset(preset).get("personnel", {}))


def registry_settings(preset: str) -> RegistrySettings:
    return RegistrySettings.from_mapping(**_merged_preset(preset).get("registry", {}))


@functools.lru_cache(maxsize=1)
def department_plugins():
    """The plugin host the services build (installed entry points, e.g. the 卫健 and 交通
    distributions bootstrap installs, plus samr and mee): the simulated numbers are the ones the
    services judge by. A department no installed plugin answers for keeps the preset's numbers."""
    from services.simulator.report import plugin_host

    return plugin_host()


def penalty_settings(preset: str, dept: str) -> PenaltySettings:
    """Law defaults, the preset's numbers, then the department plugins' overrides."""
    base = PenaltySettings.from_mapping(**dict(_merged_preset(preset).get("penalty", {})))
    overrides = department_plugins().dept_settings(dept)
    return PenaltySettings.from_mapping(base, **dict(overrides.get("penalty", {})))


def crime_thresholds(dept: str) -> list[dict]:
    """Crime thresholds the department plugins declare for `dept` (the penalty service gets the same)."""
    return department_plugins().crime_thresholds(dept)


def filing_rules(dept: str, settings: PenaltySettings) -> tuple[str, ...]:
    """Rules that enforce the filing limit for `dept`: the built-in one once a limit is set, and
    the 市场监管 plugin's own rule for the same limit."""
    rules = ("PEN-FILING-LATE",) if settings.filing_wd is not None else ()
    return rules + ((samr.RULE_FILING_LATE,) if samr.applies_to(dept) else ())


# ---------------------------------------------------------------------------------------------
# What the generator intends (read by truth.py)

@dataclass(frozen=True)
class Expectation:
    """A finding the suite must hold open while `since <= as_of < until` (until None = for good)."""

    rule_id: str
    subject_type: str
    subject_id: str
    dept: str
    since: datetime
    until: datetime | None = None
    note: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.rule_id, self.subject_type, self.subject_id, self.dept)

    def to_dict(self) -> dict:
        return {"rule_id": self.rule_id, "subject_type": self.subject_type, "subject_id": self.subject_id,
                "dept": self.dept, "since": self.since.isoformat(),
                "until": self.until.isoformat() if self.until else None, "note": self.note}


@dataclass
class CredentialPlan:
    number: str
    issuer: str
    level: str
    areas: tuple[str, ...]
    issued_on: date
    valid_to: date
    filed_on: date | None = None
    suspensions: list[tuple[date, date | None]] = field(default_factory=list)  # [start, end)
    ended_on: date | None = None
    ended_as: str | None = None

    @property
    def valid_from(self) -> date:
        return self.issued_on

    def usable_on(self, day: date, area: str) -> bool:
        """Usable for the whole of `day`: issued, in validity, not ended or suspended, filed if needed."""
        if not (self.issued_on <= day <= self.valid_to) or area not in self.areas:
            return False
        if self.ended_on is not None and self.ended_on <= day:
            return False
        if any(start <= day and (end is None or day < end) for start, end in self.suspensions):
            return False
        return self.level != "state_council" or (self.filed_on is not None and self.filed_on <= day)

    def live_on(self, day: date) -> bool:
        """Held on `day` (personnel: issued, not ended, not expired; a suspended one is held)."""
        return self.issued_on <= day <= self.valid_to and (self.ended_on is None or day < self.ended_on)


@dataclass
class OfficerPlan:
    officer_id: str
    name: str
    dept: str
    agency_id: str
    kind: str
    story: str
    registered_at: datetime
    area: str
    statuses: list[tuple[datetime, str]] = field(default_factory=list)
    credentials: list[CredentialPlan] = field(default_factory=list)
    training: dict[int, float] = field(default_factory=dict)

    def status_at(self, at: datetime) -> str:
        current = self.statuses[0][1]
        for since, status in self.statuses:
            if since <= at:
                current = status
        return current

    def usable_on(self, day: date) -> bool:
        """May act (on the plan's own reckoning) for the whole of `day`."""
        if self.kind != "officer" or self.registered_at.date() >= day:
            return False
        start, end = datetime.combine(day, time.min, CST), datetime.combine(day + timedelta(days=1), time.min, CST)
        if self.status_at(start) != "active" or any(start < t < end for t, _ in self.statuses):
            return False
        return any(c.usable_on(day, self.area) for c in self.credentials)


@dataclass
class ItemPlan:
    code: str
    dept: str
    name: str
    category: str
    area: str
    effective_from: date
    delegated: bool = False
    delegated_depts: tuple[str, ...] = ()
    evaluations: list[date] = field(default_factory=list)
    repealed_on: date | None = None
    standard_from: date | None = None
    tiers: tuple[tuple[str, str, float, float], ...] = ()   # (id, name, min, max)
    definition: ItemDef | None = None
    case_use: bool = True


@dataclass
class Simulation:
    config: CountyConfig
    county: County
    events: list[dict]
    expectations: list[Expectation]
    officers: list[OfficerPlan]
    items: list[ItemPlan]
    depts: list[str]
    start: datetime
    end: datetime

    @property
    def as_of(self) -> datetime:
        """The end of the simulated year: the default moment to judge it."""
        return self.end

    def counts(self) -> dict[str, int]:
        by_type: dict[str, int] = {}
        for env in self.events:
            by_type[env["type"]] = by_type.get(env["type"], 0) + 1
        return by_type

    def summary(self) -> str:
        c = self.counts()
        officers = sum(1 for o in self.officers if o.kind == "officer")
        cases = len({e["payload"]["case_id"] for e in self.events if e["type"].startswith("case.")})
        return (f"{self.county.name}（{self.config.region}）{self.config.year}年：{len(self.depts)}个部门、"
                f"{officers}名执法人员、{sum(1 for o in self.officers if o.kind == 'auxiliary')}名辅助人员、"
                f"{c.get('credential.issued', 0)}张执法证件、{c.get('item.published', 0)}个执法事项、"
                f"{c.get('standard.published', 0)}项裁量基准、{cases}件案件，共{len(self.events)}条事件；"
                f"注入违规{len(self.expectations)}处")


# ---------------------------------------------------------------------------------------------
# The builder

HOLDER_LEFT_REASONS = ("调离执法岗位", "退休", "辞职")
SUSPEND_REASONS = ("涉嫌违法违纪，接受调查期间暂扣", "执法过错责任追究期间暂扣", "年度考核待定，暂扣证件")
TRAINING_TOPICS = (
    ("《中华人民共和国行政处罚法》专题培训", 8), ("《行政执法监督条例》解读", 6),
    ("行政执法“三项制度”培训", 6), ("行政执法证据收集与案卷制作", 8), ("行政复议与行政诉讼案例研讨", 4),
    ("《中华人民共和国行政强制法》实务", 6), ("公共法律知识网上学习", 4), ("包容审慎监管与“四张清单”实务", 4),
    ("行政执法文书规范化培训", 6), ("习近平法治思想专题学习", 8),
)
ACT_TEXT = {
    "on_site": "现场检查经营场所，制作现场检查笔录，当事人签字确认",
    "inspection": "对当事人生产经营场所进行检查，拍照取证",
    "evidence": "调取进货台账、销售记录等书证，当事人核对无误后签字盖章",
    "inquiry": "询问当事人，制作询问笔录",
    "sampling": "依法抽取样品并封样，送检验机构检验",
    "seizure": "依法对涉案物品实施扣押，制作查封扣押清单，当事人签字确认",
}
SERVICE_TEXT = {
    "direct": "直接送达，当事人在送达回证上签名",
    "electronic": "经当事人书面同意，通过电子送达平台送达",
    "post": "通过中国邮政EMS邮寄送达，当事人签收",
}
SOURCES = {
    "inspection": "执法人员在日常监督检查中发现",
    "complaint": "群众通过12345热线投诉举报",
    "referral": "上级部门转办线索反映",
    "monitoring": "在线监测数据显示",
    "other": "执法人员巡查发现",
}
SHOP_WORDS = ("鑫", "盛", "兴", "隆", "福", "顺", "源", "华", "泰", "恒", "瑞", "丰", "佳", "宏", "昌", "达",
              "润", "祥", "和", "裕", "锦", "诚", "金", "永", "康", "安", "通", "利", "嘉", "新")
POLICE_UNITS = ("{county}公安局食品药品环境犯罪侦查大队", "{county}公安局经济犯罪侦查大队")


def _round_to(value: float, step: float) -> float:
    return float(round(value / step) * step)


def _step(low: float, high: float) -> float:
    span = max(high - low, 1.0)
    step = 1.0
    while step * 50 < span:
        step *= 10
    return step


def build_tiers(limit: tuple[float, float, bool], settings: RegistrySettings) -> list[tuple[str, str, float, float]]:
    """Five contiguous tiers lightest first, within the legal range (max-only: from the floor)."""
    legal_min, legal_max, max_only = limit
    if settings.min_tiers > len(TIER_IDS):
        raise GenerationError(f"预设要求至少 {settings.min_tiers} 个裁量阶次，模拟器只生成 {len(TIER_IDS)} 个")
    low = legal_max * settings.lightest_tier_floor_ratio if max_only else legal_min
    step = _step(low, legal_max)
    bounds = [low] + [_round_to(low + (legal_max - low) * s, step) for s in TIER_SPLITS[1:-1]] + [legal_max]
    for i in range(1, len(bounds)):
        bounds[i] = max(bounds[i], bounds[i - 1])
    return [(TIER_IDS[i], TIER_NAMES[i], float(bounds[i]), float(bounds[i + 1])) for i in range(len(TIER_IDS))]


@dataclass
class _Dept:
    spec: DeptSpec
    profile: DeptProfile
    code: str
    agency_id: str
    penalty: PenaltySettings
    thresholds: list[dict]
    officers: list[OfficerPlan] = field(default_factory=list)
    items: list[ItemPlan] = field(default_factory=list)
    windows: list[tuple[OfficerPlan, date, date]] = field(default_factory=list)  # officer unusable [from, to]
    doc_no: int = 0

    def next_doc(self) -> int:
        self.doc_no += 1
        return self.doc_no


@dataclass
class _Draft:
    """A case under construction; ids and document numbers are given once all cases are known."""

    dept: _Dept
    procedure: str
    events: list[tuple[str, datetime, dict]] = field(default_factory=list)
    expects: list[tuple[str, datetime, str]] = field(default_factory=list)  # (rule, since, note)
    last_on: dict[date, datetime] = field(default_factory=dict)  # latest event per day, so same-day steps keep order
    case_id: str = ""


class _Builder:
    def __init__(self, config: CountyConfig):
        unknown = set(config.breach_rates) - set(INJECTABLE_RULES)
        if unknown:
            raise GenerationError(f"模拟器不能注入这些规则：{sorted(unknown)}")
        if config.tag and not config.tag.isalnum():
            raise GenerationError("tag 只能包含字母和数字")
        self.cfg = config
        self.rng = random.Random(config.seed)
        self.fake = Faker("zh_CN")
        self.fake.seed_instance(config.seed)
        self.cal = WorkdayCalendar()
        self.county = county_for(config.region, self.fake)
        self.year = config.year
        self.personnel = personnel_settings(config.preset)
        self.registry = registry_settings(config.preset)
        self.pending: list[tuple[datetime, int, dict]] = []
        self.expectations: list[Expectation] = []
        self.depts: list[_Dept] = []
        self.names: set[str] = set()
        self.parties: set[str] = set()
        self._order = 0
        self._credential_seq = 0
        self.start = datetime(self.year, 1, 1, tzinfo=CST)
        self.end = datetime(self.year, 12, 31, 23, 59, 59, tzinfo=CST)

    # -- small helpers ---------------------------------------------------------------------------
    def id_part(self) -> str:
        return f"{self.cfg.tag}-" if self.cfg.tag else ""

    def workday(self, day: date) -> date:
        return day if self.cal.is_workday(day) else self.cal.add_workdays(day, 1)

    def workday_before(self, day: date) -> date:
        while not self.cal.is_workday(day):
            day -= timedelta(days=1)
        return day

    def add_wd(self, day: date, n: int) -> date:
        return self.workday(day) if n <= 0 else self.cal.add_workdays(day, n)

    def sub_wd(self, day: date, n: int) -> date:
        while n > 0:
            day -= timedelta(days=1)
            if self.cal.is_workday(day):
                n -= 1
        return day

    def rand_day(self, low: date, high: date) -> date:
        """A random working day in [low, high] (high moved back to a working day)."""
        if high < low:
            raise GenerationError(f"日期区间无效：{low}–{high}")
        for _ in range(50):
            day = self.workday(low + timedelta(days=self.rng.randint(0, (high - low).days)))
            if day <= high:
                return day
        return self.workday(low)

    def moment(self, day: date, after: datetime | None = None, start: tuple[int, int] = (8, 30),
               end: tuple[int, int] = (17, 30)) -> datetime:
        lo, hi = start[0] * 60 + start[1], end[0] * 60 + end[1]
        at = datetime.combine(day, time(0), CST) + timedelta(minutes=self.rng.randint(lo, hi))
        if after is not None and at <= after:
            at = after + timedelta(minutes=self.rng.randint(3, 40))
        return at

    def d(self, month: int, day: int, year_offset: int = 0) -> date:
        return date(self.year + year_offset, month, day)

    def emit(self, type_: str, at: datetime, dept: str, payload: dict) -> None:
        envelope = {"type": type_, "schema_version": 1, "occurred_at": at.isoformat(timespec="seconds"),
                    "dept": dept, "source": f"{dept}-system",
                    "payload": {k: v for k, v in payload.items() if v is not None}}
        self._order += 1
        self.pending.append((at, self._order, envelope))

    def expect(self, rule: str, subject_type: str, subject_id: str, dept: str, since: datetime,
               until: datetime | None = None, note: str = "") -> None:
        self.expectations.append(Expectation(rule, subject_type, subject_id, dept, since, until, note))

    def rate(self, rule: str) -> float:
        return float(self.cfg.breach_rates.get(rule, 0.0))

    def quota(self, rule: str, eligible: int) -> int:
        """How many of `eligible` subjects break `rule`."""
        share = self.rate(rule)
        if share <= 0 or eligible <= 0:
            return 0
        return min(eligible, max(self.cfg.min_breaches, round(share * eligible)))

    def unique_name(self) -> str:
        for _ in range(50):
            name = self.fake.name()
            if name not in self.names:
                self.names.add(name)
                return name
        return self.fake.name()

    def address(self) -> str:
        town = self.rng.choice(self.county.townships)[0]
        return f"{self.county.province}{self.county.city}{self.county.name}{town}{self.rng.choice(self.county.roads)}" \
               f"{self.rng.randint(1, 399)}号"

    def party(self, kind: str, industries: tuple[str, ...]) -> dict:
        for _ in range(50):
            if kind == "org":
                word = "".join(self.rng.sample(SHOP_WORDS, 2))
                suffix = self.rng.choice(("有限公司", "有限责任公司")) if self.rng.random() < 0.8 else "厂"
                name = f"{self.county.name}{word}{self.rng.choice(industries or ('商贸',))}{suffix}"
                pid = make_uscc(self.rng, self.county.region)
            else:
                male = self.rng.random() < 0.55
                name = self.fake.name_male() if male else self.fake.name_female()
                birth = date(self.rng.randint(1958, 2002), self.rng.randint(1, 12), self.rng.randint(1, 28))
                pid = make_resident_id(self.rng, self.county.region, birth, male)
            if pid not in self.parties and name not in self.parties:
                self.parties.update((pid, name))
                return {"type": kind, "id": pid, "name": name}
        raise GenerationError("无法生成不重复的当事人")

    # -- build ----------------------------------------------------------------------------------
    def build(self) -> Simulation:
        if not self.cfg.departments:
            raise GenerationError("至少需要一个部门")
        for spec in self.cfg.departments:
            if spec.short not in DEPARTMENTS:
                raise GenerationError(f"未知的部门 {spec.short}；可用：{'、'.join(DEPARTMENTS)}")
            code = dept_code(self.county.region, spec.short)
            penalty = penalty_settings(self.cfg.preset, code)
            agency = f"A{self.county.region}-{self.cfg.tag + '-' if self.cfg.tag else ''}{spec.short.upper()}"
            self.depts.append(_Dept(spec, DEPARTMENTS[spec.short], code, agency, penalty, crime_thresholds(code)))
        self.agencies()
        self.items()
        self.people()
        self.cases()
        ordered = sorted(self.pending, key=lambda x: (x[0], x[1]))
        events = []
        for position, (_, _, env) in enumerate(ordered):
            digest = hashlib.sha256(f"zhifa-simulator|{self.cfg.seed}|{self.cfg.tag}|{position}".encode()).digest()
            events.append({"event_id": str(uuid.UUID(bytes=digest[:16], version=4)), **env})
        officers = [o for dept in self.depts for o in dept.officers]
        items = [i for dept in self.depts for i in dept.items]
        self.expectations.sort(key=lambda e: (e.since, e.rule_id, e.subject_id))
        return Simulation(self.cfg, self.county, events, self.expectations, officers, items,
                          [dept.code for dept in self.depts], self.start, self.end)

    # -- agencies -------------------------------------------------------------------------------
    def title(self, template: str) -> str:
        return template.format(county=self.county.name, city=self.county.city)

    def agencies(self) -> None:
        first = self.workday(self.d(1, 2))
        for dept in self.depts:
            confirmed = self.rand_day(self.d(3, 1, -3), self.d(10, 31, -1))
            self.emit("agency.registered", self.moment(first, start=(8, 30), end=(9, 0)), dept.code, {
                "agency_id": dept.agency_id, "name": self.title(dept.profile.title), "kind": "statutory",
                "legal_basis": list(dept.profile.agency_basis), "entrusted_by": None,
                "confirmed_on": confirmed.isoformat(),
                "published_on": self.workday(confirmed + timedelta(days=self.rng.randint(3, 10))).isoformat()})
        chosen = self.rng.sample(self.depts, self.quota("PER-AGENCY-UNCONFIRMED", len(self.depts)))
        for dept in chosen:
            at = self.moment(self.rand_day(self.d(2, 10), self.d(4, 30)))
            agency_id = f"{dept.agency_id}-ZFDD"
            self.emit("agency.registered", at, dept.code, {
                "agency_id": agency_id, "name": self.title(dept.profile.unit_title), "kind": "authorised",
                "legal_basis": [f"{self.county.name}机构编制委员会关于设立执法大队的批复"]})
            self.expect("PER-AGENCY-UNCONFIRMED", "agency", agency_id, dept.code, at,
                        note="执法大队登记为授权组织，未经县政府确认公布")

    # -- registry -------------------------------------------------------------------------------
    def items(self) -> None:
        year_start = self.d(1, 1)
        plans: list[tuple[_Dept, ItemPlan]] = []
        for dept in self.depts:
            defs = dept.profile.items if dept.spec.items is None else dept.profile.items[:dept.spec.items]
            for item in defs:
                code = f"{self.cfg.tag + '-' if self.cfg.tag else ''}{dept.profile.short}-{item.suffix}"
                plan = ItemPlan(code, dept.code, item.name, item.category, dept.profile.area,
                                self.d(6, 1) if item.mid_year else year_start, definition=item)
                if item.delegated:
                    towns = self.rng.sample(self.county.townships, self.rng.randint(2, 3))
                    plan.delegated = True
                    plan.delegated_depts = tuple(sorted(self.county.township_dept(code_) for _, code_ in towns))
                dept.items.append(plan)
                plans.append((dept, plan))
        # which penalty items get no discretion standard (REG-STANDARD-MISSING)
        plain = [(d_, p) for d_, p in plans if p.category == "penalty" and not self._special(d_, p)]
        missing = {p.code for _, p in self.rng.sample(plain, self.quota("REG-STANDARD-MISSING", len(plain)))}
        delegated = [p for _, p in plans if p.delegated]
        unevaluated = {p.code for p in self.rng.sample(delegated, self.quota("REG-DELEGATED-NOT-EVALUATED",
                                                                                len(delegated)))}
        for dept, plan in plans:
            item = plan.definition
            published = self.moment(self.rand_day(self.d(5, 6), self.d(5, 20)) if item.mid_year
                                    else self.rand_day(self.d(1, 2), self.d(1, 8)))
            doc = f"{self.county.short}{dept.profile.abbr}发〔{self.year}〕{dept.next_doc()}号"
            self.emit("item.published", published, dept.code, {
                "item_code": plan.code, "name": plan.name, "category": plan.category,
                "legal_basis": [{"law": law, "article": article} for law, article in item.basis],
                "effective_from": plan.effective_from.isoformat(), "owning_dept": dept.code, "area": plan.area,
                "delegated_to_township": True if plan.delegated else None,
                "delegated_depts": list(plan.delegated_depts) or None, "document_no": doc})
            if plan.category == "penalty" and plan.code not in missing:
                self.standard(dept, plan, published)
            elif plan.code in missing:
                plan.case_use = False
                due = self.registry_due(plan.effective_from)
                self.expect("REG-STANDARD-MISSING", "item", plan.code, dept.code,
                            datetime.combine(due + timedelta(days=1), time.min, CST),
                            note=f"处罚事项未制定裁量基准（应于 {due} 前制定）")
            if plan.delegated:
                if plan.code in unevaluated:
                    deadline = date(self.year, *self.registry.delegated_evaluation_deadline)
                    self.expect("REG-DELEGATED-NOT-EVALUATED", "item", plan.code, dept.code,
                                datetime.combine(deadline + timedelta(days=1), time.min, CST),
                                datetime.combine(date(self.year + 1, *self.registry.delegated_evaluation_deadline)
                                                 + timedelta(days=1), time.min, CST),
                                note="赋权乡镇事项年度内未评估")
                else:
                    self.evaluation(dept, plan)
        self.item_changes(plans)
        self.leniency_lists()
        for dept in self.rng.sample(self.depts, self.quota("REG-NO-LEGAL-BASIS", len(self.depts))):
            code = f"{self.cfg.tag + '-' if self.cfg.tag else ''}{dept.profile.short}-qtjc-001"
            at = self.moment(self.rand_day(self.d(3, 1), self.d(9, 30)))
            start = at.date() + timedelta(days=self.rng.randint(1, 10))
            name = f"对{self.title(dept.profile.title)}职责范围内其他事项的行政检查"
            dept.items.append(ItemPlan(code, dept.code, name, "inspection", dept.profile.area, start, case_use=False))
            self.emit("item.published", at, dept.code, {
                "item_code": code, "name": name, "category": "inspection", "legal_basis": [],
                "effective_from": start.isoformat(), "owning_dept": dept.code, "area": dept.profile.area,
                "document_no": f"{self.county.short}{dept.profile.abbr}发〔{self.year}〕{dept.next_doc()}号"})
            self.expect("REG-NO-LEGAL-BASIS", "item", code, dept.code, datetime.combine(start, time.min, CST),
                        note="执法事项未载明执法依据")

    def _special(self, dept: _Dept, plan: ItemPlan) -> bool:
        """Items the cases need (crime thresholds, on-the-spot, large fines) keep their standard."""
        item = plan.definition
        crime = bool(thresholds_for(dept, plan))
        return crime or item.on_spot or item.mid_year or (item.limit is not None and item.limit[1] >= 200_000)

    def registry_due(self, since: date) -> date:
        if self.registry.standard_filing_deadline is None:
            return since
        due = date(since.year, *self.registry.standard_filing_deadline)
        return due if due >= since else date(since.year + 1, *self.registry.standard_filing_deadline)

    def standard(self, dept: _Dept, plan: ItemPlan, published: datetime) -> None:
        item = plan.definition
        tiers = build_tiers(item.limit, self.registry)
        if item.mid_year:
            start = self.d(7, 1)
            at = self.moment(self.rand_day(self.d(6, 16), self.d(6, 30)))
        else:
            start = self.d(1, 1)
            at = self.moment(self.rand_day(self.d(1, 9), self.d(1, 20)), after=published)
        plan.standard_from, plan.tiers = start, tuple(tiers)
        legal_min, legal_max, max_only = item.limit
        limit = {"kind": "amount", "max": legal_max, "max_only": max_only}
        if not max_only:
            limit["min"] = legal_min
        self.emit("standard.published", at, dept.code, {
            "item_code": plan.code, "effective_from": start.isoformat(),
            "standard_no": f"{self.county.short}{dept.profile.abbr}规〔{self.year}〕{dept.next_doc()}号",
            "filed_on": at.date().isoformat(), "legal_limit": limit,
            "tiers": [{"tier": tid, "name": name, "conditions": TIER_CONDITIONS[i], "amount": {"min": lo, "max": hi}}
                      for i, (tid, name, lo, hi) in enumerate(tiers)]})

    def evaluation(self, dept: _Dept, plan: ItemPlan) -> None:
        deadline = date(self.year, *self.registry.delegated_evaluation_deadline)
        day = self.rand_day(self.d(10, 8), deadline - timedelta(days=5))
        plan.evaluations.append(day)
        self.emit("item.evaluated", self.moment(day), dept.code, {
            "item_code": plan.code, "evaluated_on": day.isoformat(),
            "conclusion": self.rng.choice(("keep", "keep", "keep", "adjust")),
            "summary": "乡镇综合行政执法队承接能力满足要求，案件办理规范，建议继续赋权",
            "township_depts": list(plan.delegated_depts)})

    def item_changes(self, plans: list[tuple[_Dept, ItemPlan]]) -> None:
        """动态调整: one amendment per department, one repeal in the county."""
        for dept in self.depts:
            candidates = [p for d_, p in plans if d_ is dept and p.category == "penalty"]
            if not candidates:
                continue
            plan = self.rng.choice(candidates)
            law, article = plan.definition.basis[0]
            start = self.d(9, 1)
            self.emit("item.amended", self.moment(self.rand_day(self.d(8, 11), self.d(8, 22))), dept.code, {
                "item_code": plan.code, "effective_from": start.isoformat(),
                "legal_basis": [{"law": law, "article": article},
                                {"law": "《中华人民共和国行政处罚法》", "article": "第二十八条"}],
                "reason": "补充责令改正及没收违法所得的执法依据",
                "document_no": f"{self.county.short}{dept.profile.abbr}发〔{self.year}〕{dept.next_doc()}号"})
        licensing = [(d_, p) for d_, p in plans if p.category == "licensing"]
        if licensing:
            dept, plan = licensing[0]
            start = self.d(10, 1)
            plan.repealed_on = start
            self.emit("item.repealed", self.moment(self.rand_day(self.d(9, 15), self.d(9, 26))), dept.code, {
                "item_code": plan.code, "effective_from": start.isoformat(),
                "reason": "上位法修改，该许可事项取消，改为备案管理",
                "document_no": f"{self.county.short}{dept.profile.abbr}发〔{self.year}〕{dept.next_doc()}号"})

    def leniency_lists(self) -> None:
        for dept in self.depts:
            lenient = [p for p in dept.items if p.category == "penalty" and p.definition.limit[1] <= 100_000]
            if not lenient:
                continue
            at = self.moment(self.rand_day(self.d(3, 2), self.d(3, 20)))
            entries = [{"item_code": p.code, "conditions": "初次违法，危害后果轻微并及时改正的",
                        "basis": "《中华人民共和国行政处罚法》第三十三条第一款"}
                       for p in self.rng.sample(lenient, min(2, len(lenient)))]
            self.emit("leniency_list.published", at, dept.code, {
                "kind": "no_penalty", "effective_from": self.d(4, 1).isoformat(),
                "list_no": f"{self.county.short}{dept.profile.abbr}发〔{self.year}〕{dept.next_doc()}号",
                "title": f"{self.title(dept.profile.title)}轻微违法行为不予处罚清单（{self.year}年版）",
                "entries": entries})

    # -- personnel ------------------------------------------------------------------------------
    def credential_no(self, dept: _Dept, level: str) -> str:
        self._credential_seq += 1
        tag = self.cfg.tag.upper()
        if level == "state_council":
            return f"HJ{tag}{self.county.region}{self._credential_seq:06d}"
        return f"{self.county.abbr}{tag}{self.county.region}{self.depts.index(dept) + 1:02d}{self._credential_seq:04d}"

    def issuer(self, dept: _Dept, level: str) -> str:
        return dept.profile.state_council_issuer if level == "state_council" else f"{self.county.province}人民政府"

    def people(self) -> None:
        for dept in self.depts:
            self.staff(dept)
        self.personnel_breaches()
        for dept in self.depts:
            for officer in dept.officers:
                self.officer_events(dept, officer)

    def staff(self, dept: _Dept) -> None:
        n = dept.spec.officers
        stories: list[str] = []
        if n >= 4:
            stories += ["suspended_restored"] * max(1, round(0.04 * n)) + ["expired_renewed"] * max(1, round(0.03 * n))
        if n >= 6:
            stories += ["left"] * max(1, round(0.04 * n)) + ["new_hire"] * max(1, round(0.06 * n))
        if n >= 8:
            stories += ["inactive"] * max(1, round(0.03 * n)) + ["revoked"] * max(1, round(0.01 * n))
        stories = stories[:max(0, n - 3)]  # always keep three on the roster
        stories += ["roster"] * (n - len(stories))
        self.rng.shuffle(stories)
        jan = (self.workday(self.d(1, 2)), self.workday(self.d(1, 6)))
        for i, story in enumerate(stories, 1):
            registered = (self.moment(self.rand_day(self.d(3, 2), self.d(6, 20)))
                          if story == "new_hire" else self.moment(self.rand_day(*jan), start=(9, 0), end=(11, 30)))
            dept.officers.append(OfficerPlan(
                f"{self.county.region}-{dept.profile.short}-{self.id_part()}{i:04d}", self.unique_name(), dept.code,
                dept.agency_id, "officer", story, registered, dept.profile.area, [(registered, "active")]))
        for j in range(dept.spec.auxiliaries):
            registered = self.moment(self.rand_day(*jan), start=(9, 0), end=(11, 30))
            dept.officers.append(OfficerPlan(
                f"{self.county.region}-{dept.profile.short}-{self.id_part()}{9001 + j:04d}", self.unique_name(), dept.code,
                dept.agency_id, "auxiliary", "auxiliary", registered, dept.profile.area, [(registered, "active")]))
        for officer in dept.officers:
            self.plan_officer(dept, officer)

    def level_for(self, dept: _Dept) -> str:
        share = dept.profile.state_council_share
        return "state_council" if share and self.rng.random() < share else "provincial"

    def new_credential(self, dept: _Dept, level: str, issued_on: date, years: int = 6) -> CredentialPlan:
        valid_to = date(issued_on.year + years, issued_on.month, min(issued_on.day, 28)) - timedelta(days=1)
        cred = CredentialPlan(self.credential_no(dept, level), self.issuer(dept, level), level,
                              (dept.profile.area,), issued_on, valid_to)
        if level == "state_council":
            cred.filed_on = self.workday(issued_on + timedelta(days=self.rng.randint(4, 15)))
        return cred

    def plan_officer(self, dept: _Dept, o: OfficerPlan) -> None:
        if o.kind == "auxiliary":
            return
        story = o.story
        if story == "new_hire":
            issued = self.rand_day(o.registered_at.date() + timedelta(days=45), o.registered_at.date() + timedelta(days=80))
            o.credentials.append(self.new_credential(dept, self.level_for(dept), issued))
            return
        if story == "expired_renewed":
            expiry = self.rand_day(self.d(3, 2), self.d(6, 10))
            old_issue = date(expiry.year - 6, expiry.month, min(expiry.day, 28)) + timedelta(days=1)
            old = self.new_credential(dept, "provincial", old_issue)
            old.valid_to = expiry
            renewed = self.rand_day(expiry + timedelta(days=25), expiry + timedelta(days=80))
            o.credentials += [old, self.new_credential(dept, "provincial", renewed)]
            dept.windows.append((o, expiry + timedelta(days=1), renewed - timedelta(days=1)))
            return
        issued = self.rand_day(self.d(1, 10, -3), self.d(12, 20, -1))
        level = "provincial" if story == "suspended_restored" else self.level_for(dept)
        cred = self.new_credential(dept, level, issued)
        o.credentials.append(cred)
        if story == "suspended_restored":
            start = self.rand_day(self.d(3, 2), self.d(9, 20))
            end = self.rand_day(start + timedelta(days=21), start + timedelta(days=60))
            cred.suspensions.append((start, end))
            dept.windows.append((o, start, end - timedelta(days=1)))
        elif story == "left":
            day = self.rand_day(self.d(5, 6), self.d(10, 30))
            o.statuses.append((datetime.combine(day, time(10, 30), CST), "left"))
            cred.ended_on, cred.ended_as = day, "cancelled"
        elif story == "inactive":
            day = self.rand_day(self.d(7, 1), self.d(11, 28))
            o.statuses.append((datetime.combine(day, time(10, 30), CST), "inactive"))
            cred.suspensions.append((day, None))
        elif story == "revoked":
            day = self.rand_day(self.d(4, 1), self.d(10, 30))
            cred.ended_on, cred.ended_as = day, "revoked"

    def personnel_breaches(self) -> None:
        officers = [o for dept in self.depts for o in dept.officers]
        by_dept = {dept.code: dept for dept in self.depts}
        # PER-CRED-UNFILED: a newcomer's State Council credential never filed with the county
        capable = [o for o in officers if o.kind == "officer" and o.story in ("roster", "new_hire")
                   and by_dept[o.dept].profile.state_council_issuer]
        for o in self.rng.sample(capable, self.quota("PER-CRED-UNFILED", len(capable))):
            dept = by_dept[o.dept]
            o.story = "new_hire_unfiled"
            o.registered_at = self.moment(self.rand_day(self.d(3, 2), self.d(6, 20)))
            o.statuses = [(o.registered_at, "active")]
            issued = self.rand_day(o.registered_at.date() + timedelta(days=45), o.registered_at.date() + timedelta(days=80))
            cred = self.new_credential(dept, "state_council", issued)
            cred.filed_on = None
            o.credentials = [cred]
            self.expect("PER-CRED-UNFILED", "credential", cred.number, o.dept,
                        datetime.combine(issued, time.min, CST),
                        datetime.combine(cred.valid_to + timedelta(days=1), time.min, CST),
                        note=f"{o.name}持有的{cred.issuer}制发证件未向县司法局备案")
        # PER-CRED-HOLDER-INACTIVE: someone left and the credential was never cancelled
        leavers = [o for o in officers if o.story == "left"]
        for o in self.rng.sample(leavers, self.quota("PER-CRED-HOLDER-INACTIVE", len(leavers))):
            cred = o.credentials[0]
            cred.ended_on = cred.ended_as = None
            o.story = "left_uncancelled"
            self.expect("PER-CRED-HOLDER-INACTIVE", "credential", cred.number, o.dept, o.statuses[-1][0],
                        datetime.combine(cred.valid_to + timedelta(days=1), time.min, CST),
                        note=f"{o.name}离岗后执法证件未注销")
        # PER-AUX-CREDENTIAL: an auxiliary given an enforcement credential
        auxiliaries = [o for o in officers if o.kind == "auxiliary"]
        for o in self.rng.sample(auxiliaries, self.quota("PER-AUX-CREDENTIAL", len(auxiliaries))):
            dept = by_dept[o.dept]
            cred = self.new_credential(dept, "provincial", self.rand_day(self.d(2, 3), self.d(10, 30)))
            o.credentials.append(cred)
            o.story = "auxiliary_credential"
            self.expect("PER-AUX-CREDENTIAL", "credential", cred.number, o.dept,
                        datetime.combine(cred.issued_on, time.min, CST),
                        datetime.combine(cred.valid_to + timedelta(days=1), time.min, CST),
                        note=f"辅助人员{o.name}持有执法证件")
        # PER-TRAIN-HOURS: an officer on duty all year short of the yearly hours
        judged = [o for o in officers if self.owes_training(o)]
        short = {o.officer_id for o in self.rng.sample(judged, self.quota("PER-TRAIN-HOURS", len(judged)))}
        for o in officers:
            self.plan_training(o, o.officer_id in short)
            if o.officer_id in short:
                due = date(self.year, *map(int, self.personnel.training_due.split("-")))
                self.expect("PER-TRAIN-HOURS", "training_year", f"{o.officer_id}/{self.year}", o.dept,
                            datetime.combine(due + timedelta(days=1), time.min, CST),
                            datetime.combine(date(self.year + 1, due.month, due.day) + timedelta(days=1), time.min, CST),
                            note=f"{o.name}{self.year}年度培训仅{o.training[self.year]:g}学时")

    def owes_training(self, o: OfficerPlan) -> bool:
        """Judged for this year's hours at the end of the year (personnel: PER-TRAIN-HOURS)."""
        due = date(self.year, *map(int, self.personnel.training_due.split("-")))
        return (o.kind in self.personnel.training_kinds and o.status_at(self.end) == "active"
                and o.registered_at.date() <= due)

    def plan_training(self, o: OfficerPlan, short: bool) -> None:
        required = self.personnel.training_hours_per_year
        if short:
            target = self.rng.choice((4, 6, 8, 10, 12, 14, 16))
            target = min(target, max(required - 4, 1))
        elif o.story in ("new_hire", "new_hire_unfiled"):
            target = max(40, required)
        elif self.owes_training(o):
            target = required + self.rng.choice((0, 0, 4, 6, 8, 12))
        else:
            target = self.rng.choice((0, 4, 8, 12))
        o.training[self.year] = float(target)

    def officer_events(self, dept: _Dept, o: OfficerPlan) -> None:
        reg = o.registered_at
        self.emit("officer.registered", reg, dept.code, {
            "officer_id": o.officer_id, "name": o.name, "agency_id": o.agency_id, "kind": o.kind, "status": "active"})
        for cred in o.credentials:
            if cred.issued_on <= reg.date():
                at = reg + timedelta(minutes=self.rng.randint(2, 30))
            else:
                at = self.moment(cred.issued_on)
            self.emit("credential.issued", at, dept.code, {
                "officer_id": o.officer_id, "credential_no": cred.number, "issuer": cred.issuer,
                "issuer_level": cred.level, "areas": list(cred.areas), "regions": [self.county.region],
                "issued_on": cred.issued_on.isoformat(), "valid_from": cred.valid_from.isoformat(),
                "valid_to": cred.valid_to.isoformat()})
            if cred.filed_on is not None:
                filed_at = at + timedelta(minutes=self.rng.randint(1, 20)) if cred.filed_on <= reg.date() \
                    else self.moment(cred.filed_on)
                self.emit("credential.filed", filed_at, dept.code, {
                    "officer_id": o.officer_id, "credential_no": cred.number, "filed_on": cred.filed_on.isoformat(),
                    "filed_with": self.county.justice_bureau,
                    "filing_no": f"{self.county.short}司证备〔{cred.filed_on.year}〕{self.rng.randint(1, 90)}号"})
            for start, end in cred.suspensions:
                reason = "停用期间暂扣执法证件" if end is None else self.rng.choice(SUSPEND_REASONS)
                self.emit("credential.suspended", self.moment(start, start=(8, 40), end=(10, 0)), dept.code, {
                    "officer_id": o.officer_id, "credential_no": cred.number, "suspended_on": start.isoformat(),
                    "reason": reason})
                if end is not None:
                    self.emit("credential.restored", self.moment(end, start=(8, 40), end=(10, 0)), dept.code, {
                        "officer_id": o.officer_id, "credential_no": cred.number, "restored_on": end.isoformat(),
                        "reason": "调查结束，未发现违法违纪，恢复使用"})
            if cred.ended_on is not None:
                kind = "credential.cancelled" if cred.ended_as == "cancelled" else "credential.revoked"
                field_ = "cancelled_on" if cred.ended_as == "cancelled" else "revoked_on"
                reason = "调离执法岗位" if cred.ended_as == "cancelled" else "年度考核不合格，依法收回执法证件"
                self.emit(kind, self.moment(cred.ended_on, start=(8, 40), end=(10, 0)), dept.code, {
                    "officer_id": o.officer_id, "credential_no": cred.number, field_: cred.ended_on.isoformat(),
                    "reason": reason})
        for since, status in o.statuses[1:]:
            reason = self.rng.choice(HOLDER_LEFT_REASONS) if status == "left" else "长期病假，暂停执法工作"
            self.emit("officer.updated", since, dept.code, {"officer_id": o.officer_id, "status": status,
                                                            "reason": reason})
        self.training_events(dept, o)

    def training_events(self, dept: _Dept, o: OfficerPlan) -> None:
        hours = o.training.get(self.year, 0)
        if not hours:
            return
        lo = max(self.d(3, 1), o.registered_at.date() + timedelta(days=3))
        hi = self.d(11, 10)
        leave = next((t.date() for t, s in o.statuses[1:]), None)
        if leave is not None:
            hi = min(hi, leave - timedelta(days=1))
        if hi <= lo:
            return
        if o.story in ("new_hire", "new_hire_unfiled"):
            chunks = [("新任行政执法人员岗前培训", hours)]
        else:
            chunks, left = [], hours
            while left > 0:
                topic, size = self.rng.choice(TRAINING_TOPICS)
                size = min(size, left)
                chunks.append((topic, size))
                left -= size
        days = sorted(self.rand_day(lo, hi) for _ in chunks)
        for (topic, size), day in zip(chunks, days):
            organiser = self.county.justice_bureau if "法" in topic else self.title(dept.profile.title)
            self.emit("training.completed", self.moment(day, start=(16, 30), end=(18, 0)), dept.code, {
                "officer_id": o.officer_id, "completed_on": day.isoformat(), "hours": size, "topic": topic,
                "organiser": organiser})

    # -- cases ----------------------------------------------------------------------------------
    def usable(self, dept: _Dept, days: Iterable[date], exclude: Iterable[str] = ()) -> list[OfficerPlan]:
        days, skip = list(days), set(exclude)
        return [o for o in dept.officers if o.officer_id not in skip and all(o.usable_on(day) for day in days)]

    def team(self, dept: _Dept, days: Iterable[date], size: int = 2, exclude: Iterable[str] = ()) -> list[str]:
        pool = self.usable(dept, days, exclude)
        if len(pool) < size:
            raise _Retry(f"{dept.code} 在 {sorted(set(days))} 没有 {size} 名持有效证件的执法人员")
        return sorted(o.officer_id for o in self.rng.sample(pool, size))

    def cases(self) -> None:
        drafts: list[_Draft] = []
        slots = [(dept, i) for dept in self.depts for i in range(dept.spec.cases)]
        injections: dict[tuple[str, int], str] = {}
        for rule in CASE_RULES:
            eligible_all = [s for s in slots if self.case_eligible(rule, s[0])]
            free = [s for s in eligible_all if (s[0].code, s[1]) not in injections]
            for dept, i in self.rng.sample(free, min(len(free), self.quota(rule, len(eligible_all)))):
                injections[(dept.code, i)] = rule
        for dept, i in slots:
            drafts.append(self.attempt(lambda n, d_=dept, r=injections.get((dept.code, i)): self.normal_case(d_, r, n)))
        for dept in self.depts:
            for _ in range(dept.spec.on_spot):
                drafts.append(self.attempt(lambda n, d_=dept: self.on_spot_case(d_, n)))
        self.finalize(drafts)

    def attempt(self, make: Callable[[int], _Draft]) -> _Draft:
        state = self.rng.getstate()
        reasons = []
        for n in range(12):
            try:
                return make(n)
            except _Retry as exc:
                reasons.append(str(exc))
                self.rng.setstate(state)
                self.rng.random()
                state = self.rng.getstate()
        raise GenerationError("无法生成符合要求的案件：" + "；".join(reasons[-3:]))

    def case_eligible(self, rule: str, dept: _Dept) -> bool:
        penalty_items = [p for p in dept.items if p.category == "penalty" and p.case_use]
        if not penalty_items:
            return False
        if rule == "PEN-CRIME-NO-HANDOVER":
            return any(self.crime_measure(dept, p) for p in penalty_items)
        if rule == "PEN-FILING-LATE":
            return bool(filing_rules(dept.code, dept.penalty))
        if rule == "PEN-OFFICER-CREDENTIAL":
            return bool(dept.windows)
        if rule in ("PEN-HEARING-NOT-NOTIFIED", "PEN-LEGAL-REVIEW-MISSING"):
            return any(self.trigger_ranges(dept, p) for p in penalty_items)
        if rule in NONMAJOR_RULES:
            return any(p.tiers and p.tiers[0][2] < dept.penalty.major_fine_threshold for p in penalty_items)
        return True

    def crime_measure(self, dept: _Dept, plan: ItemPlan) -> dict | None:
        found = thresholds_for(dept, plan)
        return found[0] if found else None

    def trigger_ranges(self, dept: _Dept, plan: ItemPlan) -> list[tuple[str, int, float, float]]:
        """(party type, tier index, lo, hi): fines that give a hearing right but are not major."""
        s, out = dept.penalty, []
        if not plan.tiers:
            return out
        for kind in plan.definition.parties:
            limit = s.hearing_fine_org if kind == "org" else s.hearing_fine_person
            for i, (_, _, lo, hi) in enumerate(plan.tiers):
                a, b = max(lo, limit), min(hi, s.major_fine_threshold - 1)
                if a <= b:
                    out.append((kind, i, a, b))
        return out

    def pick_fine(self, lo: float, hi: float) -> float:
        step = _step(lo, hi) if hi - lo >= 100 else 1.0
        first, last = max(-(-lo // step) * step, step), (hi // step) * step  # a fine is never zero
        if first > last:
            return float(lo)
        return float(first + step * self.rng.randint(0, int((last - first) // step)))

    def items_for(self, dept: _Dept, day: date, rule: str | None) -> list[ItemPlan]:
        out = []
        for p in dept.items:
            if p.category != "penalty" or not p.case_use or not p.tiers:
                continue
            if p.effective_from >= day or (p.standard_from and p.standard_from >= day) or p.definition.on_spot:
                continue
            if rule == "PEN-CRIME-NO-HANDOVER" and not self.crime_measure(dept, p):
                continue
            if rule in ("PEN-HEARING-NOT-NOTIFIED", "PEN-LEGAL-REVIEW-MISSING") and not self.trigger_ranges(dept, p):
                continue
            if rule in NONMAJOR_RULES and p.tiers[0][2] >= dept.penalty.major_fine_threshold:
                continue
            out.append(p)
        return out

    def decision_plan(self, dept: _Dept, plan: ItemPlan, rule: str | None) -> dict:
        s, item, tiers = dept.penalty, plan.definition, plan.tiers
        party_type = self.rng.choice(item.parties)
        kinds, confiscation, tier_i = ["fine"], 0.0, None
        if rule in ("PEN-HEARING-NOT-NOTIFIED", "PEN-LEGAL-REVIEW-MISSING"):
            party_type, tier_i, lo, hi = self.rng.choice(self.trigger_ranges(dept, plan))
            fine = self.pick_fine(lo, hi)
        elif rule == "PEN-FINE-OUT-OF-TIER":
            tier_i = self.rng.randrange(len(tiers) - 1)
            lo, hi = tiers[tier_i][3], tiers[tier_i + 1][3]
            fine = self.pick_fine(lo + max(1.0, (hi - lo) * 0.1), hi)
            if fine <= lo:
                fine = hi
        else:
            nonmajor = rule in NONMAJOR_RULES
            choices = [i for i, t in enumerate(tiers) if not nonmajor or t[2] < s.major_fine_threshold]
            if not choices:
                raise _Retry("没有低于重大处罚标准的裁量阶次")
            weights = [(0.25, 0.3, 0.3, 0.1, 0.05)[i] for i in choices]
            tier_i = self.rng.choices(choices, weights)[0]
            lo, hi = tiers[tier_i][2], tiers[tier_i][3]
            if nonmajor:
                hi = min(hi, s.major_fine_threshold - 1)
            fine = self.pick_fine(lo, hi)
            roll = self.rng.random()
            if rule == "PEN-MAJOR-NOT-FILED" and fine < s.major_fine_threshold:
                reachable = [i for i, t in enumerate(tiers) if t[3] >= s.major_fine_threshold]
                if reachable:
                    tier_i = self.rng.choice(reachable)
                    fine = self.pick_fine(max(tiers[tier_i][2], s.major_fine_threshold), tiers[tier_i][3])
                else:
                    extra = [k for k in ("confiscation", "production_stopped", "licence_suspension") if k in s.major_kinds]
                    if not extra:
                        raise _Retry("没有可构成重大处罚的罚款或处罚种类")
                    kinds = ["fine", extra[0]]
                    confiscation = float(self.rng.randrange(5, 200) * 100) if extra[0] == "confiscation" else 0.0
            elif not nonmajor and roll < 0.12:
                kinds = ["fine", "confiscation"]
                confiscation = float(self.rng.randrange(5, 200) * 100)
            elif not nonmajor and rule is None and roll < 0.15 and dept.profile.short == "sthj":
                kinds = ["fine", "production_stopped"]
            elif rule is None and roll < 0.2 and fine <= 20_000:
                kinds, fine, tier_i = [], 0.0, None  # 不予处罚 (首违不罚)
        tier = tiers[tier_i] if tier_i is not None else None
        limit = s.hearing_fine_org if party_type == "org" else s.hearing_fine_person
        trigger = bool(set(kinds) & set(s.hearing_kinds)) or fine >= limit or confiscation >= limit
        major = (bool(set(kinds) & set(s.major_kinds)) or fine >= s.major_fine_threshold
                 or (confiscation > 0 and "confiscation" in s.major_kinds))
        if rule in NONMAJOR_RULES and major:
            raise _Retry("该注入需要非重大处罚")
        if rule == "PEN-MAJOR-NOT-FILED" and not major:
            raise _Retry("该注入需要重大处罚")
        return {"party_type": party_type, "kinds": kinds, "fine": fine, "confiscation": confiscation,
                "tier": tier, "trigger": trigger, "major": major}

    def normal_case(self, dept: _Dept, rule: str | None, attempt: int) -> _Draft:
        rng, s = self.rng, dept.penalty
        draft = _Draft(dept, "normal")
        breaching: OfficerPlan | None = None
        # -- when, and on what ------------------------------------------------------------------
        if rule == "PEN-OFFICER-CREDENTIAL":
            breaching, w_from, w_to = rng.choice(dept.windows)
            first_act = self.rand_day(max(w_from, self.d(1, 22)), w_to)
            filed_day = self.sub_wd(first_act, rng.randint(0, 1))
        else:
            latest = self.d(6, 30) if rule == "PEN-DECISION-OVERDUE" else self.d(9, 20)
            fitting = self.items_for(dept, self.d(12, 31), rule)
            if not fitting:
                raise GenerationError(f"{dept.code} 没有适合注入 {rule} 的执法事项")
            earliest = max(self.d(1, 21), min(max(p.effective_from, p.standard_from) for p in fitting) + timedelta(days=1))
            filed_day = self.rand_day(earliest, max(earliest + timedelta(days=30), latest - timedelta(days=20 * attempt)))
            first_act = self.add_wd(filed_day, rng.randint(0, 2))
        items = self.items_for(dept, filed_day, rule)
        if not items:
            raise _Retry(f"{filed_day} {dept.code} 没有可用的执法事项")
        plan = rng.choice(items)
        item = plan.definition
        decision = self.decision_plan(dept, plan, rule)
        party = self.party(decision["party_type"], item.industries)
        crime = self.crime_measure(dept, plan)
        handover = crime is not None and rule is None and rng.random() < 0.06
        measures = None
        if crime is not None:
            th = float(crime["threshold"])
            value = th * (rng.uniform(1.1, 3.0) if rule == "PEN-CRIME-NO-HANDOVER" or handover else rng.uniform(0.05, 0.6))
            measures = {crime["measure"]: round(value, 2) if th < 100 else float(round(value, -2))}
        flags = {}
        if rule == "PEN-COLLECTIVE-MISSING" or (rule is None and rng.random() < 0.04):
            flags["complex"] = True
        # -- schedule ---------------------------------------------------------------------------
        if rule == "PEN-FILING-LATE":
            discovered = self.sub_wd(filed_day, (s.filing_wd or 15) + rng.randint(4, 10))
        else:
            discovered = self.sub_wd(filed_day, rng.randint(1, max(1, min(8, (s.filing_wd or 15) - 2))))
        acts = [first_act]
        for _ in range(rng.choice((0, 1, 1, 2))):
            acts.append(self.add_wd(acts[-1], rng.randint(1, 4)))
        act_kinds = ["on_site"] + [rng.choice(("evidence", "inquiry", "inspection")) for _ in acts[1:]]
        testing = None
        if item.testing and rng.random() < 0.3:
            act_kinds[0] = "sampling"
            start = self.add_wd(acts[0], rng.randint(0, 1))
            testing = (start, self.add_wd(start, rng.randint(8, 15)))
        if rule == "PEN-AV-MISSING" or (item.seizure and rng.random() < 0.25):
            if len(acts) == 1:
                acts.append(self.add_wd(acts[-1], rng.randint(1, 3)))
                act_kinds.append("seizure")
            else:
                act_kinds[1] = "seizure"
        ready = max(acts[-1], testing[1] if testing else acts[-1])
        events_end = self.d(12, 30)
        if handover:
            transferred = self.add_wd(ready, rng.randint(2, 5))
            closed = self.add_wd(transferred, rng.randint(1, 3))
            schedule = {"transferred": transferred, "closed": closed, "archived": self.add_wd(closed, rng.randint(2, 8))}
            self.check_year(schedule, events_end)
            return self.emit_case(draft, dept, plan, party, rule, decision, flags, measures, discovered, filed_day,
                                  acts, act_kinds, testing, schedule, breaching)
        notice = self.add_wd(ready, rng.randint(2, 6))
        hearing_right = decision["trigger"] and rule != "PEN-HEARING-NOT-NOTIFIED"
        if rule == "PEN-HEARING-WINDOW" or (rule is None and not decision["trigger"] and rng.random() < 0.15):
            hearing_right = True
        hearing = None
        if hearing_right and rule != "PEN-HEARING-WINDOW" and (
                rule == "PEN-LEGAL-REVIEW-MISSING" or (decision["trigger"] and rule is None and rng.random() < 0.3)):
            requested = self.add_wd(notice, rng.randint(1, s.hearing_request_wd - 1))
            notified = self.add_wd(requested, rng.randint(1, 3))
            held = self.add_wd(notified, s.hearing_notice_wd + rng.randint(1, 3))
            hearing = (requested, notified, held)
        needs_review = decision["major"] or hearing is not None or bool(flags)
        review = None
        after = hearing[2] if hearing else notice
        if rule != "PEN-LEGAL-REVIEW-MISSING" and rule != "PEN-HEARING-WINDOW" and (needs_review or rng.random() < 0.5):
            review = self.add_wd(after, rng.randint(2, 4))
        needs_collective = decision["major"] or "complex" in flags
        discussion = None
        if needs_collective and rule != "PEN-COLLECTIVE-MISSING":
            discussion = self.add_wd(review or after, rng.randint(1, 2))
        schedule: dict[str, Any] = {"notice": notice, "hearing_right": hearing_right, "hearing": hearing,
                                    "review": review, "discussion": discussion}
        if rule == "PEN-HEARING-WINDOW":
            decided = self.add_wd(notice, rng.randint(1, s.hearing_request_wd - 2))
        else:
            earliest = self.add_wd(notice, s.hearing_request_wd + 1)
            for day, gap in ((hearing[2] if hearing else None, 2), (review, 1), (discussion, 1)):
                if day is not None:
                    earliest = max(earliest, self.add_wd(day, gap))
            decided = self.add_wd(earliest, rng.randint(0, 3))
        if rule == "PEN-DECISION-OVERDUE":
            if rng.random() < 0.5:
                schedule["decided"] = None
                self.check_year(schedule, events_end)
                return self.emit_case(draft, dept, plan, party, rule, decision, flags, measures, discovered, filed_day,
                                      acts, act_kinds, testing, schedule, breaching)
            limit = s.decision_days + self.excluded_days(testing, hearing)
            decided = max(decided, self.workday(filed_day + timedelta(days=limit + rng.randint(5, 30))))
        elif (decided - filed_day).days > s.decision_days - 5:
            raise _Retry("办案期限过长")
        schedule["decided"] = decided
        # -- after the decision -----------------------------------------------------------------
        if rule == "PEN-SERVICE-LATE":
            served = None if rng.random() < 0.4 else self.add_wd(decided, s.service_wd + rng.randint(2, 6))
        else:
            served = self.add_wd(decided, rng.choice((0, 0, 1, 2, 3)))
        schedule["served"] = served
        penalized = bool(decision["kinds"])
        if rule == "PEN-PUBLICATION-LATE":
            published = None if rng.random() < 0.4 else self.add_wd(decided, s.publication_penalty_wd + rng.randint(2, 6))
        else:
            wd = s.publication_penalty_wd if penalized else s.publication_other_wd
            published = self.add_wd(decided, rng.randint(1, max(1, wd - 3)))
        schedule["published"] = published
        major_filed = None
        if decision["major"]:
            if rule == "PEN-MAJOR-NOT-FILED":
                major_filed = None if rng.random() < 0.5 else \
                    self.workday(decided + timedelta(days=s.major_filing_days + rng.randint(3, 15)))
            else:
                major_filed = max(decided, self.workday_before(decided + timedelta(days=rng.randint(2, s.major_filing_days - 3))))
        schedule["major_filed"] = major_filed
        paid, paid_amount = None, 0.0
        if decision["fine"] > 0 and served is not None:
            if rule == "PEN-PAYMENT-OVERDUE":
                if rng.random() < 0.4:
                    paid = self.workday(served + timedelta(days=rng.randint(2, 8)))
                    paid_amount = float(round(decision["fine"] * rng.uniform(0.3, 0.7), -1))
            else:
                paid = max(self.add_wd(served, 1),
                           self.workday_before(served + timedelta(days=rng.randint(1, s.payment_days - 3))))
                paid_amount = decision["fine"]
        schedule["paid"], schedule["paid_amount"] = paid, paid_amount
        revoked = withdrawn = None
        if rule == "PEN-WITHDRAWAL-LATE" or (rule is None and penalized and rng.random() < 0.02):
            if published is None or served is None:
                raise _Retry("撤销决定需要已送达并公示")
            revoked = self.add_wd(max(published, paid or served), rng.randint(15, 30))
            if rule == "PEN-WITHDRAWAL-LATE":
                withdrawn = None if rng.random() < 0.4 else self.add_wd(revoked, s.withdrawal_wd + rng.randint(2, 6))
            else:
                withdrawn = self.add_wd(revoked, rng.randint(0, s.withdrawal_wd - 1))
        schedule["revoked"], schedule["withdrawn"] = revoked, withdrawn
        executed = closed = None
        fully_paid = decision["fine"] <= 0 or paid_amount >= decision["fine"]
        if served is not None and revoked is None and fully_paid and penalized:
            executed = self.add_wd(max(d_ for d_ in (served, paid, published, major_filed) if d_), rng.randint(0, 3))
            closed = self.add_wd(executed, rng.randint(1, 5))
        elif served is not None and not penalized and published is not None:
            closed = self.add_wd(max(served, published), rng.randint(1, 5))
        elif revoked is not None and withdrawn is not None:
            closed = self.add_wd(withdrawn, rng.randint(2, 5))
        schedule["executed"], schedule["closed"] = executed, closed
        schedule["archived"] = self.add_wd(closed, rng.randint(2, 10)) if closed else None
        self.check_year(schedule, events_end)
        return self.emit_case(draft, dept, plan, party, rule, decision, flags, measures, discovered, filed_day,
                              acts, act_kinds, testing, schedule, breaching)

    @staticmethod
    def excluded_days(testing: tuple[date, date] | None, hearing: tuple[date, date, date] | None) -> int:
        """Calendar days that do not count toward the decision limit (testing; hearing request to hearing)."""
        days: set[date] = set()
        spans = ([(testing[0], testing[1])] if testing else []) + ([(hearing[0], hearing[2])] if hearing else [])
        for start, end in spans:
            days.update(start + timedelta(days=i) for i in range((end - start).days))
        return len(days)

    def check_year(self, schedule: dict, end: date) -> None:
        """Obligations fall inside the year; execution, closing and archiving may fall after it (dropped)."""
        for key in ("notice", "review", "discussion", "decided", "served", "published", "major_filed", "paid",
                    "revoked", "withdrawn", "transferred"):
            day = schedule.get(key)
            if isinstance(day, date) and day > end:
                raise _Retry(f"{key} 落在 {day}，超出模拟年度")
        hearing = schedule.get("hearing")
        if hearing and hearing[2] > end:
            raise _Retry("听证超出模拟年度")
        for key in ("executed", "closed", "archived"):
            day = schedule.get(key)
            if isinstance(day, date) and day > end:
                for later in ("executed", "closed", "archived")[("executed", "closed", "archived").index(key):]:
                    schedule[later] = None
                break

    def emit_case(self, draft: _Draft, dept: _Dept, plan: ItemPlan, party: dict, rule: str | None, decision: dict,
                  flags: dict, measures: dict | None, discovered: date, filed_day: date, acts: list[date],
                  act_kinds: list[str], testing: tuple[date, date] | None, schedule: dict,
                  breaching: OfficerPlan | None) -> _Draft:
        rng, s, item = self.rng, dept.penalty, plan.definition
        decided = schedule.get("decided")
        team_days = list(acts) + ([decided] if decided else [])
        exclude = [breaching.officer_id] if breaching else []
        team = self.team(dept, team_days, 2, exclude)
        source_kind = rng.choice(("inspection", "inspection", "complaint", "referral",
                                  "monitoring" if dept.profile.short == "sthj" else "inspection"))
        discovered_at = self.moment(discovered)
        summary = f"{SOURCES[source_kind]}{party['name']}涉嫌{item.act}"

        def add(type_: str, day: date, payload: dict, start=(8, 30), end=(17, 30)) -> datetime:
            at = self.moment(day, draft.last_on.get(day), start, end)
            draft.events.append((type_, at, payload))
            draft.last_on[day] = at
            return at

        filed_at = add("case.filed", filed_day, {
            "item_code": plan.code, "procedure": "normal", "source_kind": source_kind,
            "discovered_at": discovered_at.isoformat(timespec="seconds"), "summary": summary, "party": party,
            "officers": team, "measures": measures, **flags})
        for rid in (filing_rules(dept.code, s) if rule == "PEN-FILING-LATE" else ()):
            draft.expects.append((rid, filed_at, f"发现线索后超过 {s.filing_wd} 个工作日才立案"))
        location = self.address()
        for day, kind in zip(acts, act_kinds):
            officers, auxiliaries = list(team), None
            if rule == "PEN-OFFICER-CREDENTIAL" and day == acts[0]:
                officers = sorted([breaching.officer_id, team[0]])
            if rule == "PEN-OFFICERS-MIN" and day == acts[-1]:
                officers = [team[0]]
                aux = [o.officer_id for o in dept.officers if o.kind == "auxiliary"]
                auxiliaries = aux[:1] or None
            av = kind in s.av_mandatory_kinds or kind == "on_site" or rng.random() < 0.5
            if rule == "PEN-AV-MISSING" and kind == "seizure":
                av = False
            at = add("case.investigated", day, {
                "act_kind": kind, "officers": officers, "auxiliaries": auxiliaries, "av_recorded": av,
                "av_ref": f"AV-{day:%Y%m%d}-{rng.randint(1, 9999):04d}" if av else None,
                "text": ACT_TEXT[kind], "location": location,
                "measures": measures if day == acts[0] and measures else None})
            if rule == "PEN-OFFICER-CREDENTIAL" and day == acts[0]:
                draft.expects.append((rule, at, f"{breaching.name}在证件暂扣或过期期间参与执法"))
            if rule == "PEN-OFFICERS-MIN" and day == acts[-1]:
                draft.expects.append((rule, at, "调查取证仅一名执法人员"))
            if rule == "PEN-AV-MISSING" and kind == "seizure":
                draft.expects.append((rule, at, "扣押未进行全程音像记录"))
        if testing:
            add("case.testing_started", testing[0], {"kind": "testing",
                                                     "institution": f"{self.county.city}产品质量检验检测中心"})
            add("case.testing_completed", testing[1], {"report_ref": f"JC{testing[1]:%Y%m%d}{rng.randint(1, 999):03d}"})
        if "transferred" in schedule:
            add("case.transferred_to_police", schedule["transferred"], {
                "handover_id": None, "police_unit": rng.choice(POLICE_UNITS).format(county=self.county.name),
                "suspected_crime": f"涉嫌{crime_name(dept, plan)}",
                "text": "案件涉嫌犯罪，经负责人批准移送公安机关，同时抄送人民检察院"})
            self.tail(draft, schedule, add, "transferred")
            return draft
        notice = schedule.get("notice")
        if notice:
            kinds = decision["kinds"]
            add("case.notified", notice, {
                "hearing_right": bool(schedule["hearing_right"]),
                "proposed_kinds": kinds or None, "proposed_fine": decision["fine"] or None, "method": "direct",
                "text": "告知当事人拟作出的行政处罚内容及事实、理由、依据，并告知其享有陈述、申辩" +
                        ("、要求听证" if schedule["hearing_right"] else "") + "的权利"})
        hearing = schedule.get("hearing")
        if hearing:
            requested, notified, held = hearing
            add("case.hearing_requested", requested, {"text": "当事人书面申请听证"})
            hearing_at = datetime.combine(held, time(9, 30), CST)
            add("case.hearing_notified", notified, {"hearing_at": hearing_at.isoformat(timespec="seconds"),
                                                    "place": f"{self.title(dept.profile.title)}听证室"})
            add("case.hearing_held", held, {"outcome": "held", "officers": [team[1]], "av_recorded": True,
                                            "av_ref": f"AV-{held:%Y%m%d}-TZ", "text": "听证主持人主持听证，当事人到场陈述申辩"},
                start=(9, 30), end=(11, 30))
        if schedule.get("review"):
            add("case.legal_reviewed", schedule["review"], {
                "passed": True, "reviewer": f"{self.fake.name()}（法制审核员）",
                "opinion": "主体合法，事实清楚，证据确凿，适用依据正确，程序合法，裁量适当"})
        if schedule.get("discussion"):
            add("case.collectively_discussed", schedule["discussion"], {
                "participants": [self.fake.name() for _ in range(rng.randint(4, 6))],
                "conclusion": "经集体讨论，同意承办机构的处理意见"})
        decided = schedule.get("decided")
        if decided is None:
            if rule == "PEN-DECISION-OVERDUE":
                due = filed_day + timedelta(days=s.decision_days + self.excluded_days(testing, hearing) + 1)
                draft.expects.append((rule, datetime.combine(due, time.min, CST), "立案后逾期未作出处理决定"))
            return draft
        tier = decision["tier"]
        kinds, fine = decision["kinds"], decision["fine"]
        law, article = item.basis[0]
        if kinds:
            text = f"依据{law}{article}之规定，决定对当事人作出行政处罚：" + \
                   (f"罚款人民币{fine:,.0f}元" if fine else "警告") + \
                   (f"，没收违法所得人民币{decision['confiscation']:,.0f}元" if decision["confiscation"] else "")
        else:
            text = "当事人初次违法且危害后果轻微并及时改正，依据《中华人民共和国行政处罚法》第三十三条第一款，决定不予行政处罚"
        decided_at = add("case.decided", decided, {
            "decision_no": "", "kinds": kinds, "fine_amount": fine if fine else None,
            "confiscation_amount": decision["confiscation"] or None, "tier": tier[1] if tier else None,
            "item_code": plan.code, "party": party, "act_code": item.act_code, "procedure": "normal",
            "officers": team, "text": text})
        notes = {
            "PEN-HEARING-NOT-NOTIFIED": "达到听证标准但告知书未告知听证权利",
            "PEN-LEGAL-REVIEW-MISSING": "经听证后未经法制审核即作出决定",
            "PEN-COLLECTIVE-MISSING": "复杂案件未经集体讨论",
            "PEN-HEARING-WINDOW": "听证申请期限届满前作出决定",
            "PEN-FINE-OUT-OF-TIER": "罚款超出所适用裁量阶次的幅度",
            "PEN-CRIME-NO-HANDOVER": "达到刑事追诉标准仅作行政处罚（以罚代刑）",
        }
        if rule in notes:
            draft.expects.append((rule, decided_at, notes[rule]))
        if rule == "PEN-DECISION-OVERDUE":
            due = filed_day + timedelta(days=s.decision_days + self.excluded_days(testing, hearing) + 1)
            draft.expects.append((rule, datetime.combine(due, time.min, CST), "超过办案期限才作出处罚决定"))
        served = schedule.get("served")
        if served:
            method = rng.choice(("direct", "direct", "direct", "electronic", "post"))
            served_at = add("case.served", served, {"method": method, "text": SERVICE_TEXT[method]})
            if method == "post":
                draft.events[-1][2]["served_at"] = served_at.isoformat(timespec="seconds")
        if rule == "PEN-SERVICE-LATE":
            due = self.add_wd(decided, s.service_wd) + timedelta(days=1)
            draft.expects.append((rule, datetime.combine(due, time.min, CST), "处罚决定书超过 7 个工作日送达"))
        for key, type_, payload in (
            ("major_filed", "case.major_penalty_filed", {"filing_no": "", "filed_with": self.county.justice_bureau}),
            ("published", "case.published", {"url": None, "platform": "国家企业信用信息公示系统"
                                             if party["type"] == "org" else f"{self.county.name}人民政府门户网站"}),
        ):
            day = schedule.get(key)
            if day:
                add(type_, day, payload)
        if rule == "PEN-PUBLICATION-LATE":
            due = self.add_wd(decided, s.publication_penalty_wd) + timedelta(days=1)
            draft.expects.append((rule, datetime.combine(due, time.min, CST), "处罚决定超过 7 个工作日公示"))
        if rule == "PEN-MAJOR-NOT-FILED":
            due = decided + timedelta(days=s.major_filing_days + 1)
            draft.expects.append((rule, datetime.combine(due, time.min, CST), "重大行政处罚决定未按期报司法局备案"))
        if schedule.get("paid"):
            add("case.paid", schedule["paid"], {"amount": schedule["paid_amount"],
                                                "receipt_no": f"FS{self.county.region}{rng.randint(10**8, 10**9 - 1)}"})
        if rule == "PEN-PAYMENT-OVERDUE":
            due = served + timedelta(days=s.payment_days + 1)
            draft.expects.append((rule, datetime.combine(due, time.min, CST), "罚款逾期未缴清"))
        if schedule.get("revoked"):
            add("case.decision_revoked", schedule["revoked"], {
                "by": "reconsideration", "reason": "行政复议机关认为事实认定不清，决定撤销原处罚决定"})
            if schedule.get("withdrawn"):
                add("case.publication_withdrawn", schedule["withdrawn"], {"reason": "原处罚决定已被依法撤销"})
            if rule == "PEN-WITHDRAWAL-LATE":
                due = self.add_wd(schedule["revoked"], s.withdrawal_wd) + timedelta(days=1)
                draft.expects.append((rule, datetime.combine(due, time.min, CST), "撤销的处罚决定未按期撤下公示"))
        self.tail(draft, schedule, add, "decided")
        return draft

    def tail(self, draft: _Draft, schedule: dict, add, stage: str) -> None:
        if schedule.get("executed"):
            add("case.executed", schedule["executed"], {"method": "voluntary", "text": "当事人已自觉履行处罚决定"})
        if schedule.get("closed"):
            reason = {"transferred": "transferred"}.get(stage) or (
                "revoked" if schedule.get("revoked") else "executed" if schedule.get("executed") else "no_penalty")
            add("case.closed", schedule["closed"], {"reason": reason, "text": "报请负责人批准结案"})
        if schedule.get("archived") and schedule.get("closed"):
            add("case.archived", schedule["archived"], {"archive_no": ""})

    def on_spot_case(self, dept: _Dept, attempt: int) -> _Draft:
        candidates = [p for p in dept.items if p.category == "penalty" and p.definition.on_spot and p.case_use]
        if not candidates:
            candidates = [p for p in dept.items if p.category == "penalty" and p.case_use
                          and "person" in p.definition.parties]
        if not candidates:
            raise GenerationError(f"{dept.code} 没有适合当场处罚的事项")
        plan = self.rng.choice(candidates)
        day = self.rand_day(max(self.d(1, 21), plan.effective_from + timedelta(days=1)), self.d(12, 18))
        team = self.team(dept, [day])
        party = self.party("person", plan.definition.industries)
        draft = _Draft(dept, "simple")
        at = self.moment(day, start=(9, 0), end=(16, 0))
        draft.events.append(("case.decided_on_spot", at, {
            "decision_no": "", "kinds": ["warning"], "item_code": plan.code, "party": party,
            "act_code": plan.definition.act_code, "officers": team, "av_recorded": True,
            "av_ref": f"AV-{day:%Y%m%d}-{self.rng.randint(1, 9999):04d}",
            "text": f"当事人{plan.definition.act}，情节轻微，当场予以警告并责令立即改正"}))
        closed = at + timedelta(minutes=self.rng.randint(30, 120))
        draft.events.append(("case.closed", closed, {"reason": "executed", "text": "当场处罚决定已履行"}))
        archived = self.add_wd(day, self.rng.randint(1, 5))
        if archived <= self.d(12, 31):
            draft.events.append(("case.archived", self.moment(archived, closed if archived == day else None),
                                 {"archive_no": ""}))
        return draft

    def finalize(self, drafts: list[_Draft]) -> None:
        """Number cases and documents in time order per department, then emit everything."""
        filing_seq: dict[str, int] = {}
        decision_seq: dict[str, int] = {}
        on_spot_seq: dict[str, int] = {}
        archive_seq: dict[str, int] = {}
        major_seq = 0
        for draft in sorted(drafts, key=lambda d_: (d_.events[0][1], d_.dept.code)):
            dept = draft.dept
            prefix = f"{self.county.region}-{dept.profile.short}-{self.id_part()}{self.year}"
            if draft.procedure == "simple":
                on_spot_seq[dept.code] = on_spot_seq.get(dept.code, 0) + 1
                case_id = f"{prefix}-D{on_spot_seq[dept.code]:04d}"
            else:
                filing_seq[dept.code] = filing_seq.get(dept.code, 0) + 1
                case_id = f"{prefix}-{filing_seq[dept.code]:04d}"
            for _, _, payload in draft.events:
                payload["case_id"] = case_id
            for rule, since, note in draft.expects:
                self.expect(rule, "case", case_id, dept.code, since, note=note)
            draft.case_id = case_id
        label = {d_.code: f"{self.county.short}{d_.profile.abbr}" for d_ in self.depts}
        for type_, at, payload, draft in sorted(((t, a, p, d_) for d_ in drafts for t, a, p in d_.events),
                                                key=lambda x: (x[1], x[0], x[2]["case_id"])):
            code = draft.dept.code
            if type_ == "case.filed":
                payload["case_no"] = f"{label[code]}立〔{self.year}〕{int(payload['case_id'][-4:])}号"
            elif type_ == "case.decided":
                decision_seq[code] = decision_seq.get(code, 0) + 1
                payload["decision_no"] = f"{label[code]}罚〔{self.year}〕{decision_seq[code]}号"
            elif type_ == "case.decided_on_spot":
                payload["decision_no"] = f"{label[code]}当罚〔{self.year}〕{int(payload['case_id'][-4:])}号"
            elif type_ == "case.major_penalty_filed":
                major_seq += 1
                payload["filing_no"] = f"{self.county.short}司备〔{self.year}〕{major_seq}号"
            elif type_ == "case.archived":
                archive_seq[code] = archive_seq.get(code, 0) + 1
                payload["archive_no"] = f"{label[code]}档〔{self.year}〕{archive_seq[code]:04d}"
            self.emit(type_, at, code, payload)


class _Retry(Exception):
    """This random draw cannot satisfy the case's constraints; draw again."""


def thresholds_for(dept: _Dept, plan: ItemPlan) -> list[dict]:
    """The department's crime thresholds that apply to the item (by the legal basis it cites)."""
    basis = plan.definition.basis if plan.definition is not None else ()
    return [t for t in dept.thresholds if (t.get("bases") or t.get("item_codes"))
            and threshold_applies(t, plan.code, basis)]


def crime_name(dept: _Dept, plan: ItemPlan) -> str:
    found = thresholds_for(dept, plan)
    name = found[0]["name"] if found else "犯罪"
    return name.split("（")[0]


def simulate(config: CountyConfig) -> Simulation:
    """One simulated county year (pure; deterministic in `config`)."""
    return _Builder(config).build()
