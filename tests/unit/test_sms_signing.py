"""The SMS providers' request signatures against independent oracles: Alibaba Cloud's published example and
Tencent Cloud's own SDK (from the package index)."""

from __future__ import annotations

import json

import pytest

from reference.sms_signing import aliyun_signature, tc3_authorization


def test_aliyun_signature_matches_the_published_example() -> None:
    # the example of Alibaba Cloud's SMS documentation ("HTTP协议及签名"), signed with testSecret over GET
    params = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert aliyun_signature(params, secret="testSecret", method="GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert aliyun_signature({**params, "Signature": "ignored"}, secret="testSecret", method="GET") == (
        "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    )
    assert aliyun_signature(params, secret="testSecreT", method="GET") != "zJDF+Lrzhj/ThnlvIToysFRq6t4="


@pytest.mark.parametrize("timestamp", [1_551_113_065, 1_765_000_000, 1_798_761_599])
def test_tencent_tc3_matches_tencents_own_sdk(timestamp: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from tencentcloud.common import credential
    from tencentcloud.common.abstract_client import AbstractClient
    from tencentcloud.common.http.request import RequestInternal

    class Sms(AbstractClient):  # type: ignore[misc]
        _apiVersion = "2021-01-11"
        _endpoint = "sms.tencentcloudapi.com"
        _service = "sms"

    params = {
        "PhoneNumberSet": ["+8613800000000"],
        "SmsSdkAppId": "1400000000",
        "SignName": "大莞家",
        "TemplateId": "1234567",
        "TemplateParamSet": ["MS20261205-0001", "已受理"],
        "SessionContext": "o1",
    }
    client = Sms(credential.Credential("AKIDexample", "secretExample"), "ap-guangzhou")
    req = RequestInternal(client._get_endpoint(), "POST", "/")
    monkeypatch.setattr("tencentcloud.common.abstract_client.time.time", lambda: timestamp)
    client._build_req_with_tc3_signature("SendSms", params, req)
    ours = tc3_authorization(
        secret_id="AKIDexample",
        secret_key="secretExample",
        host="sms.tencentcloudapi.com",
        payload=req.data,
        timestamp=timestamp,
        content_type=req.header["Content-Type"],
    )
    assert ours == req.header["Authorization"]
    assert json.loads(req.data) == params
