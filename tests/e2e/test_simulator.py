"""The WeChat simulator: its crypto against wechatpy and WeChat's published sample, its API contracts,
fault injection, the 48-hour window, OAuth, the phone page, and delivery to a real webhook over HTTP."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature
from yarl import URL

from wechat_sim import protocol
from wechat_sim.client import SimulatedUser, read_reply
from wechat_sim.server import SIM_STATE, UNAVAILABLE, create_sim_app
from wechat_sim.state import DEMO_OPENID

TOKEN = "sim-test-token"
APPID = "wx1234567890abcdef"
SECRET = "sim-test-secret"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OPENID = "oTestUser000000000000000001"

# WeChat's published sample (消息加解密 documentation, the Python sample shipped with it).
SAMPLE_TOKEN = "spamtest"
SAMPLE_APPID = "wx2c2769f8efd9abc2"
SAMPLE_TIMESTAMP = "1409735669"
SAMPLE_NONCE = "1320562132"
SAMPLE_MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
SAMPLE_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2L"
    "dJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6u"
    "x5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJ"
    "pXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCz"
    "pu9GhglF2PE="
)


class Clock:
    def __init__(self, now: float = 1_790_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def common(create_time: int = 1_790_000_000) -> dict[str, Any]:
    return {"to_user": "gh_5f3a9c2e7b1d", "from_user": OPENID, "create_time": create_time}


MESSAGES: dict[str, str] = {
    "text": protocol.text_message(**common(), content="我爸想要一辆轮椅，住厚街 ]]> <b>&amp;", msg_id=101),
    "voice": protocol.voice_message(**common(), recognition="路灯坏咗好耐", msg_id=102),
    "image": protocol.image_message(**common(), pic_url="http://img.example/a.jpg", msg_id=103),
    "location": protocol.location_message(
        **common(), lat=22.94, lon=113.67, label="东莞市厚街镇", msg_id=104
    ),
    "link": protocol.link_message(
        **common(), title="标题", description="描述", url="http://x.example", msg_id=105
    ),
    "video": protocol.video_message(**common(), msg_id=106),
    "subscribe": protocol.event_message(**common(), event="subscribe"),
    "unsubscribe": protocol.event_message(**common(), event="unsubscribe"),
    "click": protocol.event_message(**common(), event="CLICK", key="MENU_HELP"),
    "view": protocol.event_message(**common(), event="VIEW", key="http://bot.example/me"),
    "scan": protocol.event_message(**common(), event="SCAN", key="123", ticket="TICKET"),
    "location_event": protocol.event_message(**common(), event="LOCATION", lat=23.0, lon=113.7, precision=50),
    "templatesendjobfinish": protocol.event_message(
        **common(), event="TEMPLATESENDJOBFINISH", msg_id=200163836, status="failed:user block"
    ),
}


# ============================================================================================ protocol


def test_published_sample_verifies_and_decrypts() -> None:
    assert (
        protocol.msg_signature(SAMPLE_TOKEN, SAMPLE_TIMESTAMP, SAMPLE_NONCE, SAMPLE_ENCRYPT)
        == SAMPLE_MSG_SIGNATURE
    )
    xml = protocol.decrypt_payload(SAMPLE_ENCRYPT, aes_key=AES_KEY, appid=SAMPLE_APPID)
    fields = protocol.parse_xml(xml)
    assert fields["FromUserName"] == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    assert fields["Content"] == "abcdteT"
    assert fields["MsgId"] == "6054768590064713728"
    with pytest.raises(protocol.ProtocolError, match="AppID"):
        protocol.decrypt_payload(SAMPLE_ENCRYPT, aes_key=AES_KEY, appid="wx0000000000000000")


def test_encryption_reproduces_the_published_ciphertext_bit_for_bit() -> None:
    key = base64.b64decode(AES_KEY + "=")
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    raw = dec.update(base64.b64decode(SAMPLE_ENCRYPT)) + dec.finalize()
    plain = protocol.decrypt_payload(SAMPLE_ENCRYPT, aes_key=AES_KEY, appid=SAMPLE_APPID)
    again = protocol.encrypt_payload(plain, aes_key=AES_KEY, appid=SAMPLE_APPID, random_prefix=raw[:16])
    assert again == SAMPLE_ENCRYPT


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_simulator_envelope_decrypts_with_wechatpy(name: str) -> None:
    xml = MESSAGES[name]
    envelope, msig = protocol.encrypt(
        xml, token=TOKEN, aes_key=AES_KEY, appid=APPID, timestamp=1700, nonce="n0"
    )
    assert protocol.parse_xml(envelope).keys() == {"ToUserName", "Encrypt"}
    plain = WeChatCrypto(TOKEN, AES_KEY, APPID).decrypt_message(envelope, msig, "1700", "n0")
    assert plain == xml
    msg = parse_message(plain)
    assert msg.source == OPENID
    expected_type = {"location_event": "event", "templatesendjobfinish": "event"}.get(name, name)
    if name in ("subscribe", "unsubscribe", "click", "view", "scan"):
        expected_type = "event"
    assert msg.type == expected_type


def test_message_fields_read_by_wechatpy() -> None:
    text = parse_message(MESSAGES["text"])
    assert text.content == "我爸想要一辆轮椅，住厚街 ]]> <b>&amp;"
    assert text.id == 101
    voice = parse_message(MESSAGES["voice"])
    assert voice.recognition == "路灯坏咗好耐" and voice.format == "amr" and voice.media_id
    loc = parse_message(MESSAGES["location"])
    assert (float(loc.location_x), float(loc.location_y), loc.label) == (22.94, 113.67, "东莞市厚街镇")
    assert parse_message(MESSAGES["image"]).image == "http://img.example/a.jpg"
    click = parse_message(MESSAGES["click"])
    assert (click.event, click.key) == ("click", "MENU_HELP")
    assert "MsgId" not in protocol.parse_xml(MESSAGES["click"])
    job = parse_message(MESSAGES["templatesendjobfinish"])
    assert job.event == "templatesendjobfinish" and job.status == "failed:user block"


def test_wechatpy_reply_decrypts_with_simulator_and_tampering_is_refused() -> None:
    reply = (
        "<xml><ToUserName><![CDATA[o1]]></ToUserName><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[已收到，编号 MS20261123-0007]]></Content></xml>"
    )
    encrypted = WeChatCrypto(TOKEN, AES_KEY, APPID).encrypt_message(reply, "nonce9", "1700")
    assert protocol.decrypt_reply(encrypted, token=TOKEN, aes_key=AES_KEY, appid=APPID) == reply
    with pytest.raises(protocol.ProtocolError, match="MsgSignature"):
        protocol.decrypt_reply(encrypted, token="other-token", aes_key=AES_KEY, appid=APPID)
    with pytest.raises(protocol.ProtocolError, match="AppID"):
        protocol.decrypt_reply(encrypted, token=TOKEN, aes_key=AES_KEY, appid="wxother")
    ours = protocol.encrypt_reply(reply, token=TOKEN, aes_key=AES_KEY, appid=APPID, timestamp=1700, nonce="x")
    f = protocol.parse_xml(ours)
    assert (
        WeChatCrypto(TOKEN, AES_KEY, APPID).decrypt_message(
            {"Encrypt": f["Encrypt"]}, f["MsgSignature"], f["TimeStamp"], f["Nonce"]
        )
        == reply
    )


def test_build_request_in_every_mode_verifies_with_wechatpy() -> None:
    xml = MESSAGES["text"]
    params, body = protocol.build_request(xml, mode="plain", token=TOKEN, timestamp=1700, nonce="abc")
    check_signature(TOKEN, params["signature"], params["timestamp"], params["nonce"])
    with pytest.raises(InvalidSignatureException):
        check_signature("wrong", params["signature"], params["timestamp"], params["nonce"])
    assert params["openid"] == OPENID and body == xml.encode() and "encrypt_type" not in params

    crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
    for mode in ("compat", "safe"):
        params, body = protocol.build_request(
            xml, mode=mode, token=TOKEN, timestamp=1700, nonce="abc", appid=APPID, aes_key=AES_KEY
        )
        check_signature(TOKEN, params["signature"], params["timestamp"], params["nonce"])
        assert params["encrypt_type"] == "aes"
        assert crypto.decrypt_message(body, params["msg_signature"], "1700", "abc") == xml
        fields = protocol.parse_xml(body)
        assert ("Content" in fields) == (mode == "compat")
    with pytest.raises(ValueError):
        protocol.build_request(xml, mode="safe", token=TOKEN, timestamp=1, nonce="a", aes_key=None)


def test_read_reply_understands_success_and_news() -> None:
    assert read_reply(200, b"success", token=TOKEN, appid=APPID, aes_key=None).text is None
    assert read_reply(200, b"", token=TOKEN, appid=APPID, aes_key=None).is_success
    news = (
        "<xml><MsgType><![CDATA[news]]></MsgType><ArticleCount>1</ArticleCount><Articles><item>"
        "<Title><![CDATA[您的诉求]]></Title><Description><![CDATA[已受理]]></Description></item></Articles></xml>"
    )
    r = read_reply(200, news.encode(), token=TOKEN, appid=APPID, aes_key=None)
    assert r.msg_type == "news" and r.text == "您的诉求\n已受理"
    bad = read_reply(200, b"<xml><a>", token=TOKEN, appid=APPID, aes_key=None)
    assert bad.text is None and bad.error


# ============================================================================================ API


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def sim(aiohttp_client, clock):
    app = create_sim_app(
        token=TOKEN,
        appid=APPID,
        aes_key=AES_KEY,
        mode="safe",
        webhook_url="http://127.0.0.1:9/wechat",
        secret=SECRET,
        clock=clock,
    )
    return await aiohttp_client(app)


async def get_token(sim) -> str:
    resp = await sim.get(
        "/cgi-bin/token", params={"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    )
    body = await resp.json()
    assert body["expires_in"] == 7200
    return body["access_token"]


async def custom(sim, token: str, openid: str = OPENID, content: str = "您的诉求已受理") -> dict[str, Any]:
    resp = await sim.post(
        "/cgi-bin/message/custom/send",
        params={"access_token": token},
        json={"touser": openid, "msgtype": "text", "text": {"content": content}},
    )
    assert resp.status == 200
    return await resp.json()


async def template(sim, token: str, data: dict[str, Any], openid: str = OPENID) -> dict[str, Any]:
    resp = await sim.post(
        "/cgi-bin/message/template/send",
        params={"access_token": token},
        json={"touser": openid, "template_id": "TPL_PROGRESS", "url": "http://bot.example/c/1", "data": data},
    )
    return await resp.json()


@pytest.mark.parametrize(
    ("params", "errcode"),
    [
        ({"grant_type": "client_credential", "appid": "wxnotours", "secret": SECRET}, 40013),
        ({"grant_type": "client_credential", "appid": APPID, "secret": "wrong"}, 40125),
        ({"grant_type": "password", "appid": APPID, "secret": SECRET}, 40002),
    ],
)
async def test_token_refuses_bad_credentials(sim, params, errcode) -> None:
    body = await (await sim.get("/cgi-bin/token", params=params)).json()
    assert body["errcode"] == errcode
    assert "access_token" not in body


async def test_custom_send_is_recorded_and_validates_the_token(sim, clock) -> None:
    token = await get_token(sim)
    assert (await custom(sim, token, content="编号 MS20261123-0007 已受理"))["errcode"] == 0
    sent = await (await sim.get("/_sim/sent", params={"openid": OPENID})).json()
    assert [(m["channel"], m["content"]) for m in sent] == [("custom", "编号 MS20261123-0007 已受理")]
    assert (await custom(sim, "not-a-token"))["errcode"] == 40001
    assert (await custom(sim, ""))["errcode"] == 41001
    clock.now += 7201
    assert (await custom(sim, token))["errcode"] == 42001
    assert len(sim.app[SIM_STATE].sent) == 1
    await sim.delete("/_sim/sent")
    assert await (await sim.get("/_sim/sent")).json() == []


async def test_new_token_invalidates_the_old_one_after_the_grace(sim, clock) -> None:
    first = await get_token(sim)
    second = await get_token(sim)
    assert first != second
    clock.now += 299
    assert (await custom(sim, first))["errcode"] == 0
    clock.now += 2
    assert (await custom(sim, first))["errcode"] == 40001
    assert (await custom(sim, second))["errcode"] == 0


async def test_stable_token_is_stable_until_force_refresh(sim, clock) -> None:
    req = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    a = await (await sim.post("/cgi-bin/stable_token", json=req)).json()
    clock.now += 100
    b = await (await sim.post("/cgi-bin/stable_token", json=req)).json()
    assert a["access_token"] == b["access_token"]
    assert (a["expires_in"], b["expires_in"]) == (7200, 7100)
    c = await (await sim.post("/cgi-bin/stable_token", json=req | {"force_refresh": True})).json()
    assert c["access_token"] != a["access_token"] and c["expires_in"] == 7200
    bad = await (await sim.post("/cgi-bin/stable_token", json=req | {"secret": "x"})).json()
    assert bad["errcode"] == 40125


@pytest.mark.parametrize("errcode", [40001, 42001, 45015, 45047, 43004, -1])
async def test_injected_fault_answers_its_errcode_then_recovers(sim, errcode) -> None:
    token = await get_token(sim)
    resp = await sim.post("/_sim/faults", json={"endpoint": "custom", "errcode": errcode, "times": 2})
    assert resp.status == 201
    assert [(await custom(sim, token))["errcode"] for _ in range(3)] == [errcode, errcode, 0]
    assert len(sim.app[SIM_STATE].sent) == 1
    # a fault on one endpoint leaves the others alone
    sim.app[SIM_STATE].add_fault("template", errcode)
    assert (await custom(sim, token))["errcode"] == 0
    assert (await template(sim, token, {"thing1": {"value": "已受理"}}))["errcode"] == errcode


async def test_fault_delay_and_clear(sim) -> None:
    token = await get_token(sim)
    await sim.post("/_sim/faults", json={"endpoint": "*", "errcode": 0, "times": None, "delay_ms": 150})
    started = time.monotonic()
    assert (await custom(sim, token))["errcode"] == 0
    assert time.monotonic() - started >= 0.15
    assert len(await (await sim.get("/_sim/faults")).json()) == 1
    await sim.delete("/_sim/faults")
    assert await (await sim.get("/_sim/faults")).json() == []
    bad = await sim.post("/_sim/faults", json={"endpoint": "nowhere", "errcode": 1})
    assert bad.status == 400


async def test_token_fault(sim) -> None:
    sim.app[SIM_STATE].add_fault("token", -1)
    params = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    assert (await (await sim.get("/cgi-bin/token", params=params)).json())["errcode"] == -1
    assert "access_token" in await (await sim.get("/cgi-bin/token", params=params)).json()
    assert sim.app[SIM_STATE].calls["token"] == 2


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"thing1": {"value": "轮椅申请已经由社区工作人员核实完毕并提交镇街"}}, "thing1"),
        ({"thing1": {"value": "已受理\n请等待"}}, "thing1"),
        ({"first": {"value": "您好"}, "thing1": {"value": "已受理"}}, "first"),
        ({"thing1": {"value": "已受理"}, "remark": {"value": "谢谢"}}, "remark"),
        ({"thing1": {"value": "  "}}, "thing1"),
        ({"thing1": "已受理"}, "thing1"),
    ],
)
async def test_template_fields_follow_wechat_rules(sim, data, key) -> None:
    token = await get_token(sim)
    body = await template(sim, token, data)
    assert body["errcode"] == 47003
    assert f"data.{key}" in body["errmsg"]
    assert sim.app[SIM_STATE].sent == []


async def test_template_and_subscribe_sends_are_recorded(sim) -> None:
    token = await get_token(sim)
    ok = await template(
        sim, token, {"character_string1": {"value": "MS20261123-0007"}, "phrase2": {"value": "已受理"}}
    )
    assert ok["errcode"] == 0 and isinstance(ok["msgid"], int)
    resp = await sim.post(
        "/cgi-bin/message/subscribe/bizsend",
        params={"access_token": token},
        json={
            "touser": OPENID,
            "template_id": "SUB1",
            "page": "http://bot.example/s",
            "data": {"thing1": {"value": "请评价"}},
        },
    )
    assert (await resp.json())["errcode"] == 0
    sent = await (await sim.get("/_sim/sent")).json()
    assert [(m["channel"], m["template_id"], m["data"]) for m in sent] == [
        ("template", "TPL_PROGRESS", {"character_string1": "MS20261123-0007", "phrase2": "已受理"}),
        ("subscribe", "SUB1", {"thing1": "请评价"}),
    ]
    assert sent[0]["url"] == "http://bot.example/c/1" and sent[0]["msgid"] == ok["msgid"]
    missing = await (
        await sim.post(
            "/cgi-bin/message/template/send",
            params={"access_token": token},
            json={"touser": OPENID, "data": {}},
        )
    ).json()
    assert missing["errcode"] == 40037


async def test_window_and_quota_when_enforced(sim, clock) -> None:
    state = sim.app[SIM_STATE]
    state.enforce_window = True
    token = await get_token(sim)
    assert (await custom(sim, token))["errcode"] == 45015  # never interacted
    await sim.post("/_sim/interaction", json={"openid": OPENID})
    assert [(await custom(sim, token))["errcode"] for _ in range(6)] == [0, 0, 0, 0, 0, 45047]
    state.interaction(OPENID)  # another message from the user: a fresh quota
    assert (await custom(sim, token))["errcode"] == 0
    clock.now += 48 * 3600 + 1
    await sim.post("/_sim/tokens/expire")
    token = await get_token(sim)
    assert (await custom(sim, token))["errcode"] == 45015
    # templates are not bound to the window
    assert (await template(sim, token, {"thing1": {"value": "已受理"}}))["errcode"] == 0
    assert len(state.sent_to(OPENID)) == 7


async def test_unsubscribed_user_gets_43004(sim) -> None:
    token = await get_token(sim)
    await sim.post("/_sim/subscription", json={"openid": OPENID, "subscribed": False})
    assert (await custom(sim, token))["errcode"] == 43004
    assert (await template(sim, token, {"thing1": {"value": "已受理"}}))["errcode"] == 43004
    info = await (
        await sim.get("/cgi-bin/user/info", params={"access_token": token, "openid": OPENID})
    ).json()
    assert info == {"subscribe": 0, "openid": OPENID}
    sim.app[SIM_STATE].set_subscribed(OPENID, True)
    assert (await custom(sim, token))["errcode"] == 0
    info = await (
        await sim.get("/cgi-bin/user/info", params={"access_token": token, "openid": OPENID})
    ).json()
    assert info["subscribe"] == 1
    nobody = await (
        await sim.get("/cgi-bin/user/info", params={"access_token": token, "openid": "nobody"})
    ).json()
    assert nobody["errcode"] == 40003


async def test_oauth_authorize_and_code_exchange(sim) -> None:
    auth = {
        "appid": APPID,
        "redirect_uri": "http://bot.example/staff/oauth?next=%2Fcases",
        "response_type": "code",
        "scope": "snsapi_base",
        "state": "xyz123",
    }
    page = await sim.get("/connect/oauth2/authorize", params=auth)
    html = await page.text()
    assert page.status == 200 and DEMO_OPENID in html and "微信网页授权" in html
    resp = await sim.get(
        "/connect/oauth2/authorize/confirm", params=auth | {"openid": "oStaff01"}, allow_redirects=False
    )
    assert resp.status == 302
    target = URL(resp.headers["Location"])
    assert (target.host, target.path) == ("bot.example", "/staff/oauth")
    assert target.query["state"] == "xyz123" and target.query["next"] == "/cases"
    exchange = {
        "appid": APPID,
        "secret": SECRET,
        "code": target.query["code"],
        "grant_type": "authorization_code",
    }
    body = await (await sim.get("/sns/oauth2/access_token", params=exchange)).json()
    assert body["openid"] == "oStaff01" and body["scope"] == "snsapi_base"
    again = await (await sim.get("/sns/oauth2/access_token", params=exchange)).json()
    assert again["errcode"] == 40163
    bogus = await (await sim.get("/sns/oauth2/access_token", params=exchange | {"code": "nope"})).json()
    assert bogus["errcode"] == 40029
    # the page's form sends the clicked user's button and the (empty) text box: the non-empty one wins
    form = list(auth.items()) + [("openid", ""), ("openid", "oTyped02")]
    typed = await sim.get("/connect/oauth2/authorize/confirm", params=form, allow_redirects=False)
    code = URL(typed.headers["Location"]).query["code"]
    body = await (await sim.get("/sns/oauth2/access_token", params=exchange | {"code": code})).json()
    assert body["openid"] == "oTyped02"
    scripted = await sim.get(
        "/connect/oauth2/authorize", params=auth | {"sim_openid": "oAuto03"}, allow_redirects=False
    )
    code = URL(scripted.headers["Location"]).query["code"]
    body = await (await sim.get("/sns/oauth2/access_token", params=exchange | {"code": code})).json()
    assert body["openid"] == "oAuto03"
    wrong = await sim.get("/connect/oauth2/authorize", params=auth | {"appid": "wxother"})
    assert wrong.status == 400 and "appid" in await wrong.text()


async def test_phone_and_index_pages_render(sim) -> None:
    resp = await sim.get("/phone", params={"openid": "oPhoneUser<script>"})
    html = await resp.text()
    assert resp.status == 200
    assert "大莞家助手" in html and "我要求助" in html and "查询进度" in html
    assert "厚街镇" in html and "oPhoneUser&lt;script&gt;" in html and "oPhoneUser<script>" not in html
    token = await get_token(sim)
    await custom(sim, token, content="您的轮椅申请已受理")
    index = await (await sim.get("/")).text()
    assert "您的轮椅申请已受理" in index and "/phone?openid=" in index


async def test_menu_created_by_the_bot_appears_on_the_phone(sim) -> None:
    token = await get_token(sim)
    menu = {
        "button": [
            {"type": "click", "name": "我的诉求", "key": "MY_CASES"},
            {
                "name": "更多",
                "sub_button": [{"type": "view", "name": "项目公示", "url": "http://bot.example/p"}],
            },
        ]
    }
    resp = await sim.post("/cgi-bin/menu/create", params={"access_token": token}, json=menu)
    assert (await resp.json())["errcode"] == 0
    html = await (await sim.get("/phone")).text()
    assert 'data-key="MY_CASES"' in html and "项目公示" in html


# ============================================================================================ delivery


class EchoWebhook:
    """A tiny developer server: verifies like the bot must, answers ``收到：…`` (encrypted when asked)."""

    def __init__(self, *, delays: list[float] | None = None) -> None:
        self.received: list[dict[str, Any]] = []
        self.delays = list(delays or [])
        self.crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)

    async def handle(self, request: web.Request) -> web.Response:
        q = request.query
        body = await request.read()
        try:
            check_signature(TOKEN, q["signature"], q["timestamp"], q["nonce"])
        except InvalidSignatureException:
            return web.Response(status=403)
        encrypted = q.get("encrypt_type") == "aes"
        xml = (
            self.crypto.decrypt_message(body, q["msg_signature"], q["timestamp"], q["nonce"])
            if encrypted
            else body
        )
        msg = parse_message(xml)
        self.received.append({"params": dict(q), "body": body, "msg": msg, "fields": protocol.parse_xml(xml)})
        if self.delays:
            await asyncio.sleep(self.delays.pop(0))
        if msg.type == "event" and msg.event == "unsubscribe":
            return web.Response(text="success")
        said = {
            "text": lambda m: m.content,
            "voice": lambda m: m.recognition,
            "location": lambda m: m.label,
            "image": lambda m: m.image,
            "event": lambda m: f"{m.event}:{getattr(m, 'key', '')}",
        }[msg.type](msg)
        reply = protocol.build_xml(
            {
                "ToUserName": msg.source,
                "FromUserName": msg.target,
                "CreateTime": 1,
                "MsgType": "text",
                "Content": f"收到：{said}",
            }
        )
        if encrypted:
            reply = self.crypto.encrypt_message(reply, q["nonce"], q["timestamp"])
        return web.Response(text=reply, content_type="application/xml")


async def start_webhook(aiohttp_server, hook: EchoWebhook) -> str:
    app = web.Application()
    app.router.add_post("/wechat", hook.handle)
    server = await aiohttp_server(app)
    return str(server.make_url("/wechat"))


async def phone_sim(aiohttp_client, url: str, mode: str, reply_timeout: float = 5.0):
    app = create_sim_app(
        token=TOKEN,
        appid=APPID,
        aes_key=AES_KEY,
        mode=mode,
        webhook_url=url,
        secret=SECRET,
        reply_timeout=reply_timeout,
    )
    return await aiohttp_client(app)


@pytest.mark.parametrize("mode", ["plain", "compat", "safe"])
async def test_phone_send_reaches_the_webhook_and_shows_the_passive_reply(
    aiohttp_server, aiohttp_client, mode
):
    hook = EchoWebhook()
    sim = await phone_sim(aiohttp_client, await start_webhook(aiohttp_server, hook), mode)
    resp = await sim.post(
        "/_sim/send", json={"openid": OPENID, "type": "text", "content": "想要一辆轮椅，住厚街"}
    )
    out = await resp.json()
    assert out["reply"] == "收到：想要一辆轮椅，住厚街" and out["tries"] == 1 and out["error"] is None
    assert hook.received[0]["msg"].id == out["msg_id"]
    assert ("Encrypt" in protocol.parse_xml(hook.received[0]["body"])) == (mode != "plain")
    inbox = await (await sim.get("/_sim/inbox", params={"openid": OPENID})).json()
    assert [(e["sender"], e["text"]) for e in inbox["entries"]] == [
        ("user", "想要一辆轮椅，住厚街"),
        ("bot", "收到：想要一辆轮椅，住厚街"),
    ]
    assert (await (await sim.get("/_sim/inbox", params={"openid": OPENID, "after": inbox["last"]})).json())[
        "entries"
    ] == []


async def test_phone_sends_every_kind_and_pushes_show_up(aiohttp_server, aiohttp_client):
    hook = EchoWebhook()
    sim = await phone_sim(aiohttp_client, await start_webhook(aiohttp_server, hook), "safe")
    state = sim.app[SIM_STATE]
    state.enforce_window = True
    cases = [
        ({"type": "voice", "recognition": "我阿爸要轮椅"}, "收到：我阿爸要轮椅"),
        (
            {"type": "location", "lat": 22.94, "lon": 113.67, "label": "广东省东莞市厚街镇"},
            "收到：广东省东莞市厚街镇",
        ),
        ({"type": "image", "pic_url": "/static/pothole.svg"}, None),
        ({"type": "event", "event": "CLICK", "key": "MENU_PROGRESS"}, "收到：click:MENU_PROGRESS"),
        ({"type": "event", "event": "subscribe"}, "收到：subscribe:"),
    ]
    for payload, expected in cases:
        out = await (await sim.post("/_sim/send", json=payload | {"openid": OPENID})).json()
        if expected:
            assert out["reply"] == expected
    image = hook.received[2]["msg"]
    assert image.image.startswith("http://") and image.image.endswith("/static/pothole.svg")
    assert hook.received[3]["msg"].key == "MENU_PROGRESS" and "MsgId" not in hook.received[3]["fields"]
    assert len({r["msg"].id for r in hook.received[:3]}) == 3
    # the phone opened the 48-hour window: a customer-service push goes through and lands in the chat
    token = await get_token(sim)
    assert (await custom(sim, token, content="志愿者明天上门"))["errcode"] == 0
    inbox = await (await sim.get("/_sim/inbox", params={"openid": OPENID})).json()
    assert ("bot", "custom", "志愿者明天上门") in [
        (e["sender"], e["kind"], e["text"]) for e in inbox["entries"]
    ]
    out = await (
        await sim.post("/_sim/send", json={"openid": OPENID, "type": "event", "event": "unsubscribe"})
    ).json()
    assert out["reply"] is None and out["error"] is None
    assert (await custom(sim, token))["errcode"] == 43004


async def test_slow_webhook_gets_three_tries_with_the_same_msgid(aiohttp_server, aiohttp_client):
    hook = EchoWebhook(delays=[0.5, 0.5])
    sim = await phone_sim(
        aiohttp_client, await start_webhook(aiohttp_server, hook), "safe", reply_timeout=0.2
    )
    out = await (await sim.post("/_sim/send", json={"openid": OPENID, "content": "你好"})).json()
    assert out["tries"] == 3 and out["reply"] == "收到：你好"
    assert [r["msg"].id for r in hook.received] == [out["msg_id"]] * 3

    hook.delays = [0.5, 0.5, 0.5]
    out = await (await sim.post("/_sim/send", json={"openid": OPENID, "content": "还在吗"})).json()
    assert out["tries"] == 3 and out["reply"] is None and out["error"] == "timeout"
    inbox = await (await sim.get("/_sim/inbox", params={"openid": OPENID})).json()
    assert inbox["entries"][-1]["text"] == UNAVAILABLE


async def test_phone_shows_wechat_error_when_the_webhook_is_down(aiohttp_client):
    sim = await phone_sim(aiohttp_client, "http://127.0.0.1:9/wechat", "plain")
    out = await (await sim.post("/_sim/send", json={"openid": OPENID, "content": "你好"})).json()
    assert out["reply"] is None and out["error"].startswith("connection")
    inbox = await (await sim.get("/_sim/inbox", params={"openid": OPENID})).json()
    assert inbox["entries"][-1]["sender"] == "system"


# ============================================================================================ SimulatedUser


@pytest.mark.parametrize("mode", ["plain", "compat", "safe"])
async def test_simulated_user_round_trip(aiohttp_server, mode):
    hook = EchoWebhook()
    url = await start_webhook(aiohttp_server, hook)
    clock = Clock(1_800_000_000.5)
    async with aiohttp.ClientSession() as session:
        user = SimulatedUser(
            session,
            webhook_url=url,
            token=TOKEN,
            appid=APPID,
            aes_key=AES_KEY if mode != "plain" else None,
            mode=mode,
            openid=OPENID,
            clock=clock,
        )
        r = await user.send_text("查询进度")
        assert (r.status, r.text, r.msg_type) == (200, "收到：查询进度", "text")
        assert (await user.send_voice("路灯唔着")).text == "收到：路灯唔着"
        assert (await user.send_location(22.82, 113.67, "虎门镇")).text == "收到：虎门镇"
        assert (await user.send_event("CLICK", "MENU_HELP")).text == "收到：click:MENU_HELP"
        assert (await user.send_event("unsubscribe")).is_success
        await user.send_text("再来")
        retry = await user.resend()
        fresh = await user.resend(fresh_signature=True)
    assert retry.text == fresh.text == "收到：再来"
    msgs = [r["msg"] for r in hook.received]
    assert msgs[0].create_time.timestamp() == 1_800_000_000
    ids = [m.id for m in msgs if m.type != "event"]
    assert len(set(ids[:4])) == 4 and ids[-3] == ids[-2] == ids[-1]
    assert hook.received[-3]["params"] == hook.received[-2]["params"]
    assert hook.received[-1]["params"]["nonce"] != hook.received[-2]["params"]["nonce"]


async def test_simulated_user_opens_the_window_on_the_simulator(aiohttp_server, aiohttp_client):
    hook = EchoWebhook()
    url = await start_webhook(aiohttp_server, hook)
    sim = await phone_sim(aiohttp_client, url, "safe")
    sim.app[SIM_STATE].enforce_window = True
    token = await get_token(sim)
    assert (await custom(sim, token))["errcode"] == 45015
    async with aiohttp.ClientSession() as session:
        user = SimulatedUser(
            session,
            webhook_url=url,
            token=TOKEN,
            appid=APPID,
            aes_key=AES_KEY,
            mode="safe",
            openid=OPENID,
            sim_url=str(sim.make_url("/")),
        )
        await user.send_text("你好")
    assert (await custom(sim, token))["errcode"] == 0


async def test_simulated_user_reports_a_forged_reply():
    async def forged(request: web.Request) -> web.Response:
        reply = protocol.encrypt_reply(
            "<xml><MsgType>text</MsgType><Content>x</Content></xml>",
            token="someone-else",
            aes_key=AES_KEY,
            appid=APPID,
            timestamp=1,
            nonce="n",
        )
        return web.Response(text=reply)

    app = web.Application()
    app.router.add_post("/wechat", forged)
    from aiohttp.test_utils import TestServer

    async with TestServer(app) as server, aiohttp.ClientSession() as session:
        user = SimulatedUser(
            session,
            webhook_url=str(server.make_url("/wechat")),
            token=TOKEN,
            appid=APPID,
            aes_key=AES_KEY,
            mode="safe",
            openid=OPENID,
        )
        r = await user.send_text("你好")
    assert r.text is None and "MsgSignature" in (r.error or "")


async def test_config_switches_mode_and_window(sim) -> None:
    resp = await sim.post("/_sim/config", json={"enforce_window": True, "window_quota": 2, "mode": "compat"})
    assert await resp.json() == {
        "enforce_window": True,
        "window_quota": 2,
        "webhook_url": "http://127.0.0.1:9/wechat",
        "mode": "compat",
    }
    token = await get_token(sim)
    await sim.post("/_sim/interaction", json={"openid": OPENID})
    assert [(await custom(sim, token))["errcode"] for _ in range(3)] == [0, 0, 45047]
    bad = await sim.post("/_sim/config", json={"mode": "rot13"})
    assert bad.status == 400


async def test_template_send_pushes_templatesendjobfinish_when_enabled(aiohttp_server, aiohttp_client):
    hook = EchoWebhook()
    url = await start_webhook(aiohttp_server, hook)
    app = create_sim_app(
        token=TOKEN,
        appid=APPID,
        aes_key=AES_KEY,
        mode="safe",
        webhook_url=url,
        secret=SECRET,
        template_job_events=True,
    )
    sim = await aiohttp_client(app)
    token = await get_token(sim)
    ok = await template(sim, token, {"thing1": {"value": "已受理"}})
    for _ in range(100):
        if hook.received:
            break
        await asyncio.sleep(0.02)
    [event] = [r["msg"] for r in hook.received]
    assert (event.event, event.status, event.source) == ("templatesendjobfinish", "success", OPENID)
    assert int(hook.received[0]["fields"]["MsgID"]) == ok["msgid"]


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "location", "lat": "north", "lon": 1},
        {"type": "location"},
        {"type": "event", "event": "EXPLODE"},
        {"type": "telegram"},
    ],
)
async def test_phone_refuses_malformed_messages(sim, payload) -> None:
    resp = await sim.post("/_sim/send", json=payload)
    assert resp.status == 400
    assert sim.app[SIM_STATE].chats == {}
