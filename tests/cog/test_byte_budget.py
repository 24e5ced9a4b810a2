"""The in-flight byte budget: never more than its limit reserved (but one larger reservation
alone), every reservation released, and a cancelled waiter never blocks the others."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings, strategies as st

from rasteret_core.cog.reader import ByteBudget

LIMIT = 100


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 150), st.integers(0, 3), st.booleans()), min_size=1, max_size=40))
def test_reservations_stay_within_the_limit_and_all_finish(jobs):
    async def main():
        budget = ByteBudget(LIMIT)
        peak, order = [0], []

        async def job(i, size, hold, cancel_me):
            async with budget.reserve(size):
                assert budget.used <= LIMIT or budget.used == size, (budget.used, size)
                peak[0] = max(peak[0], budget.used)
                order.append(i)
                for _ in range(hold):
                    await asyncio.sleep(0)

        tasks = [asyncio.create_task(job(i, *j)) for i, j in enumerate(jobs)]
        await asyncio.sleep(0)
        cancelled = {i for i, (_, _, cancel_me) in enumerate(jobs) if cancel_me and not tasks[i].done()}
        for i in cancelled:
            tasks[i].cancel()
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
        assert budget.used == 0 and not [w for w in budget._waiters if not w[1].done()]
        finished = [i for i, r in enumerate(results) if not isinstance(r, BaseException)]
        assert set(finished) | cancelled == set(range(len(jobs)))
        return peak[0]

    assert asyncio.run(main()) <= max(LIMIT, max(size for size, _, _ in jobs))
