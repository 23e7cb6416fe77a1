"""The dashboard's pages, one file each; `st.navigation` in dashboard/app.py runs them as scripts."""
