"""The HTML side of the service: login, logout and the index page."""
