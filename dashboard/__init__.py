"""The Streamlit dashboard for support staff: app.py (sign-in and navigation), views/ (one file a page)."""
