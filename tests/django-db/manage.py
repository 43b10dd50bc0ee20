#!/usr/bin/env python3
"""The test project's manage.py (settings: djproj.settings, database from WSAUTH_TEST_DB_*)."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djproj.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
