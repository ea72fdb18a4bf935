"""Model versions: every bundle registered under a name, and which version each name serves.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("parent_sha256", sa.String(64)),
        sa.Column("decision", sa.String(32)),
        sa.Column("task", sa.String(32), nullable=False),
        sa.Column("target", sa.String(200)),
        sa.Column("metrics", sa.JSON),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registered_by", sa.String(200)),
        sa.UniqueConstraint("name", "version"),
    )
    with op.batch_alter_table("models") as batch:  # batch: SQLite cannot ALTER in place
        batch.add_column(sa.Column("version", sa.Integer))
    # what was registered before versions existed becomes version 1 of its name, serving
    op.execute("INSERT INTO model_versions (name, version, path, sha256, task, target, metrics, registered_at, "
               "registered_by) SELECT name, 1, path, sha256, task, target, metrics, registered_at, registered_by "
               "FROM models")
    op.execute("UPDATE models SET version = 1")


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("version")
    op.drop_table("model_versions")
