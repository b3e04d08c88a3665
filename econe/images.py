"""The image actions: DescribeImages, RegisterImage, DeregisterImage over oned's image
repository (issue 13: `one.imagepool.info`, `one.image.*`), as the caller.

Pure and blocking. An AMI is an OS image (TYPE 0) the caller may use: their own and the public
ones, `ami-%08x` of its id. RegisterImage with an `ImageLocation` that is a file path (in one of
oned's SAFE_DIRS), an http(s) URL, or the caller's S3 object (`bucket/key`, `s3://bucket/key`:
its file under `s3_dir`, which the operator puts in SAFE_DIRS) puts a new image into the
repository (oned copies it; the AMI is `pending` until the copy is done); with an `ami-…`
location it answers that AMI.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from econe import filters, responses, states
from econe.context import Context
from econe.errors import Ec2Error
from econe.one import quote, text
from econe.query import QueryRequest, as_list, format_id, parse_id, required
from econe.s3_store import locate
from econe.tags import tags_of

OS = "0"
NOT_FOUND = "InvalidAMIID.NotFound"


def _row(image: ET.Element) -> dict[str, Any]:
    iid = int(text(image, "ID"))
    return {
        "id": format_id(iid, "ami"),
        "name": text(image, "NAME"),
        "state": states.image_state(int(text(image, "STATE", "0"))),
        "owner": text(image, "UID"),
        "alias": text(image, "UNAME"),
        "location": text(image, "SOURCE") or text(image, "PATH"),
        "public": text(image, "PUBLIC") == "1",
        "description": text(image, "TEMPLATE/DESCRIPTION") or None,
        "created": int(text(image, "REGTIME", "0")),
        "tags": tags_of(image),
    }


def _item(row: dict[str, Any]) -> dict[str, Any]:
    return responses.image(
        row["id"],
        row["name"],
        row["state"],
        row["owner"],
        row["location"],
        isPublic=row["public"],
        imageOwnerAlias=row["alias"],
        description=row["description"],
        creationDate=responses.timestamp(row["created"]),
        tags=row["tags"],
    )


READERS: dict[str, filters.Reader] = {
    "image-id": lambda r: r["id"],
    "name": lambda r: r["name"],
    "state": lambda r: r["state"],
    "owner-id": lambda r: r["owner"],
    "owner-alias": lambda r: r["alias"],
    "is-public": lambda r: "true" if r["public"] else "false",
    "image-type": lambda r: "machine",
    "architecture": lambda r: "x86_64",
    "tag-key": lambda r: list(r["tags"]),
}


def describe_images(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    root = ctx.listing("one.imagepool.info", -1, -1, -1)
    rows = [_row(img) for img in root if text(img, "TYPE", OS) == OS]
    ids = as_list(call.params, "ImageId")
    if ids:
        by_id = {r["id"]: r for r in rows}
        wanted = [format_id(parse_id(i, "ami"), "ami") for i in ids]
        missing = [i for i, w in zip(ids, wanted, strict=True) if w not in by_id]
        if missing:
            raise Ec2Error(NOT_FOUND, f"The image id '[{', '.join(missing)}]' does not exist")
        rows = [by_id[w] for w in dict.fromkeys(wanted)]
    owners = as_list(call.params, "Owner")
    if owners:
        me = str(ctx.uid())
        rows = [r for r in rows if r["owner"] in owners or ("self" in owners and r["owner"] == me)]
    rows = filters.select(rows, call.params.get("Filter"), READERS)
    return {"imagesSet": [_item(r) for r in rows]}


def s3_object(ctx: Context, location: str) -> str:
    """The file of the caller's S3 object `bucket/key` (or `s3://bucket/key`)."""
    bucket, _, key = location.removeprefix("s3://").partition("/")
    if not ctx.settings.s3_dir:
        raise Ec2Error("InvalidParameterValue", "this server has no S3 endpoint")
    try:
        return locate(ctx.settings.s3_dir, ctx.uid(), bucket, key)
    except Ec2Error as exc:
        raise Ec2Error(
            "InvalidParameterValue", f"ImageLocation {location[:200]!r}: {exc.message}"
        ) from None


def register_image(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    location = required(call.params, "ImageLocation")
    if not isinstance(location, str):
        raise Ec2Error("InvalidParameterValue", "ImageLocation must be a path, URL or AMI id")
    if location.startswith("ami-"):
        iid = parse_id(location, "ami")
        ctx.call("one.image.info", iid, not_found=NOT_FOUND)
        return {"imageId": format_id(iid, "ami")}
    name = str(call.params.get("Name") or location.rstrip("/").rsplit("/", 1)[-1])
    if not location.startswith(("/", "http://", "https://")):
        location = s3_object(ctx, location)  # bucket/key of the caller's S3 objects
    mine = ctx.listing("one.imagepool.info", -3, -1, -1)
    if any(text(img, "NAME") == name for img in mine):
        raise Ec2Error("InvalidAMIName.Duplicate", f"AMI name {name[:128]!r} is already in use")
    lines = [f"NAME = {quote(name)}", f"PATH = {quote(location)}", "TYPE = OS"]
    description = call.params.get("Description")
    if description:
        lines.append(f"DESCRIPTION = {quote(str(description))}")
    iid = int(ctx.call("one.image.allocate", "\n".join(lines) + "\n"))
    return {"imageId": format_id(iid, "ami")}


def deregister_image(ctx: Context, call: QueryRequest) -> dict[str, Any]:
    iid = parse_id(required(call.params, "ImageId"), "ami")
    ctx.call("one.image.delete", iid, not_found=NOT_FOUND, wrong_state="InvalidParameterValue")
    return {"return": True}


ACTIONS = {
    "DescribeImages": describe_images,
    "RegisterImage": register_image,
    "DeregisterImage": deregister_image,
}
