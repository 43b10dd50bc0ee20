"""Creates the served reference app's database and users, and prints their
tokens as one JSON object (``python -m refapp.seed``, with REFAPP_DATABASE
naming the database file). Users are made through the ORM; tokens are
SimpleJWT's ``AccessToken.for_user``."""

import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refapp.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from rest_framework_simplejwt.tokens import AccessToken  # noqa: E402

from refapp.models import Conversation, Receipt  # noqa: E402


def main() -> None:
    call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)
    User = get_user_model()
    staff = User.objects.create_user("admin", password="pw-admin", is_staff=True)
    customer = User.objects.create_user("customer", password="pw-customer")
    receipt = Receipt.objects.create(owner=customer, total=42)
    # A deactivated account (edge mode: a principal naming it is anonymous).
    inactive = User.objects.create_user("former", password="pw-former", is_active=False)
    convo = Conversation.objects.create()
    convo.members.add(customer)
    print(
        json.dumps(
            {
                "staff_token": str(AccessToken.for_user(staff)),
                "customer_token": str(AccessToken.for_user(customer)),
                "receipt": receipt.pk,
                "conversation": convo.pk,
                "inactive_id": inactive.pk,
            }
        )
    )


if __name__ == "__main__":
    main()
