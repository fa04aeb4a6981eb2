"""The {{ cookiecutter.project }} service.

Your code lives in ``service/`` (routes, event handlers, tasks); ``runtime/`` runs it, and
``app.py`` plugs the two together.
"""
