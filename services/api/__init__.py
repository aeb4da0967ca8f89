"""The HTTP API for people (the console's backend): routes from every service's declared queries and
commands, accounts and roles, masking of personal data, an append-only audit log, OpenAPI 3.1."""
