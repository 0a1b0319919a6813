"""Marketdata: shadow L2 books from the ME streams, served over a public WebSocket (specs/marketdata.md)."""
