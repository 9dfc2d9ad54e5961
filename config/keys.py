"""RS256 signing keys for JWTs.

Production reads PEM keys from the environment. Development and tests
generate one key pair on first use and keep it under ``var/`` so that
tokens survive a restart.
"""

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def public_pem_from_private(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode()
    )


def load_or_create_keypair(directory: Path) -> tuple[str, str]:
    """Return (private PEM, public PEM), generating them once if absent."""
    private_path = directory / "jwt-private.pem"
    if not private_path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Write to a temporary name first so a concurrent start never reads
        # half a key.
        tmp = private_path.with_suffix(".tmp")
        tmp.write_bytes(pem)
        tmp.chmod(0o600)
        tmp.replace(private_path)
    private_pem = private_path.read_text()
    return private_pem, public_pem_from_private(private_pem)
