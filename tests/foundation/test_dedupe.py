"""The notification window: bounded by count and by the pushes' own age."""

from __future__ import annotations

from shared.dedupe import NotificationWindow, notification_of


def test_the_window_forgets_the_oldest_beyond_its_size() -> None:
    window = NotificationWindow(max_size=2)
    for n, at in (("a", 1), ("b", 2), ("c", 3)):
        window.add(n, at)
    assert "a" not in window and "b" in window and "c" in window and len(window) == 2


def test_the_window_forgets_pushes_older_than_the_horizon() -> None:
    window = NotificationWindow(horizon_s=100)
    window.add("old", 1_000)
    window.add("recent", 1_050)
    window.add("new", 1_101)
    assert "old" not in window and "recent" in window and "new" in window


def test_notification_of_reads_the_id_and_push_time() -> None:
    assert notification_of(b'{"tts_notification_id":"n1","timestamp":5,"type":1}') == ("n1", 5)
    assert notification_of(b'{"type":3,"timestamp":5}') is None
    assert notification_of(b"not json") is None
