"""``python -m backup_operator.runner``: the runner group without the top-level CLI."""

from backup_operator.runner.cli import runner

if __name__ == "__main__":
    runner(prog_name="backup-operator runner")
