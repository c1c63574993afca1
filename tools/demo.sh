#!/usr/bin/env bash
# `make demo`: the main job on the embedded default — a seeded demo hospital on SQLite, and
# full hospital calls simulated against it, each printing its transcript.
set -eu
BIN=.venv/bin
DB=var/demo.db
TODAY=2025-03-03          # a Monday; the calls happen at 10:00 that day (clinic hours)
AT="${TODAY}T10:00:00"
mkdir -p var
rm -f "$DB"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "validating the example flows"
$BIN/ivrflow validate flows/

step "creating the demo hospital database ($DB, SQLite)"
$BIN/ivrflow db upgrade --db "sqlite:///$DB"
$BIN/ivrflow db seed --demo --db "sqlite:///$DB" --today "$TODAY"

call() {  # call TITLE CALLER INPUT [extra simulate options]
  local title=$1 caller=$2 input=$3; shift 3
  step "$title  (caller $caller, keys: $input)"
  $BIN/ivrflow simulate flows/hospital.yaml --db "sqlite:///$DB" --at "$AT" --caller "$caller" \
      --no-positions --input "$input" "$@"
}

call "a VIP caller is recognised by caller ID and routed to a free expert consultation" 13900000001 "1 501# 1 2"
call "a patient books a free appointment (card 10000001, internal medicine, tomorrow morning)" 13800000001 "1 1 1 10000001# 01# 0# 1 1 2"
call "paid registration with card and PIN: the fee is debited with a ledger row" 13800000002 "1 1 2 10000001# 123456 01# 101# 2 1 2"
call "an exam result looked up with the exam code and date of birth" 13800000003 "1 4 800001# 19800512 2"
call "a paid expert consultation by conference, 130 s, billed per started minute" 13800000004 "1 3 10000001# 123456 1 101# 1 2" --conference-seconds 130

step "what the database holds now"
$BIN/python - "$DB" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
q = lambda sql: db.execute(sql).fetchall()
def show(title, sql):
    rows = db.execute(sql).fetchall()
    print(f"{title} ({len(rows)})")
    for r in rows:
        print("   ", " | ".join("" if v is None else str(v) for v in r))
show("bookings: confirmation, card, kind, status, fee (cents)",
     "select b.confirmation_no, p.card_no, b.kind, b.status, b.fee_cents from bookings b join patients p on p.id = b.patient_id order by b.id")
show("ledger: card, kind, amount (cents), balance after",
     "select p.card_no, l.kind, l.amount_cents, l.balance_after from ledger l join patients p on p.id = l.patient_id order by l.id")
show("consultations: room, card, vip, minutes, charge (cents), status",
     "select c.conference_room, p.card_no, c.vip, c.minutes, c.charge_cents, c.status from consultations c left join patients p on p.id = c.patient_id order by c.id")
show("call records: caller, flow, disposition", "select caller, flow, disposition from call_records order by started_at")
PY
echo
echo "Next: 'ivrflow simulate flows/hospital.yaml --db sqlite:///$DB --interactive' to be the caller yourself,"
echo "      'ivrflow test flows/' for the scenario suites, 'ivrflow graph flows/hospital.yaml --format svg -o var/hospital.svg'."
