"""Channels have no multi-row writes of their own: create, edit, delete and import go
through the generic services in crm.services."""
