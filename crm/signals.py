"""Keep each user's unit grants in step with his roles and units, whichever side changed."""
from django.contrib.auth import get_user_model
from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save, pre_delete
from django.dispatch import receiver

from .models import BusinessUnit, Level, Role, User


@receiver(m2m_changed, sender=User.business_units.through)
@receiver(m2m_changed, sender=User.roles.through)
def user_membership_changed(sender, instance, action, reverse, pk_set, **kwargs):
    from .services import sync_user_access

    if getattr(instance, "_syncing_access", False):
        return
    if reverse and action == "pre_clear":  # a unit or role losing all its users
        instance._cleared_users = list(instance.members.all() if isinstance(instance, BusinessUnit)
                                       else instance.users.all())
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if not reverse:
        users = [instance]
    elif action == "post_clear":
        users = getattr(instance, "_cleared_users", [])
    else:
        users = list(get_user_model().objects.filter(pk__in=pk_set or ()))
    for user in users:
        sync_user_access(user)


@receiver(post_save, sender=User)
def user_saved(sender, instance, created, raw=False, **kwargs):
    from .services import sync_user_access

    if not raw and not getattr(instance, "_syncing_access", False):
        sync_user_access(instance)


@receiver(post_save, sender=BusinessUnit)
@receiver(post_delete, sender=BusinessUnit)
def unit_changed(sender, instance, raw=False, **kwargs):
    """A unit added, moved or removed changes what division levels cover."""
    from .services import sync_user_access

    if raw:
        return
    for user in get_user_model().objects.filter(roles__permissions__level=Level.DIVISION).distinct():
        sync_user_access(user)


@receiver(pre_delete, sender=Role)
def role_deleting(sender, instance, **kwargs):
    instance._holders = list(instance.users.all())


@receiver(post_delete, sender=Role)
def role_deleted(sender, instance, **kwargs):
    from .services import sync_user_access

    for user in getattr(instance, "_holders", []):
        sync_user_access(user)


@receiver(post_migrate)
def seed_roles(sender, **kwargs):
    """The seeded roles get a cell for every entity once every app's tables exist."""
    from .services import sync_roles

    if sender.name == "crm":
        sync_roles()
