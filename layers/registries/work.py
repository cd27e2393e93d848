"""The X modules' registries: events, diaries, grid workers' tracks, cameras, notices and shared files.

Events, diaries, notices and shared files are written by their workflows (layers/events, layers/diary,
layers/notices, layers/shared_files: states, reviews, recipients, bytes on disk) and are declared here for
the metadata only (``crud=False``): generic registry routes would write around those rules — a grid
worker approving their own diary, a notice with no recipients."""

from __future__ import annotations

from layers.registry import Field, Registry, code, ref

_POINT = dict(geometry_column="geom", geometry_type="Point")

REGISTRIES = (
    # Rows, routes and the seven-step loop belong to the event workflow (layers/events, migration 0004);
    # declared here for the metadata, so the registry list is complete.
    Registry(
        "event", "事件", "event", "disputes", "point",
        (Field("event_no", "事件编号", "event number", search="exact"),
         Field("title", "事件标题", "title", search="trgm"),
         Field("category", "事件类型", "category", search="exact"),
         Field("content", "事件内容", "content", "longtext"),
         Field("place", "事发地点", "place"),
         Field("reporter", "上报人", "reporter"),
         Field("reported_at", "上报时间", "reported at", "datetime", search="range"),
         Field("reporter_phone", "采集人电话", "collector's phone", "phone"),
         Field("state", "处理进度", "progress", search="exact"),
         Field("current_unit", "当前处理单位", "unit handling it now"),
         Field("due_at", "办结时限", "due at", "datetime"),
         Field("evaluation", "事件评价", "evaluation"),
         Field("photos", "现场照片", "photos on site")),
        ("event_no", "category", "state", "reported_at"), table="event", new_table=False, crud=False,
        title="title", **_POINT,
    ),
    Registry(
        "diary", "民情日记", "diary", "diary", "point",
        (Field("worker", "网格员", "grid worker", required=True, search="trgm"),
         ref("grid_id", "所属网格", "grid", "grid", required=True),
         Field("diary_date", "日记日期", "date", "date", required=True, search="range"),
         Field("content", "工作内容", "work done", "longtext", required=True),
         Field("visited", "走访对象", "people visited"),
         code("approval", "审批状态", "approval", "approval_status"),
         Field("approval_note", "审批意见", "approval note"),
         Field("comment", "点评", "comment")),
        ("worker", "diary_date", "approval"), territory="ref:grid_id", title="worker", crud=False,
        **_POINT,
    ),
    Registry(
        "worker_track", "网格员轨迹", "grid worker's track", "patrol", "line",
        (Field("worker", "网格员", "grid worker", required=True, search="trgm"),
         Field("located_at", "定位时间", "located at", "datetime", required=True, search="range"),
         Field("lon", "经度", "longitude", "lon", required=True),
         Field("lat", "纬度", "latitude", "lat", required=True),
         Field("speed", "速度", "speed (m/s)", "number"),
         Field("accuracy", "精度", "accuracy (m)", "number")),
        ("worker", "located_at"), lonlat=True, title="worker", **_POINT,
        notes="每行一个定位点；地图按网格员、时间顺序连成轨迹线。",
    ),
    Registry(
        "camera", "视频监控点位", "camera", "video", "point",
        (Field("name", "点位名称", "name", required=True, search="trgm"),
         Field("device_no", "设备编号", "device number", search="exact"),
         Field("location", "安装位置", "mounted at"),
         Field("heading", "朝向", "heading (degrees)", "number"),
         Field("view_angle", "视角", "view angle (degrees)", "number"),
         Field("stream_url", "视频流地址", "stream URL"),
         code("status", "在线状态", "online status", "online_status"),
         Field("owner_unit", "所属单位", "owner")),
        ("name", "status"), **_POINT,
    ),
    Registry(
        "notice", "通知公告", "notice", "notices", "none",
        (Field("title", "标题", "title", required=True, search="trgm"),
         code("notice_type", "通知类型", "type", "notice_type"),
         Field("body", "正文", "text", "longtext", required=True),
         Field("sender", "发送人", "sender"),
         Field("sent_at", "发送时间", "sent at", "datetime", search="range"),
         Field("recipients", "接收对象", "recipients"),
         Field("attachment", "附件", "attachment"),
         Field("read_count", "已读人数", "read by", "int"),
         Field("unread_count", "未读人数", "not yet read by", "int")),
        ("title", "notice_type", "sent_at"), title="title", crud=False,
    ),
    Registry(
        "shared_file", "内部硬盘共享", "shared file", "notices", "none",
        (Field("file_name", "文件名", "file name", required=True, search="trgm"),
         Field("uploader", "上传人", "uploaded by", search="trgm"),
         Field("uploaded_at", "上传时间", "uploaded at", "datetime"),
         Field("size", "文件大小", "size (bytes)", "int")),
        ("file_name", "uploader"), title="file_name", crud=False,
    ),
)
