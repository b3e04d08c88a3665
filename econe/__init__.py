"""econe."""
