"""The support staff's dashboard: `streamlit run dashboard/app.py` (or `pacsbridge dashboard`).

Every page is a small file in views/ (a folder named pages/ would let Streamlit run a page file
on its own, skipping the sign-in below): it gathers input, calls one core function, renders the
result. No HTTP, SQL or DICOM parsing happens here; state that outlives a rerun lives in the
store. Login comes first: nothing is shown to a visitor who is not signed in.
"""

from __future__ import annotations

import streamlit as st

from core.errors import PacsbridgeError
from core.integrations import key_problem
from core.store import open_store
from dashboard._widgets import show_error
from dashboard.auth import signed_in_user

st.set_page_config(page_title="pacsbridge", page_icon="🩺", layout="wide")

try:
    # Signing in reads the store: a store that cannot be used is said first. Checked on every
    # rerun: a dashboard runs for weeks, and another host may upgrade the store meanwhile.
    open_store()
except PacsbridgeError as problem:
    show_error(problem)
    st.stop()
user = signed_in_user()  # shows the login form and stops the run when nobody is signed in
if (problem := key_problem()) is not None:
    # One line on every page instead of every clinic's connection failing without a reason.
    st.error(
        "This dashboard's key does not open the stored PACS secrets: connection tests will "
        "fail. Every worker and dashboard must use the fleet's key ($PACSBRIDGE_KEY_FILE)."
    )

PAGES = [
    st.Page("views/overview.py", title="Overview", icon="🚦", default=True),
    st.Page("views/studies.py", title="Studies", icon="🖼️"),
    st.Page("views/patient.py", title="Patient measurements", icon="📈"),
    st.Page("views/activity.py", title="Sync activity", icon="🔄"),
    st.Page("views/connection.py", title="Connection test", icon="🔌"),
    st.Page("views/settings.py", title="Integration settings", icon="⚙️"),
    st.Page("views/mappings.py", title="Code mappings", icon="🏷️"),
]
if user.is_admin:  # the page checks the role too, should it ever be opened another way
    PAGES.append(st.Page("views/audit.py", title="Audit trail", icon="📜"))

st.navigation(PAGES).run()
