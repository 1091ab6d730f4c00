"""The case aggregate: the lifecycle table and ``transition()``, numbering, access (roles, actors, jurisdiction), surveys."""
