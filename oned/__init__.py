"""oned."""
