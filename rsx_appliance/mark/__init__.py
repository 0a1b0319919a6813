"""Mark: index from several sources, mark price, funding rates (specs/mark.md)."""
