"""Private keys: parse a key spec such as ``rsa:2048``, generate, encode and check keys."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

RSA_SIZES = (2048, 3072, 4096)
CURVES: dict[str, type[ec.EllipticCurve]] = {
    "p256": ec.SECP256R1,
    "p384": ec.SECP384R1,
    "p521": ec.SECP521R1,
}
SUPPORTED = [f"rsa:{n}" for n in RSA_SIZES] + [f"ec:{c}" for c in CURVES]


@dataclass(frozen=True)
class KeySpec:
    """A key algorithm and its size (RSA) or curve (EC)."""

    algorithm: str  # "rsa" or "ec"
    param: str  # "2048" or "p256"

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.param}"

    @property
    def is_rsa(self) -> bool:
        return self.algorithm == "rsa"


def parse_spec(text: str) -> KeySpec:
    """Parse ``rsa:<bits>`` or ``ec:<curve>``; raise ValueError naming the supported ones."""
    if text not in SUPPORTED:
        raise ValueError(f"{text!r} is not a supported key (use one of {', '.join(SUPPORTED)})")
    algorithm, param = text.split(":")
    return KeySpec(algorithm, param)


def generate(spec: KeySpec) -> PrivateKey:
    if spec.is_rsa:
        return rsa.generate_private_key(public_exponent=65537, key_size=int(spec.param))
    return ec.generate_private_key(CURVES[spec.param]())


def spec_of(key: object) -> KeySpec | None:
    """The spec a loaded key satisfies, or None for an unsupported key."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return KeySpec("rsa", str(key.key_size))
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        for name, curve in CURVES.items():
            if isinstance(key.curve, curve):
                return KeySpec("ec", name)
    return None


def to_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM; callers write it 0600."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_pem(data: bytes, validate: bool = False) -> PrivateKey:
    """Parse a PEM key. RSA's consistency check costs ~50 ms a key, so up-to-date checks skip it
    (they compare public keys); ``verify`` validates fully."""
    key = serialization.load_pem_private_key(
        data, password=None, unsafe_skip_rsa_key_validation=not validate)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"unsupported key type {type(key).__name__}")
    return key


def public_der(key: object) -> bytes:
    """SubjectPublicKeyInfo DER of a private or public key, to compare keys."""
    pub = key.public_key() if hasattr(key, "private_bytes") else key  # type: ignore[attr-defined]
    return pub.public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
