"""A synthetic city for dispatch simulation, pure: technicians and a day of work orders.

:func:`generate_city` builds, from a seed, a plausible Shanghai service day for
the reference bundle (``examples/field-service``): districts (regions with
codes and centres), technicians with Chinese names, skills, levels 1-5, shifts,
home positions in their district, ratings, on-time rates and handling times,
and work orders arriving through one day with a morning and an evening peak,
with Chinese titles and fault descriptions per category (some of them leaks and
burst pipes, which the bundle's triage marks urgent) and customers of every
tier. The same seed always gives the same city.

Records are runtime dicts, as the rules engine takes them: geo values are
``{"lat", "lng"}`` dicts, ``skills`` a list, datetimes timezone-aware, and
references resolved as the platform hands them to rules: the order's customer
a nested ``{"name", "tier"}`` record, regions ``{"code", "name"}``. The CSV form
(:func:`write_city`, :func:`read_technicians`, :func:`read_orders`) is flat:
lists joined with ``|``, nested values as ``<field>_<sub>`` columns
(``location_lat``/``location_lng``, ``customer_name``/``customer_tier``,
``region_code``/``region_name``). Reading it back gives the same
records; a malformed file raises :class:`CityDataError` naming the file and line.
"""

from __future__ import annotations

import csv
import difflib
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import DispatchflowError
from .geo import haversine_km

#: People's Square, Shanghai (lat, lng).
SHANGHAI = (31.23, 121.47)
#: Timezone of generated timestamps and of naive ones read from CSV.
DEFAULT_TZ = "Asia/Shanghai"
#: The generated day: a Tuesday that is no public holiday.
DEFAULT_DAY = date(2026, 3, 10)
#: Separator of list values (``skills``) in CSV cells.
LIST_SEPARATOR = "|"
#: Time of day whose shift roster fills the ``on_duty`` column.
DUTY_SNAPSHOT = time(10, 0)

ORDERS_CSV, TECHNICIANS_CSV = "orders.csv", "technicians.csv"


class CityDataError(DispatchflowError):
    """A city CSV file cannot be read: missing columns, a bad value, an unreadable file."""


# ------------------------------------------------------------------ the city's vocabulary

#: Shanghai districts: code, name, centre (lat, lng), relative demand, spread (km).
DISTRICTS: tuple[tuple[str, str, float, float, float, float], ...] = (
    ("HP", "黄浦区", 31.2317, 121.4846, 1.0, 1.8),
    ("XH", "徐汇区", 31.1885, 121.4365, 1.3, 2.5),
    ("CN", "长宁区", 31.2204, 121.4241, 0.9, 2.2),
    ("JA", "静安区", 31.2488, 121.4595, 1.1, 2.2),
    ("PT", "普陀区", 31.2496, 121.3973, 1.0, 2.5),
    ("HK", "虹口区", 31.2646, 121.5051, 0.8, 2.0),
    ("YP", "杨浦区", 31.2595, 121.5260, 1.0, 2.5),
    ("PD", "浦东新区", 31.2216, 121.5447, 2.4, 5.0),
    ("MH", "闵行区", 31.1128, 121.3817, 1.6, 4.5),
    ("BS", "宝山区", 31.4055, 121.4891, 1.1, 4.5),
    ("JD", "嘉定区", 31.3747, 121.2655, 0.8, 4.5),
    ("SJ", "松江区", 31.0320, 121.2277, 0.9, 4.5),
    ("QP", "青浦区", 31.1497, 121.1240, 0.6, 4.5),
    ("FX", "奉贤区", 30.9180, 121.4740, 0.6, 4.5),
)

CATEGORIES = ("aircon", "water_heater", "plumbing", "electrical", "appliance", "elevator",
              "hvac", "other")
#: Share of the day's orders per category.
CATEGORY_WEIGHTS = (0.22, 0.12, 0.20, 0.12, 0.17, 0.04, 0.06, 0.07)
#: Lowest technician level that takes a skill (mirrors the bundle's skill_level table).
SKILL_MIN_LEVEL = {"elevator": 4, "hvac": 3}

#: (title, description, priority or None for the usual mix) per category.
ORDER_TEMPLATES: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    "aircon": (
        ("空调不制冷", "开机后出风不凉，室外机运转声音正常。", None),
        ("空调漏水", "室内机一直往下滴水，墙面和地板已经打湿。", "P2"),
        ("空调异响", "运行时室内机有咔咔声，夜里很明显。", None),
        ("空调显示E4故障码", "开机几分钟后自动停机，面板显示E4。", None),
        ("空调加氟清洗", "制冷效果变差，想加氟并清洗滤网。", "P4"),
    ),
    "water_heater": (
        ("热水器不出热水", "燃气热水器打火失败，只有冷水。", "P2"),
        ("热水器漏水", "热水器底部进水接口在漏水。", None),
        ("电热水器跳闸", "一开热水器家里就跳闸。", "P2"),
        ("热水器水温忽冷忽热", "洗澡时水温不稳定，调温无效。", None),
    ),
    "plumbing": (
        ("卫生间水管爆裂漏水", "卫生间墙内水管爆裂，水流到客厅，已关闭总阀。", None),
        ("楼上跑水渗到天花板", "楼上跑水，客厅天花板在往下滴水。", None),
        ("厨房下水道堵塞", "水槽排水很慢，已经用过疏通剂无效。", None),
        ("马桶堵塞", "马桶冲水后水位上涨，无法排下。", "P2"),
        ("水龙头关不紧", "厨房水龙头关不紧，一直在滴水。", "P4"),
        ("地漏返臭味", "卫生间地漏有异味，想更换防臭地漏。", "P4"),
    ),
    "electrical": (
        ("家里跳闸无法合闸", "总闸合上就跳，全屋停电。", "P2"),
        ("插座冒火花", "厨房插座插电器时冒火花，有焦味。", "P2"),
        ("客厅灯不亮", "换了灯泡还是不亮，怀疑线路问题。", None),
        ("开关面板更换", "卧室开关面板松动，需要更换。", "P4"),
    ),
    "appliance": (
        ("洗衣机不脱水", "脱水时报错，衣服湿漉漉的。", None),
        ("冰箱不制冷", "冷藏室温度很高，食物快放坏了。", "P2"),
        ("油烟机噪音大", "油烟机运转噪音很大，吸力变小。", None),
        ("洗碗机漏水", "洗碗机运行时底部漏水。", None),
        ("燃气灶打不着火", "左边灶头打火几次都点不着。", None),
    ),
    "elevator": (
        ("电梯困人", "3号楼电梯停在两层之间，有人被困，物业已安抚。", "P1"),
        ("电梯门无法关闭", "1号梯门反复开关，无法运行。", "P2"),
        ("电梯运行异响", "电梯上下行时有摩擦声。", None),
        ("电梯年度保养", "按合同进行年度例行保养。", "P4"),
    ),
    "hvac": (
        ("中央空调不制冷", "办公区中央空调出风不凉。", "P2"),
        ("新风系统异响", "新风机运转时有啸叫声。", None),
        ("地暖不热", "地暖开了一天，地面还是凉的。", None),
        ("中央空调冷凝水管漏水", "吊顶冷凝水管漏水，天花板有水渍。", None),
    ),
    "other": (
        ("门锁坏了打不开", "入户门锁芯卡住，钥匙转不动。", "P2"),
        ("窗户密封条更换", "窗户漏风，想更换密封条。", "P4"),
        ("墙面渗水发霉", "卧室外墙一侧墙面渗水发霉。", None),
        ("晾衣架安装", "新买的升降晾衣架需要安装。", "P4"),
    ),
}
#: The usual priority mix (P2, P3, P4) of orders whose template sets none.
PRIORITY_MIX = (("P2", 0.2), ("P3", 0.6), ("P4", 0.2))

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余"
    "杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶"
    "贺顾毛郝龚邵万钱严武戴孔汤"
)
GIVEN_CHARS = (
    "建国伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆旭宁龙林阳亮成峰晨海文东志永"
    "春兵振德利新红玉丽芳敏静燕霞婷"
)
ROADS = ("人民路", "中山北路", "南京西路", "淮海中路", "肇嘉浜路", "延安西路", "长寿路", "四平路",
         "张杨路", "世纪大道", "虹桥路", "漕溪北路", "曹杨路", "共和新路", "沪太路", "莘庄路",
         "嘉松北路", "人民北路", "华夏西路", "东方路")
#: Shifts ("HH:MM-HH:MM"; None = off today) and their shares of the workforce.
SHIFTS = (("08:00-17:00", 0.25), ("09:00-18:00", 0.2), ("11:00-20:00", 0.2),
          ("13:00-22:00", 0.22), ("22:00-08:00", 0.06), (None, 0.07))
TIERS = (("VIP", 0.05), ("gold", 0.15), ("normal", 0.80))
CHANNELS = (("phone", 0.35), ("wechat", 0.35), ("web", 0.2), ("api", 0.1))
LEVELS = ((1, 0.2), (2, 0.3), (3, 0.25), (4, 0.15), (5, 0.1))
#: Share of orders that repeat a repair of the last 30 days (triage makes them urgent).
REPEAT_SHARE = 0.04
#: Arrival peaks of the day: (share, mean hour, standard deviation in hours); the
#: rest of the orders arrive evenly over the 24 hours.
ARRIVAL_PEAKS = ((0.45, 9.5, 1.3), (0.40, 19.0, 1.5))


@dataclass(frozen=True)
class City:
    """A generated city: ``regions``, ``technicians`` and ``orders`` as runtime records.

    Orders are sorted by ``created_at``; ``day`` is the simulated day.
    """

    seed: int
    day: date
    regions: tuple[dict[str, Any], ...]
    technicians: tuple[dict[str, Any], ...]
    orders: tuple[dict[str, Any], ...]


def generate_city(seed: int, technicians: int = 200, orders: int = 1000,
                  center: tuple[float, float] = SHANGHAI, radius_km: float = 25.0, *,
                  day: date = DEFAULT_DAY, tz: str = DEFAULT_TZ) -> City:
    """A seeded synthetic city of ``technicians`` and one ``day`` of ``orders``.

    Districts whose centre lies within ``radius_km`` of ``center`` become the
    regions (with another ``center`` than Shanghai's, eight compass sectors
    around it do); every position lies within ``radius_km`` (km) of ``center``.
    Raises ValueError for negative counts or a radius that is not positive.
    """
    if technicians < 0 or orders < 0:
        raise ValueError("technicians and orders must be 0 or more")
    if not radius_km > 0:
        raise ValueError("radius_km must be positive (kilometres)")
    rng = random.Random(seed)
    zone = ZoneInfo(tz)
    regions = _regions(center, radius_km)
    weights = [r["_weight"] for r in regions]
    techs = [_technician(rng, i, rng.choices(regions, weights)[0], regions, center, radius_km,
                         day, zone) for i in range(technicians)]
    times = sorted(_arrival(rng, day, zone) for _ in range(orders))
    work = [_order(rng, i, at, rng.choices(regions, weights)[0], regions, center, radius_km)
            for i, at in enumerate(times)]
    public = tuple({k: v for k, v in r.items() if not k.startswith("_")} for r in regions)
    return City(seed, day, public, tuple(techs), tuple(work))


def _regions(center: tuple[float, float], radius_km: float) -> list[dict[str, Any]]:
    found = [{"code": code, "name": name, "center": {"lat": lat, "lng": lng},
              "_weight": weight, "_spread": spread}
             for code, name, lat, lng, weight, spread in DISTRICTS
             if _km(center, (lat, lng)) <= radius_km]
    if len(found) >= 3:
        return found
    sectors = ("北", "东北", "东", "东南", "南", "西南", "西", "西北")
    out = [{"code": "C", "name": "中心区", "center": _point(center, 0.0, 0.0),
            "_weight": 2.0, "_spread": radius_km / 6}]
    for k, name in enumerate(sectors):
        angle = k * math.pi / 4
        d = radius_km * 0.55
        out.append({"code": f"S{k + 1}", "name": f"{name}区",
                    "center": _point(center, d * math.cos(angle), d * math.sin(angle)),
                    "_weight": 1.0, "_spread": radius_km / 5})
    return out


def _technician(rng: random.Random, i: int, home: dict[str, Any],
                regions: Sequence[dict[str, Any]], center: tuple[float, float],
                radius_km: float, day: date, zone: ZoneInfo) -> dict[str, Any]:
    location = _near(rng, home, center, radius_km)
    level = _pick(rng, LEVELS)
    skills: list[str] = []
    for _ in range(rng.choice((1, 2, 2, 3, 3))):
        for _try in range(10):
            skill = rng.choices(CATEGORIES, CATEGORY_WEIGHTS)[0]
            if skill not in skills and level >= SKILL_MIN_LEVEL.get(skill, 1):
                skills.append(skill)
                break
    if not skills:
        skills.append("other")
    new = rng.random() < 0.1
    shift = _pick(rng, SHIFTS)
    snapshot = datetime.combine(day, DUTY_SNAPSHOT, zone)
    experience = rng.randint(0, 30) if new else rng.randint(50, 400) * level
    return {
        "id": f"T{i + 1:04d}",
        "name": _person(rng),
        "phone": _mobile(rng),
        "region": _ref(_region_of(location, regions)),
        "location": location,
        "skills": skills,
        "level": level,
        "shift": shift,
        "on_duty": on_shift(shift, snapshot),
        "open_tasks": 0,
        "rating_30d": None if new else round(min(1.0, rng.betavariate(18, 1.6)), 2),
        "on_time_rate": None if new else round(min(1.0, rng.betavariate(12, 1.5)), 2),
        "avg_handling_minutes": round(rng.uniform(35, 80) * (1.15 if new else 1.0), 1),
        "completed_count": experience,
        "rejected_count": rng.randint(0, max(1, experience // 40)),
        "expired_count": rng.randint(0, max(1, experience // 60)),
        "consecutive_anomalies": rng.choices((0, 1, 2, 3), (0.8, 0.12, 0.05, 0.03))[0],
    }


def _order(rng: random.Random, i: int, at: datetime, home: dict[str, Any],
           regions: Sequence[dict[str, Any]], center: tuple[float, float],
           radius_km: float) -> dict[str, Any]:
    location = _near(rng, home, center, radius_km)
    region = _region_of(location, regions)
    category = rng.choices(CATEGORIES, CATEGORY_WEIGHTS)[0]
    title, description, priority = rng.choice(ORDER_TEMPLATES[category])
    tier = _pick(rng, TIERS)
    surname = rng.choice(SURNAMES)
    name = f"{surname}{rng.choice(('先生', '女士'))}"
    if category in ("elevator", "hvac"):
        name = f"{rng.choice(ROADS)[:2]}{rng.choice(('大厦', '花园', '广场', '苑'))}物业"
    last_repair = None
    if rng.random() < REPEAT_SHARE:
        last_repair = at - timedelta(days=rng.randint(2, 28), hours=rng.randint(0, 8))
    return {
        "id": f"WO{i + 1:05d}",
        "created_at": at,
        "title": title,
        "description": description,
        "category": category,
        "priority": priority or _pick(rng, PRIORITY_MIX),
        "status": "new",
        "channel": _pick(rng, CHANNELS),
        "customer": {"name": name, "tier": tier},
        "region": _ref(region),
        "address": f"{region['name']}{rng.choice(ROADS)}{rng.randint(1, 2000)}号",
        "location": location,
        "required_level": 1,
        "urgent": False,
        "repeat_repair": False,
        "last_repair_at": last_repair,
        "contact_phone": _mobile(rng),
    }


def _arrival(rng: random.Random, day: date, zone: ZoneInfo) -> datetime:
    """A creation time on ``day``: one of the peaks, or evenly over the day (to the second)."""
    u = rng.random()
    hours = None
    for share, mean, sd in ARRIVAL_PEAKS:
        if u < share:
            hours = rng.gauss(mean, sd)
            break
        u -= share
    if hours is None or not 0 <= hours < 24:
        hours = rng.uniform(0, 24)
    return datetime.combine(day, time(0), zone) + timedelta(seconds=int(hours * 3600))


def on_shift(shift: str | None, at: datetime) -> bool:
    """Whether ``at`` (its wall-clock time) lies in ``shift`` ("HH:MM-HH:MM", may cross midnight).

    None or an empty shift (no shift today) is never on.
    """
    window = parse_shift(shift)
    if window is None:
        return False
    start, end = window
    minute = at.hour * 60 + at.minute
    return start <= minute < end if start <= end else (minute >= start or minute < end)


def parse_shift(shift: str | None) -> tuple[int, int] | None:
    """``"08:00-17:00"`` -> (480, 1020) minutes after midnight; "" or None -> None.

    Raises ValueError for anything else.
    """
    if not shift:
        return None
    try:
        start, end = shift.split("-")
        out = []
        for part in (start, end):
            hh, mm = part.strip().split(":")
            minute = int(hh) * 60 + int(mm)
            if not 0 <= minute <= 24 * 60 or not 0 <= int(mm) < 60:
                raise ValueError
            out.append(minute)
    except ValueError:
        raise ValueError(f"not a shift: {shift!r} (write e.g. 08:00-17:00, or leave it "
                         "empty for a day off)") from None
    return out[0], out[1]


def _region_of(point: dict[str, float], regions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The district ``point`` falls in: the one with the nearest centre."""
    return min(regions, key=lambda r: _km((point["lat"], point["lng"]),
                                          (r["center"]["lat"], r["center"]["lng"])))


def _ref(region: dict[str, Any]) -> dict[str, Any]:
    """A region as a reference field holds it: the resolved record's code and name."""
    return {"code": region["code"], "name": region["name"]}


def _pick(rng: random.Random, options: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([o for o, _ in options], [w for _, w in options])[0]


def _person(rng: random.Random) -> str:
    given = "".join(rng.choice(GIVEN_CHARS) for _ in range(rng.choice((1, 2, 2))))
    return rng.choice(SURNAMES) + given


def _mobile(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"


def _near(rng: random.Random, region: dict[str, Any], center: tuple[float, float],
          radius_km: float) -> dict[str, float]:
    """A point around the region's centre (normal, ``_spread`` km), inside the city disc."""
    c = region["center"]
    for _ in range(20):
        north, east = rng.gauss(0, region["_spread"]), rng.gauss(0, region["_spread"])
        p = _point((c["lat"], c["lng"]), north, east)
        if _km(center, (p["lat"], p["lng"])) <= radius_km:
            return p
    return _point(center, 0.0, 0.0)


def _point(origin: tuple[float, float], north_km: float, east_km: float) -> dict[str, float]:
    lat = origin[0] + north_km / 111.195
    lng = origin[1] + east_km / (111.195 * math.cos(math.radians(origin[0])))
    return {"lat": round(lat, 6), "lng": round(lng, 6)}


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    return haversine_km(a[0], a[1], b[0], b[1])


# ------------------------------------------------------------------ CSV

_Kind = str  # "str" | "int" | "float" | "bool" | "list" | "datetime"

#: Technician CSV columns and their kinds, in file order.
TECHNICIAN_COLUMNS: tuple[tuple[str, _Kind], ...] = (
    ("id", "str"), ("name", "str"), ("phone", "str"), ("region_code", "str"),
    ("region_name", "str"),
    ("location_lat", "float"), ("location_lng", "float"), ("skills", "list"),
    ("level", "int"), ("shift", "str"), ("on_duty", "bool"), ("open_tasks", "int"),
    ("rating_30d", "float"), ("on_time_rate", "float"), ("avg_handling_minutes", "float"),
    ("completed_count", "int"), ("rejected_count", "int"), ("expired_count", "int"),
    ("consecutive_anomalies", "int"),
)
#: Optional technician columns the simulation reads when present.
TECHNICIAN_EXTRA: tuple[tuple[str, _Kind], ...] = (
    ("accept_prob", "float"), ("response_minutes", "float"))
TECHNICIAN_REQUIRED = ("id", "location_lat", "location_lng", "skills", "level", "on_duty")

#: Work-order CSV columns and their kinds, in file order.
ORDER_COLUMNS: tuple[tuple[str, _Kind], ...] = (
    ("id", "str"), ("created_at", "datetime"), ("title", "str"), ("description", "str"),
    ("category", "str"), ("priority", "str"), ("channel", "str"), ("customer_name", "str"),
    ("customer_tier", "str"), ("region_code", "str"), ("region_name", "str"),
    ("address", "str"),
    ("location_lat", "float"), ("location_lng", "float"), ("required_level", "int"),
    ("urgent", "bool"), ("repeat_repair", "bool"), ("last_repair_at", "datetime"),
    ("status", "str"), ("contact_phone", "str"),
)
ORDER_REQUIRED = ("id", "created_at", "category", "location_lat", "location_lng")

_TRUE = {"true", "1", "yes", "y", "是", "t"}
_FALSE = {"false", "0", "no", "n", "否", "f"}


def write_city(city: City, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``orders.csv`` and ``technicians.csv`` (UTF-8) into ``out_dir`` (created).

    Returns the two paths (orders, technicians).
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    orders, techs = folder / ORDERS_CSV, folder / TECHNICIANS_CSV
    write_orders_csv(orders, city.orders)
    write_technicians_csv(techs, city.technicians)
    return orders, techs


def write_technicians_csv(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Technician records as flat CSV rows (see the module docs)."""
    _write(path, TECHNICIAN_COLUMNS, (_flatten(r) for r in records))


def write_orders_csv(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Work-order records as flat CSV rows (see the module docs)."""
    _write(path, ORDER_COLUMNS, (_flatten(r) for r in records))


#: Nested fields and the sub-fields their flat ``<field>_<sub>`` columns hold.
NESTED = {"location": ("lat", "lng"), "customer": ("name", "tier"), "region": ("code", "name")}


def _flatten(record: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in record.items() if k not in NESTED}
    for name, subs in NESTED.items():
        value = record.get(name)
        if isinstance(value, dict):
            for sub in subs:
                flat[f"{name}_{sub}"] = value.get(sub)
        elif value is not None:  # a bare reference (a region code)
            flat[f"{name}_{subs[0]}"] = value
    return flat


def _write(path: str | Path, columns: Sequence[tuple[str, _Kind]],
           rows: Iterable[dict[str, Any]]) -> None:
    names = [name for name, _ in columns]
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        for row in rows:
            writer.writerow([_cell(row.get(name)) for name in names])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return LIST_SEPARATOR.join(str(v) for v in value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def read_technicians(path: str | Path, tz: str = DEFAULT_TZ) -> list[dict[str, Any]]:
    """Technician records from a CSV file written by :func:`write_technicians_csv`.

    Columns other than the known ones are kept as text (empty cells as None).
    Raises :class:`CityDataError` (file and line) for a missing required column
    (:data:`TECHNICIAN_REQUIRED`), a bad value or an unreadable file.
    """
    rows = _read(path, TECHNICIAN_COLUMNS + TECHNICIAN_EXTRA, TECHNICIAN_REQUIRED, tz)
    out = []
    for line, row in rows:
        record = _nest(row)
        shift = record.get("shift")
        if shift:
            try:
                parse_shift(shift)
            except ValueError as exc:
                raise CityDataError(f"column 'shift': {exc}", file=str(path), line=line) \
                    from None
        out.append(record)
    return out


def read_orders(path: str | Path, tz: str = DEFAULT_TZ) -> list[dict[str, Any]]:
    """Work-order records from a CSV file written by :func:`write_orders_csv`.

    ``customer_name``/``customer_tier`` become a nested ``customer`` record and
    naive datetimes are taken in ``tz``. Raises :class:`CityDataError` (file and
    line) for a missing required column (:data:`ORDER_REQUIRED`), a bad value or
    an unreadable file.
    """
    return [_nest(row) for _line, row in _read(path, ORDER_COLUMNS, ORDER_REQUIRED, tz)]


def _nest(row: dict[str, Any]) -> dict[str, Any]:
    """Flat ``<field>_<sub>`` columns back into nested records (:data:`NESTED`).

    A location needs both coordinates; a reference whose columns are all empty
    is None; a bare ``region`` column (a code) becomes ``{"code": ...}``.
    """
    for name, subs in NESTED.items():
        columns = [f"{name}_{sub}" for sub in subs]
        if not any(c in row for c in columns):
            if isinstance(row.get(name), str):
                row[name] = {subs[0]: row[name]}
            continue
        values = {sub: row.pop(c, None) for sub, c in zip(subs, columns, strict=True)}
        if name == "location":
            row[name] = None if None in values.values() else values
        else:
            row[name] = values if any(v is not None for v in values.values()) else None
    return row


def _read(path: str | Path, columns: Sequence[tuple[str, _Kind]], required: Sequence[str],
          tz: str) -> list[tuple[int, dict[str, Any]]]:
    """``(line, row)`` pairs with converted values; see :func:`read_orders`."""
    file = str(path)
    kinds = dict(columns)
    zone = ZoneInfo(tz)
    reader: Any = None
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise CityDataError("the file is empty; expected a header row with "
                                    f"{', '.join(required)}", file=file, line=1)
            header = [h.strip() for h in header]
            _check_header(file, header, required)
            out = []
            for cells in reader:
                line = reader.line_num
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) != len(header):
                    raise CityDataError(f"{len(cells)} cells where the header has "
                                        f"{len(header)}", file=file, line=line,
                                        hint="quote cells that contain commas")
                row: dict[str, Any] = {}
                for name, text in zip(header, cells, strict=True):
                    row[name] = _convert(kinds.get(name, "str"), text.strip(), name, file,
                                         line, zone)
                for name in required:
                    if row.get(name) is None:
                        raise CityDataError(f"column '{name}' is empty; it is required",
                                            file=file, line=line)
                out.append((line, row))
            return out
    except OSError as exc:
        raise CityDataError(f"cannot read the file: {exc.strerror or exc}", file=file) from exc
    except UnicodeDecodeError as exc:
        raise CityDataError(f"not UTF-8 text ({exc.reason})", file=file,
                            hint="save the file as UTF-8 CSV") from exc
    except csv.Error as exc:
        raise CityDataError(f"malformed CSV: {exc}", file=file,
                            line=reader.line_num if reader is not None else None) from exc


def _check_header(file: str, header: list[str], required: Sequence[str]) -> None:
    missing = [name for name in required if name not in header]
    if not missing:
        return
    unknown = [h for h in header if h not in required]
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, unknown, n=1, cutoff=0.6)
        if close:
            hints.append(f"'{close[0]}' -> '{name}'?")
    plural = "s" if len(missing) > 1 else ""
    raise CityDataError(f"missing column{plural} {', '.join(missing)} (the header has: "
                        f"{', '.join(header) or 'nothing'})", file=file, line=1,
                        hint=("did you mean " + ", ".join(hints)) if hints else
                        f"required columns: {', '.join(required)}")


def _convert(kind: _Kind, text: str, name: str, file: str, line: int, zone: ZoneInfo) -> Any:
    if text == "":
        return [] if kind == "list" else None
    try:
        return _CONVERTERS[kind](text, zone)
    except ValueError:
        raise CityDataError(f"column '{name}': {text!r} is not {_KIND_NAMES[kind]}",
                            file=file, line=line) from None


def _bool(text: str, _zone: ZoneInfo) -> bool:
    low = text.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(text)


def _datetime(text: str, zone: ZoneInfo) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def _float(text: str, _zone: ZoneInfo) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


_CONVERTERS: dict[_Kind, Callable[[str, ZoneInfo], Any]] = {
    "str": lambda t, _z: t,
    "int": lambda t, _z: int(t),
    "float": _float,
    "bool": _bool,
    "list": lambda t, _z: [p.strip() for p in t.split(LIST_SEPARATOR) if p.strip()],
    "datetime": _datetime,
}
_KIND_NAMES = {"str": "text", "int": "a whole number", "float": "a number",
               "bool": "true or false", "list": "a list", "datetime":
               "an ISO date-time (e.g. 2026-03-10T09:30:00+08:00)"}
