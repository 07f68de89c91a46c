"""tests/conftest.py's run_async: what the loop reports as unhandled fails the test."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import run_async


def test_a_background_task_that_fails_unseen_fails_the_test() -> None:
    async def broken() -> None:
        raise RuntimeError("background work failed")

    async def main() -> None:
        asyncio.get_running_loop().create_task(broken())  # dropped: nobody awaits it
        await asyncio.sleep(0.01)

    with pytest.raises(AssertionError, match="Task exception was never retrieved") as info:
        run_async(main())
    assert isinstance(info.value.__cause__, RuntimeError)


def test_a_callback_that_raises_fails_the_test() -> None:
    def callback() -> None:
        raise ValueError("a callback failed")

    async def main() -> None:
        asyncio.get_running_loop().call_soon(callback)
        await asyncio.sleep(0.01)

    with pytest.raises(AssertionError, match="Exception in callback") as info:
        run_async(main())
    assert isinstance(info.value.__cause__, ValueError)


def test_a_clean_run_gives_its_result() -> None:
    async def main() -> int:
        await asyncio.sleep(0)
        return 42

    assert run_async(main()) == 42
