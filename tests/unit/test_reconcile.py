"""The generic reconcile loop with a fake world (no root, no sleeps beyond milliseconds)."""

from __future__ import annotations

import asyncio

from kumo.common.reconcile import PermanentError, Reconciler, TemporaryError


class World:
    def __init__(self) -> None:
        self.objects: dict[str, str] = {}
        self.fail: dict[str, list[Exception]] = {}
        self.calls: list[str] = []

    def ensure(self, spec: tuple[str, str]) -> None:
        key, value = spec
        self.calls.append(f"ensure {key}")
        if self.fail.get(key):
            raise self.fail[key].pop(0)
        self.objects[key] = value

    def remove(self, key: str) -> None:
        self.calls.append(f"remove {key}")
        self.objects.pop(key, None)

    def observe(self) -> set[str]:
        return set(self.objects)


def make(world: World, **kw) -> Reconciler:
    errors: list[tuple[str, str]] = []
    r = Reconciler("t", world.ensure, world.remove, world.observe, backoff_base=0.01, backoff_max=0.05,
                   on_error=lambda k, _s, e: errors.append((k, str(e))), **kw)
    r.errors = errors  # type: ignore[attr-defined]
    return r


def test_ensures_changes_and_removes_what_is_gone() -> None:
    async def go() -> None:
        world = World()
        r = make(world)
        r.update({"a": ("a", "1"), "b": ("b", "1")})
        await r.wait_idle(2)
        assert world.objects == {"a": "1", "b": "1"}
        r.update({"a": ("a", "2")})
        await r.wait_idle(2)
        assert world.objects == {"a": "2"}
        calls = len(world.calls)
        r.update({"a": ("a", "2")})  # nothing changed: nothing done
        await r.wait_idle(2)
        assert len(world.calls) == calls
        await r.close()

    asyncio.run(go())


def test_temporary_errors_and_crashes_are_retried() -> None:
    async def go() -> None:
        world = World()
        world.fail["a"] = [TemporaryError("not yet", delay=0.01), RuntimeError("boom")]
        r = make(world)
        r.update({"a": ("a", "1")})
        await r.wait_idle(2)
        assert world.objects == {"a": "1"}
        assert world.calls.count("ensure a") == 3
        assert r.errors == [("a", "boom")]  # a crash is reported, a temporary error is not
        await r.close()

    asyncio.run(go())


def test_permanent_error_waits_for_a_new_spec_or_resync() -> None:
    async def go() -> None:
        world = World()
        world.fail["a"] = [PermanentError("bad spec")]
        r = make(world)
        r.update({"a": ("a", "1")})
        await r.wait_idle(2)
        assert world.objects == {} and r.errors == [("a", "bad spec")] and r.failed() == {"a": ("a", "1")}
        r.update({"a": ("a", "1")})
        await r.wait_idle(2)
        assert world.calls.count("ensure a") == 1  # same spec: not retried
        await r.resync()  # the periodic full resync tries again
        await r.wait_idle(2)
        assert world.objects == {"a": "1"} and r.failed() == {}
        await r.close()

    asyncio.run(go())


def test_resync_removes_strays_and_repairs_drift() -> None:
    async def go() -> None:
        world = World()
        world.objects = {"stray": "x"}
        r = make(world)
        r.update({"a": ("a", "1")})
        await r.wait_idle(2)
        world.objects["a"] = "drifted"
        await r.resync()
        await r.wait_idle(2)
        assert world.objects == {"a": "1"}
        await r.close()

    asyncio.run(go())


def test_a_new_spec_cuts_a_retry_short() -> None:
    async def go() -> None:
        world = World()
        world.fail["a"] = [TemporaryError("slow", delay=30)]
        r = make(world)
        r.update({"a": ("a", "1")})
        await asyncio.sleep(0.05)
        r.update({"a": ("a", "2")})
        await r.wait_idle(2)
        assert world.objects == {"a": "2"}
        await r.close()

    asyncio.run(go())
