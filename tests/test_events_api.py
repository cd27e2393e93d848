"""The seven-step loop through ``/api/v1/events``, across the levels, with real users of each role:
self-closed at the grid; escalated grid → community → street → district → department and back;
returned and reassigned; extensions; rework; a poor evaluation; a direct report; refusals; visibility;
concurrency; idempotent reports."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import text

from gis import db
from tests.events_helpers import Api, build_world


@pytest.fixture(scope="module")
def world(fresh_db):
    return build_world(fresh_db)


@pytest.fixture(scope="module")
def as_(world):
    return lambda username: Api(world, username)


def history_actions(event: dict) -> list[str]:
    return [h["action"] for h in event["history"]]


def test_self_closed_at_the_grid(world, as_):
    wg1, sq1, jd1 = as_("wg1"), as_("sq1"), as_("jd1")
    event = wg1.report(lon=118.775, lat=32.065, crs="wgs84", address="山西路 12 号 3 幢",
                       reporter_name="张三", reporter_phone="13812348000",
                       files=[("photos", ("scene.jpg", b"\xff\xd8\xff fake jpeg", "image/jpeg"))])
    g1 = world.units["g1"]
    assert (event["status"], event["unit_path"], event["grid_id"]) == ("reported", g1.path, g1.id)
    assert event["number"].startswith("320106") and len(event["number"]) == 18
    assert event["reporter_phone"] == "138****8000"
    assert event["light"] in ("green", "yellow") and event["due_at"]
    assert [a["history_id"] for a in event["attachments"]] == [event["history"][0]["id"]]
    assert {"self_handle", "escalate"} <= set(wg1.actions(event["id"]))
    assert "register" not in wg1.actions(event["id"])  # a grid worker handles or passes up; no case file

    event = wg1.act(event, "self_handle")
    assert event["status"] == "handling" and event["step_limit_days"] == 2  # 05 city appearance, grid
    event = wg1.act(event, "feedback", comment="已联系物业清理完毕")
    assert event["status"] == "handled" and event["handled_level"] == "grid"
    assert wg1.actions(event["id"]) == []          # grid workers hold no event:verify
    assert "verify" in sq1.actions(event["id"])    # the community verifies on site
    event = sq1.act(event, "verify", outcome="pass")
    assert event["status"] == "closed" and event["closed_at"]
    event = jd1.act(event, "evaluate", satisfaction=5)
    assert event["status"] == "evaluated" and event["satisfaction"] == 5
    assert history_actions(event) == ["report", "self_handle", "feedback", "verify", "evaluate"]
    assert [h["version"] for h in event["history"]] == [1, 2, 3, 4, 5] == list(range(1, event["version"] + 1))


def escalate_to_district(as_, **fields) -> dict:
    """A grid worker's report passed up community → street → district, registered at each level."""
    event = as_("wg1").report(grid_id=fields.pop("grid_id", None) or as_.world.units["g1"].id, **fields)
    event = as_("wg1").act(event, "escalate", comment="需社区协调")
    event = as_("sq1").act(event, "register")
    event = as_("sq1").act(event, "escalate", comment="涉及多个小区，请街道协调")
    event = as_("jd1").act(event, "register")
    event = as_("jd1").act(event, "escalate", comment="需区职能部门处置")
    return as_("qu").act(event, "register")


@pytest.fixture(scope="module", autouse=True)
def _world_on_as(as_, world):
    as_.world = world


def test_escalated_to_the_district_dispatched_handled_verified_closed_evaluated(world, as_):
    event = escalate_to_district(as_, title="小区门口暴露垃圾", type="0504")
    assert (event["status"], event["unit_path"], event["unit_level"]) == (
        "registered", world.units["district"].path, "district")
    assert event["suggested_department"] == "urban"
    assert "dispatch" in [a["action"] for a in event["actions"]]
    as_("cg").get(event["id"], expect=404)          # not yet dispatched: the department sees nothing
    event = as_("qu").act(event, "dispatch", department="urban", comment="请城管局处置")
    assert (event["status"], event["department"], event["department_name"]) == (
        "dispatched", "urban", "区城管局")

    cg = as_("cg")
    assert cg.get(event["id"])["number"] == event["number"]    # visible now, though outside cg's scope
    assert cg.actions(event["id"]) == ["sign", "return"]
    event = cg.act(event, "sign")
    assert event["status"] == "handling" and event["step_limit_days"] == 5
    event = cg.act(event, "feedback", comment="已清运")
    assert (event["status"], event["handled_level"]) == ("handled", "department")
    event = as_("sq1").act(event, "verify", outcome="pass", comment="现场已清理")
    event = as_("qu").act(event, "evaluate", satisfaction=4)
    assert event["status"] == "evaluated"
    assert history_actions(event) == ["report", "escalate", "register", "escalate", "register", "escalate",
                                      "register", "dispatch", "sign", "feedback", "verify", "evaluate"]
    path = [(h["to_unit_path"].split(".")[-1], h["to_department"]) for h in event["history"]]
    assert path[0] == ("320106001001001", None) and path[7] == ("320106", "urban")
    assert [p[0] for p in path[1:7:2]] == ["320106001001", "320106001", "320106"]
    # The reporting grid still follows its case; the other grid and the other street do not see it.
    assert as_("wg1").get(event["id"])["status"] == "evaluated"
    as_("wg2").get(event["id"], expect=404)
    as_("jd2").get(event["id"], expect=404)
    as_("sf").get(event["id"], expect=404)          # another department


def test_returned_and_reassigned(world, as_):
    event = escalate_to_district(as_, title="邻居装修噪音纠纷", type="0102")
    event = as_("qu").act(event, "dispatch", department="urban")      # the wrong department
    cg, sf = as_("cg"), as_("sf")
    refused = cg.act(event, "return", expect=422)
    assert "意见/理由" in refused["detail"]
    event = cg.act(event, "return", comment="属邻里纠纷，应由司法所调解")
    assert (event["status"], event["department"], event["unit_level"]) == ("registered", None, "district")
    assert cg.actions(event["id"]) == [] and cg.get(event["id"])["status"] == "registered"  # still readable
    event = as_("qu").act(event, "dispatch", department="justice")
    event = sf.act(event, "sign")
    event = sf.act(event, "feedback", comment="已调解，双方签署协议")
    assert event["departments"] == ["justice", "urban"]
    event = as_("sq1").act(event, "verify", outcome="pass")
    assert event["status"] == "closed"


def test_extension_approved_and_denied(world, as_):
    event = escalate_to_district(as_, title="违章搭建", type="0503")
    event = as_("qu").act(event, "dispatch", department="urban")
    cg, qu = as_("cg"), as_("qu")
    event = cg.act(event, "sign")
    due = event["due_at"]
    event = cg.act(event, "request_extension", days=3, comment="需走拆除程序")
    assert event["status"] == "extension_requested" and event["extension_days_requested"] == 3
    assert "approve_extension" not in cg.actions(event["id"])    # not by the one who asked
    assert as_("jd1").actions(event["id"]) == []                 # nor by the street: the district dispatched
    event = qu.act(event, "approve_extension")
    assert event["status"] == "handling" and event["extension_count"] == 1
    assert event["step_limit_days"] == 8 and event["due_at"] > due
    due = event["due_at"]
    event = cg.act(event, "request_extension", days=5, comment="再延")
    refused = qu.act(event, "deny_extension", expect=422)
    assert "意见" in refused["detail"]
    event = qu.act(event, "deny_extension", comment="不予延期，请按期办结")
    assert (event["status"], event["due_at"], event["extension_count"]) == ("handling", due, 1)
    assert event["extension_days_requested"] is None


def test_verification_failed_is_rework_and_a_poor_evaluation_reopens(world, as_):
    event = escalate_to_district(as_, title="路灯不亮", type="0403")
    event = as_("qu").act(event, "dispatch", department="urban")
    cg, sq1 = as_("cg"), as_("sq1")
    event = cg.act(event, "sign")
    event = cg.act(event, "feedback", comment="已维修")
    assert sq1.act(event, "verify", outcome="fail", expect=422)["detail"].startswith("核查不通过须说明理由")
    event = sq1.act(event, "verify", outcome="fail", comment="现场路灯仍不亮")
    assert (event["status"], event["department"], event["rework_count"]) == ("handling", "urban", 1)
    event = cg.act(event, "feedback", comment="更换灯泡")
    event = sq1.act(event, "verify", outcome="pass")
    event = as_("qu").act(event, "evaluate", satisfaction=2)
    assert (event["status"], event["rework_count"], event["satisfaction"]) == ("handling", 2, 2)
    assert event["closed_at"] is None and "feedback" in cg.actions(event["id"])


def test_direct_report_of_a_major_event(world, as_):
    event = as_("wg1").report(title="燃气泄漏", type="0302", urgency="major", grid_id=world.units["g1"].id)
    assert (event["status"], event["unit_level"]) == ("reported", "district")
    assert event["history"][0]["comment"] == "重大/紧急事件直报区综治中心"
    assert event["id"] in [e["id"] for e in as_("qu").inbox()["items"]]
    assert as_("sq1").actions(event["id"]) == []        # it skipped the community
    # A normal event is refused the direct report; an urgent one at the community may take it.
    normal = as_("wg1").report(grid_id=world.units["g1"].id)
    refused = as_("wg1").act(normal, "direct_report", expect=403)
    assert refused["detail"] == "只有紧急或重大事件可以“直报区综治中心”"
    urgent = as_("sq1").report(title="高空坠物隐患", type="0399", urgency="urgent",
                               grid_id=world.units["g2"].id)
    assert urgent["unit_level"] == "district"


def test_refusals_are_4xx_with_chinese_messages(world, as_):
    wg1, sq1 = as_("wg1"), as_("sq1")
    event = wg1.report(grid_id=world.units["g1"].id)
    assert wg1.act(event, "register", expect=403)["detail"] == "您的角色（网格员）无权“立案”"
    assert wg1.act(event, "sign", expect=409)["detail"] == "事件当前状态为“待受理”，不能“签收”"
    assert sq1.act(event, "register", expect=403)["detail"].startswith("只有当前承办单位（山西路第一网格）")
    assert wg1.act(event, "fly", expect=422)["detail"].startswith("未知的操作")
    assert as_("fx").act(event, "self_handle", expect=403)["detail"].startswith("您的角色（数据分析员）")
    event = wg1.act(event, "escalate")
    assert sq1.act(event, "cancel", expect=422)["detail"].startswith("“注销”须填写：意见/理由")
    event = sq1.act(event, "cancel", comment="重复上报")
    assert event["status"] == "cancelled" and event["due_at"] is None and event["light"] is None
    assert sq1.act(event, "register", expect=409)["detail"] == "事件当前状态为“已注销”，不能“立案”"
    # Not in the user's territory: no reading, no acting, no reporting there.
    as_("wg2").get(event["id"], expect=404)
    assert as_("wg2").act(event, "register", expect=404)["detail"].startswith("未找到事件")
    assert "不在您的辖区内" in as_("wg2").report(grid_id=world.units["g1"].id, expect=422)["detail"]
    assert wg1.report(lon=118.9, lat=32.2, expect=422)["detail"].startswith("事发位置不在您辖区")
    # an unknown type is refused by the documented pattern of the code table, before the service
    assert "type" in str(wg1.report(type="9999", grid_id=world.units["g1"].id, expect=422)["detail"])
    assert as_("cg").report(grid_id=world.units["g4"].id, expect=403)["detail"].startswith("您的角色无权上报")


def test_positions_are_converted_and_snapped_to_the_grid(world, as_):
    # A GCJ-02 position (what an Amap SDK reports) whose true point is inside grid 1.
    from layers.events.position import from_wgs84_to_gcj02
    lon, lat = from_wgs84_to_gcj02(118.7705, 32.0605)
    event = as_("wg1").report(lon=lon, lat=lat, crs="gcj02")
    assert event["grid_id"] == world.units["g1"].id
    assert (event["lon"], event["lat"]) == pytest.approx((118.7705, 32.0605), abs=1e-6)
    # Taken as CGCS2000 the same numbers fall ~500 m east, outside every grid with a boundary.
    as_("wg1").report(lon=lon, lat=lat, crs="cgcs2000", expect=422)


def test_a_retried_report_is_the_same_event(world, as_):
    client_id = str(uuid.uuid4())
    first = as_("wg1").report(client_id=client_id, grid_id=world.units["g1"].id)
    again = as_("wg1").report(client_id=client_id, grid_id=world.units["g1"].id, expect=200)
    assert again["id"] == first["id"] and again["number"] == first["number"]
    with db.owner_engine(world.settings).connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM event WHERE client_id = :c"), {"c": client_id})
        assert count.scalar() == 1


def test_two_concurrent_actions_one_wins_one_conflicts(world, as_):
    event = as_("wg1").report(grid_id=world.units["g1"].id)
    event = as_("wg1").act(event, "escalate")
    client, headers = world.client, world.headers["sq1"]
    barrier, results = threading.Barrier(2), []

    def register(action):
        barrier.wait()
        response = client.post(f"/api/v1/events/{event['id']}/actions",
                               json={"action": action, "version": event["version"]}, headers=headers)
        results.append(response.status_code)

    threads = [threading.Thread(target=register, args=(a,)) for a in ("register", "self_handle")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200, 409]
    after = as_("sq1").get(event["id"])
    assert after["version"] == event["version"] + 1
    assert history_actions(after)[2:] in (["register"], ["self_handle"])
    conflict = as_("sq1").act(event, "register", expect=409)["detail"]
    assert "已被他人处理" in conflict and "请刷新后重试" in conflict


def test_supervision_and_manual_cards(world, as_):
    event = as_("wg1").report(grid_id=world.units["g1"].id)
    event = as_("wg1").act(event, "escalate")
    assert "supervise" not in as_("sq1").actions(event["id"])       # the holder does not supervise itself
    event = as_("jd1").act(event, "supervise", comment="请于明日前立案")
    assert event["open_supervisions"] == 1 and event["status"] == "reported"
    assert "reply_supervision" in as_("sq1").actions(event["id"])
    event = as_("sq1").act(event, "reply_supervision", comment="已安排专人")
    assert event["open_supervisions"] == 0 and event["supervisions"][0]["reply"] == "已安排专人"
    event = as_("qu").act(event, "card", color="red", comment="多次督办未落实")
    assert event["red_cards"] == 1 and event["cards"][0]["unit_path"] == world.units["c1"].path
    assert as_("jd1").act(event, "card", color="green", comment="x", expect=422)["detail"].startswith("牌色")


def test_list_filters_and_the_inbox(world, as_):
    qu = as_("qu")
    everything = qu.list(limit=500)
    assert everything["total"] >= 10
    disputes = qu.list(type="01")
    assert disputes["total"] >= 1 and all(e["type"].startswith("01") for e in disputes["items"])
    evaluated = qu.list(status="evaluated")
    assert evaluated["items"] and {e["status"] for e in evaluated["items"]} == {"evaluated"}
    by_unit = qu.list(unit=world.units["district"].path)
    assert all(e["unit_level"] == "district" and e["department"] is None for e in by_unit["items"])
    mine = as_("wg2").list()
    assert all(e["org_path"].startswith(world.units["g2"].path) for e in mine["items"])
    urban = qu.list(department="urban")
    assert all(e["department"] == "urban" for e in urban["items"])
    box = as_("cg").inbox()
    assert box["total"] == sum(box["counts"].values())
    assert all(e["department"] == "urban" for e in box["items"])
    assert qu.list(light="red")["total"] == 0
    bad = world.client.get("/api/v1/events", params={"status": "lost"}, headers=world.headers["qu"])
    assert bad.status_code == 422 and "未知的事件状态" in bad.json()["detail"]


def test_attachments_for_a_feedback(world, as_):
    wg1 = as_("wg1")
    event = wg1.act(wg1.report(grid_id=world.units["g1"].id), "self_handle")
    upload = world.client.post(f"/api/v1/events/{event['id']}/attachments",
                               files=[("files", ("after.png", b"\x89PNG fake", "image/png"))],
                               headers=world.headers["wg1"])
    assert upload.status_code == 201, upload.text
    attachment_id = upload.json()[0]["id"]
    event = wg1.act(event, "feedback", comment="已处理", attachment_ids=[attachment_id])
    assert event["history"][-1]["attachment_ids"] == [attachment_id]
    assert wg1.act(event, "feedback", expect=409)  # no second feedback
    download = world.client.get(f"/api/v1/events/{event['id']}/attachments/{attachment_id}",
                                headers=world.headers["sq1"])
    assert download.status_code == 200 and download.content == b"\x89PNG fake"
    denied = world.client.post(f"/api/v1/events/{event['id']}/attachments",
                               files=[("files", ("x.exe", b"MZ", "application/x-msdownload"))],
                               headers=world.headers["sq1"])
    assert denied.status_code == 422 and "不支持的附件类型" in denied.json()["detail"]
    outsider = world.client.get(f"/api/v1/events/{event['id']}/attachments/{attachment_id}",
                                headers=world.headers["wg2"])
    assert outsider.status_code == 404
