"""mm_sched: the scheduler process. Reads oned's pools, filters and ranks hosts, dispatches.

It reaches oned over XML-RPC only (DESIGN.md §3): ``pools`` reads, ``placement`` decides (pure),
``dispatch`` writes, ``loop`` paces the rounds, ``config`` reads sched.conf and the flags.
"""
