"""Fortnox's change feed: one holder per deployment records events; callers read book changes."""
