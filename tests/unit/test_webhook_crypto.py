"""webhooks/crypto.py and webhooks/nonces.py against independent oracles.

The oracles are published values, not this code: WeChat's own WXBizMsgCrypt sample (token ``spamtest``, the
EncodingAESKey ``abc…ABCDEFG``, AppID ``wx2c2769f8efd9abc2``), and the vectors in wechatpy's test suite (the callback
``signature`` for token ``test``; the enterprise envelope for token ``123456``, whose encryption with the fixed
random prefix ``1234567890123456`` is published byte for byte). Where no published value exists (hostile inputs),
the expected outcome follows from the envelope's definition, built in the test with ``cryptography`` directly:
``AES-256-CBC(key, iv=key[:16], random16 + len(xml) as 4 bytes big-endian + xml + appid + PKCS#7 padding to 32)``.
wechatpy's ``WeChatCrypto`` (a separate implementation) is the cross-check for round trips.
"""

from __future__ import annotations

import base64
import itertools
import struct
import xml.etree.ElementTree as ET

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException

from webhooks.crypto import AppIdMismatch, CryptoError, WeChatAes, sign, signature_ok
from webhooks.nonces import MemoryNonceStore

# --- WeChat's published sample (WXBizMsgCrypt, the official-account message crypto demo) -----------------------
SAMPLE_TOKEN = "spamtest"
SAMPLE_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SAMPLE_APPID = "wx2c2769f8efd9abc2"
SAMPLE_TIMESTAMP = "1409735669"
SAMPLE_NONCE = "1320562132"
SAMPLE_MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
SAMPLE_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2Ld"
    "JF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5V"
    "Tjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCS"
    "UdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9Ghg"
    "lF2PE="
)
# the plain fields the sample sends beside Encrypt in compatible mode: the envelope holds the same message
SAMPLE_FIELDS = {
    "ToUserName": "gh_10f6c3c3ac5a",
    "FromUserName": "oyORnuP8q7ou2gfYjqLzSIWZf0rs",
    "CreateTime": "1409735668",
    "MsgType": "text",
    "Content": "abcdteT",
    "MsgId": "6054768590064713728",
}

# --- wechatpy's published vectors -------------------------------------------------------------------------------
# tests/test_utils.py: the plain callback signature
PLAIN_TOKEN, PLAIN_TIMESTAMP, PLAIN_NONCE = "test", "1410685589", "test"
PLAIN_SIGNATURE = "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"
PLAIN_SIGNATURE_LAST_CHANGED = "f21891de399b4e33a1a93c9a7b8a8fffb5a443fe"  # published as the failing one
# tests/test_crypto.py: the envelope (same algorithm; the corp id stands where an AppID stands)
W_TOKEN = "123456"
W_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
W_APPID = "wx49f0ab532d5d035a"
W_ECHO = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
W_ECHO_TIMESTAMP, W_ECHO_NONCE = "1411443780", "437374425"
W_ECHO_SIGNATURE = "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96"
W_REPLY = (
    "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
    "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]></ToUserName>\n"
    "<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>"
)
W_REPLY_TIMESTAMP, W_REPLY_NONCE = "1411525903", "461056294"
W_REPLY_PREFIX = b"1234567890123456"
W_REPLY_ENCRYPT = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObv"
    "esEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NR"
    "rrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oa"
    "zPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3"
)
W_REPLY_SIGNATURE = "407518b7649e86ef23978113f92d27afa9296533"
W_INBOUND_ENCRYPT = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzx"
    "h6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQ"
    "qGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7"
    "FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
W_INBOUND_SIGNATURE = "74d92dfeb87ba7c714f89d98870ae5eb62dff26d"


def fields_of(xml_text: str) -> dict[str, str]:
    root = ET.fromstring(xml_text)
    assert root.tag == "xml"
    return {child.tag: child.text or "" for child in root}


# --- the envelope built by hand from its definition (not by the code under test) -------------------------------


def aes_key(encoding_aes_key: str) -> bytes:
    return base64.b64decode(encoding_aes_key + "=")


def seal(plain: bytes, encoding_aes_key: str = SAMPLE_AES_KEY) -> str:
    """AES-256-CBC with iv = key[:16] over ``plain`` exactly as given (the caller pads, or mis-pads)."""
    key = aes_key(encoding_aes_key)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")


def unseal(encrypted: str, encoding_aes_key: str = SAMPLE_AES_KEY) -> bytes:
    key = aes_key(encoding_aes_key)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    return decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()


def envelope(xml: bytes, appid: bytes = SAMPLE_APPID.encode(), *, length: int | None = None) -> bytes:
    """random16 + length + xml + appid, unpadded."""
    return b"R" * 16 + struct.pack(">I", len(xml) if length is None else length) + xml + appid


def pkcs7_32(data: bytes) -> bytes:
    pad = 32 - len(data) % 32
    return data + bytes([pad]) * pad


def sample_aes(appid: str = SAMPLE_APPID) -> WeChatAes:
    return WeChatAes(SAMPLE_AES_KEY, appid)


# --- signatures ---------------------------------------------------------------------------------------------------


def test_plain_signature_is_the_published_value() -> None:
    assert sign(PLAIN_TOKEN, PLAIN_TIMESTAMP, PLAIN_NONCE) == PLAIN_SIGNATURE
    assert signature_ok((PLAIN_TOKEN, PLAIN_TIMESTAMP, PLAIN_NONCE), PLAIN_SIGNATURE) is True


def test_published_failing_signature_is_refused() -> None:
    # differs from the right one in its last hex digit only
    assert signature_ok((PLAIN_TOKEN, PLAIN_TIMESTAMP, PLAIN_NONCE), PLAIN_SIGNATURE_LAST_CHANGED) is False


@pytest.mark.parametrize("parts", list(itertools.permutations(("789", "456", "123"))))
def test_signature_sorts_its_parts(parts: tuple[str, str, str]) -> None:
    # wechatpy's WeChatSigner vector: SHA-1 of "123456789", whatever order the parts come in
    assert sign(*parts) == "f7c3bc1d808e04732adf679965ccc34ca7ae3441"


@pytest.mark.parametrize(
    ("parts", "published"),
    [
        pytest.param(
            (SAMPLE_TOKEN, SAMPLE_TIMESTAMP, SAMPLE_NONCE, SAMPLE_ENCRYPT),
            SAMPLE_MSG_SIGNATURE,
            id="wechat-sample",
        ),
        pytest.param(
            (W_TOKEN, W_ECHO_TIMESTAMP, W_ECHO_NONCE, W_ECHO), W_ECHO_SIGNATURE, id="wechatpy-echostr"
        ),
        pytest.param(
            (W_TOKEN, W_REPLY_TIMESTAMP, W_REPLY_NONCE, W_REPLY_ENCRYPT),
            W_REPLY_SIGNATURE,
            id="wechatpy-reply",
        ),
        pytest.param(
            (W_TOKEN, W_REPLY_TIMESTAMP, W_REPLY_NONCE, W_INBOUND_ENCRYPT),
            W_INBOUND_SIGNATURE,
            id="wechatpy-inbound",
        ),
    ],
)
def test_msg_signature_is_the_published_value(parts: tuple[str, ...], published: str) -> None:
    assert sign(*parts) == published
    assert signature_ok(parts, published) is True


def _one_digit_changed(signature: str, position: int) -> str:
    digit = signature[position]
    other = "0" if digit != "0" else "1"
    return signature[:position] + other + signature[position + 1 :]


@pytest.mark.parametrize("position", range(40))
def test_a_signature_wrong_in_any_one_digit_is_refused(position: int) -> None:
    """Issue 18's defect: a comparison of only a prefix (the first 8 hex digits, or any prefix) would accept a
    signature that is right up to the changed digit; every one of the 40 digits has to count."""
    parts = (SAMPLE_TOKEN, SAMPLE_TIMESTAMP, SAMPLE_NONCE, SAMPLE_ENCRYPT)
    forged = _one_digit_changed(SAMPLE_MSG_SIGNATURE, position)
    assert forged != SAMPLE_MSG_SIGNATURE
    assert signature_ok(parts, forged) is False


@pytest.mark.parametrize(
    "given",
    [
        pytest.param(SAMPLE_MSG_SIGNATURE[:8], id="first-8-digits"),
        pytest.param(SAMPLE_MSG_SIGNATURE[:39], id="one-digit-short"),
        pytest.param(SAMPLE_MSG_SIGNATURE + "0", id="one-digit-long"),
        pytest.param(SAMPLE_MSG_SIGNATURE + SAMPLE_MSG_SIGNATURE, id="twice"),
        pytest.param(SAMPLE_MSG_SIGNATURE[1:] + SAMPLE_MSG_SIGNATURE[0], id="rotated"),
        pytest.param(
            SAMPLE_MSG_SIGNATURE.upper(), id="upper-case"
        ),  # SHA-1 hex as WeChat sends it is lower case
        pytest.param(" " + SAMPLE_MSG_SIGNATURE, id="leading-space"),
        pytest.param(SAMPLE_MSG_SIGNATURE + "\n", id="trailing-newline"),
        pytest.param("", id="empty"),
        pytest.param("签名" * 20, id="not-ascii"),
        pytest.param("\ud800" * 40, id="lone-surrogates"),
    ],
)
def test_malformed_signatures_are_refused_without_an_exception(given: str) -> None:
    parts = (SAMPLE_TOKEN, SAMPLE_TIMESTAMP, SAMPLE_NONCE, SAMPLE_ENCRYPT)
    assert signature_ok(parts, given) is False


def test_signature_over_other_parts_is_refused() -> None:
    # the right signature for a neighbouring nonce, and the plain signature where msg_signature is due
    assert (
        signature_ok((SAMPLE_TOKEN, SAMPLE_TIMESTAMP, "1320562133", SAMPLE_ENCRYPT), SAMPLE_MSG_SIGNATURE)
        is False
    )
    plain = sign(SAMPLE_TOKEN, SAMPLE_TIMESTAMP, SAMPLE_NONCE)
    assert signature_ok((SAMPLE_TOKEN, SAMPLE_TIMESTAMP, SAMPLE_NONCE, SAMPLE_ENCRYPT), plain) is False


# --- decryption of the published envelopes ---------------------------------------------------------------------


def test_wechat_sample_decrypts_to_the_message_it_was_sent_with() -> None:
    xml = sample_aes().decrypt(SAMPLE_ENCRYPT)
    assert fields_of(xml) == SAMPLE_FIELDS


def test_wechatpy_inbound_vector_decrypts() -> None:
    xml = WeChatAes(W_AES_KEY, W_APPID).decrypt(W_INBOUND_ENCRYPT)
    got = fields_of(xml)
    assert (got["ToUserName"], got["FromUserName"], got["Content"], got["MsgType"]) == (
        W_APPID,
        "messense",
        "test",
        "text",
    )


def test_wechatpy_echostr_vector_decrypts_as_wechatpy_does() -> None:
    ours = WeChatAes(W_AES_KEY, W_APPID).decrypt(W_ECHO)
    theirs = WeChatCrypto(W_TOKEN, W_AES_KEY, W_APPID).decrypt_message(
        f"<xml><Encrypt><![CDATA[{W_ECHO}]]></Encrypt></xml>",
        W_ECHO_SIGNATURE,
        W_ECHO_TIMESTAMP,
        W_ECHO_NONCE,
    )
    assert ours == theirs
    assert ours.isdigit()


# --- encryption -----------------------------------------------------------------------------------------------------


def test_encryption_with_the_published_prefix_is_the_published_ciphertext() -> None:
    encrypted = WeChatAes(W_AES_KEY, W_APPID).encrypt(W_REPLY, random_prefix=W_REPLY_PREFIX)
    assert encrypted == W_REPLY_ENCRYPT
    assert sign(W_TOKEN, W_REPLY_TIMESTAMP, W_REPLY_NONCE, encrypted) == W_REPLY_SIGNATURE


@pytest.mark.parametrize(
    "xml",
    [
        "",
        "x",
        "<xml><Content><![CDATA[我爸中风后走不了路，想要一辆轮椅]]></Content></xml>",
        # lengths around the 32-byte padding boundary (16 + 4 + n + 18 bytes of AppID)
        *("a" * n for n in range(20, 60)),
        "😀" * 300,
    ],
)
def test_envelope_layout_and_padding_follow_the_definition(xml: str) -> None:
    encrypted = sample_aes().encrypt(xml, random_prefix=b"0123456789abcdef")
    body = xml.encode("utf-8")
    expected = pkcs7_32(b"0123456789abcdef" + struct.pack(">I", len(body)) + body + SAMPLE_APPID.encode())
    assert unseal(encrypted) == expected
    assert len(expected) % 32 == 0 and 1 <= expected[-1] <= 32
    assert sample_aes().decrypt(encrypted) == xml


def test_a_whole_block_of_padding_when_the_envelope_fills_its_blocks() -> None:
    # 16 + 4 + 26 + 18 = 64 bytes: PKCS#7 adds a whole block of 32 bytes of value 32
    encrypted = sample_aes().encrypt("a" * 26, random_prefix=b"\0" * 16)
    plain = unseal(encrypted)
    assert len(plain) == 96
    assert plain[64:] == bytes([32]) * 32


def test_wechatpy_reads_what_we_encrypt_and_we_read_what_it_encrypts() -> None:
    xml = "<xml><Content><![CDATA[家里需要一张棉被和一袋米]]></Content></xml>"
    ours = sample_aes().encrypt(xml)
    theirs = WeChatCrypto(SAMPLE_TOKEN, SAMPLE_AES_KEY, SAMPLE_APPID)
    assert (
        theirs.decrypt_message(
            f"<xml><Encrypt><![CDATA[{ours}]]></Encrypt></xml>",
            sign(SAMPLE_TOKEN, "1", "n", ours),
            "1",
            "n",
        )
        == xml
    )
    wrapped = ET.fromstring(theirs.encrypt_message(xml, "n", "1"))
    assert sample_aes().decrypt(wrapped.findtext("Encrypt") or "") == xml


def test_each_encryption_has_a_fresh_random_prefix() -> None:
    aes = sample_aes()
    first, second = aes.encrypt("同一句话"), aes.encrypt("同一句话")
    assert first != second
    assert unseal(first)[:16] != unseal(second)[:16]
    assert aes.decrypt(first) == aes.decrypt(second) == "同一句话"


@pytest.mark.parametrize("prefix", [b"", b"x" * 15, b"x" * 17])
def test_a_random_prefix_of_other_than_16_bytes_is_refused(prefix: bytes) -> None:
    with pytest.raises(ValueError) as caught:
        sample_aes().encrypt("x", random_prefix=prefix)
    assert str(caught.value) == "random prefix must be 16 bytes"


# --- the key ---------------------------------------------------------------------------------------------------------


BASE64_REFUSED = "EncodingAESKey is not valid base64"
LENGTH_REFUSED = "EncodingAESKey must decode to 32 bytes"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        pytest.param("abcdefghijklmnopqrstuvwxyz0123456789ABCDEF", BASE64_REFUSED, id="42-characters"),
        pytest.param("abcdefghijklmnopqrstuvwxyz0123456789ABC", LENGTH_REFUSED, id="39-characters-29-bytes"),
        pytest.param("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH", LENGTH_REFUSED, id="44-characters"),
        pytest.param("abcdefghijklmnopqrstuvwxyz0123456789ABCDEF!", BASE64_REFUSED, id="not-base64"),
        pytest.param("abcdefghijklmnopqrstuvwxyz0123456789ABCDEF-", BASE64_REFUSED, id="url-safe-alphabet"),
        pytest.param("", BASE64_REFUSED, id="empty"),
    ],
)
def test_a_malformed_encoding_aes_key_is_refused(key: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        WeChatAes(key, SAMPLE_APPID)
    assert str(caught.value) == message


# --- hostile ciphertexts: each refused with the one exception type and the exact reason -------------------------


def refused(encrypted: str, aes: WeChatAes | None = None) -> CryptoError:
    with pytest.raises(CryptoError) as caught:
        (aes or sample_aes()).decrypt(encrypted)
    return caught.value


@pytest.mark.parametrize(
    ("encrypted", "reason"),
    [
        pytest.param("!!!not base64!!!", "not base64", id="not-base64"),
        pytest.param(SAMPLE_ENCRYPT[:40] + "\n" + SAMPLE_ENCRYPT[40:], "not base64", id="newline-inside"),
        pytest.param(
            SAMPLE_ENCRYPT.replace("+", "-").replace("/", "_"), "not base64", id="url-safe-alphabet"
        ),
        pytest.param(SAMPLE_ENCRYPT[:-1], "not base64", id="padding-character-missing"),
        pytest.param("密文" * 10, "not base64", id="not-ascii"),
        pytest.param("", "ciphertext length is not a multiple of the block size", id="empty"),
        pytest.param(
            base64.b64encode(b"x" * 15).decode(),
            "ciphertext length is not a multiple of the block size",
            id="15-bytes",
        ),
        pytest.param(
            base64.b64encode(base64.b64decode(SAMPLE_ENCRYPT)[:-1]).decode(),
            "ciphertext length is not a multiple of the block size",
            id="one-byte-short",
        ),
        pytest.param(
            base64.b64encode(base64.b64decode(SAMPLE_ENCRYPT)[:-16]).decode(),
            "bad padding",
            id="last-block-cut",
        ),
    ],
)
def test_malformed_ciphertext_is_refused(encrypted: str, reason: str) -> None:
    error = refused(encrypted)
    assert type(error) is CryptoError
    assert str(error) == reason


@pytest.mark.parametrize(
    "plain",
    [
        pytest.param(envelope(b"<xml/>") + b"\0" * 4, id="padding-byte-zero"),
        pytest.param(pkcs7_32(envelope(b"<xml/>"))[:-1] + b"\x21", id="padding-byte-33"),
        pytest.param(envelope(b"<xml/>") + b"\x03\x03\x03\x02", id="padding-bytes-disagree"),
        pytest.param(envelope(b"<xml/>") + b"\0\0\0\xff", id="padding-byte-255"),
    ],
)
def test_bad_padding_is_refused(plain: bytes) -> None:
    assert len(plain) % 16 == 0
    error = refused(seal(plain))
    assert type(error) is CryptoError
    assert str(error) == "bad padding"


def test_padding_of_any_length_up_to_32_that_is_consistent_is_accepted() -> None:
    # WeChat pads to 32 bytes; an envelope padded the AES way (to 16) is still a well-formed PKCS#7 ending
    body = envelope(b"<xml/>")
    pad16 = 16 - len(body) % 16
    assert sample_aes().decrypt(seal(body + bytes([pad16]) * pad16)) == "<xml/>"


def test_an_envelope_shorter_than_its_length_field_is_refused() -> None:
    error = refused(seal(pkcs7_32(b"R" * 16 + b"\0\0")))
    assert type(error) is CryptoError
    assert str(error) == "envelope too short"


@pytest.mark.parametrize("declared", [7 + len(SAMPLE_APPID) + 1, 10_000, 2**32 - 1])
def test_a_declared_length_beyond_the_envelope_is_refused(declared: int) -> None:
    error = refused(seal(pkcs7_32(envelope(b"<xml/>!", length=declared))))
    assert type(error) is CryptoError
    assert str(error) == "declared length exceeds the envelope"


def test_a_declared_length_reaching_exactly_to_the_end_is_an_empty_appid() -> None:
    # length covers xml + AppID: nothing is left for the AppID, which then does not match
    with pytest.raises(AppIdMismatch):
        sample_aes().decrypt(seal(pkcs7_32(envelope(b"<xml/>", length=6 + len(SAMPLE_APPID)))))


def test_an_envelope_of_only_a_zero_length_field_is_a_message_for_no_appid() -> None:
    # 16 random bytes and a length of 0: well formed, nothing inside, and no AppID: refused as another AppID's
    # (403 at the edge), not as undecryptable (400)
    sealed = seal(pkcs7_32(b"R" * 16 + b"\0\0\0\0"))
    with pytest.raises(AppIdMismatch):
        sample_aes().decrypt(sealed)
    assert sample_aes(appid="").decrypt(sealed) == ""


def test_a_payload_that_is_not_utf8_is_refused() -> None:
    error = refused(seal(pkcs7_32(envelope(b"<xml>\xff\xfe</xml>"))))
    assert type(error) is CryptoError
    assert str(error) == "payload is not UTF-8"


def test_the_sample_under_another_key_is_refused_as_undecryptable() -> None:
    other = WeChatAes("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq", SAMPLE_APPID)
    error = refused(SAMPLE_ENCRYPT, other)
    assert not isinstance(error, AppIdMismatch)


# --- the AppID check -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "configured",
    [
        "wxffffffffffffffff",
        SAMPLE_APPID[:-1],  # a prefix of the real one
        SAMPLE_APPID + "0",  # the real one and more
        SAMPLE_APPID.upper(),
        "",
    ],
)
def test_the_sample_for_another_appid_is_refused(configured: str) -> None:
    with pytest.raises(AppIdMismatch) as caught:
        sample_aes(configured).decrypt(SAMPLE_ENCRYPT)
    assert str(caught.value) == "payload addressed to another AppID"


def test_an_envelope_sealed_by_wechatpy_for_another_appid_is_refused() -> None:
    wrapped = ET.fromstring(
        WeChatCrypto(SAMPLE_TOKEN, SAMPLE_AES_KEY, "wx0000000000000000").encrypt_message("<xml/>", "n", "1")
    )
    with pytest.raises(AppIdMismatch):
        sample_aes().decrypt(wrapped.findtext("Encrypt") or "")
    # and wechatpy refuses ours for another AppID the same way
    ours = sample_aes().encrypt("<xml/>")
    with pytest.raises(InvalidAppIdException):
        WeChatCrypto(SAMPLE_TOKEN, SAMPLE_AES_KEY, "wx0000000000000000").decrypt_message(
            f"<xml><Encrypt><![CDATA[{ours}]]></Encrypt></xml>", sign(SAMPLE_TOKEN, "1", "n", ours), "1", "n"
        )


def test_appid_mismatch_is_a_crypto_error() -> None:
    # the edge catches AppIdMismatch first (403) and CryptoError after it (400)
    assert issubclass(AppIdMismatch, CryptoError)


# --- replay memory ---------------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_nonce_is_new_once_then_answers_its_first_fingerprint() -> None:
    store = MemoryNonceStore(clock=Clock())
    assert await store.claim("n1", "100", "fp-a", ttl=60) is None
    assert await store.claim("n1", "100", "fp-a", ttl=60) == "fp-a"  # a retry: same message
    assert await store.claim("n1", "100", "fp-b", ttl=60) == "fp-a"  # a replay: the first one still counts
    assert await store.claim("n1", "101", "fp-b", ttl=60) is None  # another timestamp is another request
    assert await store.claim("n2", "100", "fp-b", ttl=60) is None  # another nonce too


async def test_a_nonce_is_remembered_until_its_ttl_and_not_a_moment_longer() -> None:
    clock = Clock()
    store = MemoryNonceStore(clock=clock)
    assert await store.claim("n1", "100", "fp-a", ttl=60) is None
    clock.now += 59.999
    assert await store.claim("n1", "100", "fp-b", ttl=60) == "fp-a"
    clock.now = 1060.0  # expires at 1000 + 60
    assert await store.claim("n1", "100", "fp-b", ttl=60) is None
    assert await store.claim("n1", "100", "fp-c", ttl=60) == "fp-b"
    assert len(store) == 1


async def test_seen_is_claim_without_a_fingerprint() -> None:
    store = MemoryNonceStore(clock=Clock())
    assert await store.seen("n1", "100", ttl=60) is False
    assert await store.seen("n1", "100", ttl=60) is True
    assert await store.seen("n2", "100", ttl=60) is False  # the pair counts: another nonce
    assert await store.seen("n1", "101", ttl=60) is False  # another timestamp


async def test_the_oldest_nonce_goes_first_when_the_store_is_full() -> None:
    clock = Clock()
    store = MemoryNonceStore(max_entries=3, clock=clock)
    for i in range(3):
        assert await store.claim(f"n{i}", "100", f"fp{i}", ttl=60) is None
        clock.now += 1
    assert await store.claim("n3", "100", "fp3", ttl=60) is None
    assert len(store) == 3
    assert await store.claim("n0", "100", "again", ttl=60) is None  # n0 was dropped: it is new again
    assert await store.claim("n2", "100", "x", ttl=60) == "fp2"  # n2 is still known
    assert len(store) == 3


async def test_expired_nonces_are_dropped_from_the_front() -> None:
    clock = Clock()
    store = MemoryNonceStore(max_entries=10, clock=clock)
    for i in range(5):
        await store.claim(f"n{i}", "100", "fp", ttl=10)
    clock.now += 10
    await store.claim("fresh", "100", "fp", ttl=10)
    assert len(store) == 1


async def test_only_expired_nonces_are_dropped_and_later_ones_stay() -> None:
    clock = Clock()
    store = MemoryNonceStore(max_entries=10, clock=clock)
    await store.claim("early", "100", "fp-early", ttl=10)  # expires at 1010
    clock.now = 1005.0
    await store.claim("later", "100", "fp-later", ttl=10)  # expires at 1015
    clock.now = 1011.0
    assert await store.claim("third", "100", "fp-third", ttl=10) is None  # the sweep drops "early" only
    assert len(store) == 2
    assert await store.claim("later", "100", "replay", ttl=10) == "fp-later"
    assert await store.claim("early", "100", "anew", ttl=10) is None


async def test_a_store_of_one_entry_holds_one() -> None:
    store = MemoryNonceStore(max_entries=1, clock=Clock())
    assert await store.claim("n1", "100", "a", ttl=60) is None
    assert await store.claim("n1", "100", "b", ttl=60) == "a"
    assert await store.claim("n2", "100", "c", ttl=60) is None
    assert len(store) == 1
    assert await store.claim("n1", "100", "d", ttl=60) is None  # pushed out by n2


@pytest.mark.parametrize("size", [0, -1])
def test_a_store_without_room_is_refused(size: int) -> None:
    with pytest.raises(ValueError) as caught:
        MemoryNonceStore(max_entries=size)
    assert str(caught.value) == "max_entries must be positive"
