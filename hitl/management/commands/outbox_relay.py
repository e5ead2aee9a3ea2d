"""Publishes the outbox's pending messages: once, or in a loop (a beat-less deployment)."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from hitl import outbox


class Command(BaseCommand):
    help = "Publishes pending outbox messages to the broker (once, or every few seconds)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="one pass, then exit")

    def handle(self, *args: Any, once: bool = False, **options: Any) -> None:
        while True:
            published = outbox.relay()
            if once:
                self.stdout.write(f"published {published}")
                return
            time.sleep(settings.HITL_OUTBOX_RELAY_SECONDS)
