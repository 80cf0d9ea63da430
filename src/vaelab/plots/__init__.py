"""Figure helpers: each returns a matplotlib Figure and keeps its artists easy to update."""
