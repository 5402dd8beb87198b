"""Probes as Ray tasks on an existing Ray cluster (`--ray-address auto|ray://host:port`; the `dist` extra).

Every probe is the same pure function of its task as locally, so the answers are identical. The cluster's
workers must be able to import this version of blis (install it there, or use a Ray runtime environment)."""

from __future__ import annotations

from blis.errors import BlisInputError


class RayBackend:
    name = "ray"

    def __init__(self, address: str) -> None:
        try:
            import ray
        except ImportError as exc:
            raise BlisInputError("ray_address: Ray is not installed (pip install 'blis[dist]')") from exc
        if not (address == "auto" or address.startswith("ray://") or ":" in address):
            raise BlisInputError(f"ray_address: expected 'auto', 'ray://HOST:PORT' or 'HOST:PORT', got {address!r}")
        self.ray = ray
        self.started = False
        if not ray.is_initialized():
            try:
                ray.init(address=address, log_to_driver=False, logging_level="ERROR")
            except ConnectionError as exc:
                raise BlisInputError(f"ray_address: cannot connect to a Ray cluster at {address!r} ({exc})") from None
            self.started = True
        from blis.plan.probe import run_probe

        self.remote = ray.remote(num_cpus=1)(run_probe)
        self.workers = int(ray.cluster_resources().get("CPU", 1))

    def submit(self, task):
        return self.remote.remote(task)

    def wait(self, handles: list) -> list:
        done, _ = self.ray.wait(handles, num_returns=1)
        done += self.ray.wait([h for h in handles if h not in done], num_returns=len(handles) - len(done),
                              timeout=0)[0] if len(handles) > len(done) else []
        return [(h, self.ray.get(h)) for h in done]

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
