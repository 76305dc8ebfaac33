#!/usr/bin/env python3
"""Encodes fuzz/seeds/trade_ingest/*.textproto (clm.v1.IngestRequest) into fuzz/corpus/trade_ingest/, plus
two inputs text format cannot express: unknown fields (top level and inside closed_at) and a batch one
trade over the fuzzer's limit of 64. Run from anywhere; needs protoc."""
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
SEEDS = ROOT / "fuzz/seeds/trade_ingest"
OUT = ROOT / "fuzz/corpus/trade_ingest"


def encode(text, message="clm.v1.IngestRequest"):
    return subprocess.run(
        ["protoc", f"--proto_path={ROOT / 'proto'}", "--proto_path=/usr/include", f"--encode={message}",
         "clm/v1/ingest.proto"], input=text.encode(), capture_output=True, check=True).stdout


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_bytes(number, payload):  # length-delimited field
    return varint(number << 3 | 2) + varint(len(payload)) + payload


OUT.mkdir(parents=True, exist_ok=True)
for seed in sorted(SEEDS.glob("*.textproto")):
    (OUT / f"{seed.stem}.binpb").write_bytes(encode(seed.read_text()))

# A valid trade with unknown fields: field 15 (varint 42) at the top level, field 9 (varint 7) in closed_at.
trade = encode('trade_id: "seed-unknown" symbol: "BTCUSDT" confidence: 0.6 outcome: WIN', "clm.v1.TradeOutcome")
closed_at = encode("seconds: 1714620000", "google.protobuf.Timestamp") + varint(9 << 3) + varint(7)
trade += field_bytes(8, closed_at) + varint(15 << 3) + varint(42)
(OUT / "unknown_fields.binpb").write_bytes(varint(1 << 3) + varint(8) + field_bytes(2, trade))

# 65 trades: one over the fuzzer's max_batch_trades, refused whole.
lines = ["batch_id: 9"] + [
    f'trades {{ trade_id: "seed-big-{i}" symbol: "BTCUSDT" confidence: 0.5 outcome: WIN closed_at {{ seconds: 1714630000 }} }}'
    for i in range(65)]
(OUT / "oversized_batch.binpb").write_bytes(encode("\n".join(lines)))
