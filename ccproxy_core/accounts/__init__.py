"""Claude subscription accounts: accounts.json on disk and the OAuth that keeps them fresh."""
