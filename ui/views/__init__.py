"""One module per page, each with a ``render()`` function that ``ui/app.py`` navigates to.

Not ``ui/pages/``: a ``pages/`` directory beside the entry point switches Streamlit to its legacy
file-based multipage mode, which runs those modules as page scripts instead of ``st.navigation``.
"""
