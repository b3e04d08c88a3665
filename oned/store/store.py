"""The shell around the database: oned loads its working set from here and writes through.

oned is the only writer and calls from one thread, so the store holds one connection for its
whole life. Every public method is one transaction, committed (or rolled back) before it returns;
an acknowledged change is therefore on disk, and a failed one left nothing behind.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from oned.ec2keys import Ec2Key
from oned.records import History, Host, Image, Lease, User, Vm, Vnet
from oned.store import done, ec2keys, images, migrate, networks, rows, vm_writes, vms
from oned.store.engine import DbSettings, connect, create_engine, describe, loggable_url
from oned.store.errors import DuplicateName, StoreError, driver_reason
from oned.store.fast_sql import DriverCursor, driver_transaction
from oned.store.schema import POOLS, host_pool, pool_control, user_pool
from oned.store.vm_writes import VmInsert, VmUpdate, run_writes, upsert_history

Write = Callable[[Connection], object]  # one part of a transaction (Store.run)
_KINDS = {
    "user_pool": "user",
    "host_pool": "host",
    "network_pool": "network",
    "image_pool": "image",
}

_INSERT_USER = user_pool.insert()
_UPDATE_USER = user_pool.update().where(user_pool.c.oid == sa.bindparam("b_oid"))
_DELETE_USER = user_pool.delete().where(user_pool.c.oid == sa.bindparam("b_oid"))
_INSERT_HOST = host_pool.insert()
_UPDATE_HOST = host_pool.update().where(host_pool.c.oid == sa.bindparam("b_oid"))
_DELETE_HOST = host_pool.delete().where(host_pool.c.oid == sa.bindparam("b_oid"))
_SELECT_USERS = sa.select(*rows.USER_COLUMNS).order_by(user_pool.c.oid)
_SELECT_HOSTS = sa.select(*rows.HOST_COLUMNS).order_by(host_pool.c.oid)
_MAX_OIDS = sa.union_all(
    *(sa.select(sa.literal(kind), sa.func.max(table.c.oid)) for kind, table in POOLS.items())
)
_KIND_OF_TABLE = {table.name: kind for kind, table in POOLS.items()}
_LAST_OIDS = sa.select(pool_control.c.tablename, pool_control.c.last_oid)
_COUNT_OID = (
    pool_control.update()
    .where(pool_control.c.tablename == sa.bindparam("b_table"))
    .where(pool_control.c.last_oid < sa.bindparam("b_oid"))
    .values(last_oid=sa.bindparam("b_oid"))
)


class Store:
    """Users (with their EC2 keys), hosts, VMs (with history), networks and leases, and images
    in SQL; see the module docstring for the contract."""

    def __init__(self, engine: Engine, connection: Connection, where: str):
        self._engine = engine
        self._conn = connection
        self.where = where  # "sqlite database var/one.db", 'postgresql database "one" on ...'

    @classmethod
    def open(cls, db: DbSettings, db_file: str, log: logging.Logger) -> Store:
        """Connect, migrate to the newest schema and log one line saying what was done.

        Raises StoreError naming the database and the driver's reason when that fails.
        """
        where = describe(db, db_file)
        engine = create_engine(db, db_file)
        log.debug(f"Connecting to {loggable_url(db, db_file)}")
        try:
            connection = connect(engine, db, db_file)
        except StoreError:
            engine.dispose()
            raise
        try:
            log.info(migrate.upgrade(connection, where))
        except BaseException as exc:
            connection.close()
            engine.dispose()
            if isinstance(exc, sa.exc.DBAPIError):
                raise StoreError(f"cannot migrate {where}: {driver_reason(exc)}") from exc
            raise
        return cls(engine, connection, where)

    def close(self) -> None:
        self._conn.close()
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- loading at start ------------------------------------------------------------------

    def load_users(self) -> list[User]:
        with self._transaction() as conn:
            return [rows.user_from(row) for row in conn.execute(_SELECT_USERS)]

    def load_hosts(self) -> list[Host]:
        with self._transaction() as conn:
            return [rows.host_from(row) for row in conn.execute(_SELECT_HOSTS)]

    def load_vms(self) -> list[Vm]:
        """Every VM not DONE, in id order, each with its whole history ordered by seq."""
        with _no_gc(), self._transaction() as conn:
            return vms.load_live(conn)

    def load_networks(self) -> list[Vnet]:
        """Every virtual network in id order, each with its leases (oned.store.networks)."""
        with self._transaction() as conn:
            return networks.load(conn)

    def load_images(self) -> list[Image]:
        """Every image of the repository in id order (oned.store.images)."""
        with self._transaction() as conn:
            return images.load(conn)

    def load_ec2_keys(self) -> list[Ec2Key]:
        """Every EC2 key, secrets sealed (oned.store.ec2keys)."""
        with self._transaction() as conn:
            return ec2keys.load(conn)

    def next_oids(self) -> dict[str, int]:
        """The next id of each pool: one past the highest it holds (max(oid), DONE VMs
        included) or ever deleted (pool_control, which every delete raises in its own
        transaction: inserts pay nothing for it, and VMs are never deleted, they stay DONE).
        Whatever purges rows one day must raise pool_control the same way.

        NOTE: as modern OpenNebula (pool_control), a deleted object's id is never handed out
        again, not even after a restart.
        """
        with self._transaction() as conn:
            found = [*conn.execute(_MAX_OIDS).all()]
            found += [(_KIND_OF_TABLE[t], oid) for t, oid in conn.execute(_LAST_OIDS).all()]
        last = dict.fromkeys(POOLS, -1)
        for kind, oid in found:
            if oid is not None and kind in last:
                last[kind] = max(last[kind], oid)
        return {kind: oid + 1 for kind, oid in last.items()}

    # -- reading what is not in memory -----------------------------------------------------

    def get_vm(self, vid: int) -> Vm | None:
        """Any VM, DONE included, with its whole history; None when there is no such VM."""
        found = self.get_vms([vid])
        return found[0] if found else None

    def get_vms(self, vids: Iterable[int]) -> list[Vm]:
        """The VMs among ``vids`` that exist (DONE included), in id order, with history."""
        with self._transaction() as conn:
            return vms.get(conn, vids)

    def list_vm_ids(self, **filters: Any) -> list[int]:
        """VM ids in order, by owner, state, id range or page (oned.store.vms.list_ids)."""
        with self._transaction() as conn:
            return vms.list_ids(conn, **filters)

    def purge_done(self, before: int, *, batch: int = 500, limit: int = 10_000) -> int:
        """Remove at most ``limit`` DONE VMs (and their history) that ended before ``before``
        (epoch seconds), the oldest first, ``batch`` per transaction; the number removed.

        It runs on a connection of its own, opened and closed here, so that a worker thread
        may call it while oned's thread keeps using the store: DONE VMs never change, and
        pool_control keeps their ids from being handed out again.
        """
        purged = 0
        with self._engine.connect() as conn:
            while purged < limit:
                with self._guarded(conn):
                    vids = done.oldest_before(conn, before, min(batch, limit - purged))
                if not vids:
                    break
                with self._guarded(conn):
                    removed = done.delete(conn, vids)
                if not removed:
                    break
                purged += removed
        return purged

    def count_done(self, before: int) -> int:
        """How many DONE VMs ended before ``before``; on its own connection, as purge_done."""
        with self._engine.connect() as conn, self._guarded(conn):
            return done.count_before(conn, before)

    # -- writes: one transaction each ------------------------------------------------------

    def insert_user(self, user: User) -> None:
        params = rows.user_params(user)
        with self._transaction("user_pool", user.name) as conn:
            conn.execute(_INSERT_USER, {"oid": user.id, **params})

    def update_user(self, user: User) -> None:
        params = rows.user_params(user)
        with self._transaction("user_pool", user.name) as conn:
            _must_hit(conn.execute(_UPDATE_USER, {"b_oid": user.id, **params}), "user", user.id)

    def delete_user(self, uid: int) -> None:
        """The user and the user's EC2 keys."""
        with self._transaction() as conn:
            ec2keys.delete_of_user(conn, uid)
            conn.execute(_DELETE_USER, {"b_oid": uid})
            _count_oid(conn, "user_pool", uid)

    def insert_host(self, host: Host) -> None:
        params = rows.host_params(host)
        with self._transaction("host_pool", host.name) as conn:
            conn.execute(_INSERT_HOST, {"oid": host.id, **params})

    def update_host(self, host: Host) -> None:
        params = rows.host_params(host)
        with self._transaction("host_pool", host.name) as conn:
            _must_hit(conn.execute(_UPDATE_HOST, {"b_oid": host.id, **params}), "host", host.id)

    def update_hosts(self, hosts: Iterable[Host]) -> None:
        """Many hosts in one transaction (a monitoring batch); ids missing are ignored."""
        batch = [{"b_oid": host.id, **rows.host_params(host)} for host in hosts]
        if not batch:
            return
        with self._transaction() as conn:
            conn.execute(_UPDATE_HOST, batch)

    def delete_host(self, hid: int) -> None:
        with self._transaction() as conn:
            conn.execute(_DELETE_HOST, {"b_oid": hid})
            _count_oid(conn, "host_pool", hid)

    def insert_vm(self, vm: Vm, leases: Sequence[Lease] = ()) -> None:
        """The VM, its history records, if any, and the ``leases`` it takes (each with ``vid``
        the VM's id), in one transaction.

        A lease already in use in the database fails the whole insert with StoreError and
        nothing is written: the database, not only memory, refuses to lease an address twice.
        """
        self.run([self.vm_insert(vm, leases)])

    def vm_insert(self, vm: Vm, leases: Sequence[Lease] = ()) -> VmInsert:
        """insert_vm's write, to ``run`` with others in one transaction (oned.commits)."""
        return VmInsert(
            {"oid": vm.id, **rows.vm_params(vm)},
            [rows.history_params(record) for record in vm.history],
            leases,
        )

    def run(self, writes: Sequence[Write]) -> None:
        """The ``writes`` in one transaction: all committed on return, none written when it
        raises StoreError (the group commit of oned.commits). The VM inserts among them go
        first, all in one statement per table; then the others in order, each run of
        consecutive VM updates merged likewise (oned.store.vm_writes), on the driver's cursor
        (oned.store.fast_sql). A group of VM writes only (allocations, driver answers) runs in
        a transaction of the driver's, without SQLAlchemy's."""
        if not writes:
            return
        if all(isinstance(write, VmInsert | VmUpdate) for write in writes):
            try:
                with driver_transaction(self._conn) as cursor:
                    run_writes(self._conn, cursor, writes)
            except sa.exc.DBAPIError as exc:
                raise self._store_error(exc) from exc
            return
        with self._transaction() as conn, DriverCursor(conn) as cursor:
            run_writes(conn, cursor, writes)

    def update_vm(
        self,
        vm: Vm,
        expect: tuple[int, int] | None = None,
        history: Sequence[History] = (),
        released: Sequence[Lease] = (),
    ) -> bool:
        """Write the VM row, upsert the ``history`` records given and give back the
        ``released`` leases (a VM reaching DONE), in one transaction.

        With ``expect=(state, lcm_state)`` this is a compare-and-swap: the row is written only
        if its stored state and lcm_state are those. Returns False, having changed nothing, when
        they are not or when there is no such VM.
        """
        saved: list[bool] = []
        self.run([self.vm_update(vm, expect, history, released, saved.append)])
        return saved[0]

    def vm_update(
        self,
        vm: Vm,
        expect: tuple[int, int] | None = None,
        history: Sequence[History] = (),
        released: Sequence[Lease] = (),
        result: Callable[[bool], object] = lambda saved: None,
        known: Sequence[History] | None = None,
    ) -> VmUpdate:
        """update_vm's write, to ``run`` with others in one transaction (oned.transition_batch);
        it gives ``result`` whether the compare-and-swap held (False: it wrote nothing).

        ``known``: the history the VM had before (the lifecycle knows it); a record of
        ``history`` with a seq it lacks is new, inserted without trying an UPDATE first."""
        return vm_writes.vm_update(vm, expect, history, released, result, known)

    def upsert_history(self, record: History) -> None:
        """Insert the record, or overwrite the one with the same (vid, seq)."""
        with self._transaction() as conn, DriverCursor(conn) as cursor:
            upsert_history(cursor, record)

    def insert_network(self, net: Vnet) -> None:
        """The network's row (a FIXED network's leases are defined by its template);
        DuplicateName when the name is taken."""
        with self._transaction("network_pool", net.name) as conn:
            networks.insert(conn, net)

    def update_network(self, net: Vnet) -> None:
        """The network's own row (owner, PUBLIC, template); its leases are not touched."""
        with self._transaction("network_pool", net.name) as conn:
            _must_hit(networks.update(conn, net), "network", net.id)

    def delete_network(self, nid: int) -> None:
        """The network and any lease row left of it."""
        with self._transaction() as conn:
            networks.delete(conn, nid)
            _count_oid(conn, "network_pool", nid)

    def insert_image(self, image: Image) -> None:
        """The image's row; DuplicateName when its owner has an image of that name."""
        with self._transaction("image_pool", image.name) as conn:
            images.insert(conn, image)

    def update_image(self, image: Image) -> None:
        with self._transaction("image_pool", image.name) as conn:
            _must_hit(images.update(conn, image), "image", image.id)

    def delete_image(self, iid: int) -> None:
        with self._transaction() as conn:
            images.delete(conn, iid)
            _count_oid(conn, "image_pool", iid)

    def insert_ec2_key(self, key: Ec2Key) -> None:
        with self._transaction() as conn:
            ec2keys.insert(conn, key)

    def delete_ec2_key(self, access_key_id: str) -> None:
        with self._transaction() as conn:
            ec2keys.delete(conn, access_key_id)

    def take_leases(self, leases: Sequence[Lease]) -> None:
        """Rows for leases taken outside a VM insert (a hold: vid -1); StoreError if one is
        in use already, and then nothing is written."""
        with self._transaction() as conn, DriverCursor(conn) as cursor:
            networks.take(cursor, leases)

    def release_leases(self, leases: Sequence[Lease]) -> None:
        """Give back leases held by their ``vid``; one a VM no longer holds is left alone."""
        with self._transaction() as conn, DriverCursor(conn) as cursor:
            networks.release(cursor, leases)

    # -- plumbing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, table: str | None = None, name: str = "") -> Iterator[Connection]:
        """Begin; commit on leaving, roll back on an exception and raise it as a StoreError."""
        with self._guarded(self._conn, table, name) as conn:
            yield conn

    @contextlib.contextmanager
    def _guarded(
        self, connection: Connection, table: str | None = None, name: str = ""
    ) -> Iterator[Connection]:
        """A transaction on ``connection``, as _transaction."""
        try:
            with connection.begin():
                yield connection
        except sa.exc.DBAPIError as exc:
            raise self._store_error(exc, table, name) from exc

    def _store_error(
        self, exc: sa.exc.DBAPIError, table: str | None = None, name: str = ""
    ) -> StoreError:
        if table is not None and _is_name_taken(exc, table):
            return DuplicateName(_KINDS[table], name)
        return StoreError(f"{self.where}: {driver_reason(exc)}")


def _count_oid(conn: Connection, table: str, oid: int) -> None:
    """Raise ``table``'s counter in pool_control to ``oid`` (never lower it): a deleted id."""
    conn.execute(_COUNT_OID, {"b_table": table, "b_oid": oid})


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Building 100,000s of acyclic objects makes the cyclic GC rescan them over and over: off."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _must_hit(result: sa.CursorResult, kind: str, oid: int) -> None:
    if result.rowcount != 1:
        raise StoreError(f"no {kind} {oid} to update")


def _is_name_taken(exc: sa.exc.DBAPIError, table: str) -> bool:
    """Backends word it differently; each names our constraint or the table.column."""
    if not isinstance(exc, sa.exc.IntegrityError):
        return False
    text = str(exc.orig)
    return f"uq_{table}_name" in text or f"{table}.name" in text
