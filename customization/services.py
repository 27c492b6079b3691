"""Catalog writes: each one transaction, uniqueness answered as 409.

Contacts refer to tags and fields by id (foreign keys ON DELETE CASCADE), so renaming a tag
changes one row and deleting a tag or field deletes its uses in the same statement: no contact row
is rewritten, and a concurrent edit of a contact is never undone."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Max

from crm.errors import Conflict
from customization.models import CustomField, CustomFieldFolder, CustomValue, Tag
from customization.text import fold


def _conflict_on_integrity_error(save, conflict):
    """Run `save` in a savepoint; a unique violation (a race the pre-check missed) becomes `conflict()`."""
    try:
        with transaction.atomic():
            return save()
    except IntegrityError as exc:
        raise conflict() from exc


def next_position(model, org_id: int) -> int:
    """New folders and fields go last."""
    top = model.objects.for_org(org_id).aggregate(top=Max("position"))["top"]
    return 0 if top is None else top + 1


# --- tags --------------------------------------------------------------------------------


def tag_conflict(org_id: int, name: str) -> Conflict:
    existing_id = Tag.objects.for_org(org_id).filter(name=name).values_list("id", flat=True).first()
    extra = {"existing_id": existing_id} if existing_id is not None else {}
    return Conflict(f"A tag named {name!r} already exists.", attr="name", code="duplicate_name", **extra)


def create_tag(org_id: int, name: str) -> Tag:
    if Tag.objects.for_org(org_id).filter(name=name).exists():
        raise tag_conflict(org_id, name)
    return _conflict_on_integrity_error(
        lambda: Tag.objects.create(org_id=org_id, name=name), lambda: tag_conflict(org_id, name)
    )


@transaction.atomic
def rename_tag(tag: Tag, new_name: str) -> Tag:
    """Rename in the catalog: every contact carrying it shows the new name at once."""
    if new_name == tag.name:
        return tag
    if Tag.objects.for_org(tag.org_id).filter(name=new_name).exists():
        raise tag_conflict(tag.org_id, new_name)
    tag.name = new_name
    _conflict_on_integrity_error(lambda: tag.save(update_fields=["name"]), lambda: tag_conflict(tag.org_id, new_name))
    return tag


@transaction.atomic
def delete_tag(tag: Tag) -> None:
    """Remove from the catalog and so from every contact of the org (ON DELETE CASCADE)."""
    tag.delete()


# --- folders -----------------------------------------------------------------------------


def folder_conflict(org_id: int, name: str) -> Conflict:
    existing_id = (
        CustomFieldFolder.objects.for_org(org_id).filter(name_key=fold(name)).values_list("id", flat=True).first()
    )
    extra = {"existing_id": existing_id} if existing_id is not None else {}
    return Conflict(f"A folder named {name!r} already exists.", attr="name", code="duplicate_name", **extra)


def save_folder(folder: CustomFieldFolder) -> CustomFieldFolder:
    """Create or update; folder names are unique per org, ignoring case."""
    clash = CustomFieldFolder.objects.for_org(folder.org_id).filter(name_key=fold(folder.name))
    if folder.pk is not None:
        clash = clash.exclude(pk=folder.pk)
    if clash.exists():
        raise folder_conflict(folder.org_id, folder.name)
    if folder.pk is None and folder.position is None:
        folder.position = next_position(CustomFieldFolder, folder.org_id)
    _conflict_on_integrity_error(folder.save, lambda: folder_conflict(folder.org_id, folder.name))
    return folder


# --- custom fields -----------------------------------------------------------------------


def field_conflict(org_id: int, key: str) -> Conflict:
    existing_id = CustomField.objects.for_org(org_id).filter(key=key).values_list("id", flat=True).first()
    extra = {"existing_id": existing_id} if existing_id is not None else {}
    return Conflict(f"A custom field with key {key!r} already exists.", attr="key", code="duplicate_key", **extra)


def create_field(org_id: int, values: dict) -> CustomField:
    key = values["key"]
    if CustomField.objects.for_org(org_id).filter(key=key).exists():
        raise field_conflict(org_id, key)
    field = CustomField(org_id=org_id, **values)
    if values.get("position") is None:
        field.position = next_position(CustomField, org_id)
    _conflict_on_integrity_error(field.save, lambda: field_conflict(org_id, key))
    return field


def update_field(field: CustomField, values: dict) -> CustomField:
    """Name, folder, options and position change; key and data_type never do (the serializer refuses).

    Narrowing a select field's options leaves stored values that are no longer options as they
    are, until the contact's value is next written (then it must be one of the new options).
    """
    for attr, value in values.items():
        setattr(field, attr, value)
    field.save()
    return field


@transaction.atomic
def delete_field(field: CustomField) -> None:
    """Delete the definition and so its values on every contact of the org (ON DELETE CASCADE)."""
    field.delete()


# --- custom values -----------------------------------------------------------------------


@transaction.atomic
def put_custom_value(org_id: int, key: str, value: str) -> tuple[CustomValue, bool]:
    """Create or replace one token value; returns (row, created). Safe against concurrent PUTs."""
    row, created = (
        CustomValue.objects.for_org(org_id)
        .select_for_update()
        .get_or_create(org_id=org_id, key=key, defaults={"value": value})
    )
    if not created and row.value != value:
        row.value = value
        row.save(update_fields=["value", "updated_at"])
    return row, created
