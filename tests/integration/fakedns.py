"""A small authoritative fake DNS server for the integration tests.

Standard library only (no dnspython).  It answers over UDP and TCP on one
address and port from a zone given as a dict, records every query it sees,
and can be told to fail on purpose (NXDOMAIN, SERVFAIL, REFUSED, silence,
truncation).  It never forwards or recurses: a name it does not know is
NXDOMAIN, so a client pointed at it cannot reach any other DNS server through
it.

    zone = {
        "mail.test":   {"A": ["127.0.0.1"], "AAAA": ["::1"]},
        "corp.test":   {"MX": [(10, "mxbiz1.qq.com")], "TXT": ["v=spf1 -all"]},
        "www.test":    {"CNAME": "mail.test"},
        "nodata.test": {},                         # exists, no records: NODATA
        "half.test":   {"A": ["127.0.0.1"], "AAAA": "silent"},   # per type
        "nxdomain": {"gone.test"},                 # NXDOMAIN (as unknown names)
        "servfail": {"broken.test"},               # SERVFAIL for every type
        "refused":  {"policy.test"},               # REFUSED
        "silent":   {"silent.test"},               # never answered (timeouts)
        "truncate": {"big.test"},                  # TC=1 over UDP: use TCP
    }
    dns = FakeDNS(zone, "127.0.0.1", 53).start()   # bound when this returns
    dns.probe()                                    # one round trip: it answers
    ...
    dns.asked("mail.test")      # -> ["A", "AAAA"], the types asked for it
    dns.stop()

Zone keys are owner names (case-insensitive, trailing dot optional).  A
value that is a dict maps a record type to its data:

    A, AAAA        "192.0.2.1" or a list of addresses
    MX             (preference, "exchange") or a list of them
    TXT            "text", b"bytes", or a tuple of strings (one record of
                   several character-strings); a list of these for several
                   records; strings over 255 octets are split for you
    CNAME          "target" (the server follows it inside the zone, as an
                   authoritative server does, and answers the chain)
    NS, PTR        "name" or a list of names
    SRV            (priority, weight, port, "target") or a list of them

Instead of data, a type may map to a policy: fakedns.SILENT, SERVFAIL,
REFUSED or NXDOMAIN, which applies to that type only (a realistic broken
server: A answered, AAAA times out).  For A, AAAA, MX and SRV the strings
"silent", "servfail", "refused" and "nxdomain" work too.

Names: an empty dict is a name that exists with no records (NODATA for
every type); a name that is only the parent of a zone name ("test" when
"mail.test" exists) is an empty non-terminal and also NODATA; "*.x.test"
is a wildcard for names under x.test that are not in the zone; any other
name is NXDOMAIN.  NXDOMAIN and NODATA answers carry an SOA in the
authority section (RFC 2308) so negative caching works as in real life.

The keys "nxdomain", "servfail", "refused", "silent" and "truncate" with a
set/list/tuple value (not a dict) are policies for whole names, checked
before the records.  A query with EDNS gets an OPT record back and may have
a UDP answer up to its advertised size; otherwise answers over 512 octets
are truncated (TC=1, no records) so the client retries over TCP.

Thread-safe: queries are recorded under a lock (FakeDNS.queries,
FakeDNS.asked(), FakeDNS.wait_for()), and set_zone() swaps the zone while
running.  The server binds in start(), in the calling thread, so to serve
inside a network namespace start it from a thread that has joined that
namespace (see netns.py).
"""

import ipaddress
import select
import socket
import struct
import threading
import time

__all__ = ["FakeDNS", "Query", "Policy", "TYPES", "READY_NAME",
           "SILENT", "SERVFAIL", "REFUSED", "NXDOMAIN"]

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16,
         "AAAA": 28, "SRV": 33, "OPT": 41, "ANY": 255}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
CLASS_IN = 1
CLASS_ANY = 255

R_NOERROR, R_FORMERR, R_SERVFAIL, R_NXDOMAIN, R_NOTIMP, R_REFUSED = 0, 1, 2, 3, 4, 5
RCODE_NAMES = {R_NOERROR: "NOERROR", R_FORMERR: "FORMERR", R_SERVFAIL: "SERVFAIL",
               R_NXDOMAIN: "NXDOMAIN", R_NOTIMP: "NOTIMP", R_REFUSED: "REFUSED"}

NAME_POLICIES = ("nxdomain", "servfail", "refused", "silent", "truncate")

# probe() asks for this name; the answer is a TXT "ready" and the query is
# not recorded, so readiness checks never show up in a test's assertions.
READY_NAME = "ready.fakedns.invalid"

UDP_PLAIN_LIMIT = 512     # RFC 1035 §4.2.1
EDNS_PAYLOAD = 1232       # what we advertise and accept at most
CNAME_CHAIN_MAX = 8


class Query:
    """One query as the server saw it, and what it did with it."""

    __slots__ = ("proto", "peer", "id", "name", "qtype", "type", "rd", "edns",
                 "rcode", "answers", "when")

    def __init__(self, proto, peer, qid, name, qtype, rd, edns):
        self.proto = proto            # "udp" or "tcp"
        self.peer = peer              # (address, port, ...)
        self.id = qid
        self.name = name              # lower case, no trailing dot
        self.qtype = qtype            # number
        self.type = TYPE_NAMES.get(qtype, f"TYPE{qtype}")
        self.rd = rd
        self.edns = edns
        self.rcode = None             # "NOERROR", "NXDOMAIN", ..., "silent", "TC"
        self.answers = 0
        self.when = time.monotonic()

    def __repr__(self):
        return f"<{self.proto} {self.name} {self.type} -> {self.rcode}/{self.answers}>"


class _Malformed(Exception):
    pass


def _norm(name):
    name = name.strip().lower()
    if name.endswith(".") and name != ".":
        name = name[:-1]
    return "" if name == "." else name


def _encode_name(name):
    name = _norm(name)
    out = bytearray()
    if name:
        for label in name.split("."):
            raw = label.encode("idna") if not label.isascii() else label.encode()
            if not 0 < len(raw) < 64:
                raise ValueError(f"bad DNS label in {name!r}")
            out.append(len(raw))
            out += raw
    out.append(0)
    if len(out) > 255:
        raise ValueError(f"DNS name too long: {name!r}")
    return bytes(out)


def _echo_name(name):
    """Wire form of a name read by _read_name, octets and case kept."""
    out = bytearray()
    for label in (name.split(".") if name else []):
        raw = label.encode("latin-1")
        if not 0 < len(raw) < 64:
            raise _Malformed("bad label")
        out.append(len(raw))
        out += raw
    out.append(0)
    return bytes(out)


def _read_name(msg, off):
    """(name, offset after it) for the name at off, following pointers."""
    labels = []
    end = None
    seen = 0
    while True:
        if off >= len(msg):
            raise _Malformed("name runs past the message")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg):
                raise _Malformed("truncated pointer")
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            seen += 1
            if seen > 32:
                raise _Malformed("pointer loop")
            continue
        if n & 0xC0:
            raise _Malformed("bad label type")
        off += 1
        if n == 0:
            break
        if off + n > len(msg):
            raise _Malformed("label runs past the message")
        labels.append(msg[off:off + n].decode("latin-1"))
        off += n
    return ".".join(labels), (end if end is not None else off)


def _txt_rdata(value):
    if isinstance(value, (str, bytes)):
        value = (value,)
    out = bytearray()
    for s in value:
        b = s.encode() if isinstance(s, str) else bytes(s)
        chunks = [b[i:i + 255] for i in range(0, len(b), 255)] or [b""]
        for c in chunks:
            out.append(len(c))
            out += c
    return bytes(out)


def _as_list(v):
    if isinstance(v, list):
        return v
    return [v]


def _rdata(rtype, value):
    """Wire rdata for one record; raises ValueError on bad zone data."""
    if rtype == "A":
        return ipaddress.IPv4Address(value).packed
    if rtype == "AAAA":
        return ipaddress.IPv6Address(value).packed
    if rtype in ("CNAME", "NS", "PTR"):
        return _encode_name(value)
    if rtype == "MX":
        pref, host = value
        return struct.pack("!H", int(pref)) + _encode_name(host)
    if rtype == "TXT":
        return _txt_rdata(value)
    if rtype == "SRV":
        prio, weight, port, target = value
        return struct.pack("!HHH", int(prio), int(weight), int(port)) + _encode_name(target)
    raise ValueError(f"unsupported record type {rtype}")


class Policy:
    """A deliberate failure, for a whole name or for one record type."""

    def __init__(self, name, rcode):
        self.name = name
        self.rcode = rcode      # None: never answer

    def __repr__(self):
        return f"fakedns.{self.name.upper()}"


SILENT = Policy("silent", None)
SERVFAIL = Policy("servfail", R_SERVFAIL)
REFUSED = Policy("refused", R_REFUSED)
NXDOMAIN = Policy("nxdomain", R_NXDOMAIN)
POLICIES = {p.name: p for p in (SILENT, SERVFAIL, REFUSED, NXDOMAIN)}
# Types whose data can never be one of the policy words, so the plain
# strings "silent", "servfail", ... are accepted there too.
STRING_POLICY_TYPES = ("A", "AAAA", "MX", "SRV")


class _Zone:
    """The zone dict, checked and compiled to wire rdata once."""

    def __init__(self, zone):
        self.records = {}      # name -> {type: [rdata] | Policy}
        self.name_policy = {}  # name -> Policy
        self.truncate = set()
        for key, value in (zone or {}).items():
            if key in NAME_POLICIES and not isinstance(value, dict):
                if isinstance(value, (str, bytes)):
                    raise ValueError(f"zone[{key!r}] must be a set of names, not a string")
                for n in value:
                    if key == "truncate":
                        self.truncate.add(_norm(n))
                    else:
                        self.name_policy[_norm(n)] = POLICIES[key]
                continue
            name = _norm(key)
            _encode_name(name.replace("*", "x"))  # validate
            if not isinstance(value, dict):
                raise ValueError(f"zone[{key!r}] must be a dict of record types")
            entry = {}
            for rtype, data in value.items():
                rtype = rtype.upper()
                if rtype not in TYPES or rtype in ("OPT", "ANY", "SOA"):
                    raise ValueError(f"zone[{key!r}]: unsupported type {rtype}")
                if isinstance(data, Policy):
                    entry[rtype] = data
                    continue
                if (isinstance(data, str) and rtype in STRING_POLICY_TYPES
                        and data.lower() in POLICIES):
                    entry[rtype] = POLICIES[data.lower()]
                    continue
                entry[rtype] = [_rdata(rtype, v) for v in _as_list(data)]
            if isinstance(entry.get("CNAME"), list):
                if len(entry["CNAME"]) != 1 or len(entry) != 1:
                    raise ValueError(f"zone[{key!r}]: a CNAME must be alone and single")
            self.records[name] = entry
        self.parents = set()
        for name in self.records:
            labels = name.split(".")
            for i in range(1, len(labels)):
                self.parents.add(".".join(labels[i:]))

    def lookup(self, name):
        """The entry (a dict) for name, {} for an empty non-terminal, or
        None when the name does not exist."""
        if name in self.records:
            return self.records[name]
        if name in self.parents:
            return {}
        labels = name.split(".")
        for i in range(1, len(labels)):
            closer = ".".join(labels[i:])
            wild = "*." + closer
            if wild in self.records:
                return self.records[wild]
            if closer in self.records or closer in self.parents:
                break  # no wildcard below an existing name (RFC 4592)
        return None


class FakeDNS:
    """An authoritative fake DNS server on host:port, UDP and TCP.

    zone      the zone dict (see the module docstring)
    host      address to bind ("127.0.0.1", "::1")
    port      port (53 in a private network namespace; 0 picks one, read
              it back from .port)
    ttl       TTL of every answer
    udp, tcp  which transports to serve
    """

    def __init__(self, zone, host="127.0.0.1", port=53, *, ttl=300, udp=True, tcp=True):
        self.host = host
        self.port = port
        self.ttl = ttl
        self.serve_udp = udp
        self.serve_tcp = tcp
        self._zone = _Zone(zone)
        self._lock = threading.Condition()
        self._queries = []
        self._stop = threading.Event()
        self._threads = []
        self._socks = []
        self._conns = set()
        self.errors = []           # exceptions from the serving threads
        self.started = False

    # -- life cycle ---------------------------------------------------------
    def start(self):
        """Bind and listen (in this thread's network namespace), then serve
        from background threads.  Returns self.  Raises OSError if the
        address cannot be bound."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        try:
            port = self.port
            if self.serve_udp:
                u = socket.socket(family, socket.SOCK_DGRAM)
                self._socks.append(u)
                u.bind((self.host, port))
                port = u.getsockname()[1]
                self._spawn(self._udp_loop, u)
            if self.serve_tcp:
                s = socket.socket(family, socket.SOCK_STREAM)
                self._socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((self.host, port))
                s.listen(16)
                port = s.getsockname()[1]
                self._spawn(self._tcp_accept, s)
            self.port = port
        except OSError:
            self.stop()
            raise
        self.started = True
        return self

    def stop(self):
        self._stop.set()
        for s in self._socks:
            try:
                s.close()
            except OSError:
                pass
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for th in list(self._threads):
            if th is not threading.current_thread():
                th.join(5)

    def __enter__(self):
        if not self.started:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def set_zone(self, zone):
        """Serve another zone from now on (the old one is dropped)."""
        z = _Zone(zone)
        with self._lock:
            self._zone = z

    # -- what was asked -----------------------------------------------------
    @property
    def queries(self):
        """Every query so far (Query objects), oldest first."""
        with self._lock:
            return list(self._queries)

    def asked(self, name=None):
        """The record types asked (for name, if given), in order."""
        n = _norm(name) if name is not None else None
        return [q.type for q in self.queries if n is None or q.name == n]

    def wait_for(self, pred, timeout):
        """Wait until pred(list of queries) is true; returns it (bool)."""
        with self._lock:
            return self._lock.wait_for(lambda: pred(list(self._queries)), timeout)

    # -- readiness ----------------------------------------------------------
    def probe(self, timeout=5.0):
        """Ask this server for READY_NAME over each transport it serves and
        wait for the answer.  Run it in the server's network namespace.
        Raises OSError / TimeoutError if it does not answer."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        qid = 0x5EED
        q = (struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + _encode_name(READY_NAME)
             + struct.pack("!HH", TYPES["TXT"], CLASS_IN))
        deadline = time.monotonic() + timeout
        if self.serve_udp:
            with socket.socket(family, socket.SOCK_DGRAM) as u:
                u.settimeout(timeout)
                u.connect((self.host, self.port))
                u.send(q)
                while True:
                    u.settimeout(max(0.01, deadline - time.monotonic()))
                    resp = u.recv(4096)
                    if len(resp) >= 12 and struct.unpack("!H", resp[:2])[0] == qid:
                        break
        if self.serve_tcp:
            with socket.create_connection((self.host, self.port),
                                          timeout=max(0.01, deadline - time.monotonic())) as s:
                s.sendall(struct.pack("!H", len(q)) + q)
                buf = b""
                while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
                    s.settimeout(max(0.01, deadline - time.monotonic()))
                    chunk = s.recv(4096)
                    if not chunk:
                        raise OSError("fake DNS closed the TCP probe connection")
                    buf += chunk
        return True

    # -- serving ------------------------------------------------------------
    def _spawn(self, fn, *args):
        th = threading.Thread(target=self._guard, args=(fn,) + args,
                              name=f"fakedns-{fn.__name__}", daemon=True)
        self._threads.append(th)
        th.start()

    def _guard(self, fn, *args):
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - recorded for the test to see
            if not self._stop.is_set():
                self.errors.append(repr(e))

    def _udp_loop(self, sock):
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([sock], [], [], 0.2)
            except (OSError, ValueError):
                return
            if not r:
                continue
            try:
                data, peer = sock.recvfrom(65535)
            except OSError:
                return
            resp = self._handle(data, "udp", peer)
            if resp is not None:
                try:
                    sock.sendto(resp, peer)
                except OSError:
                    pass

    def _tcp_accept(self, lsock):
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([lsock], [], [], 0.2)
            except (OSError, ValueError):
                return
            if not r:
                continue
            try:
                c, peer = lsock.accept()
            except OSError:
                return
            with self._lock:
                self._conns.add(c)
            self._spawn(self._tcp_conn, c, peer)

    def _tcp_conn(self, c, peer):
        buf = b""
        try:
            while not self._stop.is_set():
                r, _, _ = select.select([c], [], [], 0.2)
                if not r:
                    continue
                chunk = c.recv(65535)
                if not chunk:
                    return
                buf += chunk
                while len(buf) >= 2:
                    n = struct.unpack("!H", buf[:2])[0]
                    if len(buf) < 2 + n:
                        break
                    msg, buf = buf[2:2 + n], buf[2 + n:]
                    resp = self._handle(msg, "tcp", peer)
                    if resp is not None:
                        c.sendall(struct.pack("!H", len(resp)) + resp)
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.discard(c)
            c.close()

    # -- answering ----------------------------------------------------------
    def _record(self, q):
        with self._lock:
            self._queries.append(q)
            self._lock.notify_all()

    def _handle(self, msg, proto, peer):
        """The response (bytes) to one query, or None to stay silent."""
        if len(msg) < 12:
            return None
        qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
        if flags & 0x8000:
            return None  # a response: ignore
        opcode = (flags >> 11) & 0xF
        rd = bool(flags & 0x0100)
        if opcode != 0:
            return self._header(qid, rd, R_NOTIMP, opcode=opcode)
        if qd != 1:
            return self._header(qid, rd, R_FORMERR)
        try:
            qname, off = _read_name(msg, 12)
            if off + 4 > len(msg):
                raise _Malformed("question runs past the message")
            qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
            # Echo the question as asked: same case (0x20 randomisation),
            # but never with a compression pointer.
            question = _echo_name(qname) + msg[off:off + 4]
            edns = self._edns(msg, off + 4, an, ns, ar)
        except (_Malformed, ValueError):
            return self._header(qid, rd, R_FORMERR)

        name = _norm(qname)
        if name == READY_NAME and qtype == TYPES["TXT"]:
            return self._build(qid, rd, R_NOERROR, question,
                               [(name, "TXT", _txt_rdata("ready"))], [], edns, proto)

        q = Query(proto, peer, qid, name, qtype, rd, edns)
        if qclass not in (CLASS_IN, CLASS_ANY):
            q.rcode = "REFUSED"
            self._record(q)
            return self._build(qid, rd, R_REFUSED, question, [], [], edns, proto)

        with self._lock:
            zone = self._zone
        if proto == "udp" and name in zone.truncate:
            q.rcode = "TC"
            self._record(q)
            return self._build(qid, rd, R_NOERROR, question, [], [], edns, proto, tc=True)
        answers, rcode = self._resolve(zone, name, qtype)
        if rcode is None:
            q.rcode = "silent"
            self._record(q)
            return None
        authority = []
        final = [t for _, t, _ in answers if qtype == TYPES["ANY"] or t == TYPE_NAMES.get(qtype)]
        if rcode in (R_NOERROR, R_NXDOMAIN) and not final:
            authority = [self._soa(name)]
        resp = self._build(qid, rd, rcode, question, answers, authority, edns, proto)
        q.rcode = RCODE_NAMES[rcode]
        q.answers = len(answers)
        if resp[2] & 0x02:
            q.rcode = "TC"
            q.answers = 0
        self._record(q)
        return resp

    @staticmethod
    def _resolve(zone, name, qtype):
        """(answers [(owner, type, rdata)], rcode); rcode None: stay silent."""
        want = TYPE_NAMES.get(qtype)
        answers = []
        owner = name
        for _ in range(CNAME_CHAIN_MAX):
            policy = zone.name_policy.get(owner)
            if policy is not None:
                return answers, policy.rcode
            entry = zone.lookup(owner)
            if entry is None:
                # NXDOMAIN (with the CNAME chain so far, as real servers do)
                return answers, R_NXDOMAIN
            if qtype == TYPES["ANY"]:
                for rtype, data in entry.items():
                    if isinstance(data, list):
                        answers += [(owner, rtype, rd) for rd in data]
                return answers, R_NOERROR
            data = entry.get(want) if want else None
            if isinstance(data, Policy):
                return [], data.rcode
            if data:
                answers += [(owner, want, rd) for rd in data]
                return answers, R_NOERROR
            cname = entry.get("CNAME")
            if isinstance(cname, list) and want != "CNAME":
                answers.append((owner, "CNAME", cname[0]))
                owner = _norm(_read_name(cname[0], 0)[0])
                continue
            if isinstance(cname, Policy) and want != "CNAME":
                return answers, cname.rcode
            return answers, R_NOERROR      # NODATA
        return answers, R_SERVFAIL         # a CNAME loop

    def _soa(self, name):
        apex = name.rsplit(".", 1)[-1] if name else ""
        rdata = (_encode_name("ns.fakedns.invalid") + _encode_name("hostmaster.fakedns.invalid")
                 + struct.pack("!IIIII", 1, 3600, 600, 86400, self.ttl))
        return (apex, "SOA", rdata)

    @staticmethod
    def _edns(msg, off, an, ns, ar):
        """The client's EDNS UDP payload size, or None without OPT."""
        for _ in range(an + ns):
            _, off = _read_name(msg, off)
            if off + 10 > len(msg):
                raise _Malformed("record runs past the message")
            rdlen = struct.unpack("!H", msg[off + 8:off + 10])[0]
            off += 10 + rdlen
        for _ in range(ar):
            _, off = _read_name(msg, off)
            if off + 10 > len(msg):
                raise _Malformed("record runs past the message")
            rtype, rclass = struct.unpack("!HH", msg[off:off + 4])
            rdlen = struct.unpack("!H", msg[off + 8:off + 10])[0]
            off += 10 + rdlen
            if rtype == TYPES["OPT"]:
                return max(UDP_PLAIN_LIMIT, min(rclass, EDNS_PAYLOAD))
        return None

    @staticmethod
    def _header(qid, rd, rcode, opcode=0, qd=0, an=0, ns=0, ar=0, tc=False, aa=True):
        flags = 0x8000 | (opcode << 11) | (0x0400 if aa else 0) | (0x0200 if tc else 0) \
            | (0x0100 if rd else 0) | 0x0080 | rcode
        return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)

    def _rr(self, owner, rtype, rdata, qname_wire_owner):
        name = b"\xc0\x0c" if owner == qname_wire_owner else _encode_name(owner)
        return name + struct.pack("!HHIH", TYPES[rtype], CLASS_IN, self.ttl, len(rdata)) + rdata

    def _build(self, qid, rd, rcode, question, answers, authority, edns, proto, tc=False):
        qname, _ = _read_name(question, 0)
        qn = _norm(qname)
        opt = b""
        if edns is not None:
            opt = b"\x00" + struct.pack("!HHIH", TYPES["OPT"], EDNS_PAYLOAD, 0, 0)
        an = b"".join(self._rr(o, t, d, qn) for o, t, d in answers)
        ns = b"".join(self._rr(o, t, d, qn) for o, t, d in authority)
        limit = 65535 if proto == "tcp" else (edns or UDP_PLAIN_LIMIT)
        body = question + an + ns + opt
        if tc or 12 + len(body) > limit:
            return self._header(qid, rd, rcode, qd=1, ar=1 if opt else 0, tc=True) \
                + question + opt
        return self._header(qid, rd, rcode, qd=1, an=len(answers), ns=len(authority),
                            ar=1 if opt else 0) + body
