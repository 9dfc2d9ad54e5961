"""Delete what is past its retention, as the beat tasks do (ADR 0030)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string


class Command(BaseCommand):
    help = (
        "Delete rows past their retention (idempotency records, published "
        "outbox events, inbox entries, spent refresh token families)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be deleted; delete nothing.",
        )
        parser.add_argument(
            "--context",
            action="append",
            dest="contexts",
            choices=sorted(settings.RETENTION_PRUNERS),
            help="Only this context (repeatable; default: all).",
        )

    def handle(self, *args, dry_run=False, contexts=None, **options):
        # Each context's own function, named in settings: the shared kernel
        # imports no context (the same functions the beat tasks run).
        pruners = settings.RETENTION_PRUNERS
        for context in contexts or pruners:
            if context not in pruners:
                raise CommandError(f"Unknown context {context!r}")
            counts = import_string(pruners[context])(dry_run=dry_run)
            verb = "would delete" if dry_run else "deleted"
            for table, count in counts.items():
                self.stdout.write(f"{context} {table}: {verb} {count}")
