"""A stand-in for an existing application with its own ``Llms`` table (the seed's fields only)."""
