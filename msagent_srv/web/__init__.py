"""HTTP plumbing shared by the services: request ids, error envelopes, body parsing, health."""
