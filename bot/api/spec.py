"""The OpenAPI 3.1 document of ``/api/v1/``: the contract the schema fuzzer in CI holds the implementation to."""

from __future__ import annotations

from typing import Any

from bot.cases.lifecycle import STATE_LABEL
from bot.cases.numbering import KIND_LABEL
from reference.towns import TOWNS

NULLABLE_STR = {"type": ["string", "null"]}
STAMP = {"type": ["string", "null"], "format": "date-time"}

CASE = {
    "type": "object",
    "required": ["case_no", "kind", "status", "town", "description", "created_at"],
    "properties": {
        "case_no": {"type": "string", "examples": ["MS20261205-0001"]},
        "external_id": NULLABLE_STR,
        "kind": {"type": "string", "enum": list(KIND_LABEL)},
        "kind_label": {"type": "string"},
        "status": {"type": "string", "enum": list(STATE_LABEL)},
        "status_label": {"type": "string"},
        "category": NULLABLE_STR,
        "town": {"type": "string"},
        "community": NULLABLE_STR,
        "community_id": {
            "type": ["integer", "null"],
            "description": "村（社区）在本镇街名单中的编号；诉求未对应名单中的村（社区）时为 null",
        },
        "item": NULLABLE_STR,
        "quantity": {"type": ["integer", "null"]},
        "description": {"type": "string", "description": "电话与身份证号打码，除非密钥有 cases:pii"},
        "contact_phone": {"type": ["string", "null"], "description": "打码，除非密钥有 cases:pii"},
        "channel": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": STAMP,
        "stage_deadline": STAMP,
        "completed_at": STAMP,
        "closed_at": STAMP,
    },
}
NEW_CASE = {
    "type": "object",
    "required": ["external_id", "kind", "town", "description"],
    "properties": {
        "external_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "description": "调用方自己的编号（幂等键）",
        },
        "kind": {"type": "string", "enum": list(KIND_LABEL)},
        "town": {"type": "string", "enum": [t.name for t in TOWNS]},
        "description": {"type": "string", "minLength": 1, "maxLength": 2000},
        "category": {"type": ["string", "null"], "maxLength": 32},
        "item": {"type": ["string", "null"], "maxLength": 64},
        "community": {
            "type": ["string", "null"],
            "maxLength": 64,
            "description": "村（社区）名称；给出 community_id 时以名单中的名称为准",
        },
        "community_id": {
            "type": ["integer", "null"],
            "minimum": 1,
            "description": "town 的村（社区）名单中仍在使用的编号；未知或属于其他镇街的编号返回 422",
        },
        "address": {"type": ["string", "null"], "maxLength": 128},
        "contact_phone": {"type": ["string", "null"], "maxLength": 32},
    },
}
EVENT = {
    "type": "object",
    "required": ["id", "at", "kind", "actor_type"],
    "properties": {
        "id": {"type": "integer"},
        "at": {"type": "string", "format": "date-time"},
        "kind": {"type": "string"},
        "actor_type": {"type": "string"},
        "from_status": NULLABLE_STR,
        "to_status": NULLABLE_STR,
        "note": {"type": "string"},
        "external_status": NULLABLE_STR,
    },
}
NOTE = {
    "type": "object",
    "required": ["text"],
    "properties": {
        "text": {"type": "string", "minLength": 1, "maxLength": 500},
        "external_status": {
            "type": ["string", "null"],
            "maxLength": 32,
            "description": "调用方自己的办理状态，如 已转办",
        },
    },
}
SUBSCRIPTION = {
    "type": "object",
    "required": ["id", "url", "events"],
    "properties": {
        "id": {"type": "integer"},
        "url": {"type": "string"},
        "secret": {"type": "string", "description": "只在创建时返回一次：回调签名的 HMAC 密钥"},
        "events": {"type": "array", "items": {"type": "string", "enum": ["case.status_changed"]}},
    },
}
PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {"type": "object", "properties": {"field": NULLABLE_STR, "detail": {"type": "string"}}},
        },
    },
}


def _problem(text: str) -> dict[str, Any]:
    return {
        "description": text,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _ok(text: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": text, "content": {"application/json": {"schema": schema}}}


COMMON = {
    "401": _problem("缺少密钥、密钥无效或已吊销"),
    "403": _problem("密钥没有所需权限"),
    "429": _problem("调用过于频繁（每个密钥每分钟有上限）"),
    "500": _problem("服务器内部错误（已记录）"),
}
WITH_BODY = {
    "400": _problem("请求体不是合法的 JSON 对象"),
    "413": _problem("请求体过大"),
    "415": _problem("请求体不是 application/json"),
    "422": _problem("字段不符合规则"),
}
CASE_NO = {"name": "case_no", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}


def openapi_document(*, server: str) -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/Case"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "大莞家助手 开放接口",
            "version": "1.0.0",
            "description": "供 12345 热线、一网统管等平台转入诉求、查询进度、订阅状态变化。"
            "密钥由管理员用 `python -m bot api-key create` 创建，放在 Authorization: Bearer 头中；"
            "限定镇街的密钥只能看到和创建本镇街的诉求。错误以 application/problem+json 返回。",
        },
        "servers": [{"url": server}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Case": CASE,
                "NewCase": NEW_CASE,
                "Event": EVENT,
                "Note": NOTE,
                "Subscription": SUBSCRIPTION,
                "Problem": PROBLEM,
            },
        },
        "paths": {
            "/v1/cases": {
                "post": {
                    "operationId": "createCase",
                    "summary": "创建诉求（按 external_id 幂等：同一编号再次提交返回第一次创建的诉求，状态码 200）",
                    "security": [{"bearer": ["cases:write"]}],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewCase"}}},
                    },
                    "responses": {
                        "201": _ok("已创建", ref),
                        "200": _ok("此 external_id 已创建过", ref),
                        **WITH_BODY,
                        **COMMON,
                    },
                },
                "get": {
                    "operationId": "listCases",
                    "summary": "按条件列出诉求（游标分页，按创建顺序）",
                    "security": [{"bearer": ["cases:read"]}],
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "schema": {"type": "string"},
                            "description": "逗号分隔的状态",
                        },
                        {
                            "name": "kind",
                            "in": "query",
                            "schema": {"type": "string", "enum": list(KIND_LABEL)},
                        },
                        {"name": "town", "in": "query", "schema": {"type": "string", "maxLength": 16}},
                        {
                            "name": "updated_since",
                            "in": "query",
                            "schema": {"type": "string", "format": "date-time"},
                        },
                        {
                            "name": "cursor",
                            "in": "query",
                            "schema": {"type": "string"},
                            "description": "上一页的 next_cursor",
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                        },
                    ],
                    "responses": {
                        "200": _ok(
                            "一页诉求",
                            {
                                "type": "object",
                                "required": ["items", "next_cursor"],
                                "properties": {
                                    "items": {"type": "array", "items": ref},
                                    "next_cursor": NULLABLE_STR,
                                },
                            },
                        ),
                        "400": _problem("查询参数无效"),
                        **COMMON,
                    },
                },
            },
            "/v1/cases/{case_no}": {
                "get": {
                    "operationId": "readCase",
                    "summary": "读取一个诉求",
                    "security": [{"bearer": ["cases:read"]}],
                    "parameters": [CASE_NO],
                    "responses": {
                        "200": _ok("诉求", ref),
                        "404": _problem("没有这个诉求（或不在密钥的镇街）"),
                        **COMMON,
                    },
                }
            },
            "/v1/cases/{case_no}/timeline": {
                "get": {
                    "operationId": "readTimeline",
                    "summary": "诉求的时间线（档案）",
                    "security": [{"bearer": ["cases:read"]}],
                    "parameters": [CASE_NO],
                    "responses": {
                        "200": _ok(
                            "时间线",
                            {
                                "type": "object",
                                "required": ["case_no", "events"],
                                "properties": {
                                    "case_no": {"type": "string"},
                                    "events": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Event"},
                                    },
                                },
                            },
                        ),
                        "404": _problem("没有这个诉求"),
                        **COMMON,
                    },
                }
            },
            "/v1/cases/{case_no}/notes": {
                "post": {
                    "operationId": "addNote",
                    "summary": "添加备注或外部办理状态（写入时间线）",
                    "security": [{"bearer": ["cases:write"]}],
                    "parameters": [CASE_NO],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Note"}}},
                    },
                    "responses": {
                        "201": _ok("已记录", {"$ref": "#/components/schemas/Event"}),
                        "404": _problem("没有这个诉求"),
                        **WITH_BODY,
                        **COMMON,
                    },
                }
            },
            "/v1/subscriptions": {
                "post": {
                    "operationId": "subscribe",
                    "summary": "订阅状态变化回调（POST JSON，头 X-DGJ-Signature: sha256=HMAC(secret, 时间戳.正文)；失败按 30 秒、2 分、10 分、1 小时、6 小时重试，之后进入死信列表由工作人员重放）",
                    "security": [{"bearer": ["webhooks"]}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["url"],
                                    "properties": {"url": {"type": "string", "maxLength": 512}},
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": _ok("已订阅", {"$ref": "#/components/schemas/Subscription"}),
                        **WITH_BODY,
                        **COMMON,
                    },
                },
                "get": {
                    "operationId": "listSubscriptions",
                    "summary": "本密钥的订阅",
                    "security": [{"bearer": ["webhooks"]}],
                    "responses": {
                        "200": _ok(
                            "订阅",
                            {
                                "type": "object",
                                "required": ["items"],
                                "properties": {
                                    "items": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Subscription"},
                                    }
                                },
                            },
                        ),
                        **COMMON,
                    },
                },
            },
            "/v1/subscriptions/{sub_id}": {
                "delete": {
                    "operationId": "unsubscribe",
                    "summary": "取消订阅",
                    "security": [{"bearer": ["webhooks"]}],
                    "parameters": [
                        {"name": "sub_id", "in": "path", "required": True, "schema": {"type": "integer"}}
                    ],
                    "responses": {
                        "204": {"description": "已取消"},
                        "404": _problem("没有这个订阅"),
                        **COMMON,
                    },
                }
            },
        },
    }
