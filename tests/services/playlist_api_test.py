#!/usr/bin/env python3
"""The playlist service's HTTP API, over real HTTP against a real process: every endpoint,
every error case (400 naming the field, also for positions checked against the playlist's
length, 404, 409 for a full playlist), the version counting applied changes only,
idempotent retries (also across a restart), /metrics, and the state after a restart.

Usage: playlist_api_test.py PLAYLIST_SERVICE_BIN"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from service_client import Checks, Service  # noqa: E402

playlist_bin = sys.argv[1]
work = tempfile.mkdtemp(prefix="eddy-playlist.")
c = Checks()
MAX_SONGS = 5


def get(svc, pid):
    st, body, _ = svc.call("GET", "/playlists/" + pid)
    c.check(st == 200, "GET /playlists/%s is 200" % pid, (st, body))
    return body


def add(svc, pid, song, position=None, headers=None):
    payload = {"song": song}
    if position is not None:
        payload["position"] = position
    return svc.call("POST", "/playlists/%s/songs" % pid, payload, headers=headers)


def expect_400(what, field, result):
    st, body, _ = result
    c.check(st == 400 and isinstance(body, dict) and body.get("field") == field
            and body.get("error"), "%s: 400 naming %s" % (what, field), (st, body))


def inserts(svc):
    st, body, _ = svc.call("GET", "/playlists/p1")
    c.check(st == 200 and body == {"id": "p1", "songs": [], "version": 0},
            "GET of an unknown playlist is empty at version 0", (st, body))

    st, body, _ = add(svc, "p1", "s1")
    c.check(st == 200 and body == {"id": "p1", "songs": ["s1"], "version": 1},
            "POST songs appends and answers the playlist", (st, body))
    st, body, _ = add(svc, "p1", "s2")
    c.check(st == 200 and body["songs"] == ["s1", "s2"] and body["version"] == 2,
            "a second POST appends at the end", (st, body))
    st, body, _ = add(svc, "p1", "s0", 0)
    c.check(st == 200 and body["songs"] == ["s0", "s1", "s2"] and body["version"] == 3,
            "position 0 inserts at the front", (st, body))
    st, body, _ = add(svc, "p1", "s3", 3)
    c.check(st == 200 and body["songs"] == ["s0", "s1", "s2", "s3"] and body["version"] == 4,
            "position len appends", (st, body))
    st, body, _ = add(svc, "p1", "s1.5_x-y", 2)
    c.check(st == 200 and body["songs"] == ["s0", "s1", "s1.5_x-y", "s2", "s3"]
            and body["version"] == 5, "position 2 inserts in the middle", (st, body))
    # p1 is full now (--playlist.max-songs 5); p2 takes the remaining cases.
    st, body, _ = add(svc, "p2", "dup")
    st, body, _ = add(svc, "p2", "dup")
    c.check(st == 200 and body["songs"] == ["dup", "dup"] and body["version"] == 2,
            "a song may be in a playlist twice", (st, body))

    # Positions that depend on the length: checked by the keyed function.
    expect_400("position len + 1", "position", add(svc, "p2", "x", 3))
    expect_400("position 1 in an unknown playlist", "position", add(svc, "empty1", "x", 1))
    # Checked by the route, before the request is logged.
    expect_400("a negative position", "position", add(svc, "p2", "x", -1))
    expect_400("position over any playlist's size", "position", add(svc, "p2", "x", 10 ** 7))
    expect_400("position as a string", "position", add(svc, "p2", "x", "1"))
    expect_400("position not an integer", "position", add(svc, "p2", "x", 1.5))
    expect_400("position null", "position",
               svc.call("POST", "/playlists/p2/songs", raw='{"song":"x","position":null}'))
    expect_400("missing song", "song", svc.call("POST", "/playlists/p2/songs", {"position": 0}))
    expect_400("song with a space", "song", add(svc, "p2", "a b"))
    expect_400("song of 65 characters", "song", add(svc, "p2", "s" * 65))
    expect_400("empty song", "song", add(svc, "p2", ""))
    expect_400("song as a number", "song", add(svc, "p2", 17))
    expect_400("playlist id of 65 characters", "id", add(svc, "p" * 65, "x"))
    expect_400("playlist id with a space", "id", svc.call("GET", "/playlists/a%20b"))
    expect_400("a body that is not an object", "body",
               svc.call("POST", "/playlists/p2/songs", ["s1"]))
    expect_400("malformed JSON", "body",
               svc.call("POST", "/playlists/p2/songs", raw='{"song": "s1", '))
    expect_400("an empty body", "song", svc.call("POST", "/playlists/p2/songs", raw=""))
    body = get(svc, "p2")
    c.check(body["songs"] == ["dup", "dup"] and body["version"] == 2,
            "no refused insert changed p2 or its version", body)
    body = get(svc, "empty1")
    c.check(body == {"id": "empty1", "songs": [], "version": 0},
            "a refused insert does not create a playlist", body)


def limit(svc):
    # p1 holds --playlist.max-songs (5) songs.
    st, body, _ = add(svc, "p1", "s6")
    c.check(st == 409 and body.get("field") == "songs" and "5" in body.get("error", ""),
            "appending to a full playlist is 409", (st, body))
    st, body, _ = add(svc, "p1", "s6", 0)
    c.check(st == 409 and body.get("field") == "songs",
            "inserting into a full playlist is 409", (st, body))
    expect_400("a full playlist, position out of range", "position", add(svc, "p1", "s6", 6))
    body = get(svc, "p1")
    c.check(len(body["songs"]) == 5 and body["version"] == 5,
            "a full playlist is unchanged by refused inserts", body)


def deletes(svc):
    # p1: s0 s1 s1.5_x-y s2 s3
    st, body, _ = svc.call("DELETE", "/playlists/p1/songs/2")
    c.check(st == 200 and body["songs"] == ["s0", "s1", "s2", "s3"] and body["version"] == 6,
            "DELETE removes the song at the position", (st, body))
    st, body, _ = add(svc, "p1", "s4")
    c.check(st == 200 and body["songs"] == ["s0", "s1", "s2", "s3", "s4"] and body["version"] == 7,
            "after a DELETE a full playlist takes a song again", (st, body))
    st, body, _ = svc.call("DELETE", "/playlists/p1/songs/0")
    c.check(st == 200 and body["songs"] == ["s1", "s2", "s3", "s4"] and body["version"] == 8,
            "DELETE of position 0", (st, body))
    st, body, _ = svc.call("DELETE", "/playlists/p1/songs/3")
    c.check(st == 200 and body["songs"] == ["s1", "s2", "s3"] and body["version"] == 9,
            "DELETE of the last position", (st, body))
    expect_400("DELETE of position len", "position", svc.call("DELETE", "/playlists/p1/songs/3"))
    expect_400("DELETE in an unknown playlist", "position",
               svc.call("DELETE", "/playlists/empty2/songs/0"))
    for text in ["x", "-1", "1.0", "1x", "%201", "99999999999999999999999"]:
        expect_400("DELETE of position '%s'" % text, "position",
                   svc.call("DELETE", "/playlists/p1/songs/" + text))
    expect_400("DELETE with a bad playlist id", "id",
               svc.call("DELETE", "/playlists/" + "q" * 65 + "/songs/0"))
    body = get(svc, "p1")
    c.check(body["songs"] == ["s1", "s2", "s3"] and body["version"] == 9,
            "no refused DELETE changed p1 or its version", body)


def moves(svc):
    # p1: s1 s2 s3
    def move(frm, to, pid="p1", headers=None):
        return svc.call("POST", "/playlists/%s/moves" % pid, {"from": frm, "to": to},
                        headers=headers)

    st, body, _ = move(0, 2)
    c.check(st == 200 and body["songs"] == ["s2", "s3", "s1"] and body["version"] == 10,
            "a move to a later position", (st, body))
    st, body, _ = move(2, 0)
    c.check(st == 200 and body["songs"] == ["s1", "s2", "s3"] and body["version"] == 11,
            "a move to an earlier position", (st, body))
    st, body, _ = move(1, 1)
    c.check(st == 200 and body["songs"] == ["s1", "s2", "s3"] and body["version"] == 12,
            "a move to the same position is applied (and counted)", (st, body))
    expect_400("from = len", "from", move(3, 0))
    expect_400("to = len", "to", move(0, 3))
    expect_400("from and to out of range names from first", "from", move(5, 5))
    expect_400("a move in an unknown playlist", "from", move(0, 0, "empty3"))
    expect_400("a negative from", "from", move(-1, 0))
    expect_400("a negative to", "to", move(0, -1))
    expect_400("from as a string", "from", move("0", 1))
    expect_400("to not an integer", "to", move(0, 1.5))
    expect_400("missing from", "from", svc.call("POST", "/playlists/p1/moves", {"to": 1}))
    expect_400("missing to", "to", svc.call("POST", "/playlists/p1/moves", {"from": 1}))
    expect_400("malformed JSON in a move", "body",
               svc.call("POST", "/playlists/p1/moves", raw='{"from": 0, "to"'))
    body = get(svc, "p1")
    c.check(body["songs"] == ["s1", "s2", "s3"] and body["version"] == 12,
            "no refused move changed p1 or its version", body)


def idempotency(svc):
    key = {"Idempotency-Key": "add-77.retry_1"}
    st1, first, _ = add(svc, "p3", "a", headers=key)
    st2, again, _ = add(svc, "p3", "a", headers=key)
    c.check(st1 == 200 and st2 == 200 and first == again and first["version"] == 1,
            "a retried POST with its Idempotency-Key answers the first answer", (first, again))
    st, body, _ = add(svc, "p3", "b", headers={"Idempotency-Key": "add-78"})
    c.check(st == 200 and body["songs"] == ["a", "b"] and body["version"] == 2,
            "another key applies", (st, body))
    del_key = {"Idempotency-Key": "del-1"}
    st1, first, _ = svc.call("DELETE", "/playlists/p3/songs/0", headers=del_key)
    st2, again, _ = svc.call("DELETE", "/playlists/p3/songs/0", headers=del_key)
    c.check(st1 == 200 and first == again and first["songs"] == ["b"] and first["version"] == 3,
            "a retried DELETE removes once", (first, again))
    add(svc, "p3", "c")
    mv_key = {"Idempotency-Key": "mv-1"}
    st1, first, _ = svc.call("POST", "/playlists/p3/moves", {"from": 0, "to": 1}, headers=mv_key)
    st2, again, _ = svc.call("POST", "/playlists/p3/moves", {"from": 0, "to": 1}, headers=mv_key)
    c.check(st1 == 200 and first == again and first["songs"] == ["c", "b"]
            and first["version"] == 5, "a retried move moves once", (first, again))
    # A refused request is remembered too: the retry is refused the same way although it
    # would now be applied.
    bad_key = {"Idempotency-Key": "bad-pos"}
    st1, first, _ = add(svc, "p3", "d", 3, headers=bad_key)
    add(svc, "p3", "e")
    st2, again, _ = add(svc, "p3", "d", 3, headers=bad_key)
    c.check(st1 == 400 and st2 == 400 and first == again and first.get("field") == "position",
            "a retried refused request gets the first refusal", (first, again))
    st, body, _ = add(svc, "p3", "x", headers={"Idempotency-Key": "no spaces allowed"})
    c.check(st == 400 and body.get("field") == "Idempotency-Key",
            "a malformed Idempotency-Key: 400 naming it", (st, body))
    body = get(svc, "p3")
    c.check(body["songs"] == ["c", "b", "e"] and body["version"] == 6, "p3 after the retries",
            body)


def routes(svc):
    st, body, _ = svc.call("GET", "/nowhere")
    c.check(st == 404 and "no route" in body.get("error", ""), "an unknown route is 404",
            (st, body))
    st, body, _ = svc.call("GET", "/playlists/p1/songs")
    c.check(st == 404, "GET of /playlists/{id}/songs is no route", (st, body))
    st, body, _ = svc.call("DELETE", "/playlists/p1/songs")
    c.check(st == 404, "DELETE without a position is no route", (st, body))
    st, body, _ = svc.call("PUT", "/playlists/p1")
    c.check(st in (404, 405), "an unsupported method is refused", (st, body))
    st, body, _ = svc.call("POST", "/playlists/p1/songs", raw='{"song":"s1","pad":"%s"}'
                           % ("x" * 70000))
    c.check(st == 413 and body.get("field") == "body", "a body over the limit is 413", (st, body))
    st, metrics, _ = svc.call("GET", "/metrics")
    c.check(st == 200 and 'eddy_http_requests_total{route="add_song",status="200"}' in metrics
            and 'eddy_http_requests_total{route="remove_song",status="400"}' in metrics
            and 'eddy_http_requests_total{route="move_song",status="200"}' in metrics
            and 'eddy_http_requests_total{route="add_song",status="409"}' in metrics,
            "/metrics counts requests by route and status", metrics)


def options():
    refused = [(["--playlist.max-songs", "0"], "--playlist.max-songs 0"),
               (["--playlist.max-songs", "1000001"], "--playlist.max-songs over 1000000"),
               (["--http.idempotency-keep", "soon"], "a bad --http.idempotency-keep")]
    for args, what in refused:
        p = subprocess.run([playlist_bin, "--data-dir", os.path.join(work, "opts"), *args],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=20)
        c.check(p.returncode == 2 and b"playlist" in p.stderr,
                "%s is refused with a message" % what, (p.returncode, p.stderr[-300:]))


def main():
    started = time.time()
    options()
    data = os.path.join(work, "data")
    svc = Service(playlist_bin, data, "--playlist.max-songs", str(MAX_SONGS))
    try:
        inserts(svc)
        limit(svc)
        deletes(svc)
        moves(svc)
        idempotency(svc)
        routes(svc)
        before = {pid: get(svc, pid) for pid in ["p1", "p2", "p3"]}
        c.check(svc.stop() == 0, "the service exits 0 on SIGTERM")
    except Exception:
        svc.kill()
        raise
    out = os.path.join(data, "playlist-service.jsonl")
    c.check(not os.path.exists(out) or open(out).read().strip() == "",
            "the output holds no lines (no events)")

    # The state survives a restart (with the default limit now), and so do the keys.
    svc = Service(playlist_bin, data)
    try:
        for pid, was in before.items():
            body = get(svc, pid)
            c.check(body == was, "%s after a restart" % pid, (body, was))
        st, body, _ = add(svc, "p3", "a", headers={"Idempotency-Key": "add-77.retry_1"})
        c.check(st == 200 and body == {"id": "p3", "songs": ["a"], "version": 1},
                "an Idempotency-Key is remembered across a restart", (st, body))
        st, body, _ = add(svc, "p1", "s9", 1)
        c.check(st == 200 and body["songs"] == ["s1", "s9", "s2", "s3"] and body["version"] == 13,
                "a change after a restart continues the version", (st, body))
        for i in range(3):
            add(svc, "p1", "t%d" % i)
        st, body, _ = add(svc, "p1", "t3")
        c.check(st == 200 and len(body["songs"]) == 8,
                "the default --playlist.max-songs (10000) takes more than 5", (st, body))
        c.check(svc.stop() == 0, "the restarted service exits 0 on SIGTERM")
    except Exception:
        svc.kill()
        raise
    print("took %.1f s" % (time.time() - started))
    return c.verdict("playlist service API: every endpoint and error case over real HTTP")


try:
    rc = main()
finally:
    if os.environ.get("KEEP_WORK"):
        print("work dir kept:", work)
    else:
        shutil.rmtree(work, ignore_errors=True)
sys.exit(rc)
