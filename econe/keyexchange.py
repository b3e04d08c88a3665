"""`POST /one/ec2key`: the seed's habit (`econe-* -K user -S password`) with per-user EC2 keys.

Pure and blocking. The tools send the user's name and password as HTTP Basic (use HTTPS: it is
the password); econe asks oned as that user for their keys (`one.user.ec2keyinfo`, which checks
the password), and answers the first key's secret (`one.user.ec2keysecret`, as econe's server
user, only after the password was accepted) or a new key (`one.user.ec2keycreate`). The
answer is JSON `{"AccessKeyId": …, "SecretAccessKey": …}`; the tools keep it in
`~/.one/ec2_credentials` and sign with SigV4 from then on. Without `server_auth` econe cannot
read secrets: 404, and the tools sign with the password itself (the keys file's way).
"""

from __future__ import annotations

import base64
import binascii
import json

from econe.errors import Ec2Error
from econe.one import Oned, text, xml

PATH = b"/one/ec2key"


def credentials_of(authorization: str | None) -> tuple[str, str]:
    """(user, password) of an HTTP Basic header; AuthFailure otherwise."""
    scheme, _, encoded = (authorization or "").partition(" ")
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        sep = ""
    if scheme.lower() != "basic" or not sep or not user:
        raise Ec2Error("AuthFailure", "send the user name and password as HTTP Basic")
    return user, password


def exchange(oned: Oned, server_session: str, user: str, password: str) -> bytes:
    """The JSON answer: an EC2 key of `user` and its secret."""
    session = f"{user}:{password}"
    keys = xml(oned.call(session, "one.user.ec2keyinfo", -1))
    ids = [text(k, "ACCESS_KEY_ID") for k in keys.findall("EC2_KEY")]
    if ids:
        _uid, _name, secret, _token, _expires = oned.call(
            server_session, "one.user.ec2keysecret", ids[0]
        )
        key = ids[0]
    else:
        key, secret = oned.call(session, "one.user.ec2keycreate", -1)
    return json.dumps({"AccessKeyId": key, "SecretAccessKey": secret}).encode()
