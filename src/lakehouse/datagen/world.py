"""The simulated world: stores, warehouses, the catalog, people, CRM members, campaigns.

Built once, before the day loop, from one seeded stream. Day numbers are relative to the
first delivery day (day 0); timestamps are seconds since day 0 00:00 Asia/Shanghai.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from .formats import DAY, Clock, ean13
from .rng import Picker, chance, pick_weighted

# province (address spelling), province (JD short), city, region, districts, weight
CITIES: tuple[tuple[str, str, str, str, tuple[str, ...], float], ...] = (
    ("上海", "上海", "上海市", "华东", ("浦东新区", "徐汇区", "静安区", "闵行区"), 10),
    ("北京", "北京", "北京市", "华北", ("朝阳区", "海淀区", "东城区", "丰台区"), 9),
    ("广东省", "广东", "广州市", "华南", ("天河区", "越秀区", "番禺区"), 7),
    ("广东省", "广东", "深圳市", "华南", ("南山区", "福田区", "宝安区"), 7),
    ("浙江省", "浙江", "杭州市", "华东", ("西湖区", "滨江区", "余杭区"), 7),
    ("浙江省", "浙江", "宁波市", "华东", ("鄞州区", "海曙区"), 3),
    ("江苏省", "江苏", "南京市", "华东", ("玄武区", "鼓楼区", "江宁区"), 5),
    ("江苏省", "江苏", "苏州市", "华东", ("姑苏区", "吴中区", "相城区"), 5),
    ("四川省", "四川", "成都市", "西南", ("锦江区", "武侯区", "青羊区"), 6),
    ("重庆", "重庆", "重庆市", "西南", ("渝中区", "江北区", "南岸区"), 4),
    ("湖北省", "湖北", "武汉市", "华中", ("武昌区", "江汉区", "洪山区"), 5),
    ("湖南省", "湖南", "长沙市", "华中", ("岳麓区", "芙蓉区", "天心区"), 4),
    ("陕西省", "陕西", "西安市", "西北", ("雁塔区", "碑林区", "未央区"), 4),
    ("天津", "天津", "天津市", "华北", ("和平区", "南开区", "河西区"), 3),
    ("山东省", "山东", "青岛市", "华东", ("市南区", "崂山区"), 3),
    ("山东省", "山东", "济南市", "华东", ("历下区", "市中区"), 2),
    ("福建省", "福建", "厦门市", "华东", ("思明区", "湖里区"), 2),
    ("河南省", "河南", "郑州市", "华中", ("金水区", "二七区"), 3),
    ("辽宁省", "辽宁", "沈阳市", "东北", ("和平区", "沈河区"), 2),
    ("辽宁省", "辽宁", "大连市", "东北", ("中山区", "沙河口区"), 2),
    ("黑龙江省", "黑龙江", "哈尔滨市", "东北", ("南岗区", "道里区"), 2),
    ("云南省", "云南", "昆明市", "西南", ("五华区", "盘龙区"), 2),
    ("安徽省", "安徽", "合肥市", "华东", ("蜀山区", "包河区"), 2),
    ("甘肃省", "甘肃", "兰州市", "西北", ("城关区", "七里河区"), 1),
)
REGIONS = ("华东", "华南", "华北", "华中", "西南", "西北", "东北")
STREETS = (
    "文三路",
    "中山路",
    "人民路",
    "解放路",
    "建设路",
    "和平路",
    "长江路",
    "黄河路",
    "南京路",
    "淮海路",
    "学院路",
    "科技路",
    "滨江大道",
    "世纪大道",
    "东风路",
    "新华路",
)
MALLS = (
    "万达广场",
    "银泰城",
    "万象城",
    "大悦城",
    "龙湖天街",
    "吾悦广场",
    "来福士",
    "印象城",
    "步行街",
    "凯德广场",
    "太古里",
    "百货",
)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"
GIVEN_M = "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林"
GIVEN_F = "芳娜敏静丽艳娟霞燕玲桂丹萍红婷雪琳晶颖慧佳倩瑶琪怡欣梦蕾"
NICK_WORDS = (
    "小鱼儿",
    "橘子汽水",
    "爱吃草莓",
    "风中的猫",
    "晴天",
    "大白兔",
    "咸鱼翻身",
    "南风知我意",
    "阿狸",
    "奶茶续命",
    "一只柠檬",
    "夏天的风",
    "不吃香菜",
    "星河",
    "蓝莓酱",
    "慢慢来",
)
NICK_DECOR = ("🌸", "🐟", "✨", "🍓", "☀", "♥", "ツ", "の", "Ω", "ｼ")
LATIN = (
    "lily",
    "tom",
    "amy",
    "jack",
    "coco",
    "vivian",
    "kevin",
    "sunny",
    "echo",
    "leo",
    "mia",
    "zoe",
    "ray",
    "ivy",
    "max",
    "luna",
)
EMAIL_DOMAINS = (
    ("qq.com", 5),
    ("163.com", 3),
    ("126.com", 1),
    ("gmail.com", 1),
    ("outlook.com", 1),
    ("sina.com", 1),
    ("foxmail.com", 1),
)
MOBILE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "173",
    "176",
    "177",
    "180",
    "181",
    "182",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "198",
    "199",
)

# category_l1 -> [(category_l2, [category_l3...], price range yuan, brands)]
CATALOG: dict[str, list[tuple[str, tuple[str, ...], tuple[int, int], tuple[str, ...]]]] = {
    "服装": [
        ("女装", ("连衣裙", "T恤", "衬衫", "针织衫", "半身裙"), (99, 699), ("拾光", "木野")),
        ("男装", ("T恤", "衬衫", "夹克", "休闲裤"), (99, 799), ("拾光", "木野")),
        ("童装", ("上衣", "裤装", "套装"), (69, 299), ("拾光童趣",)),
    ],
    "鞋靴": [
        ("女鞋", ("单鞋", "运动鞋", "凉鞋"), (199, 899), ("拾光", "木野")),
        ("男鞋", ("休闲鞋", "运动鞋", "皮鞋"), (199, 999), ("木野",)),
    ],
    "箱包配饰": [
        ("箱包", ("双肩包", "手提包", "钱包"), (99, 1299), ("木野", "拾光")),
        ("配饰", ("帽子", "围巾", "袜子"), (29, 199), ("拾光",)),
    ],
    "家居生活": [
        ("家纺", ("床品套件", "毛巾", "抱枕"), (49, 999), ("栖居",)),
        ("厨具餐具", ("马克杯", "碗盘", "保温杯"), (19, 299), ("栖居",)),
        ("收纳", ("收纳盒", "衣架", "置物架"), (19, 199), ("栖居",)),
    ],
    "个护美妆": [
        ("护肤", ("面霜", "精华", "洁面"), (79, 599), ("青禾",)),
        ("个人护理", ("洗发水", "沐浴露", "护手霜"), (29, 129), ("青禾",)),
    ],
}
ADJECTIVES = (
    "纯棉",
    "经典",
    "轻盈",
    "简约",
    "复古",
    "基础款",
    "宽松",
    "修身",
    "柔软",
    "新款",
    "舒适",
)
COLORS = ("白色", "黑色", "米色", "灰色", "藏青", "酒红", "浅蓝", "卡其", "燕麦色", "雾霾蓝")
CLOTH_SIZES = ("S", "M", "L", "XL")
SHOE_SIZES = ("36", "37", "38", "39", "40", "41", "42", "43")

CAMPAIGN_THEMES = ("会员日", "周末闪购", "新品尝鲜", "老友回馈", "门店焕新", "会员积分加倍")
MONTH_THEMES = {
    1: ("新年焕新", "年货节"),
    2: ("情人节限定", "开春上新"),
    3: ("女王节专享", "春季上新"),
    4: ("清明踏青", "春日出游"),
    5: ("五一出游季", "520心动礼"),
    6: ("618预热", "夏日焕新"),
    7: ("盛夏清凉", "暑期特惠"),
    8: ("七夕限定", "开学季"),
    9: ("中秋礼遇", "秋季上新"),
    10: ("国庆出游季", "金秋焕新"),
    11: ("双11预售", "冬季上新"),
    12: ("双12返场", "圣诞礼遇"),
}
TOUCH_CHANNELS = ("SMS", "WECHAT", "APP_PUSH", "STORE")


@dataclass(frozen=True)
class Sizes:
    """How big the world is for a scale; everything grows linearly with scale."""

    scale: float
    days: int
    n_people: int
    n_stores: int
    n_skus: int
    n_warehouses: int
    lines_per_day: float
    assortment: tuple[int, int]

    @classmethod
    def of(cls, scale: float, days: int) -> Sizes:
        n_skus = max(50, round(3000 * scale))
        lo, hi = 100, 200
        cap = max(10, int(n_skus * 0.6))
        return cls(
            scale=scale,
            days=days,
            n_people=max(200, round(20000 * scale)),
            n_stores=max(5, round(240 * scale)),
            n_skus=n_skus,
            n_warehouses=max(2, min(5, round(3 * math.sqrt(scale)))),
            lines_per_day=100000 * scale / 90,
            assortment=(min(lo, cap), min(hi, cap)),
        )


@dataclass(slots=True, eq=False)
class Store:
    idx: int
    code: str
    name: str
    store_type: str
    province: str
    city: str
    region: str
    area: int
    staff: int
    open_day: int
    close_day: int | None
    list_day: int
    close_announce_day: int | None
    phone: str
    warehouse: int
    cashiers: tuple[str, ...]
    lazy_cashier: str | None
    pos_count: int
    staff_change: tuple[int, int] | None
    renovation: tuple[int, ...]
    assortment: list[int] = field(default_factory=list)

    def trading(self, day: int) -> bool:
        return self.open_day <= day and (self.close_day is None or day < self.close_day)

    def staff_on(self, day: int) -> int:
        if self.staff_change and day >= self.staff_change[0]:
            return self.staff_change[1]
        return self.staff


@dataclass(slots=True, eq=False)
class Sku:
    idx: int
    sku_id: str
    barcode: str
    name: str
    brand: str
    l1: str
    l2: str
    l3: str
    launch_day: int
    list_day: int
    disc_day: int | None
    prices: list[tuple[int, int, int]]  # (valid_from_day, list_cents, cost_cents), ascending
    tmall_code: str
    jd_sku: str
    on_jd: bool
    popularity: float

    def price_on(self, day: int) -> tuple[int, int]:
        cur = self.prices[0]
        for p in self.prices:
            if p[0] <= day:
                cur = p
            else:
                break
        return cur[1], cur[2]

    def sellable(self, day: int) -> bool:
        return self.launch_day <= day and (self.disc_day is None or day < self.disc_day)


@dataclass(slots=True, eq=False)
class Person:
    idx: int
    pid: str
    name: str
    gender: str
    birthday: dt.date | None
    phone: str
    email: str | None
    city: int
    district: str
    addr_detail: str
    nick: str | None
    pin: str | None
    unionid: str | None
    openid: str | None
    tmall: bool
    jd: bool
    mall: bool
    home_store: int | None
    weight: float
    phone2: str | None = None
    family_openid: str | None = None
    members: list[Member] = field(default_factory=list)

    def member_on(self, ts: int) -> Member | None:
        """The person's first member record registered by `ts`, if any."""
        for m in self.members:
            if m.reg_ts <= ts:
                return m
        return None


@dataclass(slots=True, eq=False)
class Member:
    person: Person
    reg_ts: int
    channel: str
    store_code: str
    phone: str
    unionid: str
    email: str
    gender: str
    birthday: str
    points: int
    opt_out: bool
    opt_flip_day: int | None
    member_id: str = ""
    card_no: str = ""
    row: str | None = None
    row_seen: bool = False
    left_day: int | None = None
    merged_into: Member | None = None

    def left_by(self, day: int) -> bool:
        """Whether the CRM no longer holds this record on `day` (merged away or closed)."""
        return self.left_day is not None and day >= self.left_day

    @property
    def level(self) -> str:
        p = self.points
        return "普卡" if p < 1000 else "银卡" if p < 5000 else "金卡" if p < 20000 else "钻石卡"

    def opted_out(self, day: int) -> bool:
        flipped = self.opt_flip_day is not None and day >= self.opt_flip_day
        return self.opt_out != flipped


@dataclass(slots=True, eq=False)
class Campaign:
    cid: str
    name: str
    channel: str
    start_day: int
    end_day: int
    list_day: int
    cost_cents: int
    coupon: str
    discount_cents: int
    audience: float
    extend: tuple[int, int] | None  # (announce_day, new_end_day)
    final_cost: tuple[int, int] | None  # (day, cost_cents)

    def end_on(self, day: int) -> int:
        if self.extend and day >= self.extend[0]:
            return self.extend[1]
        return self.end_day

    def cost_on(self, day: int) -> int:
        if self.final_cost and day >= self.final_cost[0]:
            return self.final_cost[1]
        return self.cost_cents

    def active(self, day: int) -> bool:
        return self.start_day <= day <= self.end_on(day)


@dataclass(eq=False)
class World:
    sizes: Sizes
    clock: Clock
    stores: list[Store]
    warehouses: list[str]
    skus: list[Sku]
    people: list[Person]
    members: list[Member]
    campaigns: list[Campaign]
    families: list[tuple[str, list[Person]]]
    unknown_store_codes: list[str]
    unknown_sku_ids: list[str]
    unknown_barcodes: list[str]
    unknown_tmall_codes: list[str]
    unknown_jd_skus: list[str]
    tmall_shops: tuple[str, ...] = ("拾光生活官方旗舰店", "拾光生活奥莱店")
    barcode_sku: dict[str, Sku] = field(default_factory=dict)


class _Unique:
    """Draws values from a generator until one is new (membership only, never iterated)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def take(self, make: Callable[[], str]) -> str:
        while True:
            v = make()
            if v not in self.seen:
                self.seen.add(v)
                return v


def build_world(sz: Sizes, clock: Clock, rng: random.Random) -> World:
    """Create the whole static world; per-day behaviour lives in the engine."""
    phones = _Unique()
    w = World(
        sizes=sz,
        clock=clock,
        stores=[],
        warehouses=[],
        skus=[],
        people=[],
        members=[],
        campaigns=[],
        families=[],
        unknown_store_codes=[],
        unknown_sku_ids=[],
        unknown_barcodes=[],
        unknown_tmall_codes=[],
        unknown_jd_skus=[],
    )
    w.warehouses = [f"WH-{i + 1:02d}" for i in range(sz.n_warehouses)]
    _catalog(w, rng)
    _stores(w, rng, phones)
    _people(w, rng, phones)
    _members(w, rng, phones)
    _campaigns(w, rng)
    _unknown_codes(w, rng)
    return w


def mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def _region_warehouse(region: str, n_wh: int) -> int:
    return REGIONS.index(region) % n_wh


def _catalog(w: World, rng: random.Random) -> None:
    sz = w.sizes
    leaves = [
        (l1, l2, l3, pr, brands)
        for l1, subs in CATALOG.items()
        for l2, l3s, pr, brands in subs
        for l3 in l3s
    ]
    barcodes = _Unique()
    jd_ids = _Unique()
    specs = []
    for _ in range(sz.n_skus):
        l1, l2, l3, (lo, hi), brands = rng.choice(leaves)
        r = rng.random()
        if r < 0.05 and sz.days >= 2:
            launch = rng.randint(1, sz.days - 1)
            disc = None
        else:
            launch = -rng.randint(30, 900)
            disc = None
            if r < 0.08:
                disc = -rng.randint(1, 25)
            elif r < 0.11 and sz.days >= 3:
                disc = rng.randint(1, sz.days - 1)
        specs.append((launch, l1, l2, l3, lo, hi, brands, disc))
    # listed-in-master order: everything on sale before the period first, then new launches
    specs.sort(key=lambda s: (s[0] > 0, s[0] if s[0] > 0 else 0))
    for idx, (launch, l1, l2, l3, lo, hi, brands, disc) in enumerate(specs):
        brand = rng.choice(brands)
        size = (
            rng.choice(CLOTH_SIZES)
            if l1 == "服装"
            else rng.choice(SHOE_SIZES)
            if l1 == "鞋靴"
            else ""
        )
        name = f"{brand} {rng.choice(ADJECTIVES)}{l3} {rng.choice(COLORS)}" + (
            f" {size}" if size else ""
        )
        price = max(9, int(rng.uniform(lo, hi)) // 10 * 10 + 9) * 100
        cost = int(price * rng.uniform(0.32, 0.55))
        prices = [(-(10**6), price, cost)]
        n_changes = pick_weighted(rng, ((0, 0.7), (1, 0.24), (2, 0.06))) if sz.days >= 3 else 0
        for day in sorted(rng.sample(range(1, sz.days), min(n_changes, sz.days - 1))):
            f = rng.choice((0.8, 0.85, 0.9, 1.1, 1.15))
            price = max(900, int(price * f) // 1000 * 1000 + 900)
            if chance(rng, 0.5):
                cost = int(cost * rng.uniform(0.95, 1.08))
            prices.append((day, price, cost))
        barcode = barcodes.take(lambda: ean13("69" + f"{rng.randrange(10**10):010d}"))
        sku = Sku(
            idx=idx,
            sku_id=f"SKU-{idx + 1:05d}",
            barcode=barcode,
            name=name,
            brand=brand,
            l1=l1,
            l2=l2,
            l3=l3,
            launch_day=launch,
            list_day=max(launch - 7, 0) if launch > 0 else -(10**6),
            disc_day=disc,
            prices=prices,
            tmall_code=f"NR{idx + 1:05d}",
            jd_sku=jd_ids.take(lambda: str(rng.randrange(100000000, 199999999))),
            on_jd=chance(rng, 0.88),
            popularity=1.0 / (rng.random() * 60 + 1) ** 1.1,
        )
        w.skus.append(sku)
        w.barcode_sku[barcode] = sku
    # supplier cost updates on a couple of dates: margin history matters
    for day in sorted(rng.sample(range(1, sz.days), min(2, sz.days - 1))) if sz.days > 2 else []:
        for sku in w.skus:
            if chance(rng, 0.15):
                lst, cost = sku.price_on(day)
                sku.prices = [p for p in sku.prices if p[0] != day] + [
                    (day, lst, int(cost * rng.uniform(1.02, 1.08)))
                ]
                sku.prices.sort()


def _stores(w: World, rng: random.Random, phones: _Unique) -> None:
    sz = w.sizes
    n = sz.n_stores
    n_new = max(1, round(n * 0.02)) if sz.days >= 3 else 0
    n_close = max(1, round(n * 0.02)) if sz.days >= 3 else 0
    n_hist = round(n * 0.01)
    kinds = ["old"] * (n - n_new - n_close - n_hist) + ["close"] * n_close + ["hist"] * n_hist
    rng.shuffle(kinds)
    city_pick = Picker(range(len(CITIES)), [c[5] for c in CITIES])
    specs = []
    for kind in kinds:
        open_day, close_day = -rng.randint(60, 3000), None
        if kind == "close":
            close_day = rng.randint(1, sz.days - 1)
        elif kind == "hist":
            open_day, close_day = -rng.randint(900, 3000), -rng.randint(10, 300)
        specs.append((kind, open_day, close_day))
    # new stores get the highest codes, in opening order
    specs += sorted(("new", rng.randint(1, sz.days - 1), None) for _ in range(n_new))
    lazy = set(rng.sample(range(n), max(1, round(n * 0.12))))
    for idx, (kind, open_day, close_day) in enumerate(specs):
        ci = city_pick.pick(rng)
        prov, _, city, region, _, _ = CITIES[ci]
        area = int(rng.triangular(60, 800, 180))
        staff = max(2, area // 45 + rng.randint(0, 4))
        code = f"S{idx + 1:04d}"
        cashiers = tuple(f"C{idx + 1:04d}{k + 1:02d}" for k in range(max(2, staff // 2)))
        reno: tuple[int, ...] = ()
        if kind == "old" and sz.days >= 10 and chance(rng, 0.03):
            s = rng.randint(1, sz.days - 4)
            reno = tuple(range(s, s + rng.randint(2, 3)))
        store = Store(
            idx=idx,
            code=code,
            name=f"拾光生活{city.rstrip('市')}{rng.choice(MALLS)}店",
            store_type="DIRECT" if chance(rng, 0.6) else "FRANCHISE",
            province=prov,
            city=city,
            region=region,
            area=area,
            staff=staff,
            open_day=open_day,
            close_day=close_day,
            list_day=open_day - 7 if kind == "new" else -(10**6),
            close_announce_day=(close_day - 10)
            if kind == "close" and close_day
            else (-(10**6) if kind == "hist" else None),
            phone=phones.take(lambda: mobile(rng)),
            warehouse=_region_warehouse(region, sz.n_warehouses),
            cashiers=cashiers,
            lazy_cashier=rng.choice(cashiers) if idx in lazy else None,
            pos_count=1 + (area > 250) + (area > 500),
            staff_change=(rng.randint(1, sz.days - 1), max(2, staff + rng.choice((-2, -1, 1, 2))))
            if sz.days >= 3 and chance(rng, 0.05)
            else None,
            renovation=reno,
        )
        w.stores.append(store)
    # assortments: each trading store carries a popularity-weighted subset
    base = [s for s in w.skus if s.launch_day <= 0 and (s.disc_day is None or s.disc_day > 0)]
    picker = Picker(base, [s.popularity for s in base])
    for store in w.stores:
        if store.close_day is not None and store.close_day <= 0:
            continue
        lo, hi = sz.assortment
        want = min(len(base), rng.randint(lo, hi))
        chosen: set[int] = set()
        order: list[int] = []
        while len(order) < want:
            sku = picker.pick(rng)
            if sku.idx not in chosen:
                chosen.add(sku.idx)
                order.append(sku.idx)
        store.assortment = sorted(order)


def _nick(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.3:
        return f"tb{rng.randrange(10**7, 10**10)}"
    if r < 0.5:
        return f"{rng.choice(LATIN)}_{rng.randrange(1970, 2010)}{rng.choice(('', 'x', 'yy'))}"
    if r < 0.75:
        return rng.choice(NICK_WORDS) + str(rng.randrange(1, 999))
    if r < 0.97:
        return rng.choice(NICK_DECOR) + rng.choice(NICK_WORDS) + rng.choice(NICK_DECOR)
    # any Unicode, including the characters a CSV writer must quote
    return rng.choice(
        (
            '"' + rng.choice(NICK_WORDS) + '"',
            rng.choice(LATIN) + ",小店",
            "ｆｕｌｌ" + rng.choice(NICK_WORDS),
            "Ünïcødé_" + rng.choice(LATIN),
        )
    )


def _people(w: World, rng: random.Random, phones: _Unique) -> None:
    sz = w.sizes
    nicks, pins, wx, emails = _Unique(), _Unique(), _Unique(), _Unique()
    city_pick = Picker(range(len(CITIES)), [c[5] for c in CITIES])
    stores_by_city: dict[str, list[Store]] = {}
    trading = [s for s in w.stores if s.close_day is None or s.close_day > 0]
    for s in trading:
        stores_by_city.setdefault(s.city, []).append(s)
    store_pick = Picker(trading, [s.area for s in trading])

    def wxid() -> str:
        # 27 url-safe base64 characters after an "o", like WeChat's 28-character ids
        return wx.take(
            lambda: (
                "o"
                + base64.urlsafe_b64encode(rng.getrandbits(168).to_bytes(21, "big")).decode()[:27]
            )
        )

    for i in range(sz.n_people):
        gender = "M" if chance(rng, 0.42) else "F"
        name = rng.choice(SURNAMES) + "".join(
            rng.choice(GIVEN_M if gender == "M" else GIVEN_F) for _ in range(rng.choice((1, 2)))
        )
        ci = city_pick.pick(rng)
        tmall, jd, mall, store = (
            chance(rng, 0.40),
            chance(rng, 0.25),
            chance(rng, 0.33),
            chance(rng, 0.55),
        )
        if not (tmall or jd or mall or store):
            store = True
        home = None
        if store:
            local = stores_by_city.get(CITIES[ci][2])
            home = (rng.choice(local) if local else store_pick.pick(rng)).idx
        has_wx = mall or chance(rng, 0.45)
        email = None
        if chance(rng, 0.35):
            dom = pick_weighted(rng, EMAIL_DOMAINS)
            local_part = (
                str(rng.randrange(10**5, 10**10))
                if dom == "qq.com" and chance(rng, 0.6)
                else f"{rng.choice(LATIN)}{rng.choice(('', '.', '_'))}{rng.randrange(1, 9999)}"
            )
            email = emails.take(
                lambda lp=local_part, d=dom: (
                    f"{lp}@{d}"
                    if f"{lp}@{d}" not in emails.seen
                    else f"{lp}{rng.randrange(10, 99)}@{d}"
                )
            )
        p = Person(
            idx=i,
            pid=f"P{i + 1:07d}",
            name=name,
            gender=gender,
            birthday=None
            if chance(rng, 0.1)
            else dt.date(1960, 1, 1) + dt.timedelta(days=rng.randrange(0, 46 * 365)),
            phone=phones.take(lambda: mobile(rng)),
            email=email,
            city=ci,
            district=rng.choice(CITIES[ci][4]),
            addr_detail=f"{rng.choice(STREETS)}{rng.randint(1, 999)}号{rng.randint(1, 30)}栋"
            f"{rng.randint(1, 28)}{rng.randint(1, 4):02d}室",
            nick=nicks.take(lambda: _nick(rng)) if tmall else None,
            pin=pins.take(
                lambda: (
                    "jd_"
                    + (
                        f"{rng.getrandbits(48):012x}"
                        if chance(rng, 0.7)
                        else f"{rng.choice(LATIN)}{rng.randrange(10**6)}"
                    )
                )
            )
            if jd
            else None,
            unionid=wxid() if has_wx else None,
            openid=wxid() if has_wx else None,
            tmall=tmall,
            jd=jd,
            mall=mall,
            home_store=home,
            weight=min(25.0, rng.paretovariate(1.6)),
        )
        w.people.append(p)
    # families sharing one tablet: one openid, several people, no unionid on those orders
    mall_people = [p for p in w.people if p.mall]
    n_fam = max(1, round(8 * sz.scale))
    used: set[int] = set()
    for _ in range(n_fam):
        size = rng.randint(2, 3)
        if len(mall_people) - len(used) < size:
            break
        fam: list[Person] = []
        while len(fam) < size:
            p = rng.choice(mall_people)
            if p.idx not in used:
                used.add(p.idx)
                fam.append(p)
        oid = wxid()
        for p in fam:
            p.family_openid = oid
            p.weight = max(p.weight, 4.0)
        w.families.append((oid, fam))


def _spell_gender(rng: random.Random, g: str) -> str:
    r = rng.random()
    if r < 0.5:
        return g
    if r < 0.8:
        return "男" if g == "M" else "女"
    if r < 0.9:
        return "1" if g == "M" else "2"
    return "0" if r < 0.93 else ""


def _spell_birthday(rng: random.Random, b: dt.date | None) -> str:
    if b is None:
        return "1900-01-01" if chance(rng, 0.5) else ""
    r = rng.random()
    if r < 0.6:
        return b.isoformat()
    if r < 0.75:
        return f"{b.year}/{b.month}/{b.day}"
    if r < 0.9:
        return b.strftime("%Y%m%d")
    return "" if r < 0.95 else "1900-01-01"


def _spell_email(rng: random.Random, e: str | None) -> str:
    if e is None or chance(rng, 0.15):
        return ""
    r = rng.random()
    if r < 0.8:
        return e
    if r < 0.9:
        return e[0].upper() + e[1:]
    if r < 0.95:
        return e.upper()
    return f" {e} "


def _members(w: World, rng: random.Random, phones: _Unique) -> None:
    sz = w.sizes
    members: list[Member] = []
    stores = w.stores
    for p in w.people:
        if not chance(rng, 0.72 if p.home_store is not None else 0.38):
            continue
        in_period = chance(rng, 0.12)
        reg_day = rng.randrange(sz.days) if in_period else -rng.randint(1, 1500)
        if p.home_store is not None and chance(rng, 0.75):
            st = stores[p.home_store]
            channel, store_code = "STORE", st.code
            reg_day = max(reg_day, st.open_day)
            if st.close_day is not None:
                reg_day = min(reg_day, st.close_day - 1)
        else:
            channel = "MALL" if p.mall else "TMALL" if p.tmall else "JD" if p.jd else "MALL"
            store_code = ""
        reg_ts = reg_day * DAY + rng.randint(10 * 3600, 21 * 3600)
        members.append(_member(rng, sz, p, reg_ts, channel, store_code, p.phone))
    # a few people hold a second record: same phone, or same unionid with another phone
    firsts = list(members)
    n_dup = max(1, round(len(firsts) * 0.025)) if len(firsts) >= 20 else 0
    for m in rng.sample(firsts, n_dup):
        p = m.person
        reg_ts = max(m.reg_ts + DAY, rng.randint(-400, sz.days - 1) * DAY + 15 * 3600)
        if p.unionid and chance(rng, 0.5):
            p.phone2 = phones.take(lambda: mobile(rng))
            dup = _member(rng, sz, p, reg_ts, "MALL", "", p.phone2)
            dup.unionid = p.unionid
            m.unionid = p.unionid
        else:
            reg_day = reg_ts // DAY
            open_then = [s for s in stores if s.trading(reg_day)] or stores
            st = rng.choice(open_then)
            dup = _member(rng, sz, p, reg_ts, "STORE", st.code, p.phone)
        members.append(dup)
    members.sort(key=lambda m: m.reg_ts)
    cards = _Unique()
    num = 10000 + rng.randrange(5000)
    for m in members:
        num += rng.randint(1, 40)
        m.member_id = f"M{num:08d}"
        m.card_no = cards.take(lambda: "8860" + f"{rng.randrange(10**12):012d}")
        m.person.members.append(m)
    w.members = members


# Departures over a period of `days`: per member record, a second record merged into the
# person's first, or an only record closed (about 45 % and 1.8 % over 90 days).
MERGE_RATE_PER_DAY = 0.005
CLOSE_RATE_PER_DAY = 0.0002


def draw_departures(w: World, rng: random.Random, days: int) -> None:
    """Some member records leave the CRM inside the period; from `left_day` on its full snapshot
    no longer lists them. A person's newer record is merged into the older one, or a person's
    only record is closed. A record leaves only after a snapshot listed it, and a run of two
    days or more has at least one of each kind (when anyone could), so small runs carry both."""
    if days < 2:
        return
    merges: list[Member] = []
    closures: list[Member] = []
    for p in w.people:
        if not p.members:
            continue
        m = p.members[-1]
        if m.reg_ts // DAY + 1 >= days:  # never listed before the last day
            continue
        (merges if len(p.members) > 1 else closures).append(m)
    for pool, rate in ((merges, MERGE_RATE_PER_DAY), (closures, CLOSE_RATE_PER_DAY)):
        chosen = [m for m in pool if chance(rng, min(0.9, rate * days))]
        if pool and not chosen:
            chosen = [rng.choice(pool)]
        for m in chosen:
            m.left_day = rng.randrange(max(1, m.reg_ts // DAY + 1), days)
            m.merged_into = m.person.members[0] if len(m.person.members) > 1 else None


def _member(
    rng: random.Random, sz: Sizes, p: Person, reg_ts: int, channel: str, store_code: str, phone: str
) -> Member:
    pts = 0 if reg_ts >= 0 else int(rng.lognormvariate(6.5, 1.3))
    return Member(
        person=p,
        reg_ts=reg_ts,
        channel=channel,
        store_code=store_code,
        phone=phone,
        unionid=p.unionid if p.unionid and chance(rng, 0.75) else "",
        email=_spell_email(rng, p.email),
        gender=_spell_gender(rng, p.gender),
        birthday=_spell_birthday(rng, p.birthday),
        points=pts,
        opt_out=chance(rng, 0.1),
        opt_flip_day=rng.randint(1, max(1, sz.days - 1)) if chance(rng, 0.01) else None,
    )


def _campaigns(w: World, rng: random.Random) -> None:
    sz = w.sizes
    n = max(3, round(sz.days / 90 * 18))
    chans = ["SMS", "WECHAT", "APP_PUSH", "STORE", "TMALL", "JD", "SMS", "WECHAT"]
    specs = []
    for i in range(n):
        channel = (
            "SMS" if i == 0 else chans[i % len(chans)] if i < len(chans) else rng.choice(chans)
        )
        start = -2 if i == 0 else rng.randrange(0, sz.days)
        specs.append((start, channel))
    specs.sort()
    coupons_per_month: dict[str, int] = {}
    for i, (start, channel) in enumerate(specs):
        dur = rng.randint(3, 14)
        d0 = w.clock.date(start)
        coupon = ""
        if channel in TOUCH_CHANNELS:
            key = d0.strftime("%y%m")
            k = coupons_per_month[key] = coupons_per_month.get(key, 0) + 1
            coupon = f"C-{key}-{'ABCDEFGHIJKLMNOPQRSTUVWXYZ'[(k - 1) % 26]}" + (
                str((k - 1) // 26) if k > 26 else ""
            )
        cost = rng.randint(50, 800) * 10000
        end = start + dur - 1
        w.campaigns.append(
            Campaign(
                cid=f"CMP-{i + 1:04d}",
                name=f"{d0.month}月{rng.choice(CAMPAIGN_THEMES + MONTH_THEMES[d0.month] * 2)}",
                channel=channel,
                start_day=start,
                end_day=end,
                list_day=start - 5,
                cost_cents=cost,
                coupon=coupon,
                discount_cents=rng.choice((1000, 2000, 3000, 5000)),
                audience=rng.uniform(0.04, 0.1),
                extend=(end - 1, end + rng.randint(3, 7)) if chance(rng, 0.25) else None,
                final_cost=(end + 3, int(cost * rng.uniform(0.85, 1.15)))
                if chance(rng, 0.6)
                else None,
            )
        )


def _unknown_codes(w: World, rng: random.Random) -> None:
    """Codes that map to nothing, used by the unknown_sku / unknown_store dirt."""
    n = len(w.stores)
    w.unknown_store_codes = [f"S{n + 5001 + k * 7:04d}" for k in range(3)]
    known = w.barcode_sku
    for k in range(6):
        w.unknown_sku_ids.append(f"SKU-9{rng.randrange(10**5):05d}{k}")
        w.unknown_tmall_codes.append(f"NR9{rng.randrange(10**6):06d}")
        w.unknown_jd_skus.append(str(rng.randrange(900000000, 999999999)))
        while True:
            b = ean13("69" + f"{rng.randrange(10**10):010d}")
            if b not in known:
                w.unknown_barcodes.append(b)
                break
