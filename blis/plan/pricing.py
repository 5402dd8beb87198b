"""GPU prices (US dollars per GPU per hour): the shipped table `prices.yaml`, overridable from a file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from blis.errors import BlisInputError

SHIPPED = Path(__file__).with_name("prices.yaml")


@dataclass(frozen=True)
class PriceTable:
    """Prices per GPU-hour keyed by lower-case name or alias; ``source``/``date`` say where they come from."""

    prices: dict[str, float]
    names: dict[str, str]  # lower-case key -> the table's name for it
    source: str
    date: str
    files: tuple[str, ...] = field(default=())

    def price(self, hardware: str) -> Optional[float]:
        """USD per GPU-hour for ``hardware`` (any alias), or None when the table has no entry."""
        return self.prices.get(hardware.strip().lower())

    def describe(self) -> str:
        return f"{self.source} ({self.date})"


def _read(path: Path) -> dict:
    import yaml

    if not path.is_file():
        raise FileNotFoundError(f"prices: file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise BlisInputError(f"prices: {path} is not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("gpus"), dict):
        raise BlisInputError(f"prices: {path} needs a mapping 'gpus: {{NAME: {{usd_per_gpu_hour: X}}}}'")
    return data


def _entries(data: dict, path: Path) -> list[tuple[str, float, list[str]]]:
    out = []
    for name, entry in data["gpus"].items():
        if isinstance(entry, (int, float)):
            entry = {"usd_per_gpu_hour": entry}
        if not isinstance(entry, dict) or "usd_per_gpu_hour" not in entry:
            raise BlisInputError(f"prices: {name} in {path} needs usd_per_gpu_hour")
        value = entry["usd_per_gpu_hour"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < 1e4):
            raise BlisInputError(f"prices: usd_per_gpu_hour of {name} in {path} must be a number in (0, 10000), "
                                 f"got {value!r}")
        aliases = entry.get("aliases") or []
        if not isinstance(aliases, list):
            raise BlisInputError(f"prices: aliases of {name} in {path} must be a list")
        out.append((str(name), float(value), [str(a) for a in aliases]))
    return out


def load_prices(path: str | Path | None = None) -> PriceTable:
    """The shipped table, with the entries of ``path`` (same YAML shape) replacing or adding to it."""
    prices: dict[str, float] = {}
    names: dict[str, str] = {}
    base = _read(SHIPPED)
    source, date = str(base.get("source", "")), str(base.get("date", ""))
    files = [str(SHIPPED)]
    layers = [(base, SHIPPED)]
    if path is not None:
        p = Path(path)
        user = _read(p)
        layers.append((user, p))
        files.append(str(p))
        source = str(user.get("source") or f"user file {p}")
        date = str(user.get("date") or "undated")
        if len(user["gpus"]) < len(base["gpus"]):
            source += f"; other GPUs: {base.get('source')} ({base.get('date')})"
    for data, where in layers:
        for name, value, aliases in _entries(data, where):
            for key in [name, *aliases]:
                prices[key.lower()] = value
                names[key.lower()] = name
    return PriceTable(prices, names, source, date, tuple(files))
