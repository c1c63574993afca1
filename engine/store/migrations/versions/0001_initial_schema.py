"""Initial schema: hospital directory, patients and money ledger, bookings, consultations,
exam results, complaints, information texts and call records.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('call_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.String(length=100), nullable=False),
    sa.Column('flow', sa.String(length=200), nullable=False),
    sa.Column('caller', sa.String(length=64), nullable=True),
    sa.Column('destination', sa.String(length=64), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('disposition', sa.String(length=32), nullable=True),
    sa.Column('trace', sa.JSON(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_records')),
    sa.UniqueConstraint('call_id', name=op.f('uq_call_records_call_id'))
    )
    op.create_index(op.f('ix_call_records_started_at'), 'call_records', ['started_at'], unique=False)

    op.create_table('departments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=8), nullable=False),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_departments')),
    sa.UniqueConstraint('code', name=op.f('uq_departments_code'))
    )
    op.create_table('info_texts',
    sa.Column('topic', sa.String(length=64), nullable=False),
    sa.Column('lang', sa.String(length=10), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('topic', 'lang', name=op.f('pk_info_texts'))
    )
    op.create_table('patients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('card_no', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('balance_cents', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('pin_hash', sa.String(length=200), nullable=True),
    sa.Column('pin_failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('pin_locked_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('balance_cents >= 0', name=op.f('ck_patients_balance_nonneg')),
    sa.CheckConstraint('pin_failures >= 0', name=op.f('ck_patients_pin_failures_nonneg')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patients')),
    sa.UniqueConstraint('card_no', name=op.f('uq_patients_card_no'))
    )
    op.create_table('complaints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_no', sa.String(length=12), nullable=False),
    sa.Column('department_code', sa.String(length=8), nullable=True),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('staff_code', sa.String(length=16), nullable=True),
    sa.Column('recording_path', sa.String(length=500), nullable=True),
    sa.Column('caller', sa.String(length=64), nullable=True),
    sa.Column('card_no', sa.String(length=20), nullable=True),
    sa.Column('call_id', sa.String(length=100), nullable=True),
    sa.Column('request_id', sa.String(length=100), nullable=True),
    sa.Column('status', sa.String(length=12), server_default='open', nullable=False),
    sa.Column('note', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("status IN ('open', 'in_progress', 'closed')", name=op.f('ck_complaints_status')),
    sa.CheckConstraint('staff_code IS NOT NULL OR recording_path IS NOT NULL', name=op.f('ck_complaints_has_subject')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_complaints_department_id_departments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_complaints')),
    sa.UniqueConstraint('request_id', name=op.f('uq_complaints_request_id')),
    sa.UniqueConstraint('ticket_no', name=op.f('uq_complaints_ticket_no'))
    )
    op.create_table('doctors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=8), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=False),
    sa.Column('title_zh', sa.String(length=100), server_default='', nullable=False),
    sa.Column('title_en', sa.String(length=100), server_default='', nullable=False),
    sa.Column('specialty_zh', sa.Text(), server_default='', nullable=False),
    sa.Column('specialty_en', sa.Text(), server_default='', nullable=False),
    sa.Column('is_expert', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('rate_cents', sa.Integer(), server_default='200', nullable=False),
    sa.Column('conference_room', sa.String(length=64), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.CheckConstraint('rate_cents >= 0', name=op.f('ck_doctors_rate_nonneg')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_doctors_department_id_departments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_doctors')),
    sa.UniqueConstraint('number', name=op.f('uq_doctors_number'))
    )
    op.create_index(op.f('ix_doctors_department_id'), 'doctors', ['department_id'], unique=False)

    op.create_table('exam_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('exam_code', sa.String(length=20), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('exam_name_zh', sa.String(length=100), nullable=False),
    sa.Column('exam_name_en', sa.String(length=100), nullable=False),
    sa.Column('exam_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=8), server_default='pending', nullable=False),
    sa.Column('summary_zh', sa.Text(), server_default='', nullable=False),
    sa.Column('summary_en', sa.Text(), server_default='', nullable=False),
    sa.Column('ready_at', sa.DateTime(), nullable=True),
    sa.Column('failed_checks', sa.Integer(), server_default='0', nullable=False),
    sa.Column('locked_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'ready')", name=op.f('ck_exam_results_status')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_exam_results_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exam_results')),
    sa.UniqueConstraint('exam_code', name=op.f('uq_exam_results_exam_code'))
    )
    op.create_index(op.f('ix_exam_results_patient_id'), 'exam_results', ['patient_id'], unique=False)

    op.create_table('vip_numbers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('level', sa.String(length=20), server_default='vip', nullable=False),
    sa.Column('note', sa.Text(), server_default='', nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_vip_numbers_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vip_numbers')),
    sa.UniqueConstraint('number', name=op.f('uq_vip_numbers_number'))
    )
    op.create_table('consultations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=True),
    sa.Column('expert_id', sa.Integer(), nullable=False),
    sa.Column('caller', sa.String(length=64), nullable=True),
    sa.Column('call_id', sa.String(length=100), nullable=True),
    sa.Column('request_id', sa.String(length=100), nullable=True),
    sa.Column('role', sa.String(length=12), nullable=False),
    sa.Column('vip', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('rate_cents', sa.Integer(), nullable=False),
    sa.Column('conference_room', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=8), server_default='open', nullable=False),
    sa.Column('opened_at', sa.DateTime(), nullable=False),
    sa.Column('joined_at', sa.DateTime(), nullable=True),
    sa.Column('left_at', sa.DateTime(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('seconds', sa.Integer(), server_default='0', nullable=False),
    sa.Column('minutes', sa.Integer(), server_default='0', nullable=False),
    sa.Column('charge_cents', sa.Integer(), server_default='0', nullable=False),
    sa.Column('paid_cents', sa.Integer(), server_default='0', nullable=False),
    sa.Column('unpaid_cents', sa.Integer(), server_default='0', nullable=False),
    sa.CheckConstraint("role IN ('participant', 'listener')", name=op.f('ck_consultations_role')),
    sa.CheckConstraint("status IN ('open', 'closed')", name=op.f('ck_consultations_status')),
    sa.CheckConstraint('charge_cents >= 0 AND paid_cents >= 0 AND unpaid_cents >= 0', name=op.f('ck_consultations_money_nonneg')),
    sa.CheckConstraint('rate_cents >= 0', name=op.f('ck_consultations_rate_nonneg')),
    sa.ForeignKeyConstraint(['expert_id'], ['doctors.id'], name=op.f('fk_consultations_expert_id_doctors')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_consultations_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consultations')),
    sa.UniqueConstraint('request_id', name=op.f('uq_consultations_request_id'))
    )
    op.create_index(op.f('ix_consultations_patient_id'), 'consultations', ['patient_id'], unique=False)

    op.create_table('slots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('doctor_id', sa.Integer(), nullable=True),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('session', sa.String(length=2), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('booked', sa.Integer(), server_default='0', nullable=False),
    sa.Column('fee_cents', sa.Integer(), server_default='0', nullable=False),
    sa.CheckConstraint("session IN ('am', 'pm')", name=op.f('ck_slots_session')),
    sa.CheckConstraint('booked >= 0 AND booked <= capacity', name=op.f('ck_slots_not_overbooked')),
    sa.CheckConstraint('capacity >= 0', name=op.f('ck_slots_capacity_nonneg')),
    sa.CheckConstraint('fee_cents >= 0', name=op.f('ck_slots_fee_nonneg')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_slots_department_id_departments')),
    sa.ForeignKeyConstraint(['doctor_id'], ['doctors.id'], name=op.f('fk_slots_doctor_id_doctors')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slots'))
    )
    op.create_index('ix_slots_day', 'slots', ['day'], unique=False)
    op.create_index('uq_slots_doctor_day_session', 'slots', ['doctor_id', 'day', 'session'], unique=True, sqlite_where=sa.text('doctor_id IS NOT NULL'), postgresql_where=sa.text('doctor_id IS NOT NULL'))
    op.create_index('uq_slots_general_day_session', 'slots', ['department_id', 'day', 'session'], unique=True, sqlite_where=sa.text('doctor_id IS NULL'), postgresql_where=sa.text('doctor_id IS NULL'))

    op.create_table('bookings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('confirmation_no', sa.String(length=12), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('slot_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='booked', nullable=False),
    sa.Column('fee_cents', sa.Integer(), server_default='0', nullable=False),
    sa.Column('vip_free', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('request_id', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('checked_in_at', sa.DateTime(), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(), nullable=True),
    sa.Column('refunded_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("kind IN ('appointment', 'registration')", name=op.f('ck_bookings_kind')),
    sa.CheckConstraint("status IN ('booked', 'checked_in', 'cancelled', 'refunded', 'no_show')", name=op.f('ck_bookings_status')),
    sa.CheckConstraint('fee_cents >= 0', name=op.f('ck_bookings_fee_nonneg')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_bookings_patient_id_patients')),
    sa.ForeignKeyConstraint(['slot_id'], ['slots.id'], name=op.f('fk_bookings_slot_id_slots')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bookings')),
    sa.UniqueConstraint('confirmation_no', name=op.f('uq_bookings_confirmation_no')),
    sa.UniqueConstraint('request_id', name=op.f('uq_bookings_request_id'))
    )
    op.create_index(op.f('ix_bookings_patient_id'), 'bookings', ['patient_id'], unique=False)
    op.create_index(op.f('ix_bookings_slot_id'), 'bookings', ['slot_id'], unique=False)
    op.create_index('ix_bookings_status_kind', 'bookings', ['status', 'kind'], unique=False)
    op.create_index('uq_bookings_patient_slot_active', 'bookings', ['patient_id', 'slot_id'], unique=True, sqlite_where=sa.text("status IN ('booked', 'checked_in')"), postgresql_where=sa.text("status IN ('booked', 'checked_in')"))

    op.create_table('ledger',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('balance_after', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('booking_id', sa.Integer(), nullable=True),
    sa.Column('consultation_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('topup', 'registration_fee', 'refund', 'consultation_fee', 'adjustment')", name=op.f('ck_ledger_kind')),
    sa.CheckConstraint('amount_cents <> 0', name=op.f('ck_ledger_amount_nonzero')),
    sa.CheckConstraint('balance_after >= 0', name=op.f('ck_ledger_balance_after_nonneg')),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], name=op.f('fk_ledger_booking_id_bookings')),
    sa.ForeignKeyConstraint(['consultation_id'], ['consultations.id'], name=op.f('fk_ledger_consultation_id_consultations')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_ledger_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger')),
    sa.UniqueConstraint('key', name=op.f('uq_ledger_key'))
    )
    op.create_index(op.f('ix_ledger_patient_id'), 'ledger', ['patient_id'], unique=False)


def downgrade() -> None:
    op.drop_table('ledger')
    op.drop_table('bookings')
    op.drop_table('slots')
    op.drop_table('consultations')
    op.drop_table('vip_numbers')
    op.drop_table('exam_results')
    op.drop_table('doctors')
    op.drop_table('complaints')
    op.drop_table('patients')
    op.drop_table('info_texts')
    op.drop_table('departments')
    op.drop_table('call_records')
