"""The signing certificate: the one configured, or a self-issued one made on first use.

``CHATCANVAS_C2PA_CERT`` / ``CHATCANVAS_C2PA_KEY`` name a PEM certificate chain (signing certificate
first) and its ES256 (P-256) private key, as files or as the PEM text itself. Without them, the first
image signed makes a local CA and a signing certificate under ``<data dir>/c2pa/signer.pem``: the C2PA
profile of a signing certificate (X.509 v3, key usage digitalSignature marked critical, extended key
usage emailProtection + documentSigning, not a CA, issued by a CA rather than self-signed, which c2pa
refuses). That certificate is self-issued and on no trust list: readers say "untrusted signer", while
the manifest's content binding still proves the pixels and metadata are as they were signed.

Several processes may sign their first image at once (``pytest -n 2``, two workers): the bundle is
written to a private temporary file and linked into place, so the first one wins and every process
then reads that one.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from chatcanvas import messages as m
from chatcanvas.errors import ConfigError

SIGNER_FILE = "signer.pem"
ISSUER_ORG = "chatcanvas (self-issued, not on any trust list)"
VALID_DAYS = 3650


@dataclass(frozen=True)
class Credentials:
    chain_pem: bytes  # signing certificate first, then its issuers
    key_pem: bytes
    self_issued: bool
    serial: str  # of the signing certificate, decimal (as c2pa reports it)
    issuer: str  # its issuer's organization (or common name)
    source: str  # where they came from, for messages


def _pem(value: str, var: str) -> bytes:
    if value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    path = Path(value).expanduser()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(m.C2PA_CREDENTIAL_UNREADABLE.format(var=var, path=path, error=exc.strerror)) from None


def _describe(chain_pem: bytes) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    leaf = x509.load_pem_x509_certificates(chain_pem)[0]
    names = leaf.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME) or leaf.issuer.get_attributes_for_oid(
        NameOID.COMMON_NAME
    )
    return str(leaf.serial_number), str(names[0].value) if names else leaf.issuer.rfc4514_string()


def configured(cert: str, key: str) -> Credentials:
    """The credentials named by the settings (files or PEM text); checked here, once."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    chain_pem, key_pem = _pem(cert, "CHATCANVAS_C2PA_CERT"), _pem(key, "CHATCANVAS_C2PA_KEY")
    try:
        private = load_pem_private_key(key_pem, password=None)
        serial, issuer = _describe(chain_pem)
    except ValueError as exc:
        raise ConfigError(m.C2PA_CREDENTIAL_BAD.format(detail=str(exc).splitlines()[0])) from None
    if not (isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp256r1"):
        raise ConfigError(m.C2PA_CREDENTIAL_BAD.format(detail="the key is not an ES256 (P-256) key"))
    return Credentials(chain_pem, key_pem, False, serial, issuer, "CHATCANVAS_C2PA_CERT")


def _issue() -> bytes:
    """A new local CA and a signing certificate issued by it, as one PEM bundle: key, leaf, CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    start, end = now - dt.timedelta(hours=1), now + dt.timedelta(days=VALID_DAYS)

    def name(cn: str) -> x509.Name:
        return x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, ISSUER_ORG)]
        )

    def usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=sign,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name("chatcanvas local CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(sign=False, ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name("chatcanvas image signer"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(sign=True, ca=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key_pem + leaf.public_bytes(pem) + ca.public_bytes(pem)


def _split(bundle: bytes) -> tuple[bytes, bytes]:
    start = bundle.index(b"-----BEGIN CERTIFICATE-----")
    return bundle[start:], bundle[:start]


def existing(data_dir: Path) -> Credentials | None:
    """The self-issued credentials if they were made already (``verify`` never makes them)."""
    path = Path(data_dir) / "c2pa" / SIGNER_FILE
    if not path.is_file():
        return None
    chain_pem, key_pem = _split(path.read_bytes())
    serial, issuer = _describe(chain_pem)
    return Credentials(chain_pem, key_pem, True, serial, issuer, str(path))


def local(data_dir: Path) -> Credentials:
    """The self-issued credentials under ``data_dir/c2pa``, made on first use (race-safe)."""
    folder = Path(data_dir) / "c2pa"
    path = folder / SIGNER_FILE
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{SIGNER_FILE}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_issue())
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)  # atomic, and fails if another process got there first
            except FileExistsError:
                pass
            except OSError:  # a file system without hard links: last writer wins, still atomic
                if not path.exists():
                    os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    made = existing(data_dir)
    if made is None:
        raise ConfigError(m.C2PA_CREDENTIAL_UNREADABLE.format(var="CHATCANVAS_DATA_DIR", path=path, error="not written"))
    return made
