"""Store throughput: PIN checks, bookings, registrations, consultation closes, and
concurrent booking of one slot, on SQLite (temp file) and PostgreSQL (if reachable).

    python bench/store_ops.py [--pg postgresql://postgres@127.0.0.1:5432/test] [--threads 16]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.store import Store  # noqa: E402
from engine.store.db import make_engine  # noqa: E402
from engine.store.migrate import upgrade  # noqa: E402
from engine.store.pin import DEFAULT_PARAMS  # noqa: E402

TZ = "Asia/Shanghai"


def rate(label: str, n: int, fn) -> None:
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    dt_ = time.perf_counter() - t
    print(f"  {label:<42} {n / dt_:9.1f} ops/s   ({dt_ * 1000 / n:7.2f} ms/op)")


def bench(url: str, threads: int) -> None:
    upgrade(url)
    engine = make_engine(url, pool_size=threads + 2, max_overflow=0)
    s = Store(engine, tz=TZ)
    today = s.today()
    s.add_department("01", "内科", "Internal Medicine")
    s.add_doctor("101", "01", "张伟", "Zhang Wei", is_expert=True)
    for i in range(200):
        s.add_slot(today + dt.timedelta(days=i // 2), ("am", "pm")[i % 2], 10_000,
                   doctor="101", fee_cents=500)
    s.create_patient("1", "Bench", pin="123456", balance_cents=10**9)
    s.add_slot(today, "am", threads * 4, department="01")
    cards = [f"2{i:05d}" for i in range(threads * 8)]
    for c in cards:
        s.create_patient(c, c)

    rate(f"verify_pin (scrypt n={DEFAULT_PARAMS.n})", 20, lambda i: s.verify_pin("1", "123456"))
    confs = []
    rate("book (free appointment)", 200, lambda i: confs.append(s.book(
        "1", doctor="101", date=today + dt.timedelta(days=i // 2),
        session=("am", "pm")[i % 2]).confirmation_no))
    rate("cancel", 200, lambda i: s.cancel(confs[i], "1"))
    rate("register (fee + ledger row)", 200, lambda i: s.register(
        "1", doctor="101", date=today + dt.timedelta(days=i // 2), session=("am", "pm")[i % 2]))
    ids = []
    rate("open_consultation", 100, lambda i: ids.append(
        s.open_consultation("101", card_no="1").consultation_id))
    now = s.now()
    rate("close_consultation (charge + ledger)", 100, lambda i: s.close_consultation(
        ids[i], now, now + dt.timedelta(seconds=95)))
    rate("info (read)", 200, lambda i: s.info("hospital_intro", "zh"))

    gate = threading.Barrier(threads)
    outcomes: list[str] = []

    def worker(k: int) -> None:
        gate.wait()
        for c in cards[k::threads]:
            outcomes.append(s.book(c, department="01", date=today, session="am").outcome)

    t = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    el = time.perf_counter() - t
    print(f"  {threads} threads booking one slot (cap {threads * 4}):"
          f" {len(outcomes) / el:9.1f} ops/s, booked={outcomes.count('booked')},"
          f" full={outcomes.count('full')}")
    assert outcomes.count("booked") == threads * 4
    s.close()
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--threads", type=int, default=16)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        print("SQLite (file, WAL):")
        bench(f"sqlite:///{d}/bench.db", a.threads)
    try:
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        base = a.pg.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(base, autocommit=True, connect_timeout=3) as c:
            c.execute(f'CREATE SCHEMA "{schema}"')
    except Exception as e:  # noqa: BLE001
        print(f"PostgreSQL: skipped, not reachable ({e})")
        return
    try:
        print("PostgreSQL:")
        sep = "&" if "?" in a.pg else "?"
        bench(f"{a.pg}{sep}options=-csearch_path%3D{schema}", a.threads)
    finally:
        with psycopg.connect(base, autocommit=True) as c:
            c.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
