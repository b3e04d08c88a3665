"""one-dashboard: the web dashboard, its own process in front of oned (DESIGN.md §1)."""
