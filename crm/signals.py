"""Keep each user's unit grants in step with his role and units, whichever side changed."""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_migrate, post_save
from django.dispatch import receiver

from .models import BusinessUnit, User


def _users_of(instance, reverse, pk_set, action):
    if action not in ("post_add", "post_remove", "post_clear"):
        return []
    if not reverse:
        return [instance]
    if pk_set:
        return list(get_user_model().objects.filter(pk__in=pk_set))
    return []


@receiver(m2m_changed, sender=User.business_units.through)
@receiver(m2m_changed, sender=User.groups.through)
def user_membership_changed(sender, instance, action, reverse, pk_set, **kwargs):
    from .services import sync_user_access

    if getattr(instance, "_syncing_access", False):
        return
    if reverse and action == "pre_clear":
        instance._cleared_users = list(
            instance.user_set.all() if isinstance(instance, Group) else instance.members.all()
        )
    users = _users_of(instance, reverse, pk_set, action)
    if reverse and action == "post_clear":
        users = getattr(instance, "_cleared_users", [])
    for user in users:
        sync_user_access(user)


@receiver(post_save, sender=User)
def user_saved(sender, instance, created, raw=False, **kwargs):
    from .services import sync_user_access

    if not raw and not getattr(instance, "_syncing_access", False):
        sync_user_access(instance)


@receiver(post_save, sender=BusinessUnit)
def unit_saved(sender, instance, raw=False, **kwargs):
    """A unit added or moved in the tree changes what managers of its ancestors cover."""
    from .access import MANAGER
    from .services import sync_user_access

    if raw:
        return
    for user in get_user_model().objects.filter(groups__name=MANAGER).distinct():
        sync_user_access(user)


@receiver(post_migrate)
def sync_role_permissions(sender, **kwargs):
    """Role groups get their model permissions once every app's permissions exist."""
    from .services import sync_role_permissions

    from django.contrib.auth.models import Group

    if Group.objects.filter(name="Administrator").exists():
        sync_role_permissions()
