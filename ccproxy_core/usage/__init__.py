"""The usage ledger: what each request used and cost, read from the provider's own answer.

`tokens` reads usage from answers as they pass (pure); `record` is one ledger row; `ledger`
writes rows to SQLite off the event loop; `query` answers `/usage` and `ccproxy usage`.
"""
