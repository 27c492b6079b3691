"""Jobs are tenant rows: forced row-level security like every tenant table.

The task queue's tables (Procrastinate's) hold no tenant data, only "run job N of org M". A
request defers a job inside its own transaction, as the app role, so that role may add queue
rows, and nothing else: it cannot read the queue (which orgs have jobs, how many) nor change it.
"""

from django.conf import settings
from django.db import migrations

from crm.db_security import tenant_rls

APP = settings.RLS_APP_ROLE
QUEUE_TABLES = "procrastinate_jobs, procrastinate_events, procrastinate_periodic_defers, procrastinate_workers"
QUEUE_SEQUENCES = "procrastinate_jobs_id_seq, procrastinate_events_id_seq, procrastinate_periodic_defers_id_seq"

GRANTS = f"""
REVOKE ALL ON {QUEUE_TABLES} FROM {APP};
REVOKE ALL ON {QUEUE_SEQUENCES} FROM {APP};
GRANT INSERT ON procrastinate_jobs, procrastinate_events TO {APP};
GRANT SELECT (id) ON procrastinate_jobs TO {APP};
GRANT USAGE ON procrastinate_jobs_id_seq, procrastinate_events_id_seq TO {APP};
"""
UNDO_GRANTS = f"""
GRANT SELECT, INSERT, UPDATE, DELETE ON {QUEUE_TABLES} TO {APP};
GRANT USAGE, SELECT ON {QUEUE_SEQUENCES} TO {APP};
"""


class Migration(migrations.Migration):
    dependencies = [("jobs", "0001_initial"), ("procrastinate", "0041_post_retry_failed_job"),
        ("crm", "0007_pristine_catalog"),  # after crm 0005, which grants the app role every table again
    ]

    operations = [
        tenant_rls("jobs_job"),
        migrations.RunSQL(GRANTS, reverse_sql=UNDO_GRANTS),
    ]
