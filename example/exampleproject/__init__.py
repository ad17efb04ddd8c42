"""A minimal Django project using creative_services.contrib.django (see example/README.md)."""
