"""The test suite (a package, so that tests can import shared helpers from conftest)."""
