"""Startup checks: every declared Entity has all its pieces, and they speak of its model."""
from django.core import checks


@checks.register()
def entities_are_complete(app_configs, **kwargs):
    from .views import ENTITIES

    errors = []
    pieces = ("form_class", "table_class", "filterset_class", "resource_class", "namespace")
    seen = {}
    for entity in ENTITIES:
        name = entity.__name__
        for piece in pieces:
            if not getattr(entity, piece):
                errors.append(checks.Error(f"{name} declares no {piece}.", obj=entity, id="crm.E001"))
        if not hasattr(entity.model, "get_absolute_url"):
            errors.append(checks.Error(f"{entity.model.__name__} has no get_absolute_url().", obj=entity,
                                       id="crm.E002"))
        for piece in ("form_class", "table_class", "filterset_class", "resource_class"):
            declared = getattr(entity, piece)
            meta = getattr(declared, "_meta", None) if declared else None
            model = getattr(meta, "model", None)
            if model is not None and model is not entity.model:
                errors.append(checks.Error(f"{name}.{piece} is for {model.__name__}, not {entity.model.__name__}.",
                                           obj=entity, id="crm.E003"))
        if entity.namespace in seen:
            errors.append(checks.Error(f"{name} and {seen[entity.namespace]} share the namespace "
                                       f"'{entity.namespace}'.", obj=entity, id="crm.E004"))
        seen[entity.namespace] = name
        if entity.administration and entity.in_role_matrix:
            errors.append(checks.Error(f"{name} is managed by administrators; it cannot also be in the role matrix.",
                                       obj=entity, id="crm.E005"))
    return errors
