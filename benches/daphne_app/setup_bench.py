#!/usr/bin/env python
"""Creates the database (BENCH_DB), a staff user and a customer, and prints
one JSON line with an access token for each (SimpleJWT's `AccessToken.for_user`)."""

import json
import os
import secrets
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchapp.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from rest_framework_simplejwt.tokens import AccessToken  # noqa: E402


def user(username, staff):
    User = get_user_model()
    u, _ = User.objects.get_or_create(username=username)
    u.is_staff = staff
    u.is_superuser = staff
    u.is_active = True
    u.set_password(secrets.token_urlsafe(24))
    u.save()
    return u


def main():
    call_command("migrate", interactive=False, verbosity=0)
    admin = user("admin", True)
    customer = user("customer", False)
    print(
        json.dumps(
            {
                "staff_token": str(AccessToken.for_user(admin)),
                "customer_token": str(AccessToken.for_user(customer)),
            }
        )
    )


if __name__ == "__main__":
    main()
