"""Users' mistakes across the whole CLI: one clear line on stderr, no traceback, the documented
exit code (README.md, "Exit codes"). Runs the real `kiosk` command in-process (kiosk.cli.main).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from kiosk.cli import build_parser, main

USAGE, DATA, NO_INPUT, NO_USER, UNAVAILABLE, CANT_CREATE, IO, PERM, CONFIG, FAILED = (
    64, 65, 66, 67, 69, 73, 74, 77, 78, 1)


@pytest.fixture(scope="module")
def w(tmp_path_factory) -> Path:
    """A work folder: an issuer, an enrolled wallet, and broken files of every kind."""
    d = tmp_path_factory.mktemp("mistakes")
    cwd = os.getcwd()
    os.chdir(d)
    try:
        assert main(["issuer", "--dir", "iss", "init", "--site", "clinic"]) == 0
        assert main(["wallet", "create", "w"]) == 0
        assert main(["issuer", "--dir", "iss", "enroll", "--wallet", "w", "--no-biometric"]) == 0
        assert main(["wallet", "create", "w2"]) == 0
        assert main(["ca", "init", "--dir", "ca"]) == 0
    finally:
        os.chdir(cwd)
    (d / "bad.pem").write_text("not a key\n")
    (d / "bad.toml").write_text("[broker\n")
    (d / "badtype.toml").write_text('[broker]\nport = "1883"\n')
    (d / "unknown.toml").write_text('[kiosk]\nsite = "clinic"\nkiosk_idd = "x"\n')
    (d / "deep.toml").write_text("x = " + "[" * 3000 + "]" * 3000 + "\n")
    (d / "junk.txt").write_bytes(b"\x00\x01junk")
    (d / "empty").mkdir()
    # a config whose state folder is empty: no outbox, no kiosk registered, no staff member
    (d / "state").mkdir()
    (d / "gw.toml").write_text(f'[paths]\nstate_dir = "{d / "state"}"\n[gateway]\nregistry_path = "reg.sqlite3"\n')
    from kiosk.ledger.sqlite_store import SqliteLogStore

    SqliteLogStore(d / "empty.sqlite3").close()  # a log store with no entry and no checkpoint
    (d / "first-boot.toml").write_text('site = "clinic"\nid = "k1"\nbroker = "gw.example:1883"\n')
    private = d / "private.pub"
    private.write_text("x")
    private.chmod(0)
    return d


# (argv, exit code, a fragment of the one stderr line)
CASES = [
    # usage: unknown commands and options, missing and malformed arguments
    (["nosuchcommand"], USAGE, "invalid choice"),
    (["pass"], USAGE, "required"),
    (["pass", "verify"], USAGE, "required: input"),
    (["issuer", "enroll", "--wallet", "w", "--bogus"], USAGE, "unrecognized arguments"),
    (["issuer", "--dir", "iss", "enroll", "--wallet", "w2", "--no-biometric", "--valid-days", "0"],
     USAGE, "at least 1 day"),
    (["issuer", "--dir", "iss", "enroll", "--wallet", "w2", "--no-biometric", "--valid-days", "abc"],
     USAGE, "at least 1 day"),
    (["issuer", "--dir", "iss", "revoke", "nothex"], USAGE, "is not hex"),
    (["issuer", "--dir", "iss", "revoke", ""], USAGE, "8 to 32 bytes"),
    (["issuer", "--dir", "iss", "revocations", "--next-update-hours", "-1"], USAGE, "greater than 0"),
    (["issuer", "--dir", "iss", "revocations", "--broker", "nocolon"], USAGE, "HOST:PORT"),
    (["issuer", "--dir", "iss2", "init", "--site", "Bad Site"], USAGE, "[a-z0-9-]"),
    (["issuer", "--dir", "iss", "enroll", "--wallet", "w2"], USAGE, "a photo is needed"),
    (["pass", "verify", "w/pass.qr.txt", "--at", "notatime"], USAGE, "--at"),
    (["pass", "verify", "w/pass.qr.txt", "--no-revocation-check"], USAGE, "no trusted issuer key"),
    (["provision", "--id", "k1", "--dir", "prov"], USAGE, "needs --site and --id"),
    (["provision", "--site", "Bad Site", "--id", "k1", "--dir", "prov"], USAGE, "--site 'Bad Site'"),
    (["provision", "--site", "clinic", "--id", "issuer", "--dir", "prov"], USAGE, "reserved"),
    (["provision", "--site", "clinic", "--id", "k1", "--broker", "nocolon", "--dir", "prov"], USAGE, "HOST:PORT"),
    (["ca", "issue", "kiosk", "Bad", "--csr", "x.csr", "--dir", "noca"], USAGE, "[a-z0-9-]"),
    (["ca", "issue", "gateway", "gw", "--dir", "noca"], USAGE, "gateway-"),
    # no input: a file or folder named on the command line is not there
    (["doctor", "--config", "missing.toml"], NO_INPUT, "missing.toml"),
    (["ca", "issue", "kiosk", "k1", "--csr", "x.csr", "--dir", "noca"], NO_INPUT, "no clinic CA"),
    (["ledger", "prove", "--db", "x"], USAGE, "--index --entry-hash"),
    (["ledger", "consent-check", "--db", "x", "--patient", "p", "--actor", "a", "--action", "b", "--at",
      "yesterday"], USAGE, "--at"),
    (["gateway", "kiosk", "add"], USAGE, "required"),
    # missing input
    (["pass", "verify", "w/pass.qr.txt", "--issuer-pub", "iss/issuer.pub", "--revocations", "MISSING"],
     NO_INPUT, "MISSING"),
    (["pass", "verify", "MISSINGFILE", "--issuer-pub", "iss/issuer.pub"], NO_INPUT, "MISSINGFILE"),
    (["demo", "--faces", "/nonexistent"], NO_INPUT, "/nonexistent"),
    (["demo", "--faces", "empty"], NO_INPUT, "at least two photos"),
    (["ledger", "verify", "--db", "MISSING.sqlite3"], NO_INPUT, "no log store"),
    (["ledger", "prove", "--db", "MISSING.sqlite3", "--index", "1"], NO_INPUT, "no log store"),
    (["face", "evaluate", "--data", "/nonexistent"], NO_INPUT, "/nonexistent"),
    (["face", "compare", "missing-a.jpg", "missing-b.jpg"], NO_INPUT, "missing-a.jpg: no such photo"),
    (["liveness", "eval", "--data", "/nonexistent"], NO_INPUT, "no such folder of face photos"),
    (["liveness", "eval", "--data", "empty"], NO_INPUT, "no face photos"),
    (["liveness", "eval", "--data", "empty", "--photos", "0"], USAGE, "at least 1"),
    (["face", "enroll", "--single-photo", "missing.jpg"], NO_INPUT, "missing.jpg: no such photo"),
    (["issuer", "--dir", "iss", "enroll", "--wallet", "w2", "missing-1.jpg", "missing-2.jpg"], NO_INPUT,
     "no such photo"),
    # data that does not decode
    (["pass", "verify", "w/pass.qr.txt", "--issuer-pub", "iss/issuer.pub", "--revocations", "junk.txt"],
     DATA, "revocation list"),
    (["issuer", "--dir", "iss", "enroll", "--wallet", "w2", "--single-photo", "junk.txt"], DATA, "cannot be read"),
    (["issuer", "--dir", "iss", "enroll", "--wallet", "w2", "junk.txt"], DATA, "take a second photo"),
    (["face", "enroll", "--single-photo", "junk.txt"], DATA, "cannot be read"),
    (["ledger", "verify", "--db", "junk.txt"], IO, "not a database"),
    # keys
    (["pass", "verify", "w/pass.qr.txt", "--issuer-pub", "MISSING.pub"], PERM, "MISSING.pub"),
    (["pass", "verify", "w/pass.qr.txt", "--issuer-pub", "bad.pem"], PERM, "bad.pem"),
    (["gateway", "kiosk", "add", "kiosk-9", "--key", "bad.pem", "--config", "MISSING.toml"], PERM, "bad.pem"),
    (["wallet", "qr", "MISSINGW"], PERM, "MISSINGW"),
    (["issuer", "--dir", "iss", "enroll", "--wallet", "MISSINGW", "--no-biometric"], PERM, "MISSINGW"),
    # configuration
    (["pass", "verify", "w/pass.qr.txt", "--config", "MISSING.toml"], NO_INPUT, "cannot read config"),
    (["pass", "verify", "w/pass.qr.txt", "--config", "bad.toml"], CONFIG, "not valid TOML"),
    (["gateway", "run", "--config", "badtype.toml"], CONFIG, "bad value for 'broker.port'"),
    (["outbox", "--config", "unknown.toml"], CONFIG, "unknown key 'kiosk.kiosk_idd'"),
    (["run", "--config", "deep.toml"], CONFIG, "nested deeper"),
    (["ledger", "verify", "--config", "MISSING.toml"], NO_INPUT, "cannot read config"),
    (["issuer", "--dir", "MISSINGISS", "enroll", "--wallet", "w2", "--no-biometric"], CONFIG,
     "not an issuer folder"),
    # cannot create
    (["issuer", "--dir", "iss", "init", "--site", "clinic"], CANT_CREATE, "already exists"),
    (["issuer", "--dir", "iss", "revocations", "--out", "junk.txt/x.cose"], CANT_CREATE, "junk.txt"),
    (["issuer", "--dir", "iss", "revocations", "--out", "/proc/x.cose"], CANT_CREATE, "cannot create"),
    (["wallet", "qr", "w", "--png", "nodir/qr.png"], CANT_CREATE, "nodir/qr.png"),
    # the sweep of every subcommand (issue #16): each of these once gave a traceback (70), 78 or 66
    # where the table above says otherwise
    (["provision", "--site", "clinic", "--id", "k1", "--broker", "gw.example:1883", "--dir", "prov"],
     USAGE, "--insecure"),
    (["provision", "--from", "first-boot.toml", "--dir", "prov"], CONFIG, "first-boot.toml"),
    (["provision", "--from", "MISSING.toml", "--dir", "prov"], NO_INPUT, "MISSING.toml"),
    (["provision", "--site", "clinic", "--id", "k1", "--broker", "gw.example:8883", "--ca", "MISSING.crt",
      "--dir", "prov"], NO_INPUT, "MISSING.crt"),
    (["provision", "--site", "clinic", "--id", "k1", "--broker", "gw.example:8883", "--ca", "bad.pem",
      "--dir", "prov"], DATA, "not a PEM certificate"),
    (["provision", "--site", "clinic", "--id", "k1", "--dir", "junk.txt/etc"], CANT_CREATE, "junk.txt/etc"),
    (["ca", "init", "--dir", "ca2", "--days", "-5"], USAGE, "at least 1"),
    (["ca", "issue", "gateway", "gateway-1", "--dir", "ca", "--days", "0"], USAGE, "at least 1"),
    (["ca", "init", "--dir", "junk.txt/ca"], CANT_CREATE, "junk.txt/ca"),
    (["ca", "revoke", "nobody", "--dir", "ca"], NO_INPUT, "'nobody'"),
    (["ca", "issue", "gateway", "gateway-1", "--dir", "ca", "--owner", "no-such-user"], NO_USER, "no such user"),
    (["wallet", "create", "w"], CANT_CREATE, "already exists"),
    (["wallet", "create", "junk.txt/w"], CANT_CREATE, "junk.txt/w"),
    (["issuer", "--dir", "iss", "write-card", "MISSINGCARD"], NO_INPUT, "MISSINGCARD"),
    (["gateway", "ehr", "map", "import", "--config", "gw.toml", "MISSING.csv"], NO_INPUT, "MISSING.csv"),
    (["gateway", "kiosk", "revoke", "kiosk-9", "--config", "gw.toml"], NO_INPUT, "not registered"),
    (["gateway", "kiosk", "add", "Bad Id", "--key", "iss/issuer.pub", "--config", "gw.toml"], USAGE, "[a-z0-9-]"),
    (["pass", "dcc-corpus", "MISSING"], NO_INPUT, "MISSING"),
    (["pass", "verify", "HC1:6BFOXN", "--trust-dir", "MISSING"], NO_INPUT, "--trust-dir MISSING"),
    (["ui", "screens", "--out", "junk.txt/shots"], CANT_CREATE, "junk.txt/shots"),
    (["ui", "screens", "--out", "shots", "--lang", "xx"], USAGE, "no catalogue for xx"),
    (["run", "--config", "MISSING.toml"], NO_INPUT, "MISSING.toml"),
    (["outbox", "--config", "gw.toml"], NO_INPUT, "not found"),
    (["outbox", "clear-alarm", "1", "--reason", " ", "--config", "gw.toml"], USAGE, "--reason"),
    (["staff", "disable", "s-9", "--config", "gw.toml"], NO_INPUT, "no staff member"),
    (["staff", "add", "s-9", "--badge", "zz", "--config", "gw.toml"], USAGE, "--badge"),
    (["nfc", "emulate", "--pass", "MISSING.cose"], NO_INPUT, "MISSING.cose"),
    (["ledger", "checkpoint", "--db", "empty.sqlite3"], NO_INPUT, "no checkpoint saved yet"),
    (["issuer", "--dir", "iss", "serve", "--port", "99999", "--log-public", "iss/issuer.pub", "--log-name", "x"],
     USAGE, "not a port"),
    (["issuer", "--dir", "iss", "serve", "--log-public", "iss/issuer.pub", "--log-name", "x"], USAGE, "needs TLS"),
    (["gateway", "ehr", "map", "add", "--config", "gw.toml", "p-1", "sys", "val"], USAGE, "patient id"),
    (["doctor", "--config", "gw.toml", "--user", "no-such-user"], NO_USER, "--user no-such-user"),
    (["ledger", "prove", "--db", "empty.sqlite3", "--index", "0"], NO_INPUT, "no entry at index 0"),
    (["ledger", "prove", "--db", "empty.sqlite3", "--entry-hash", "00" * 32], NO_INPUT, "no entry with that hash"),
    # hardware
    (["nfc", "probe", "--port", "/dev/nonexistent-tty", "--baudrate", "115200", "--timeout", "1"],
     UNAVAILABLE, "/dev/nonexistent-tty"),
    # a check that ran and said no
    (["pass", "verify", "junk.txt", "--issuer-pub", "iss/issuer.pub"], FAILED, None),
]


def test_the_table_is_big_enough():
    assert len(CASES) >= 30
    assert {code for _, code, _ in CASES} >= {USAGE, DATA, NO_INPUT, CONFIG, PERM, CANT_CREATE, FAILED}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("argv,code,fragment", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_a_user_mistake_is_one_line_and_its_exit_code(w, monkeypatch, capsys, argv, code, fragment):
    monkeypatch.chdir(w)
    got = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if code == FAILED:  # the verdict is the output (JSON); stderr stays quiet
        assert got == FAILED and '"ok": false' in out and not lines
        return
    assert got == code, (got, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("kiosk"), err
    assert fragment in lines[0], err


def test_an_unreadable_file_is_a_permission_error(w, monkeypatch, capsys):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    monkeypatch.chdir(w)
    assert main(["pass", "verify", "w/pass.qr.txt", "--issuer-pub", "private.pub"]) == PERM
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def _parsers(parser):
    yield parser
    for action in parser._actions:
        if hasattr(action, "choices") and isinstance(action.choices, dict):
            for child in action.choices.values():
                yield from _parsers(child)


def test_version_and_verbose_work_on_every_subcommand(capsys):
    from kiosk import __version__

    parsers = list(_parsers(build_parser()))
    assert len(parsers) > 30
    for p in parsers:
        argv = p.prog.split()[1:]
        assert main([*argv, "--version"]) == 0, p.prog
        assert capsys.readouterr().out.strip() == f"kiosk {__version__}"
        opts = {s for a in p._actions for s in a.option_strings}
        assert {"-v", "--verbose", "--version"} <= opts, p.prog


def test_a_group_option_is_accepted_after_the_subcommand_too(tmp_path, capsys):
    assert main(["issuer", "init", "--site", "clinic", "--dir", str(tmp_path / "a")]) == 0
    assert main(["issuer", "--dir", str(tmp_path / "b"), "init", "--site", "clinic"]) == 0
    assert (tmp_path / "a" / "issuer.key").exists() or any((tmp_path / "a").iterdir())
    # given before the subcommand and not after, the earlier value stands
    args = build_parser().parse_args(["-v", "issuer", "--dir", "X", "revoke", "00" * 16])
    assert args.verbose is True and str(args.dir) == "X"


def test_an_unexpected_error_is_one_line_and_70(monkeypatch, capsys):
    import kiosk.passcheck.cli as pcli

    def boom(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(pcli, "_verify", boom)
    assert main(["pass", "verify", "x"]) == 70
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "bug" in err
