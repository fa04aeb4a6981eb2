"""``python -m {{ cookiecutter.package }}`` runs the service."""

from .main import main

raise SystemExit(main())
