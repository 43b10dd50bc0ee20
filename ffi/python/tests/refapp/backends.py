from django.contrib.auth.backends import ModelBackend


class OtherBackend(ModelBackend):
    """A backend other than the one sessions were created with."""
