"""WeChat callback signatures and the AES message envelope (compatible and safe modes).

The envelope, as WeChat's documentation describes it: ``base64(AES-256-CBC(key, iv=key[:16],
PKCS#7(32)(random16 + len(xml) as 4 bytes big-endian + xml + appid)))``, with the key being
``base64decode(EncodingAESKey + "=")``. Written against ``cryptography`` directly so that every malformed
input fails with one exception type and the padding is checked strictly; the tests cross-check it
against wechatpy's ``WeChatCrypto``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_BLOCK = 32  # WeChat pads to 32 bytes, not to the AES block size


class CryptoError(Exception):
    """The ciphertext cannot be decrypted into a well-formed envelope."""


class AppIdMismatch(CryptoError):
    """The envelope decrypted but was addressed to another AppID."""


def sign(*parts: str) -> str:
    """WeChat's callback signature: SHA-1 of the parts sorted and concatenated."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def signature_ok(expected_parts: tuple[str, ...], given: str) -> bool:
    """Constant-time comparison of ``given`` with the signature over ``expected_parts``."""
    return hmac.compare_digest(sign(*expected_parts).encode("ascii"), given.encode("utf-8", "replace"))


class WeChatAes:
    def __init__(self, encoding_aes_key: str, appid: str) -> None:
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except binascii.Error as exc:
            raise ValueError("EncodingAESKey is not valid base64") from exc
        if len(key) != 32:
            raise ValueError("EncodingAESKey must decode to 32 bytes")
        self._key = key
        self._appid = appid

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def encrypt(self, xml: str, *, random_prefix: bytes | None = None) -> str:
        body = xml.encode("utf-8")
        prefix = random_prefix if random_prefix is not None else secrets.token_bytes(16)
        if len(prefix) != 16:
            raise ValueError("random prefix must be 16 bytes")
        plain = prefix + struct.pack(">I", len(body)) + body + self._appid.encode("utf-8")
        pad = _BLOCK - len(plain) % _BLOCK
        plain += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")

    def decrypt(self, encrypted: str) -> str:
        """Return the XML inside ``encrypted``; AppIdMismatch if it was for another AppID."""
        try:
            data = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CryptoError("not base64") from exc
        if not data or len(data) % 16:
            raise CryptoError("ciphertext length is not a multiple of the block size")
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= _BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise CryptoError("bad padding")
        content = plain[16:-pad]
        if len(content) < 4:
            raise CryptoError("envelope too short")
        (length,) = struct.unpack(">I", content[:4])
        if length > len(content) - 4:
            raise CryptoError("declared length exceeds the envelope")
        xml_bytes, appid = content[4 : 4 + length], content[4 + length :]
        if not hmac.compare_digest(appid, self._appid.encode("utf-8")):
            raise AppIdMismatch("payload addressed to another AppID")
        try:
            return xml_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CryptoError("payload is not UTF-8") from exc
