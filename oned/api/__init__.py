"""api: what each XML-RPC method does, as plain functions ``(cloud, caller, *args) -> value``.

Every function checks first (no side effects), then commits to the store, then updates the pools,
so a refused or failed call changes nothing. No Twisted here: the rpc package wraps these.
"""
