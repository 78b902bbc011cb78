"""kb retrieval and merged requests

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('knowledge_base_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.execute("INSERT INTO knowledge_base_state (id, revision) VALUES (1, 0)")
    op.create_table('knowledge_base_changes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('entry_id', sa.String(length=36), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('topic', sa.String(length=100), nullable=True),
    sa.Column('source_request_id', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['entry_id'], ['knowledge_base_entries.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('knowledge_base_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_knowledge_base_changes_entry_id'), ['entry_id'], unique=False)

    with op.batch_alter_table('help_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attached_to', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('question_embedding', sa.LargeBinary(), nullable=True))
        batch_op.create_index(batch_op.f('ix_help_requests_attached_to'), ['attached_to'], unique=False)
        batch_op.create_foreign_key('fk_help_requests_attached_to', 'help_requests', ['attached_to'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('knowledge_base_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_used_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('question_embedding', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('qa_embedding', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('embedding_model', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('revision', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index(batch_op.f('ix_knowledge_base_entries_revision'), ['revision'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('knowledge_base_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_knowledge_base_entries_revision'))
        batch_op.drop_column('revision')
        batch_op.drop_column('embedding_model')
        batch_op.drop_column('qa_embedding')
        batch_op.drop_column('question_embedding')
        batch_op.drop_column('last_used_at')

    with op.batch_alter_table('help_requests', schema=None) as batch_op:
        batch_op.drop_constraint('fk_help_requests_attached_to', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_help_requests_attached_to'))
        batch_op.drop_column('question_embedding')
        batch_op.drop_column('attached_to')

    with op.batch_alter_table('knowledge_base_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_knowledge_base_changes_entry_id'))

    op.drop_table('knowledge_base_changes')
    op.drop_table('knowledge_base_state')
