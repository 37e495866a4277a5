"""Reboot reason, counters and the self-test verdict (pure logic)."""
from crashkeep.ops import bootstate as bs


def test_classify_panic_beats_everything():
    assert bs.classify(None, ["Oops", "Panic"]) == "panic"
    assert bs.classify({"clean_shutdown": True}, ["Panic"]) == "panic"


def test_classify_oops_without_panic():
    assert bs.classify({"clean_shutdown": False}, ["Oops"]) == "oops"


def test_classify_cold_boot_is_power_loss():
    assert bs.classify(None, []) == "power-loss"


def test_classify_clean_and_reset():
    assert bs.classify({"clean_shutdown": True}, []) == "clean"
    assert bs.classify({"clean_shutdown": False}, []) == "reset"
    assert bs.classify({"clean_shutdown": False}, ["Emergency"]) == "reset"


def test_next_state_counts_consecutive_panics():
    s1 = bs.next_state(None, "panic", "", 1700000000)
    assert s1["boot_count"] == 1 and s1["panic_count"] == 1
    s2 = bs.next_state(s1, "panic", "", 1700000100)
    assert s2["boot_count"] == 2 and s2["panic_count"] == 2
    s3 = bs.next_state(s2, "clean", "", 1700000200)
    assert s3["boot_count"] == 3 and s3["panic_count"] == 0
    assert s3["clean_shutdown"] is False and s3["canary"] == 0
    assert s3["last_boot_time"] == 1700000200


def test_is_new_uses_the_previous_salvage_time():
    prev = {"last_boot_time": 1700000000}
    assert bs.is_new(1700000001, prev)
    assert bs.is_new(1700000000, prev)
    assert not bs.is_new(1699999999, prev)
    # no clock (1970) or no time: cannot tell, count it
    assert bs.is_new(12, prev)
    assert bs.is_new(0, prev)
    assert bs.is_new(1699999999, None)


def test_reason_from_record():
    assert bs.reason_from_record(b"Panic#2 Part1\n<0>[ 1.0] Kernel panic") == "Panic"
    assert bs.reason_from_record(b"====1700000000.000001-D\nOops#1 Part1\n") == "Oops"
    assert bs.reason_from_record(b"\x78\x9c\x01\x02") is None
    assert bs.reason_from_record(b"") is None


def test_selftest_result():
    assert bs.selftest_result({"canary": 5}, False) == "kept"
    assert bs.selftest_result({"canary": 5}, True) == "kept"
    assert bs.selftest_result(None, True) == "lost"
    assert bs.selftest_result({"canary": 0}, True) == "lost"
    assert bs.selftest_result(None, False) is None
