"""The library under everything: settings, store, DICOMweb client, sync, SR measurements and checks; it imports neither the worker, the dashboard, Streamlit nor APScheduler."""
