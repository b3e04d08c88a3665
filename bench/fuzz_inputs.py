"""The inputs bench/fuzz.py feeds each target: seeds, mutations, grammar and noise.

Every generator takes a ``random.Random`` and returns one input, so a seed replays a run. Most
inputs are small (what finds parser bugs fast); about one in 2,000 is long (up to 256 KiB) and
repeats a piece many times, which is where quadratic work would show.
"""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Callable
from random import Random

# --- pieces every generator shares ------------------------------------------------------------

ODD_CHARS = "\x00\x01\x07\x0b\x0c\x1b\x7f\x85\xa0\u2028\ufeff\ufffe\uffff\ud800\udfff\U0001f600"
TEMPLATE_CHARS = 'AZaz09_=[],"\\# \t\r\n.-/:*<>&;!'


def small_length(rng: Random) -> int:
    """Mostly short, sometimes a few KiB, rarely 256 KiB."""
    roll = rng.random()
    if roll < 0.0005:
        return rng.randint(65536, 262144)
    if roll < 0.02:
        return rng.randint(256, 8192)
    return rng.randint(0, 64)


def noise_text(rng: Random, alphabet: str) -> str:
    n = small_length(rng)
    if rng.random() < 0.2:
        return "".join(rng.choice(ODD_CHARS + alphabet) for _ in range(min(n, 4096)))
    return "".join(rng.choices(alphabet, k=n))


def mutate(rng: Random, data, pool: list, alphabet):
    """``data`` (str or bytes) with one to four edits: insert, delete, repeat, splice, flip."""
    for _ in range(rng.randint(1, 4)):
        n = len(data)
        i = rng.randint(0, n)
        j = rng.randint(i, min(n, i + 16))
        roll = rng.random()
        if roll < 0.3:
            piece = data[:0].join(rng.choice(alphabet) for _ in range(rng.randint(1, 4)))
            data = data[:i] + piece + data[i:]
        elif roll < 0.5:
            data = data[:i] + data[j:]
        elif roll < 0.6:
            times = rng.choice((2, 3, 10, 100, 1000)) if small_length(rng) < 65536 else 20000
            data = data[:i] + data[i:j] * times + data[j:]
        elif roll < 0.8:
            other = rng.choice(pool)
            k = rng.randint(0, len(other))
            data = data[:i] + other[k : k + rng.randint(1, 64)] + data[j:]
        else:
            data = data[:i] + data[i + 1 :] if n else data
            data = data[:i] + rng.choice(alphabet) + data[i:]
    return data


def _mixed(
    rng: Random,
    seeds: list,
    grammar: Callable[[Random], object],
    noise: Callable[[Random], object],
    alphabet,
) -> object:
    """One input: a seed mutated (45%), grammar output (30%) maybe mutated, noise (15%), a seed."""
    roll = rng.random()
    if roll < 0.45:
        return mutate(rng, rng.choice(seeds), seeds, alphabet)
    if roll < 0.75:
        made = grammar(rng)
        return mutate(rng, made, seeds, alphabet) if rng.random() < 0.3 else made
    if roll < 0.9:
        return noise(rng)
    return rng.choice(seeds)


# --- template text ----------------------------------------------------------------------------

TEMPLATE_SEEDS = [
    'NAME = "vm one"\nCPU = 0.5\nMEMORY = 512\n',
    "DISK = [ IMAGE_ID = 3, TARGET = hda ]\nDISK = [ SOURCE = /x/y.img, CLONE = no ]\n",
    'NIC = [ NETWORK = "Small network" , IP = 10.0.0.1 ]\n# comment\nGRAPHICS = [ TYPE = vnc ]',
    'CONTEXT = [ FILES = "/a /b", HOSTNAME = "$NAME", IP = "$NIC[IP]" ]\r\n',
    'REQUIREMENTS = "HYPERVISOR = \\"kvm\\" & FREECPU > 50"\nRANK = "- RUNNING_VMS"\n',
    'RAW = [ TYPE = kvm, DATA = "<devices><serial type=\\"pty\\"/></devices>" ]',
    'A=\nB=1\n  \t# only a comment\nC = [ D = "\\\\" ]',
    'OS = [ KERNEL = /vmlinuz, ROOT = sda1, BOOT = "hd" ]\nEMPTY =\n',
    'N = "line\none"\nQ = "a \\" b"\nU = ünïcödé',
    "V=[A=1,B=2]",
]


def _template_name(rng: Random) -> str:
    if rng.random() < 0.05:
        return rng.choice(["", "A-B", "1", "é", "A B", "[", "_"])
    return "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789abc", k=rng.randint(1, 12)))


def _template_value(rng: Random) -> str:
    roll = rng.random()
    if roll < 0.4:
        return "".join(rng.choices("abcXYZ019./:-_$", k=rng.randint(1, 20)))
    if roll < 0.9:
        text = noise_text(rng, TEMPLATE_CHARS + "abc ")
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return rng.choice(['""', '"\\"', '"a\\\\"', '"\n"', "$NAME", "\\", '"unclosed'])


def _blank(rng: Random) -> str:
    return rng.choice(["", " ", "  ", "\t", "\n", "\r\n", " # c\n", "\n\n"])


def template_grammar(rng: Random) -> str:
    lines = []
    for _ in range(rng.randint(0, 12)):
        name = _template_name(rng)
        if rng.random() < 0.3:
            pairs = [
                f"{_blank(rng)}{_template_name(rng)}{_blank(rng)}={_blank(rng)}"
                f"{_template_value(rng)}{_blank(rng)}"
                for _ in range(rng.randint(0, 6))
            ]
            value = "[" + rng.choice([",", ", ", ",\n"]).join(pairs) + rng.choice(["]", "", "]]"])
        else:
            value = _template_value(rng)
        lines.append(f"{_blank(rng)}{name}{_blank(rng)}={rng.choice(['', ' '])}{value}")
    return rng.choice(["\n", "\n\n", " ", "\r\n"]).join(lines) + _blank(rng)


def template_input(rng: Random) -> str:
    return _mixed(
        rng,
        TEMPLATE_SEEDS,
        template_grammar,
        lambda r: noise_text(r, TEMPLATE_CHARS),
        TEMPLATE_CHARS + ODD_CHARS,
    )


# --- template XML -----------------------------------------------------------------------------

XML_CHARS = "<>/=&;#x\"'![]?-ABCTazAX09 \n\t:"
XML_SEEDS = [
    "<TEMPLATE><NAME>vm</NAME><CPU>1</CPU><MEMORY>512</MEMORY></TEMPLATE>",
    "<TEMPLATE><DISK><SOURCE><![CDATA[/x/y]]></SOURCE><TARGET>hda</TARGET></DISK></TEMPLATE>",
    "<ANY><A>1</A><B><C>2</C></B></ANY>",
    '<?xml version="1.0" encoding="UTF-8"?><T><A>&amp;&lt;&#65;&#x42;</A></T>',
    '<!DOCTYPE t [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    "<T><A>&b;</A></T>",
    '<!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]><T><A>&x;</A></T>',
    '<T xmlns:n="urn:x"><n:A>1</n:A><!-- c --><?pi x?></T>',
    "<T><A>&#13;</A><B>x&#0;</B></T>",
    "  <T><A/><B></B></T>",
    "<T><A><B><C>deep</C></B></A></T>",
    '<T><A a="1" b="&quot;">x</A></T>',
    "<T>\r\n<A>\r</A></T>",
]


def xml_grammar(rng: Random) -> str:
    def element(depth: int) -> str:
        name = _template_name(rng) if rng.random() < 0.9 else rng.choice(["n:A", "A.B", "-"])
        if depth < 4 and rng.random() < 0.3:
            inner = "".join(element(depth + 1) for _ in range(rng.randint(0, 4)))
        else:
            inner = rng.choice(
                [
                    "".join(rng.choices("abc &amp;&lt;&#65;;", k=rng.randint(0, 12))),
                    f"<![CDATA[{noise_text(rng, XML_CHARS)}]]>",
                    "",
                ]
            )
        return f"<{name}>{inner}</{name}>"

    if rng.random() < 0.02:  # nesting far deeper than any template
        depth = rng.choice((100, 1000, 20000))
        return "<T>" + "<A>" * depth + "</A>" * depth + "</T>"
    head = rng.choice(["", '<?xml version="1.0"?>', "<!DOCTYPE T>", " \n", "<!-- c -->"])
    return head + element(0)


def template_xml_input(rng: Random) -> str:
    return _mixed(
        rng, XML_SEEDS, xml_grammar, lambda r: "<" + noise_text(r, XML_CHARS), XML_CHARS + ODD_CHARS
    )


# --- REQUIREMENTS and RANK --------------------------------------------------------------------

EXPR_CHARS = 'ABCHOSTNAME_09.!&|=<>()*+/-^" \t'
EXPR_SEEDS = [
    'HYPERVISOR = "kvm" & FREECPU > 50',
    '! (HOSTNAME = "host0*") | ARCH != "x86_64"',
    "TOTALMEMORY > 8000000 & ! (RUNNING_VMS < 3)",
    "FREE_MEM / 1024 - RUNNING_VMS * 100",
    "- (RUNNING_VMS * 50 + FREE_CPU)",
    'HOSTNAME = "[a-z]*[!0-9]?"',
    "CPU = -1.5",
    "((((A)))) / 0",
    "1e999",
    "A = B",
    'A = "' + "*a" * 30 + 'b"',
    "9" * 400 + " * " + "9" * 400,
    "",
]
HOSTS = [
    {"HOSTNAME": "host01", "HYPERVISOR": "kvm", "FREECPU": 90, "RUNNING_VMS": 3, "A": "1"},
    {"A": "nan", "B": "inf", "C": "-1e999", "FREECPU": 10**400, "CPU": float("inf"), "D": None},
    {"HOSTNAME": "", "A": "a" * 200, "B": "  12.5e3xyz", "C": True, "E": float("nan")},
    {},
]


def expr_grammar(rng: Random, depth: int = 0) -> str:
    attr = rng.choice(["A", "B", "C", "D", "HOSTNAME", "FREECPU", "CPU", "X_1", "a"])
    number = rng.choice(["0", "1", "50", "1.5", "9" * rng.randint(1, 400), "0.0"])
    roll = rng.random()
    if depth > 6 or roll < 0.4:
        if rng.random() < 0.5:
            op = rng.choice(["=", "!=", ">", "<", ">=", "=="])
            value = rng.choice(
                [
                    number,
                    "-" + number,
                    attr,
                    '"' + rng.choice(["*", "h?s", "[!", "[]]", "\\", "x"]) + '"',
                ]
            )
            return f"{attr} {op} {value}"
        return rng.choice([attr, number, "-" + attr])
    if roll < 0.7:
        op = rng.choice(["&", "|", "+", "-", "*", "/"])
        return f"{expr_grammar(rng, depth + 1)} {op} {expr_grammar(rng, depth + 1)}"
    if roll < 0.85:
        return f"({expr_grammar(rng, depth + 1)})"
    if rng.random() < 0.05:
        n = rng.choice((64, 65, 1000))
        return "(" * n + expr_grammar(rng, depth + 1) + ")" * n
    return rng.choice(["!", "-", "!!", "--"]) + expr_grammar(rng, depth + 1)


def expr_input(rng: Random) -> str:
    return _mixed(
        rng, EXPR_SEEDS, expr_grammar, lambda r: noise_text(r, EXPR_CHARS), EXPR_CHARS + ODD_CHARS
    )


# --- XML-RPC calls ----------------------------------------------------------------------------

RPC_BYTES = b'<>/="&;#![]?-abcdefilmnoprstuvxyz019 \n\xff\xfe\xc3\x80\x00'


def _rpc_value(rng: Random, depth: int = 0) -> object:
    roll = rng.random()
    if depth < 4 and roll < 0.15:
        return [_rpc_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if depth < 4 and roll < 0.25:
        return {_template_name(rng): _rpc_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    choices = [
        lambda: rng.randint(-(2**31), 2**31 - 1),
        lambda: noise_text(rng, "abc<>&\"' \n"),
        lambda: rng.random() < 0.5,
        lambda: rng.uniform(-1e300, 1e300),
        lambda: xmlrpc.client.Binary(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 20)))),
        lambda: xmlrpc.client.DateTime("20260101T00:00:00"),
        lambda: None,
    ]
    return rng.choice(choices)()


def rpc_call(rng: Random) -> bytes:
    method = rng.choice(["one.vm.allocate", "one.vm.info", "system.multicall", "x", ""])
    params = tuple(_rpc_value(rng) for _ in range(rng.randint(0, 5)))
    return xmlrpc.client.dumps(params, method, allow_none=True).encode("utf-8", "surrogatepass")


def _wrap(value: bytes) -> bytes:
    return (
        b"<?xml version='1.0'?><methodCall><methodName>one.vm.info</methodName><params>"
        b"<param><value><string>oneadmin:x</string></value></param><param><value>"
        + value
        + b"</value></param></params></methodCall>"
    )


RPC_SEEDS = [
    xmlrpc.client.dumps(("oneadmin:pw", 0), "one.vm.info").encode(),
    xmlrpc.client.dumps(("oneadmin:pw", 'NAME="x"\nCPU=1'), "one.vm.allocate").encode(),
    xmlrpc.client.dumps(
        ([{"methodName": "one.vm.info", "params": ["s", 1]}],), "system.multicall"
    ).encode(),
    _wrap(b"<i4>99999999999999999999</i4>"),
    _wrap(b"<int>" + b"9" * 5000 + b"</int>"),
    _wrap(b"<i8>-9223372036854775809</i8>"),
    _wrap(b"<double>nan</double>"),
    _wrap(b"<double>1e999</double>"),
    _wrap(b"<base64>!!not base64==</base64>"),
    _wrap(b"<dateTime.iso8601>garbage</dateTime.iso8601>"),
    _wrap(b"<boolean>2</boolean>"),
    _wrap(b"<struct><member><value>no name</value></member></struct>"),
    _wrap(b"<array><data><value><array><data></data></array></value></data></array>"),
    _wrap(
        b"<array><data>"
        + b"<value><array><data>" * 200
        + b"</data></array></value>" * 200
        + b"</data></array>"
    ),
    _wrap(b"<bigdecimal>1E+999999999</bigdecimal><nil/><ex:nil/>"),
    _wrap(b"<string>\xff\xfe invalid utf-8</string>"),
    b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;">]><methodCall><methodName>&c;</methodName></methodCall>',
    b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<methodCall><methodName>a</methodName><params><param><value>&x;</value></param></params>"
    b"</methodCall>",
    (
        '<?xml version="1.0" encoding="utf-16"?><methodCall><methodName>a</methodName></methodCall>'
    ).encode("utf-16"),
    b"<methodResponse><fault><value><struct></struct></value></fault></methodResponse>",
    b"<methodCall><methodName>a</methodName><methodName>b</methodName></methodCall>",
]


def rpc_input(rng: Random) -> bytes:
    if rng.random() < 0.001:  # a large body: many values or a long string
        piece = rng.choice([b"<value><int>1</int></value>", b"<value>&amp;&lt;x</value>"])
        return _wrap(b"<array><data>" + piece * rng.randint(1000, 20000) + b"</data></array>")
    return _mixed(
        rng,
        RPC_SEEDS,
        rpc_call,
        lambda r: bytes(r.choices(RPC_BYTES, k=small_length(r))),
        [bytes([b]) for b in RPC_BYTES],
    )


GENERATORS: dict[str, Callable[[Random], str | bytes]] = {
    "template": template_input,
    "template_xml": template_xml_input,
    "expr": expr_input,
    "xmlrpc": rpc_input,
}
SEEDS = {
    "template": TEMPLATE_SEEDS,
    "template_xml": XML_SEEDS,
    "expr": EXPR_SEEDS,
    "xmlrpc": RPC_SEEDS,
}
GRAMMARS = {
    "template": template_grammar,
    "template_xml": xml_grammar,
    "expr": expr_grammar,
    "xmlrpc": rpc_call,
}


def seeds_of(name: str, rng: Random, made: int = 200) -> list[str | bytes]:
    """The hand-written seeds of ``name`` and ``made`` grammar outputs: atheris's first corpus."""
    return [*SEEDS[name], *(GRAMMARS[name](rng) for _ in range(made))]


# --- long inputs, timed by ``bench/fuzz.py --long`` -------------------------------------------

MIB = 2**20


def long_inputs() -> list[tuple[str, str, str | bytes]]:
    """(target, what, input) of about 1 MiB each: the shapes where a parser could go quadratic."""
    many = "A=1\n" * (MIB // 4)
    deep = b"<array><data><value>" * (MIB // 20)
    return [
        ("template", "262,144 attributes", many),
        ("template", "262,144 attributes, then an error", many + "B=["),
        ("template", "one vector of 262,144 pairs", "V=[" + "K=v," * (MIB // 4) + "L=w]"),
        ("template", "an unclosed vector of 262,144 pairs", "V=[" + "K=v," * (MIB // 4)),
        ("template", "a 1 MiB quoted value of backslashes", 'A="' + "\\\\" * (MIB // 2) + '"'),
        ("template", "349,525 comment lines", "#c\n" * (MIB // 3)),
        ("template_xml", "131,072 elements", "<T>" + "<A>1</A>" * (MIB // 8) + "</T>"),
        ("template_xml", "elements nested 349,525 deep", "<A>" * (MIB // 3) + "</A>" * (MIB // 3)),
        ("expr", "a 64 KiB chain of ANDs", " & ".join(["A = 1"] * 8000)),
        ("expr", "65,530 negations", "!" * 65530 + "A = 1"),
        ("expr", "a 4 KiB glob", 'A = "' + "*a" * 2048 + '"'),
        ("expr", "1 MiB (refused)", "A = 1 | " * (MIB // 8)),
        (
            "xmlrpc",
            "40,000 ints",
            _wrap(b"<array><data>" + b"<value><int>1</int></value>" * 40000 + b"</data></array>"),
        ),
        (
            "xmlrpc",
            "a 1 MiB string of entities",
            _wrap(b"<string>" + b"&amp;" * (MIB // 5) + b"</string>"),
        ),
        ("xmlrpc", "arrays nested 52,428 deep", _wrap(deep)),
    ]
