import json
from io import StringIO

import pytest
from django.core.management import call_command

from contacts.models import Contact

pytestmark = pytest.mark.django_db


def test_bootstrap_demo_seeds_contacts_with_a_progress_bar():
    out, err = StringIO(), StringIO()
    call_command("bootstrap_demo", "--contacts", "120", stdout=out, stderr=err)
    org_id = json.loads(out.getvalue().splitlines()[0])["org_id"]
    assert Contact.objects.filter(org_id=org_id).count() == 120
    assert "120/120" in err.getvalue()
    contact = Contact.objects.filter(org_id=org_id).first()
    assert contact.search_text and contact.phone.startswith("+1")


def test_seeding_is_idempotent():
    for _ in range(2):
        call_command("bootstrap_demo", "--contacts", "30", stdout=StringIO(), stderr=StringIO())
    assert Contact.objects.count() == 30
