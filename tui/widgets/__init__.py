"""Reusable widgets of the transfer manager."""
