//! The `/metrics` and `/healthz` HTTP endpoint.
