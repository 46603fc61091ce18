#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets into tests/fuzz/corpus/<target>/ (docs/fuzzing.md).

The seeds are small and valid, so that the fuzzer starts from inputs that reach deep into each
parser: the frames of the worked examples in docs/protocol.md (and the message bodies and tap
records inside them), bodies of the other messages laid out as docs/protocol.md gives them, a
handful of lines of ../shared/data/szt-2018-08-31-evening.csv, the bill and registry examples of
docs/bills.md and docs/registry-format.md, and the fare table of docs/examples.

Run it from anywhere: python3 tests/fuzz/make_corpus.py. It rewrites only the seeds it makes
(the files named seed-*); inputs added by hand or kept from fuzzing runs stay.
"""

import pathlib
import re
import struct
import zlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fuzz" / "corpus"
SZT_DATA = ROOT.parent / "shared" / "data" / "szt-2018-08-31-evening.csv"
SZT_LINES = 6  # the header and a few rows of each deal type are enough


def write(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    (folder / f"seed-{name}").write_bytes(data)


def frame(frame_type, payload, version=1):
    header = struct.pack(">BBBBI", 0xCC, 0xA7, version, frame_type, len(payload))
    header += struct.pack(">I", zlib.crc32(header))
    body = header + payload
    return body + struct.pack(">I", zlib.crc32(body))


def example_frames():
    """(name, type, secured, bytes) of every frame dumped in docs/protocol.md section 11."""
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    frames = []
    title = re.compile(r"^[TS] -> [TS]  (\w+) \(0x([0-9a-f]{2})\), (plain|secured)")
    current = None
    for line in text.splitlines():
        match = title.match(line)
        if match:
            current = [match.group(1), int(match.group(2), 16), match.group(3) == "secured", b""]
            frames.append(current)
            continue
        dump = re.match(r"^[0-9a-f]{4}  ((?:[0-9a-f]{2}\s*)+)$", line)
        if current is not None and dump:
            current[3] += bytes.fromhex(dump.group(1).replace(" ", ""))
        elif current is not None and not line.strip():
            current = None
    return [tuple(f) for f in frames]


def example_records():
    """The 138-byte tap records dumped in docs/protocol.md."""
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    records = []
    for block in re.findall(r"^record \d \(138 bytes\)\n((?:[0-9a-f]{4}  .*\n)+)", text, re.M):
        hex_text = "".join(line[6:] for line in block.splitlines())
        records.append(bytes.fromhex(hex_text.replace(" ", "")))
    return records


def body_of(secured, payload):
    # A secured payload is an 8-byte sequence number, the body and a 16-byte MAC.
    return payload[8:-16] if secured else payload


def text_field(text, width):
    raw = text.encode("ascii")
    return raw + b"\0" * (width - len(raw))


def other_bodies(record):
    """Bodies of the messages the worked examples do not show, by docs/protocol.md."""
    proof = bytes(range(0xE0, 0xE8))
    card = 8607550000000012
    return {
        "challenge": (0x02, bytes(range(0xB0, 0xC0))),
        "terminal_proof": (0x03, bytes(range(32))),
        "server_proof": (0x04, bytes(range(32, 64))),
        "document_request": (0x38, struct.pack(">BI", 1, 7)),
        "document_page": (0x39, struct.pack(">BBIHHIII", 1, 1, 7, 0, 1, 5, 0, 5) + b'{"a":'),
        "document_up_to_date": (0x39, struct.pack(">BBIHHIII", 2, 2, 3, 0, 1, 0, 0, 0)),
        "topup_request": (0x40, struct.pack(">QQIqqq", 1, card, 17, 500, 10000, 1535700000) + proof),
        "topup_authorisation": (0x41, struct.pack(">QHQqq", 1, 0, 99, 10000, 10500) + bytes(8)),
        "topup_confirmation": (0x42, struct.pack(">QQ", 1, 99) + record),
        "topup_confirmation_result": (0x43, struct.pack(">QH", 1, 0)),
        "identity_check_request": (0x44, struct.pack(">QQBq", 2, card, 1, 1535700000) + proof),
        "identity_check_response": (0x45, struct.pack(">QHBBHHHH", 2, 0, 1, 1, 0x03, 0x02, 0x0F, 0x08)),
        "medical_settlement_request": (
            0x46, struct.pack(">QQB", 3, card, 1) + text_field("HOSP-2026-000123", 32)
            + struct.pack(">qq", 12000, 1535700000) + proof),
        "medical_settlement_response": (
            0x47, struct.pack(">QHqqqH", 3, 0, 8000, 3000, 1000, 4) + b"vchr"),
        "bill_payment_request": (
            0x48, struct.pack(">QQ", 4, card) + text_field("WB2026100001", 32)
            + struct.pack(">q", 12345) + proof),
        "bill_payment_response": (
            0x49, struct.pack(">QHqq", 4, 0, 12345, 500) + text_field("T000000000000042", 32)),
        "denylist_full": (0x31, struct.pack(">BHHQQHH", 1, 0, 1, 0, 5, 0, 1) + struct.pack(">Q", card)),
    }


def protocol_seeds():
    frames = example_frames()
    assert len(frames) >= 10, "the worked examples of docs/protocol.md have moved"
    stream = b""
    for name, frame_type, secured, data in frames:
        write("frame_decoder", f"{name}-{frame_type:02x}", data)
        stream += data
        payload = data[12:-4]
        write("messages", f"{name}", bytes([frame_type]) + body_of(secured, payload))
    write("frame_decoder", "session", stream)
    # Noise, a frame, a broken frame and a truncated one: the resynchronisation paths.
    hello = frames[0][3]
    broken = bytearray(hello)
    broken[20] ^= 0xFF
    write("frame_decoder", "noise-broken-truncated", b"\x00\xcc\x01" + hello + bytes(broken) + hello[:30])
    records = example_records()
    assert len(records) == 2, "the tap records of docs/protocol.md have moved"
    for i, record in enumerate(records, 1):
        write("tap_record", f"record-{i}", record)
    for name, (frame_type, body) in other_bodies(records[0]).items():
        write("messages", name, bytes([frame_type]) + body)
        write("frame_decoder", f"{name}-{frame_type:02x}", frame(frame_type, body))
    write("messages", "error-text", bytes([0x7F]) + struct.pack(">HH", 200, 5) + "未知终端".encode()[:5])


def csv_seeds():
    with open(SZT_DATA, encoding="utf-8") as data:
        lines = [next(data) for _ in range(400)]
    header, rows = lines[0], lines[1:]
    picked = []
    for kind in ("地铁入站", "地铁出站", "巴士"):
        picked += [row for row in rows if f",{kind}," in row][:2]
    szt = header + "".join(picked[: SZT_LINES - 1])
    write("szt_file", "evening", szt)
    write("szt_file", "evening-crlf-bom", "\ufeff" + szt.replace("\n", "\r\n"))
    write("csv", "szt", szt)

    bills = ("bill_id,utility,account_no,card_no,period,amount,due_date\n"
             'WB2026100001,water-hz,"杭州市西湖区文三路 12 号, 张三",8607550000000012,2026-10,123.45,2026-11-15\n'
             "WB2026100002,water-hz,HZ-0002,8607550000000020,202610,0.01,2026-11-15\n"
             "EB2026100001,power-hz,HZ-E-0001,8607550000000012,2026-10,88,2026-11-20\n"
             "WB2026100001,water-hz,HZ-0003,8607550000000038,2026-10,1.00,2026-11-15\n"
             "WB2026100003,gas-hz,HZ-0004,8607550000000046,2026-13,-1,2026-02-30\n")
    write("bill_file", "example", bills)
    write("csv", "bills", bills)

    registry = ("national_id,name,schemes,groups,medical_account\n"
                "321281199001011234,张三,pension|medical,,120.50\n"
                "11010519491231002X,李四,medical,elderly|low_income,0\n"
                "11010519491231002x,\"王, 五\",maternity|pension,disabled,1.5\n"
                "123,,nothing,,-1\n")
    write("holder_registry", "example", registry)
    write("csv", "registry", registry)
    write("csv", "quoting", '\ufeffa,"b ""quoted""","multi\nline",\r\n,,\n"x"\n\n"last"')


def fare_seeds():
    example = (ROOT / "docs" / "examples" / "shenzhen-fares.json").read_text(encoding="utf-8")
    write("fares", "shenzhen", example)
    # A small table with one of each pricing kind, concession kind and rule list.
    write("fares", "small", """{
  "format": "citycard-fares", "format_version": 1, "version": 3, "name": "Seed city",
  "networks": [{"id": "m", "stations": [{"code": 1, "zone": 1}, {"code": 2, "zone": 2}],
                "zone_fares_fen": [[200, 300], [300, 200]],
                "pair_fares": [{"from": 2, "to": 1, "fare_fen": 250}],
                "unmatched_exit_fare_fen": 600, "unmatched_entry_fare_fen": 700}],
  "operators": [
    {"id": "bus", "mode": "bus", "routes": [{"code": 10, "pricing": {"kind": "flat", "fare_fen": 200}}]},
    {"id": "metro", "mode": "metro", "pricing": {"kind": "distance", "network": "m"}},
    {"id": "taxi", "mode": "taxi", "pricing": {"kind": "metered"}, "concessions": {}},
    {"id": "park", "mode": "parking", "pricing": {"kind": "parking", "free_minutes": 15,
      "bands": [{"until_minutes": 60, "unit_minutes": 30, "fen_per_unit": 300},
                {"unit_minutes": 60, "fen_per_unit": 500}],
      "day_max_fen": 4000, "lost_ticket_fare_fen": 5000}}],
  "concessions": {
    "student": [{"kind": "percent", "pay_percent": 50}],
    "elderly": [{"kind": "free", "hours": [{"from": "22:00", "to": "06:00"}]},
                {"kind": "free_quota", "rides_per_month": 2}],
    "adult": [{"kind": "bands", "modes": ["bus"],
               "bands": [{"up_to_fen": 200, "pay_percent": 100}, {"pay_percent": 50}]}]},
  "transfers": [{"from_modes": ["bus"], "to_modes": ["metro"], "window_minutes": 60,
                 "percent_off": 50, "different_route": true}],
  "daily_caps": [{"profile": "adult", "modes": ["bus", "metro"], "cap_fen": 500}],
  "passes": [{"id": "p", "name": "Pass", "price_fen": 100, "validity_days": 30, "visits": 3,
              "spots": ["park"]}]
}
""")


def pack_seeds():
    """Tap packs (docs/tap-packs.md) of the records of docs/protocol.md: one of each record,
    one of both, both twice over two days with the flags set, and an empty one."""
    records = example_records()
    card_at, amount_at = 6, 6 + 8 + 4 + 8
    time_at = amount_at + 8 + 16 + 4
    operator_at = time_at + 8

    def pack(entries):
        operators = []
        body = b""
        for record, day, flags in entries:
            op = record[operator_at:operator_at + 16]
            if op not in operators:
                operators.append(op)
            body += int.from_bytes(record[card_at:card_at + 8], "big").to_bytes(8, "little")
            body += int.from_bytes(record[time_at:time_at + 8], "big").to_bytes(8, "little")
            body += int.from_bytes(record[amount_at:amount_at + 8], "big").to_bytes(8, "little")
            body += day.to_bytes(4, "little", signed=True)
            body += bytes([record[1], record[2], flags])
            body += operators.index(op).to_bytes(2, "little")
        head = bytes([1]) + len(operators).to_bytes(2, "little") + b"".join(operators)
        return head + len(entries).to_bytes(4, "little") + body

    for i, record in enumerate(records):
        write("tap_pack", f"one-{i}", pack([(record, 19000, 2)]))
    write("tap_pack", "both", pack([(r, 19000, 2) for r in records]))
    write("tap_pack", "two-days", pack([(r, 19000 + (i % 2), i % 4) for i, r in
                                        enumerate(records + records)]))
    write("tap_pack", "empty", pack([]))


def main():
    protocol_seeds()
    csv_seeds()
    fare_seeds()
    pack_seeds()


if __name__ == "__main__":
    main()
