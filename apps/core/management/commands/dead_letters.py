"""List or replay the events that consumers gave up on."""

import json

from django.core.management.base import BaseCommand, CommandError

from apps.core.messaging import dead_letters


class Command(BaseCommand):
    help = "List (default) or replay dead-lettered events."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["list", "replay"], nargs="?")
        parser.add_argument("--consumer", help="One consumer (default: all).")
        parser.add_argument(
            "--event-id",
            action="append",
            dest="event_ids",
            help="Replay only this event (repeatable; default: all).",
        )
        parser.add_argument("--json", action="store_true", help="JSON lines out.")

    def handle(self, *args, action=None, consumer=None, event_ids=None, **options):
        try:
            if action == "replay":
                letters = dead_letters.dead_letters_replay(
                    consumer=consumer, event_ids=set(event_ids) if event_ids else None
                )
                verb = "Replayed"
            else:
                letters = dead_letters.dead_letters_list(consumer=consumer)
                verb = "Dead letters"
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            for letter in letters:
                self.stdout.write(json.dumps(letter.__dict__, default=str))
            return
        self.stdout.write(f"{verb}: {len(letters)}")
        for letter in letters:
            self.stdout.write(
                f"  {letter.consumer:<13} {letter.event_type:<16} "
                f"{letter.event_id} order {letter.aggregate_id} "
                f"#{letter.sequence} after {letter.attempts} attempt(s): "
                f"{letter.error}"
            )
