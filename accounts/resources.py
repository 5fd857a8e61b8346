from import_export import fields, widgets

from crm.resources import OwnedResource

from .models import Account


class AccountResource(OwnedResource):
    natural_key = ("name",)  # names may repeat: a name two accounts he may edit share needs the ID
    header_aliases = {"Name": ("Account", "Account Name", "Company", "Company Name")}

    name = fields.Field(attribute="name", column_name="Name", widget=widgets.CharWidget())
    description = fields.Field(attribute="description", column_name="Description", widget=widgets.CharWidget())

    class Meta(OwnedResource.Meta):
        model = Account
        fields = ("id", "name", "owner", "business_unit", "description")
        export_order = fields
        import_order = fields
