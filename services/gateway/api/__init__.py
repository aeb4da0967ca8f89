"""HTTP API mixins of the gateway: one module per backing service, each reading through RPC."""
