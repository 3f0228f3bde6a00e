#!/usr/bin/env bash
# Checkpoints carry an FNV-1a 64 checksum of every tensor's bytes (issue 17, defect 8): a
# flipped byte in the tensors is refused on --resume naming the file; an intact one resumes.
cd "$(dirname "$0")/../.." || exit 1
. tests/cli/lib.sh
S260="$SHARED/models/stories260K/stories260K.bin"
WP="$SHARED/corpora/war-and-peace.txt"
need "$S260" && need "$WP" || { echo "1..$TAP_N"; exit 0; }
head -c 100000 "$WP" >"$TMP/wp.txt"
FT=(finetune --model "$S260" --data "$TMP/wp.txt" --batch 2 --seq-len 32 --eval-every 0 --save-every 2 --quiet)
$MUSCLE "${FT[@]}" --steps 4 --out "$TMP/a"
cp -r "$TMP/a" "$TMP/b"
CK="$TMP/b/checkpoint/state.safetensors"
check "the checkpoint records its checksum" python3 -c "
import json, struct; b = open('$CK', 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
assert len(json.loads(b[8:8 + n])['__metadata__']['checksum.fnv64']) == 16"
python3 -c "
import struct; p = '$CK'; b = bytearray(open(p, 'rb').read()); n = struct.unpack('<Q', b[:8])[0]
b[8 + n + (len(b) - 8 - n) // 2] ^= 0x10; open(p, 'wb').write(b)"
expect_error "a flipped byte is refused on --resume, naming the file" "state.safetensors: checksum mismatch" \
  $MUSCLE "${FT[@]}" --steps 4 --out "$TMP/b" --resume
check "an intact checkpoint resumes" $MUSCLE "${FT[@]}" --steps 4 --out "$TMP/a" --resume
echo "1..$TAP_N"
