"""Case-insensitive names compared by Python's case folding (customization.text.fold), not SQL's
lower(): tag names are stored folded and unique as such; folder names get a folded `name_key`.
Tags and fields also get UNIQUE (org_id, id), the target of the (org_id, …) foreign keys of the
tables that refer to them (contacts/0006)."""

from django.db import migrations, models

from crm.db_security import bypassing_rls
from customization.text import fold


def fold_names(apps, schema_editor):
    Tag = apps.get_model("customization", "Tag")
    Folder = apps.get_model("customization", "CustomFieldFolder")
    with bypassing_rls(schema_editor):
        for folder in Folder.objects.all():
            folder.name_key = fold(folder.name)
            folder.save(update_fields=["name_key"])
        taken = set(Tag.objects.values_list("org_id", "name"))
        for tag in Tag.objects.order_by("id"):
            folded = fold(" ".join(tag.name.split()))
            if folded != tag.name and (tag.org_id, folded) not in taken:  # a clash keeps its old spelling
                taken.add((tag.org_id, folded))
                tag.name = folded
                tag.save(update_fields=["name"])


class Migration(migrations.Migration):
    dependencies = [("customization", "0002_rls"), ("orgs", "0002_rls"), ("crm", "0007_pristine_catalog")]

    operations = [
        migrations.RemoveConstraint(model_name="customfieldfolder", name="folder_org_name_uniq"),
        migrations.RemoveConstraint(model_name="tag", name="tag_org_name_uniq"),
        migrations.AddField(
            model_name="customfieldfolder",
            name="name_key",
            field=models.CharField(default="", editable=False, max_length=400),
            preserve_default=False,
        ),
        migrations.RunPython(fold_names, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="customfieldfolder",
            constraint=models.UniqueConstraint(fields=("org", "name_key"), name="folder_org_name_uniq"),
        ),
        migrations.AddConstraint(
            model_name="tag", constraint=models.UniqueConstraint(fields=("org", "name"), name="tag_org_name_uniq")
        ),
        migrations.AddConstraint(
            model_name="tag", constraint=models.UniqueConstraint(fields=("org", "id"), name="tag_org_id_uniq")
        ),
        migrations.AddConstraint(
            model_name="customfield",
            constraint=models.UniqueConstraint(fields=("org", "id"), name="customfield_org_id_uniq"),
        ),
    ]
