"""Sizes, rates and ages as click parameter types: parsed once where the option is read, and a
bad value reported in click's own words ("Invalid value for '--part-size': ...", exit 2)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click


class SizeType(click.ParamType):
    """Bytes: "20MiB", "512K" (K, M, G are binary, as rclone reads them), "1GB" (decimal)."""

    name = "size"

    def __init__(self, *, minimum: int | None = None, maximum: int | None = None, bounds: str = "") -> None:
        self.minimum, self.maximum, self.bounds = minimum, maximum, bounds

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        from engine.text import printable
        from engine.units import parse_size

        if isinstance(value, int):
            return value
        try:
            size = parse_size(value)
        except ValueError as exc:
            self.fail(printable(str(exc)), param, ctx)
        if (self.minimum is not None and size < self.minimum) or (self.maximum is not None and size > self.maximum):
            self.fail(f"must be {self.bounds}", param, ctx)
        return size


class RateType(click.ParamType):
    """Bytes per second: "20MiB/s", "20M", or "off" for no cap (None)."""

    name = "rate"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | None:
        from engine.text import printable
        from engine.units import parse_rate

        if value is None or isinstance(value, int):
            return value
        try:
            return parse_rate(value)
        except ValueError as exc:
            self.fail(printable(str(exc)), param, ctx)


class AgeType(click.ParamType):
    """A duration: "30m", "24h", "7d", "2w", "90s" or plain seconds."""

    name = "age"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        from engine.stale import parse_age
        from engine.text import printable

        if isinstance(value, timedelta):
            return value
        try:
            return parse_age(value)
        except ValueError as exc:
            self.fail(printable(str(exc)), param, ctx)


SIZE = SizeType()
RATE = RateType()
AGE = AgeType()
