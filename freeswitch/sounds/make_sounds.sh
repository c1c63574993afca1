#!/bin/sh
# Make $${sounds_dir}/ivrflow/engine_unavailable.wav: what callers hear when ivrflow serve cannot
# be reached (the dialplan's fallback).  8 kHz mono 16-bit, Mandarin then English.
#   sudo sh freeswitch/sounds/make_sounds.sh /usr/share/freeswitch/sounds
set -eu
dir="${1:-/usr/share/freeswitch/sounds}/ivrflow"
mkdir -p "$dir"
tmp=$(mktemp -d)
espeak-ng -v cmn-latn-pinyin -s 150 -w "$tmp/zh.wav" "对不起，系统暂时无法处理您的来电，正在为您转接人工服务。"
espeak-ng -v en-us -s 160 -w "$tmp/en.wav" "Sorry, we cannot take your call right now. Connecting you to an operator."
sox -v 0.8 "$tmp/zh.wav" -v 0.8 "$tmp/en.wav" -r 8000 -c 1 -b 16 "$dir/engine_unavailable.wav"
rm -rf "$tmp"
echo "wrote $dir/engine_unavailable.wav"
