"""Demo notices and shared files: a dozen notices of each type from the demo commander and the street,
read by some of their recipients and not (yet) by others, and shared files in a few folders.

Everything goes through the services (:mod:`layers.notices`, :mod:`layers.shared_files`) in the senders'
own scoped transactions, so targets are resolved, counts kept and files stored exactly as the system does
it; only the reading is simulated afterwards (as the owner, on a clock in the past: older notices are read
by more of their recipients). The 红头文件 carry a PDF made with WeasyPrint: the red issuing-office header,
the document number, the red rule, title and text.

Recipients are the district's active accounts (the demo logins; the stand-in grid workers of the demo
tracks cannot log in and are not sent anything). ``load_demo_notices(settings, seed=...)`` replaces the
demo users' previous notices and shared files and is deterministic for (seed, today). Run it after the
demo district and its accounts are loaded.
"""

from __future__ import annotations

import datetime as dt
import html
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text

from etl.demo import ACCOUNTS
from gis.db import owner_engine
from gis.security.roles import ROLES
from gis.security.scope import scoped_connection
from gis.security.sessions import CurrentUser
from gis.settings import Settings
from layers import notices, shared_files

DEFAULT_SEED = 2026
PER_TYPE = 12
Progress = Callable[[str, int, int], None]

# One subject a notice, whitespace-separated.
MEETINGS = """
    平安建设工作推进会 网格化服务管理工作例会 矛盾纠纷排查化解专题会 安全生产大检查部署会
    重点人员服务管理联席会 防汛防台工作部署会 创建全国文明城市推进会 综治中心规范化建设现场会
    信访维稳形势分析会 禁毒工作推进会 社区矫正工作联席会 年度考核工作布置会
""".split()
MATTERS = """
    开展出租房屋专项清查 做好节假日期间值班值守 报送第二季度重点人员走访情况 开展消防安全隐患排查
    做好电动自行车楼道停放整治 核对实有人口基础信息 开展反诈宣传进社区 报送矛盾纠纷排查台账
    做好独居老人走访慰问 开展校园周边环境整治 更新网格员联系方式公示牌 做好流动人口登记
""".split()
WORKS = """
    本周网格巡查重点 下周入户走访安排 月度网格员考核安排 重点区域夜间巡查排班 民情日记填写要求
    事件上报质量提升安排 特殊人群帮扶走访计划 雨季安全巡查安排 老旧小区隐患排查分工 节前安全检查分工
    数据质量核查分工 网格员业务培训安排
""".split()
REDS = """
    关于印发《网格化服务管理工作考核办法》的通知 关于进一步加强矛盾纠纷多元化解工作的意见
    关于印发《综治中心工作规范》的通知 关于开展平安建设宣传月活动的通知
    关于加强特殊人群服务管理工作的通知 关于建立网格员激励保障机制的意见
    关于印发《重大事件应急处置预案》的通知 关于开展扫黑除恶常态化工作的通知
    关于加强基层社会治理数据安全管理的通知 关于推进“综治中心+网格化+信息化”建设的实施意见
    关于做好年度平安建设考评工作的通知 关于规范事件办理流程和时限的通知
""".split()
FOLDERS = {
    "政策文件": ["关于加强网格化服务管理的实施意见.pdf", "综治中心规范化建设标准.pdf"],
    "工作模板": ["入户走访登记表.csv", "矛盾纠纷排查台账模板.csv", "民情日记填写说明.txt"],
    "会议材料": ["平安建设推进会讲话稿.txt", "第二季度工作通报.pdf"],
    "培训资料": ["网格员业务培训手册.pdf", "手机APP操作指南.txt"],
}


@dataclass
class DemoNoticesReport:
    notices: int
    recipients: int
    read: int
    folders: int
    files: int
    seconds: float


def _user(conn, username: str) -> CurrentUser | None:
    row = conn.execute(text(
        "SELECT id, username, name, role, scope_path::text, department FROM users"
        " WHERE username = :u AND active"), {"u": username}).first()
    if row is None:
        return None
    return CurrentUser(id=row.id, username=row.username, name=row.name, role=row.role,
                       scope_path=row.scope_path, department=row.department,
                       permissions=ROLES[row.role].permissions)


def red_header_pdf(office: str, doc_no: str, title: str, body: str, day: dt.date) -> bytes:
    """A one-page 红头文件 as a PDF (WeasyPrint): red office name, document number, red rule, text."""
    from weasyprint import HTML

    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in body.split("\n") if p.strip())
    document = f"""<html><head><meta charset="utf-8"><style>
      @page {{ size: A4; margin: 30mm 26mm; }}
      body {{ font-family: "Noto Serif CJK SC", "Noto Sans CJK SC", serif; font-size: 16pt;
              line-height: 1.8; }}
      .office {{ color: #c00; font-size: 24pt; font-weight: bold; text-align: center; letter-spacing: 4pt; }}
      .no {{ text-align: center; margin-top: 10mm; }}
      .rule {{ border-top: 2pt solid #c00; margin: 3mm 0 10mm; }}
      h1 {{ font-size: 20pt; text-align: center; font-weight: bold; }}
      p {{ text-indent: 2em; margin: 0; }}
      .sign {{ text-align: right; margin-top: 16mm; text-indent: 0; }}
    </style></head><body>
      <div class="office">{html.escape(office)}文件</div>
      <div class="no">{html.escape(doc_no)}</div><div class="rule"></div>
      <h1>{html.escape(title)}</h1>{paragraphs}
      <p class="sign">{html.escape(office)}<br>{day.year}年{day.month}月{day.day}日</p>
    </body></html>"""
    return HTML(string=document).write_pdf()


def _body(kind: str, subject: str, when: dt.datetime) -> str:
    day = f"{when.month}月{when.day}日"
    if kind == "meeting":
        return (f"定于{day}下午2:30在区综治中心三楼会议室召开{subject}，请各街道分管领导、综治中心主任，"
                "各社区书记准时参加。\n请于会前一天下午5点前将参会人员名单报区综治中心。")
    if kind == "matter":
        return (f"根据工作安排，请各单位{subject}工作，于{day}后五个工作日内完成，"
                "并将工作情况通过系统报送。\n工作中发现的问题请及时上报事件。")
    if kind == "work":
        return (f"{subject}如下：\n一、各网格员按网格责任区开展巡查走访；\n二、发现问题当日上报；"
                "\n三、每日填写民情日记。")
    topic = subject.removeprefix("关于").removesuffix("的通知")
    return (f"为贯彻落实上级部署，现就{topic}有关事项通知如下。\n"
            "一、提高思想认识，切实加强组织领导。\n二、明确职责分工，压实网格责任。\n三、强化督查考核，确保取得实效。")


def load_demo_notices(settings: Settings, *, seed: int = DEFAULT_SEED, progress: Progress | None = None,
                      today: dt.date | None = None) -> DemoNoticesReport:
    """Replace the demo users' notices and shared files with fresh ones (see the module docstring)."""
    started = time.perf_counter()
    rng = random.Random(seed)
    now = dt.datetime.combine(today or dt.date.today(), dt.time(9, 0), tzinfo=dt.UTC)
    usernames = [a[0] for a in ACCOUNTS]
    with owner_engine(settings).begin() as conn:
        commander, street = _user(conn, "demo_commander"), _user(conn, "demo_street")
        community, grid = _user(conn, "demo_community"), _user(conn, "demo_grid")
        if commander is None or street is None:
            raise RuntimeError("演示账户不存在，请先运行 gridgov demo load (demo accounts missing)")
        demo_ids = conn.execute(text("SELECT id FROM users WHERE username = ANY(:u)"),
                                {"u": usernames}).scalars().all()
        conn.execute(text("DELETE FROM notice WHERE sender_id = ANY(:ids)"), {"ids": demo_ids})
        conn.execute(text("DELETE FROM shared_file WHERE uploader_id = ANY(:ids)"), {"ids": demo_ids})
        conn.execute(text(
            "DELETE FROM shared_folder f WHERE f.created_by = ANY(:ids)"
            " AND NOT EXISTS (SELECT 1 FROM shared_file s WHERE s.folder_id = f.id)"), {"ids": demo_ids})
        street_unit = conn.execute(text("SELECT id FROM territory_unit WHERE path = CAST(:p AS ltree)"),
                                   {"p": street.scope_path}).scalar_one()
        community_unit = conn.execute(text("SELECT id FROM territory_unit WHERE path = CAST(:p AS ltree)"),
                                      {"p": community.scope_path}).scalar_one() if community else None

    # Who sends what to whom: the district to everyone in the field and the departments, the street to
    # its own units; every notice reaches the demo grid worker, so their inbox has read and unread ones.
    commander_targets = [
        notices.Targets(roles=["street_staff", "community_staff", "grid_worker"], departments=["urban"]),
        notices.Targets(units=[notices.UnitTarget(id=street_unit, subtree=True)],
                        roles=["department_officer"]),
        notices.Targets(roles=["grid_worker", "community_staff", "analyst", "data_staff"]),
    ]
    street_targets = [
        notices.Targets(units=[notices.UnitTarget(id=street_unit, subtree=True)]),
        notices.Targets(units=[notices.UnitTarget(id=community_unit, subtree=True)] if community_unit else [],
                        users=[grid.id] if grid else []),
    ]
    plan = []
    for kind, subjects in (("meeting", MEETINGS), ("matter", MATTERS), ("work", WORKS), ("red_header", REDS)):
        for i, subject in enumerate(subjects[:PER_TYPE]):
            sender = commander if kind == "red_header" or i % 2 == 0 else street
            targets = rng.choice(commander_targets if sender is commander else street_targets)
            sent_at = now - dt.timedelta(days=rng.uniform(0, 45), minutes=rng.randint(0, 600))
            plan.append((sent_at, kind, subject, sender, targets))
    plan.sort(key=lambda p: p[0])   # ids in the order they were sent

    sent_ids = []
    for n, (sent_at, kind, subject, sender, targets) in enumerate(plan, 1):
        title = {"meeting": f"关于召开{subject}的通知", "matter": f"关于{subject}的通知",
                 "work": subject, "red_header": subject}[kind]
        body = _body(kind, title if kind == "red_header" else subject, sent_at + dt.timedelta(days=3))
        fields = {}
        attachments = []
        if kind == "red_header":
            office = "鼓楼区社会治安综合治理委员会办公室"
            doc_no = f"鼓综治办〔{sent_at.year}〕{n}号"
            pdf = red_header_pdf(office, doc_no, title, body, sent_at.date())
            attachments = [notices.Attachment(f"{doc_no}.pdf", "application/pdf", pdf)]
            fields = {"doc_no": doc_no, "issuing_office": office}
        with scoped_connection(settings, sender) as conn:
            result = notices.send_notice(conn, settings, sender, title=title, notice_type=kind, body=body,
                                         targets=targets, attachments=attachments, now=sent_at, **fields)
        sent_ids.append((result["id"], sent_at))
        if progress:
            progress("notices", n, len(plan))

    # Reading: the older the notice, the more of its recipients have opened it; some never do.
    read = 0
    with owner_engine(settings).begin() as conn:
        for notice_id, sent_at in sent_ids:
            age_days = (now - sent_at).total_seconds() / 86400
            share = 0.9 if age_days > 14 else 0.6 if age_days > 3 else 0.3
            for user_id in conn.execute(text(
                    "SELECT user_id FROM notice_recipient WHERE notice_id = :n ORDER BY user_id"),
                    {"n": notice_id}).scalars().all():
                if rng.random() < share:
                    delay = dt.timedelta(minutes=rng.randint(5, int(min(age_days, 3) * 1440) + 6))
                    conn.execute(text("UPDATE notice_recipient SET read_at = :t WHERE notice_id = :n"
                                      " AND user_id = :u"), {"t": min(sent_at + delay, now), "n": notice_id,
                                                              "u": user_id})
                    read += 1
        recipients = conn.execute(text("SELECT count(*) FROM notice_recipient WHERE notice_id = ANY(:ids)"),
                                  {"ids": [i for i, _ in sent_ids]}).scalar_one()

    folders, files = _load_shared_files(settings, rng, commander, street, community, now)
    return DemoNoticesReport(len(sent_ids), recipients, read, folders, files, time.perf_counter() - started)


def _demo_file(name: str, folder: str, rng: random.Random, day: dt.date) -> bytes:
    stem = name.rsplit(".", 1)[0]
    if name.endswith(".pdf"):
        return red_header_pdf("鼓楼区综治中心", f"{folder}资料", stem,
                              "本资料供各街道、社区、网格员内部学习使用。\n请结合本单位实际抓好落实。", day)
    if name.endswith(".csv"):
        header = "序号,姓名,住址,联系电话,走访日期,走访内容,网格员\n"
        return ("\ufeff" + header + "".join(f"{i},,,,,,\n" for i in range(1, 21))).encode("utf-8")
    lines = [stem, "", *(f"{i}. 第{i}条要求：按网格责任区落实到人。" for i in range(1, rng.randint(4, 9)))]
    return "\n".join(lines).encode("utf-8")


def _load_shared_files(settings: Settings, rng: random.Random, commander: CurrentUser, street: CurrentUser,
                       community: CurrentUser | None, now: dt.datetime) -> tuple[int, int]:
    """A few folders of the district (shared with everything below) and the street, with files in them."""
    folders = files = 0
    owners = [commander, commander, street, community or street]
    for (folder_name, names), owner in zip(FOLDERS.items(), owners, strict=False):
        with scoped_connection(settings, owner) as conn:
            folder = shared_files.create_folder(conn, owner, folder_name,
                                                share=shared_files.Share(subtree=True))
            folders += 1
            for name in names:
                uploaded = now - dt.timedelta(days=rng.uniform(1, 60))
                data = _demo_file(name, folder_name, rng, uploaded.date())
                media = {"pdf": "application/pdf", "csv": "text/csv"}.get(name.rsplit(".", 1)[-1],
                                                                          "text/plain")
                shared_files.upload(conn, settings, owner, name, media, data, folder_id=folder["id"],
                                    now=uploaded)
                files += 1
    # One file for the urban-management department only, from the street.
    with scoped_connection(settings, street) as conn:
        shared_files.upload(conn, settings, street, "占道经营点位清单.csv", "text/csv",
                            _demo_file("占道经营点位清单.csv", "", rng, now.date()),
                            share=shared_files.Share(subtree=False, department="urban"), now=now)
    return folders, files + 1
