"""Simulated calls against one database: no call record lost."""


def test_simulated_calls_sharing_a_database_keep_every_call_record(tmp_path):
    """Two simulated calls with the same start time on one database: two call records."""
    import sqlite3

    from click.testing import CliRunner

    import cli

    db = tmp_path / "h.db"
    url = f"sqlite:///{db}"
    r = CliRunner()
    assert r.invoke(cli.main, ["db", "upgrade", "--db", url]).exit_code == 0
    assert r.invoke(cli.main, ["db", "seed", "--demo", "--db", url, "--today", "2025-03-03"]).exit_code == 0
    for _ in range(2):
        res = r.invoke(cli.main, ["simulate", "flows/hospital.yaml", "--db", url, "--at", "2025-03-03T10:00:00",
                                  "--input", "1 2 hangup"])
        assert res.exit_code == 0, res.output
    n = sqlite3.connect(db).execute("select count(distinct call_id) from call_records").fetchone()[0]
    assert n == 2
