import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Test users need no slow key stretching (it dominated these tests' setup)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
