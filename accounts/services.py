"""Account writes that span records (merge) live here; plain saves use crm.services."""
