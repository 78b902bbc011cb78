"""kb phrasings: several ways of asking one entry, and entries found by their answer

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""
import unicodedata

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def _normalize(text: str) -> str:
    # app.services.kb.service.normalize_question as of this migration (kept here so it never drifts).
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if ch.isalnum()) or " ".join(folded.split())


def upgrade() -> None:
    op.create_table('knowledge_base_phrasings',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('entry_id', sa.String(length=36), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('normalized', sa.Text(), nullable=False),
    sa.Column('embedding', sa.LargeBinary(), nullable=True),
    sa.Column('embedding_model', sa.String(length=64), nullable=True),
    sa.Column('source_request_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['knowledge_base_entries.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_request_id'], ['help_requests.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('knowledge_base_phrasings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_knowledge_base_phrasings_entry_id'), ['entry_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_knowledge_base_phrasings_normalized'), ['normalized'], unique=False)
    with op.batch_alter_table('knowledge_base_changes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phrasing', sa.Text(), nullable=True))
    with op.batch_alter_table('knowledge_base_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('normalized_answer', sa.Text(), nullable=True))
    conn = op.get_bind()
    entries = sa.table('knowledge_base_entries', sa.column('id', sa.String), sa.column('answer', sa.Text),
                       sa.column('normalized_answer', sa.Text))
    for entry_id, answer in conn.execute(sa.select(entries.c.id, entries.c.answer)).all():
        conn.execute(entries.update().where(entries.c.id == entry_id).values(normalized_answer=_normalize(answer)))
    with op.batch_alter_table('knowledge_base_entries', schema=None) as batch_op:
        batch_op.alter_column('normalized_answer', existing_type=sa.Text(), nullable=False)
        batch_op.create_index(batch_op.f('ix_knowledge_base_entries_normalized_answer'), ['normalized_answer'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('knowledge_base_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_knowledge_base_entries_normalized_answer'))
        batch_op.drop_column('normalized_answer')
    with op.batch_alter_table('knowledge_base_changes', schema=None) as batch_op:
        batch_op.drop_column('phrasing')
    op.drop_table('knowledge_base_phrasings')
