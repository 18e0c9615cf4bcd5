"""The ACME CA certificate (``ingress.acmeCaCertificate``): PEM blocks of DER X.509 CA
certificates and nothing else.

The program has no cryptography library, so the check is structural: strict base64, the DER
shape of an X.509 certificate (RFC 5280 4.1), and its basic constraints extension with cA TRUE
(RFC 5280 4.2.1.9). A pydantic after-validator, like those of components/config/formats.py.
"""

from __future__ import annotations

import base64
import binascii
import re

# Docker refuses a config above 500 KiB; a whole public root bundle is about 220 KiB.
PEM_MAX_BYTES = 500 * 1024
_PEM_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----")
_BASE64_LINE = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def pem_certificates(value: str) -> str:
    """One or more PEM ``CERTIFICATE`` blocks and nothing else; returned in canonical form (LF
    line ends, blocks separated by nothing, a final newline) so its fingerprint is stable.

    Without the ``cryptography`` package (not among the program's dependencies) the check is
    structural: strict base64 per line, and each block's bytes a DER X.509 Certificate (a
    SEQUENCE of tbsCertificate, signatureAlgorithm and a BIT STRING signature, the
    tbsCertificate starting with its serial number and five SEQUENCEs).
    """
    if len(value.encode()) > PEM_MAX_BYTES:
        raise ValueError(f"expected at most {PEM_MAX_BYTES // 1024} KiB (Docker's config limit)")
    blocks: list[list[str]] = []
    body: list[str] | None = None
    for number, raw in enumerate(value.splitlines(), start=1):
        line = raw.strip()
        if body is None:
            begin = _PEM_BEGIN.fullmatch(line)
            if begin and begin[1] == "CERTIFICATE":
                body = []
            elif begin:
                raise ValueError(_pem_wrong_block(begin[1]))
            elif line:
                raise ValueError(
                    f"expected nothing but PEM certificates (line {number} is outside any "
                    "-----BEGIN CERTIFICATE----- block)"
                )
        elif line == "-----END CERTIFICATE-----":
            _der_certificate(body, len(blocks) + 1)
            blocks.append(body)
            body = None
        elif _BASE64_LINE.fullmatch(line):
            body.append(line)
        else:
            raise ValueError(
                f"expected base64 lines inside each certificate block (line {number} is not)"
            )
    if body is not None:
        raise ValueError("expected every certificate block to end with -----END CERTIFICATE-----")
    if not blocks:
        raise ValueError(
            "expected one or more PEM certificates (-----BEGIN CERTIFICATE----- ... "
            "-----END CERTIFICATE-----)"
        )
    return "".join(
        "-----BEGIN CERTIFICATE-----\n" + "\n".join(body) + "\n-----END CERTIFICATE-----\n"
        for body in blocks
    )


def _pem_wrong_block(label: str) -> str:
    if "PRIVATE KEY" in label:
        return (
            f"expected certificates only, found a {label}: this value is public (a Docker "
            "config), and a CA's key never leaves the CA"
        )
    return f"expected nothing but PEM certificates, found a {label} block"


def _der_certificate(lines: list[str], index: int) -> None:
    problem = f"expected certificate {index} to be a DER X.509 certificate in base64"
    try:
        der = base64.b64decode("".join(lines), validate=True)
    except binascii.Error:
        raise ValueError(f"{problem} (its base64 does not decode)") from None
    try:
        tag, start, end = _der_element(der, 0)
        if tag != 0x30 or end != len(der):
            raise ValueError
        parts = _der_children(der, start, end)
        if [tag for tag, *_ in parts] != [0x30, 0x30, 0x03]:
            raise ValueError
        _, tbs_start, tbs_end = parts[0]
        tbs = _der_children(der, tbs_start, tbs_end)
        tags = [tag for tag, *_ in tbs]
        fields = tags[1:] if tags[:1] == [0xA0] else tags  # [0] version, absent in v1
        if fields[:6] != [0x02, 0x30, 0x30, 0x30, 0x30, 0x30]:
            raise ValueError
    except (ValueError, IndexError):
        raise ValueError(problem) from None
    if not _is_ca(der, tbs):
        raise ValueError(
            f"expected certificate {index} to be a CA certificate (X.509 v3 with basic "
            "constraints cA TRUE): the resolver trusts only these roots, and a server or "
            "client certificate signs nothing"
        )


# basicConstraints (2.5.29.19) as a DER object identifier.
_BASIC_CONSTRAINTS = bytes.fromhex("0603551d13")


def _is_ca(der: bytes, tbs: list[tuple[int, int, int]]) -> bool:
    """Whether the tbsCertificate's [3] extensions hold basicConstraints with cA TRUE
    (RFC 5280 4.2.1.9); a v1 certificate has no extensions and so is no CA here."""
    try:
        extensions = [child for child in tbs if child[0] == 0xA3]
        if not extensions:
            return False
        _, start, _ = extensions[0]
        _, seq_start, seq_end = _der_element(der, start)
        for _, ext_start, ext_end in _der_children(der, seq_start, seq_end):
            fields = _der_children(der, ext_start, ext_end)
            _, oid_start, oid_end = fields[0]
            if der[oid_start - 2 : oid_end] != _BASIC_CONSTRAINTS:
                continue
            _, value_start, _ = fields[-1]  # the OCTET STRING
            _, bc_start, bc_end = _der_element(der, value_start)
            values = _der_children(der, bc_start, bc_end)
            # cA BOOLEAN DEFAULT FALSE: present and non-zero.
            return bool(values) and values[0][0] == 0x01 and der[values[0][1]] != 0
        return False
    except (ValueError, IndexError):
        return False


def _der_element(der: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of contents, end) of the DER element at ``offset``."""
    tag, length = der[offset], der[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4:
            raise ValueError
        length = int.from_bytes(der[start : start + count], "big")
        start += count
    end = start + length
    if end > len(der):
        raise ValueError
    return tag, start, end


def _der_children(der: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    children = []
    while start < end:
        child = _der_element(der, start)
        if child[2] > end:
            raise ValueError
        children.append(child)
        start = child[2]
    return children
