"""The seed's econe-* tools on boto3: one module, the tool chosen by the program's name.

econe-upload (through econe's S3 endpoint), econe-describe-images, econe-register,
econe-run-instances, econe-describe-instances, econe-terminate-instances, econe-reboot-instances,
econe-start-instances, econe-stop-instances. Flags as the seed's: `-K/--access-key`,
`-S/--secret-key`, `-U/--url`, `-H/--headers` (print a header line first). Credentials in the
seed's order: the flags, then `EC2_ACCESS_KEY`/`EC2_SECRET_KEY`, then the ONE_AUTH file
(`user:password`); the endpoint from `-U`, then `EC2_URL`, then http://localhost:4567/. The
region SigV4 names is `--region`, `EC2_REGION` or `one` (econe.conf's default). Ids may be
given as EC2 ids (`i-0000001c`, `ami-00000001`) or as the seed's plain numbers.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any

DEFAULT_URL = "http://localhost:4567/"
KEY_PREFIX = "AKOC"  # oned's access key ids; anything else is a user name
AUTH_FAILURES = ("AuthFailure", "InvalidAccessKeyId", "SignatureDoesNotMatch")  # EC2's, S3's
TOOLS = (
    "upload", "describe-images", "register", "run-instances", "describe-instances",
    "terminate-instances", "reboot-instances", "start-instances", "stop-instances",
)  # fmt: skip


class ToolError(Exception):
    pass


def credentials(args: argparse.Namespace, env: dict[str, str]) -> tuple[str, str]:
    """(access key, secret) from the flags, EC2_ACCESS_KEY/EC2_SECRET_KEY, or ONE_AUTH."""
    if args.access_key and args.secret_key:
        return args.access_key, args.secret_key
    if env.get("EC2_ACCESS_KEY") and env.get("EC2_SECRET_KEY"):
        return env["EC2_ACCESS_KEY"], env["EC2_SECRET_KEY"]
    path = env.get("ONE_AUTH") or os.path.join(os.path.expanduser("~"), ".one", "one_auth")
    try:
        with open(path, encoding="utf-8") as f:
            user, sep, password = f.readline().strip().partition(":")
    except OSError as exc:
        raise ToolError(
            f"no credentials: give -K and -S, set EC2_ACCESS_KEY and EC2_SECRET_KEY, "
            f"or ONE_AUTH ({path}: {exc.strerror})"
        ) from None
    if not sep or not user:
        raise ToolError(f"{path}: the first line must be <user>:<password>")
    return user, password


def exchanged(url: str, user: str, password: str, env: dict[str, str], fresh: bool) -> Any:
    """The user's EC2 key for a name and password (`POST /one/ec2key`, econe.keyexchange),
    kept in ~/.one/ec2_credentials (0600); None when econe has no exchange (it then takes the
    password as the secret: its keys file)."""
    path = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".one", "ec2_credentials")
    try:
        with open(path, encoding="utf-8") as f:
            kept = json.load(f)
    except (OSError, ValueError):
        kept = {}
    slot = f"{user}@{url}"
    if slot in kept and not fresh:
        return tuple(kept[slot])
    request = urllib.request.Request(url.rstrip("/") + "/one/ec2key", data=b"", method="POST")
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {basic}")
    # the CA boto3 is told to trust (AWS_CA_BUNDLE) is the one the exchange trusts too
    cafile = env.get("AWS_CA_BUNDLE") or None
    context = ssl.create_default_context(cafile=cafile) if url.startswith("https") else None
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as answer:
            found = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise ToolError(f"{url} refused {user}'s name and password ({exc.code})") from None
    except (urllib.error.URLError, ValueError, OSError) as exc:
        raise ToolError(f"cannot reach {url}: {exc}") from None
    kept[slot] = [found["AccessKeyId"], found["SecretAccessKey"]]
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump(kept, f)
    return tuple(kept[slot])


def client(
    args: argparse.Namespace, env: dict[str, str], fresh: bool = False, service: str = "ec2"
) -> Any:
    """A boto3 client of econe's EC2 endpoint (or its S3 endpoint, path style)."""
    import boto3
    from botocore.config import Config

    key, secret = credentials(args, env)
    url = args.url or env.get("EC2_URL", "").strip() or DEFAULT_URL
    if not key.startswith(KEY_PREFIX):  # a user name: the seed's habit
        key, secret = exchanged(url, key, secret, env, fresh) or (key, secret)
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=args.region or env.get("EC2_REGION") or "one",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(
            retries={"max_attempts": 3, "mode": "standard"}, s3={"addressing_style": "path"}
        ),
    )


def ec2_id(text: str, kind: str) -> str:
    """`i-…`/`ami-…` as given; the seed's plain numbers made into EC2 ids."""
    return f"{kind}-{int(text):08x}" if text.isdigit() else text


def table(rows: list[list[str]], header: list[str] | None) -> None:
    lines = ([header] if header else []) + rows
    widths = [max(len(str(r[i])) for r in lines) for i in range(len(lines[0]))] if lines else []
    for index, row in enumerate(lines):
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        if header and index == 0:
            print("-" * (sum(widths) + 2 * (len(widths) - 1)))


def wait_available(ec2: Any, ami: str, timeout: float = 3600) -> str:
    """Poll the new AMI until it is available (a line of dots while oned copies it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = ec2.describe_images(ImageIds=[ami])["Images"][0]["State"]
        if state != "pending":
            print(file=sys.stderr)
            return state
        print(".", end="", file=sys.stderr, flush=True)
        time.sleep(0.5)
    raise ToolError(f"{ami} is still pending after {timeout:g} s")


# --- the tools ------------------------------------------------------------------------------


class Progress:
    """A bar on stderr, `[#####     ]  50%  512.0 MB / 1.0 GB`, redrawn as parts are sent
    (boto3 calls it from its transfer threads)."""

    WIDTH = 40

    def __init__(self, total: int, out: Any = None) -> None:
        self.total, self.sent, self.shown = max(total, 1), 0, -1
        self.out = out or sys.stderr
        self.lock = threading.Lock()

    def __call__(self, amount: int) -> None:
        with self.lock:
            self.sent += amount
            percent = min(100, self.sent * 100 // self.total)
            if percent != self.shown:
                self.shown = percent
                done = self.WIDTH * percent // 100
                bar = "#" * done + " " * (self.WIDTH - done)
                sizes = f"{_size(self.sent)} / {_size(self.total)}"
                print(f"\r[{bar}] {percent:3d}%  {sizes}", end="", file=self.out, flush=True)

    def close(self) -> None:
        print(file=self.out, flush=True)


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return ""  # not reached


def send(s3: Any, path: str, bucket: str, key: str) -> None:
    """The file's bytes to `bucket/key` through econe's S3 endpoint (multipart when large),
    the bucket created when missing."""
    import botocore.exceptions
    from boto3.s3.transfer import TransferConfig

    try:
        s3.head_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 404:
            raise
        s3.create_bucket(Bucket=bucket)
    progress = Progress(os.path.getsize(path))
    part = 64 * 2**20
    config = TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=4)
    try:
        s3.upload_file(path, bucket, key, Callback=progress, Config=config)
    finally:
        progress.close()


def upload(ec2: Any, args: argparse.Namespace) -> None:
    """Send a file through econe's S3 endpoint and make it an AMI (or register a URL)."""
    if "://" in args.file:
        location = args.file
    else:
        key = os.path.basename(os.path.abspath(args.file))
        send(args.s3(), args.file, args.bucket, key)
        location = f"{args.bucket}/{key}"
    name = args.name or os.path.basename(args.file.rstrip("/"))
    ami = ec2.register_image(ImageLocation=location, Name=name)["ImageId"]
    state = wait_available(ec2, ami) if not args.no_wait else "pending"
    if state not in ("available", "pending"):
        raise ToolError(f"{ami} is {state}: the repository could not copy {location}")
    print(f"Success: ImageId {ami}")


def register(ec2: Any, args: argparse.Namespace) -> None:
    location = ec2_id(args.image, "ami")
    answer = ec2.register_image(ImageLocation=location, Name=args.name or location)
    print(f"Success: ImageId {answer['ImageId']}")


def describe_images(ec2: Any, args: argparse.Namespace) -> None:
    ids = [ec2_id(i, "ami") for i in args.ids]
    images = ec2.describe_images(ImageIds=ids)["Images"]
    rows = [
        [i.get("ImageOwnerAlias") or i.get("OwnerId", ""), i["ImageId"], i["State"],
         "public" if i.get("Public") else "private", i.get("ImageLocation", "")]
        for i in images
    ]  # fmt: skip
    table(rows, ["Owner", "ImageId", "Status", "Visibility", "Location"] if args.headers else None)


def run_instances(ec2: Any, args: argparse.Namespace) -> None:
    params: dict[str, Any] = {
        "ImageId": ec2_id(args.image, "ami"),
        "MinCount": args.count,
        "MaxCount": args.count,
        "InstanceType": args.type,
    }
    if args.key:
        params["KeyName"] = args.key
    user_data = _user_data(args)
    if user_data is not None:
        params["UserData"] = user_data
    answer = ec2.run_instances(**params)
    rows = [
        [answer.get("OwnerId", ""), i["ImageId"], i["InstanceId"], i["InstanceType"]]
        for i in answer["Instances"]
    ]
    table(rows, ["Owner", "ImageId", "InstanceId", "InstanceType"] if args.headers else None)


def _user_data(args: argparse.Namespace) -> str | None:
    if args.user_data_file:
        with open(args.user_data_file, encoding="utf-8") as f:
            return f.read()
    return args.user_data


def describe_instances(ec2: Any, args: argparse.Namespace) -> None:
    ids = [ec2_id(i, "i") for i in args.ids]
    rows = []
    for reservation in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
        for i in reservation["Instances"]:
            rows.append(
                [reservation.get("OwnerId", ""), i["InstanceId"], i.get("ImageId", ""),
                 i["State"]["Name"], i.get("PublicIpAddress") or i.get("PrivateIpAddress", ""),
                 i.get("InstanceType", "")]
            )  # fmt: skip
    header = ["Owner", "Id", "ImageId", "State", "IP", "Type"]
    table(rows, header if args.headers else None)


def change(verb: str, method: str) -> Any:
    def tool(ec2: Any, args: argparse.Namespace) -> None:
        ids = [ec2_id(i, "i") for i in args.ids]
        answer = getattr(ec2, method)(InstanceIds=ids)
        changes = next((v for k, v in answer.items() if k.endswith("Instances")), None)
        if changes is None:  # RebootInstances answers only `true`
            for instance in ids:
                print(f"Success: {verb} {instance}")
            return
        for c in changes:
            print(f"Success: {verb} {c['InstanceId']} in {c['CurrentState']['Name']} state")

    return tool


RUNNERS = {
    "upload": upload,
    "register": register,
    "describe-images": describe_images,
    "run-instances": run_instances,
    "describe-instances": describe_instances,
    "terminate-instances": change("Terminating", "terminate_instances"),
    "reboot-instances": change("Rebooting", "reboot_instances"),
    "start-instances": change("Starting", "start_instances"),
    "stop-instances": change("Stopping", "stop_instances"),
}


def parser(tool: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"econe-{tool}", description=__doc__.splitlines()[0])
    p.add_argument("-K", "--access-key", help="access key (the seed: the user name)")
    p.add_argument("-S", "--secret-key", help="secret key (the seed: the password)")
    p.add_argument("-U", "--url", help="econe's URL (default: $EC2_URL, else localhost:4567)")
    p.add_argument("--region", help="region SigV4 names (default: $EC2_REGION, else one)")
    p.add_argument("-H", "--headers", action="store_true", help="print a header line")
    if tool == "upload":
        p.add_argument("file", help="image file (sent through econe's S3 endpoint) or URL")
        p.add_argument("-n", "--name", help="image name (default: the file's name)")
        p.add_argument("-b", "--bucket", default="images", help="S3 bucket (images)")
        p.add_argument("--no-wait", action="store_true", help="do not wait for the copy")
    elif tool == "register":
        p.add_argument("image", help="AMI id or number, an image path or a URL")
        p.add_argument("-n", "--name", help="image name")
    elif tool == "run-instances":
        p.add_argument("image", help="AMI id or number")
        p.add_argument("-t", "--type", default="m1.small", help="instance type (m1.small)")
        p.add_argument("-k", "--key", help="key pair name")
        p.add_argument("-n", "--count", type=int, default=1, help="instances to run (1)")
        p.add_argument("-d", "--user-data", help="user data")
        p.add_argument("-f", "--user-data-file", help="user data from a file")
    else:
        needs = tool not in ("describe-images", "describe-instances")
        p.add_argument("ids", nargs="+" if needs else "*", help="instance or image ids")
    return p


def tool_name(argv0: str) -> str:
    base = os.path.basename(argv0)
    return base[len("econe-") :] if base.startswith("econe-") else base


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    return run_tool("econe tools", TOOLS, RUNNERS, parser, argv, prog)


def run_tool(
    family: str,
    tools: tuple[str, ...],
    runners: dict[str, Any],
    make_parser: Any,
    argv: list[str] | None,
    prog: str | None,
) -> int:
    """`econe-<tool>` of a family: 0, or 1 with `econe-<tool>: Code: message` on stderr; a
    kept key that econe no longer takes is traded again once."""
    tool = tool_name(prog or sys.argv[0])
    if tool not in runners:
        print(f"{family}: run as one of econe-{', econe-'.join(tools)}", file=sys.stderr)
        return 2
    args = make_parser(tool).parse_args(sys.argv[1:] if argv is None else argv)
    import botocore.exceptions

    def run(fresh: bool) -> None:
        env = dict(os.environ)
        args.s3 = lambda: client(args, env, fresh, "s3")
        runners[tool](client(args, env, fresh), args)

    try:
        try:
            run(False)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in AUTH_FAILURES:
                raise
            run(True)  # a kept key was deleted or rotated
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        print(f"econe-{tool}: {error.get('Code')}: {error.get('Message')}", file=sys.stderr)
        return 1
    except (ToolError, OSError, botocore.exceptions.BotoCoreError) as exc:
        print(f"econe-{tool}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
