"""VMM (virtual machine manager) driver of an EC2 region: ``one_vmm_ec2 "vmm_ec2/vmm_ec2.conf
[--region R] [--endpoint URL] [--credentials FILE] [--profile P]"`` (VM_MAD type "xml").

DEPLOY reads the VM's EC2 section from the deployment file (oned's XML of the VM) and runs one
instance with a client token made of this cloud's id, the VM id and the history sequence, tagged
``one:vmid``, ``one:cloud``, ``one:token`` and ``Name``: a re-issued DEPLOY answers the instance
it already started. AUTHORIZED_PORTS open on a security group the driver manages, ELASTICIP is
associated once the instance runs, and the per-type limits of the configuration are never
exceeded. POLL answers from one DescribeInstances per cycle (drivers/ec2_inventory.py).
SHUTDOWN and CANCEL terminate and wait until EC2 says shutting-down or terminated; SAVE and
RESTORE are EC2's stop and start; REBOOT and RESET are both RebootInstances; MIGRATE is not
implemented (reference §11.2).
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from drivers import ec2_section as sec
from drivers.ec2_common import (
    Client,
    SecurityGroups,
    cloud_filters,
    cloud_identity,
    describe_all,
    describe_error,
    ec2_call,
    error_code,
    fail_with,
)
from drivers.ec2_conf import (
    ConfError,
    Settings,
    conf_path,
    load_settings,
    parse_conf,
    parse_ec2_args,
    var_dir,
)
from drivers.ec2_inventory import Inventory, tag
from drivers.protocol import DriverFailure, NoReply, Request
from drivers.serve import Action, Logger, serve

_REMOTE_FILE = re.compile(r"/(\d+)/images/deployment\.(\d+)$")
_INSTANCE = re.compile(r"i-[0-9a-f]{8,17}")
NOT_FOUND = ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed")


@dataclass
class Context:
    settings: Settings
    client: Client
    cloud: str
    var: str
    inventory: Inventory
    groups: SecurityGroups
    lock: threading.Lock = field(default_factory=threading.Lock)
    starting: Counter[str] = field(default_factory=Counter)  # instance type -> deploys running


def arguments(request: Request, count: int) -> tuple[str, ...]:
    if len(request.args) < count:
        raise DriverFailure(f"{request.action} needs {count} arguments")
    return request.args[:count]


# --- DEPLOY ----------------------------------------------------------------------------------


def read_deployment(ctx: Context, remote: str) -> tuple[sec.Vm, str]:
    """The VM (from the local copy of the deployment file) and its history sequence."""
    match = _REMOTE_FILE.search(remote)
    if not match:
        raise DriverFailure(f"{remote} is not <VM_DIR>/<vid>/images/deployment.<seq>")
    local = f"{ctx.var}/{match.group(1)}/deployment.{match.group(2)}"
    try:
        with open(local) as text:
            return sec.parse_vm(text.read()), match.group(2)
    except OSError as err:
        raise DriverFailure(f"cannot read the deployment file {local}: {err.strerror}") from None
    except sec.SectionError as err:
        raise DriverFailure(str(err)) from None


def deploy(ctx: Context, request: Request, log: Logger) -> str:
    host, remote = arguments(request, 2)
    vm, seq = read_deployment(ctx, remote)
    try:
        values = sec.merged(sec.choose_section(vm.sections, host), ctx.settings.defaults)
        kind = sec.instance_type(values, ctx.settings.limits)
        token = sec.client_token(ctx.cloud, request.id, seq)
        tags = sec.instance_tags(
            ctx.cloud, vm, request.id, token, sec.parse_tags(values.get("TAGS", ""))
        )
        run = sec.run_arguments(values, kind, token, tags)
        ports = sec.parse_ports(values.get("AUTHORIZEDPORTS", ""))
        group_ids, group_names = sec.security_groups(values.get("SECURITYGROUPS", ""))
    except sec.SectionError as err:
        raise DriverFailure(str(err)) from None
    found = ec2_call("DescribeInstances", lambda: ctx.inventory.tagged("one:token", token))
    if found:
        log(f"instance {found[0]['InstanceId']} was already started for this deploy")
        return str(found[0]["InstanceId"])
    if ports:
        group_ids.append(ctx.groups.for_ports(ports, values.get("SUBNETID")))
    run |= {"SecurityGroupIds": group_ids} if group_ids else {}
    run |= {"SecurityGroups": group_names} if group_names else {}
    instance = run_within_limit(ctx, kind, run)
    log(f"instance {instance['InstanceId']} ({kind}) started in {ctx.settings.region}")
    if log.cancelled:  # oned gave up on this DEPLOY: its VM must not keep an instance
        drop(ctx, instance["InstanceId"], log)
        raise NoReply()
    if values.get("ELASTICIP"):
        associate(ctx, instance["InstanceId"], values["ELASTICIP"], log)
    return str(instance["InstanceId"])


def run_within_limit(ctx: Context, kind: str, run: dict[str, Any]) -> dict[str, Any]:
    """RunInstances, unless the instances of ``kind`` (running and being started) reached the
    limit: the limit holds even with many DEPLOYs at once."""
    limit = ctx.settings.limits[kind].count
    ec2_call("DescribeInstances", ctx.inventory.current)  # a listing, outside the lock
    with ctx.lock:
        known = ec2_call("DescribeInstances", ctx.inventory.current)  # the same, or newer
        used = sum(
            1 for i in known.values()
            if i.get("InstanceType") == kind and i.get("State", {}).get("Name") not in sec.GONE
        ) + ctx.starting[kind]  # fmt: skip
        if used >= limit:
            raise DriverFailure(
                f"EC2 INSTANCETYPE: the limit of {limit} {kind} instances in "
                f"{ctx.settings.region} is reached"
            )
        ctx.starting[kind] += 1
    try:
        answer = ec2_call("RunInstances", lambda: ctx.client().run_instances(**run))
        instance = answer["Instances"][0]
        ctx.inventory.note(instance)
        return instance
    finally:
        with ctx.lock:
            ctx.starting[kind] -= 1


def associate(ctx: Context, instance: str, address: str, log: Logger) -> None:
    """Associate ELASTICIP once the instance runs; on failure terminate it, then fail."""
    key = "AllocationId" if address.startswith("eipalloc-") else "PublicIp"
    try:
        wait_for_state(ctx, instance, {"running"}, log)
        pair = {"InstanceId": instance, key: address}
        ec2_call("AssociateAddress", lambda: ctx.client().associate_address(**pair))
    except DriverFailure as err:
        log(f"{instance}: {err}")
        drop(ctx, instance, log)
        raise DriverFailure(f"EC2 ELASTICIP {address}: {err}") from None
    log(f"elastic IP {address} associated with {instance}")


def drop(ctx: Context, instance: str, log: Logger) -> None:
    """Terminate an instance whose DEPLOY fails or was cancelled, so no VM leaves one behind."""
    try:
        ctx.client().terminate_instances(InstanceIds=[instance])
        log(f"{instance} terminated: its deploy did not succeed")
    except Exception as err:
        log(f"could not terminate {instance}: {describe_error(err)}")
        print(f"one_vmm_ec2: {instance} may be orphaned: {describe_error(err)}", file=sys.stderr)


# --- waiting, SHUTDOWN, CANCEL, SAVE, RESTORE, REBOOT, POLL -----------------------------------


def describe_one(ctx: Context, instance: str) -> dict[str, Any] | None:
    try:
        answer = ctx.client().describe_instances(InstanceIds=[instance])
    except Exception as err:
        if error_code(err) in NOT_FOUND:
            return None
        fail_with("DescribeInstances", err)
    found = [i for r in answer.get("Reservations", ()) for i in r.get("Instances", ())]
    return found[0] if found else None


def wait_for_state(ctx: Context, instance: str, states: set[str], log: Logger) -> None:
    """Until the instance is in one of ``states`` (gone counts as shutting-down/terminated),
    within WAIT_TIMEOUT, or until DRIVER_CANCEL."""
    cancelled = threading.Event()
    log.on_cancel(cancelled.set)
    deadline = time.monotonic() + ctx.settings.wait_timeout
    delay = 0.5
    while True:
        found = describe_one(ctx, instance)
        state = found.get("State", {}).get("Name", "") if found else "terminated"
        if found:
            ctx.inventory.note(found)
        if state in states or (state in sec.GONE and states & sec.GONE):
            return
        if time.monotonic() + delay > deadline or cancelled.wait(delay):
            raise DriverFailure(
                f"{instance} is still {state} after {ctx.settings.wait_timeout:g} s"
            )
        delay = min(delay * 2, 5.0)


def instances_of(ctx: Context, request: Request, deploy_id: str) -> list[str]:
    """The deploy id; for a VM without one (its DEPLOY never answered), its tagged instances."""
    if _INSTANCE.fullmatch(deploy_id):
        return [deploy_id]
    found = ec2_call("DescribeInstances", lambda: ctx.inventory.tagged("one:vmid", request.id))
    return [str(i["InstanceId"]) for i in found if i.get("State", {}).get("Name") not in sec.GONE]


def terminate(ctx: Context, request: Request, log: Logger) -> str:
    """SHUTDOWN and CANCEL: TerminateInstances, waited for; an instance already gone is done."""
    _, deploy_id = arguments(request, 2)
    for instance in instances_of(ctx, request, deploy_id):
        try:
            answer = ctx.client().terminate_instances(InstanceIds=[instance])
        except Exception as err:
            if error_code(err) in NOT_FOUND:
                log(f"{instance} is not in EC2 any more")
                continue
            fail_with("TerminateInstances", err)
        state = answer["TerminatingInstances"][0]["CurrentState"]["Name"]
        ctx.inventory.note({"InstanceId": instance, "State": {"Name": state}})
        if state not in sec.GONE:
            wait_for_state(ctx, instance, set(sec.GONE), log)
        log(f"{instance} terminated")
    return "-"


def save(ctx: Context, request: Request, log: Logger) -> str:
    """SAVE (stop, suspend): EC2 StopInstances, waited for until stopped."""
    _, deploy_id = arguments(request, 2)
    ec2_call("StopInstances", lambda: ctx.client().stop_instances(InstanceIds=[deploy_id]))
    wait_for_state(ctx, deploy_id, {"stopped"}, log)
    return "-"


def restore(ctx: Context, request: Request, log: Logger) -> str:
    """RESTORE (resume): EC2 StartInstances, waited for until running; answers the deploy id."""
    _, deploy_id = arguments(request, 2)
    ec2_call("StartInstances", lambda: ctx.client().start_instances(InstanceIds=[deploy_id]))
    wait_for_state(ctx, deploy_id, {"running"}, log)
    return deploy_id


def reboot(ctx: Context, request: Request, log: Logger) -> str:
    """REBOOT and RESET: EC2 RebootInstances, which has no hard form (EC2 itself resets an
    instance that has not rebooted within four minutes); not waited for: the instance stays
    running throughout."""
    _, deploy_id = arguments(request, 2)
    ec2_call("RebootInstances", lambda: ctx.client().reboot_instances(InstanceIds=[deploy_id]))
    return "-"


def migrate(ctx: Context, request: Request, log: Logger) -> str:
    raise DriverFailure(sec.NOT_IMPLEMENTED)


def poll(ctx: Context, request: Request, log: Logger) -> str:
    """POLL from this cycle's listing; an instance missing from it is asked about alone (EC2's
    listings may lag behind a RunInstances) and is gone (STATE=d) only if EC2 says so."""
    _, deploy_id = arguments(request, 2)
    ids = instances_of(ctx, request, deploy_id)
    if not ids:
        return sec.poll_info(None)
    instance = ec2_call("DescribeInstances", lambda: ctx.inventory.lookup(ids[0]))
    if instance is None:
        instance = describe_one(ctx, ids[0])
        if instance is not None:
            ctx.inventory.note(instance)
    return sec.poll_info(instance)


# --- start-up ---------------------------------------------------------------------------------


def report_instances(ctx: Context) -> None:
    """At start, list this cloud's live instances in the driver's log: an instance of a VM that
    oned considers gone is found there (the driver does not terminate what oned may still own)."""
    try:
        live = [i for i in ctx.inventory.current().values()
                if i.get("State", {}).get("Name") not in sec.GONE]  # fmt: skip
    except Exception as err:
        print(f"one_vmm_ec2: cannot list the instances: {describe_error(err)}", file=sys.stderr)
        return
    listed = ", ".join(f"{i['InstanceId']} (VM {tag(i, 'one:vmid')})" for i in live) or "none"
    print(f"one_vmm_ec2: cloud {ctx.cloud} in {ctx.settings.region}: live instances: {listed}",
          file=sys.stderr, flush=True)  # fmt: skip


def with_limits(settings: Settings) -> Settings:
    """The limits come from LIMITS (default im_ec2/im_ec2.conf) when the file has none."""
    if settings.limits:
        return settings
    path = conf_path(settings.limits_file or "im_ec2/im_ec2.conf")
    try:
        with open(path) as conf:
            limits = parse_conf(conf.read(), path).limits
    except OSError as err:
        raise ConfError(f"cannot read the instance limits {path}: {err.strerror}") from None
    return replace(settings, limits=limits)


ACTIONS = {"DEPLOY": deploy, "SHUTDOWN": terminate, "CANCEL": terminate, "SAVE": save,
           "RESTORE": restore, "MIGRATE": migrate, "POLL": poll, "REBOOT": reboot,
           "RESET": reboot}  # fmt: skip


def actions(ctx: Context) -> dict[str, Action]:
    return {name: partial(action, ctx) for name, action in ACTIONS.items()}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_ec2_args("one_vmm_ec2", __doc__ or "", 32, argv)
    try:
        settings = with_limits(load_settings(args))
        var = var_dir()
        cloud = cloud_identity(settings, var)
    except (ConfError, OSError) as err:
        print(f"one_vmm_ec2: {err}", file=sys.stderr)
        return serve(dict.fromkeys(ACTIONS, partial(_fail, str(err))))
    client = Client(settings)
    inventory = Inventory(
        lambda: describe_all(client(), cloud_filters(cloud)),
        settings.poll_window,
        settings.poll_cache,
    )
    ctx = Context(settings, client, cloud, var, inventory, SecurityGroups(client, cloud))
    threading.Thread(target=report_instances, args=(ctx,), daemon=True).start()
    return serve(actions(ctx), concurrency=args.concurrency)


def _fail(reason: str, request: Request, log: Logger) -> str:
    raise DriverFailure(reason)


if __name__ == "__main__":
    sys.exit(main())
