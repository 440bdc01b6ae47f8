"""One module per page, each with a ``render()`` function that ``ui/app.py`` navigates to."""
