"""Create the demo user (once) and print its credentials; later runs reuse them."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEMO_USERNAME = "demo"


class Command(BaseCommand):
    help = "Create the demo user and its example data if missing, and print how to log in."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-data", action="store_true", help="create the user only, no demo space/searches")

    def handle(self, *args: Any, **options: Any) -> None:
        password_file = settings.VAR_DIR / "demo-password"
        user_model = get_user_model()
        user = user_model.objects.filter(username=DEMO_USERNAME).first()
        if user is None or not password_file.exists():
            password = secrets.token_urlsafe(9)
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.write_text(password)
            password_file.chmod(0o600)
            if user is None:
                user = user_model.objects.create_user(DEMO_USERNAME, password=password)
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
        password = password_file.read_text().strip()
        if not options["no_data"]:
            from nasweb.demo import ensure_demo, ensure_digits_demo

            # Digits first: its search then heads the worker's queue, so real training starts at once.
            ensure_digits_demo(user, write=self.stdout.write)
            ensure_demo(user, write=self.stdout.write)
        self.stdout.write(f"Demo user: {DEMO_USERNAME}  password: {password}")
