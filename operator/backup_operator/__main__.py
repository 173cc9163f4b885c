"""``python -m backup_operator`` is the ``backup-operator`` command."""

from backup_operator.cli import main

main()
