"""The browser dashboard: server-rendered pages, login, static files."""
