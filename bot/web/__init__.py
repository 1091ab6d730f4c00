"""The HTTP edge for people: views, sign-in, CSRF, templates and static assets."""
