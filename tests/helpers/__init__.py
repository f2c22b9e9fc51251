"""Test helpers: loopback HTTP server, archive builders, local git repos, cache inspection."""
