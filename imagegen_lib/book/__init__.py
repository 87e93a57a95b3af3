"""What the book's notebooks call: fetching a chapter's files when run outside a clone (``files``) and
the tolerance checks of results that vary with the CPU (``checks``).
"""
