"""call keys: per-request capabilities for the agent; a row /health writes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('help_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('call_key_hash', sa.String(length=64), nullable=True))
    op.create_table('health_probe',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('health_probe')
    with op.batch_alter_table('help_requests', schema=None) as batch_op:
        batch_op.drop_column('call_key_hash')
