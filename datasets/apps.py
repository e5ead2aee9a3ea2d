from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    # Datasets, experiments and the CI gate arrive with their own issue; the app is
    # registered now so its migrations start from the same foundation.
    name = "datasets"
