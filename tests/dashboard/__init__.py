"""Dashboard pages tested with Streamlit's AppTest against the real store and Orthanc."""
