"""Certificates for the integration tests, made at test time.

One throwaway CA and a set of server certificates, written as PEM files into
a temporary directory (never committed):

    ca          the test CA (trusted only through --ca-file)
    good        CA-signed, DNS:localhost + IP:127.0.0.1 + IP:::1, valid now
    self        self-signed, same names, valid now
    expired     CA-signed, same names, expired yesterday
    future      CA-signed, same names, valid only from next month
    wronghost   CA-signed, valid now, but only for DNS:wrong-host.example.net

Each server certificate has <name>.crt, <name>.key and <name>.pem (the
certificate followed by its key).  EC P-256 keys: fast to make.
"""

import datetime
import ipaddress
import os

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    HAVE_CRYPTOGRAPHY = True
    IMPORT_ERROR = None
except ImportError as e:  # reported as a skip by the tests that need it
    HAVE_CRYPTOGRAPHY = False
    IMPORT_ERROR = str(e)

LOCAL_NAMES = ("localhost",)
LOCAL_IPS = ("127.0.0.1", "::1")


class Certs:
    """Paths of the generated files: certs.path('good', 'crt')."""

    def __init__(self, directory):
        self.dir = directory

    def path(self, name, ext="crt"):
        return os.path.join(self.dir, f"{name}.{ext}")

    @property
    def ca(self):
        return self.path("ca", "crt")

    def crt(self, name):
        return self.path(name, "crt")

    def key(self, name):
        return self.path(name, "key")


def _name(cn):
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "smtpkit tests"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _write(directory, name, cert, key):
    crt = cert.public_bytes(serialization.Encoding.PEM)
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    with open(os.path.join(directory, name + ".crt"), "wb") as f:
        f.write(crt)
    fd = os.open(os.path.join(directory, name + ".key"),
                 os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem_key)
    fd = os.open(os.path.join(directory, name + ".pem"),
                 os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(crt + pem_key)


def _server_cert(cn, dns, ips, not_before, not_after, issuer_name, issuer_key,
                 key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(n) for n in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_name or _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                       critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
    )
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return cert, key


def make_certs(directory):
    """Write the CA and the server certificates into directory."""
    if not HAVE_CRYPTOGRAPHY:
        raise RuntimeError(f"python3-cryptography is not available: {IMPORT_ERROR}")
    os.makedirs(directory, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("smtpkit test CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - day)
        .not_valid_after(now + 30 * day)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            key_cert_sign=True, crl_sign=True, encipher_only=False,
            decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(directory, "ca", ca, ca_key)

    specs = {
        "good": ("localhost", LOCAL_NAMES, LOCAL_IPS, now - day, now + 30 * day, True),
        "self": ("localhost", LOCAL_NAMES, LOCAL_IPS, now - day, now + 30 * day, False),
        "expired": ("localhost", LOCAL_NAMES, LOCAL_IPS, now - 30 * day, now - day, True),
        "future": ("localhost", LOCAL_NAMES, LOCAL_IPS, now + 30 * day, now + 60 * day, True),
        "wronghost": ("wrong-host.example.net", ("wrong-host.example.net",), (),
                      now - day, now + 30 * day, True),
    }
    for name, (cn, dns, ips, nb, na, signed) in specs.items():
        if signed:
            cert, key = _server_cert(cn, dns, ips, nb, na, ca_name, ca_key)
        else:
            cert, key = _server_cert(cn, dns, ips, nb, na, None, None)
        _write(directory, name, cert, key)
    return Certs(directory)


if __name__ == "__main__":  # used by scripts/demo
    import sys
    d = sys.argv[1] if len(sys.argv) > 1 else "."
    make_certs(d)
    print(d)
