"""The database behind oned: schema, migrations and the Store that reads and writes it.

Only oned writes the database. Other processes (scheduler, econe, CLIs) go through XML-RPC.
"""

from oned.store.engine import DbSettings
from oned.store.errors import DuplicateName, StoreError
from oned.store.store import Store

__all__ = ["DbSettings", "DuplicateName", "Store", "StoreError"]
