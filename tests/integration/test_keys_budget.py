"""Client key budgets and token rates through the real server: charged from the ledger's own costs."""

from __future__ import annotations

import time

from ccproxy_core.core import limits
from tests.conftest import ProxyFactory
from tests.fakes import FakeUpstream
from tests.integration.test_keys import call, config, create, message


async def test_daily_budget_stops_the_key_once_the_ledger_cost_passes_it(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    """A $0.01 daily budget: requests go through until the ledger's cost passes it, then 429 "budget" until midnight."""
    url = await make_proxy(config(fake))
    key = await create(url, "thrifty", budget_usd={"day": 0.01})
    served = 0
    while served < 50:
        status, headers, doc = await message(url, key)
        if status != 200:
            break
        served += 1
    assert served >= 2
    assert status == 429 and "budget" in doc["error"]["message"]
    day_end = limits.day_window(time.time())[1]
    assert abs(int(headers["retry-after"]) - (day_end - time.time())) < 60
    _, _, usage = await call(url, "GET", "/usage?group_by=client&since=1d")
    spent = {row["key"]: row["cost_usd"] for row in usage["rows"]}["thrifty"]
    assert spent >= 0.01  # stopped only once the ledger's own cost passed the budget
    assert fake.requests and len(fake.requests) == served


async def test_tpm_is_charged_at_the_end_and_refuses_the_next(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """A key with tpm 500: a 733-token answer goes through, the request after it gets 429 on tokens."""
    url = await make_proxy(config(fake))
    key = await create(url, "wordy", tpm=500)
    assert (await message(url, key))[0] == 200
    status, headers, doc = await message(url, key)
    assert status == 429 and "tokens per minute" in doc["error"]["message"] and int(headers["retry-after"]) >= 1
